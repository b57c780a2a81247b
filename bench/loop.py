"""`make bench`: the training loop itself, trainbox next to a plain PyTorch loop and HF's Trainer.

    python bench/loop.py --trainbox PATH [--steps 300] [--repeats 3] [--threads 1,2] [--work DIR]

Trains the demo model (`trainbox train --task sort`: the pre-LN transformer
encoder of host/src/tasks/sort.rs, length 16, d_model 96, 3 layers, 4 heads,
on its SplitMix64 digits, seed 1 for train and 2 for eval) three ways, each
in a child process with the same number of threads, taking turns:

  trainbox     `trainbox train --task sort`
  PyTorch      the loop an expert writes on the same module, reimplemented
               here: shuffle per epoch, index the pre-built tensors,
               zero_grad(set_to_none=True), forward, backward,
               clip_grad_norm_(1.0), fused AdamW, LambdaLR linear schedule,
               the loss summed on the device and read once at the end
  HF Trainer   `transformers.Trainer` on the same module (it returns
               {"loss": ...}), use_cpu, the same arguments

with `make run`'s hyper-parameters (batch 64, lr 1e-3, warmup_steps 0.05,
weight_decay 0.01 but on biases and layer norms, linear schedule, AdamW
fused, max_grad_norm 1.0), one log at the end, one evaluation at the end,
no checkpoints. Step time is each side's own train_runtime less its
evaluation's runtime, over the steps; wall time is the whole process, peak
RSS its rusage (wait4). Prints one table per thread count: medians over the
alternating runs, and the ratios trainbox / PyTorch and trainbox / HF. The
PyTorch loop and HF's Trainer draw the same weights and the same batch order
(torch seed 0, HF's sampler seeded 0), so their losses agree to the digit:
the loop does what HF's does. trainbox starts from other random weights of
the same distributions (tch's initialisers, drawn as here) and its own
shuffle, so its losses agree within a run-to-run spread. Nothing is
downloaded.
"""

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load, median, python_child, run_child, table, thread_env, write_metrics  # noqa: E402

LENGTH, D_MODEL, LAYERS, HEADS, DIGITS = 16, 96, 3, 4, 10
TRAIN_SIZE, EVAL_SIZE = 16384, 1024
BATCH, EVAL_BATCH = 64, 256
LR, WARMUP, WEIGHT_DECAY, MAX_GRAD_NORM = 1e-3, 0.05, 0.01, 1.0
MASK = (1 << 64) - 1


def splitmix64(seed):
    """host/src/trainer/data.rs's SplitMix64: the same u64 stream."""
    state = seed
    while True:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        yield z ^ (z >> 31)


def dataset(n, seed):
    """sort.rs's `dataset`: n digit sequences and their sorted versions,
    as int64 tensors [n, LENGTH]."""
    import torch

    rng = splitmix64(seed)
    inputs = [[next(rng) % DIGITS for _ in range(LENGTH)] for _ in range(n)]
    x = torch.tensor(inputs, dtype=torch.int64)
    return x, x.sort(dim=-1).values


def modules():
    """The sort model in torch.nn, module for module as sort.rs builds it
    with tch, initialised as tch's defaults draw: linear weights
    kaiming-uniform with the ReLU gain (bound sqrt(6 / fan_in)), biases
    uniform(+-1/sqrt(fan_in)), embeddings N(0, 1), `pos` N(0, 0.02)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def linear(i, o):
        m = nn.Linear(i, o)
        nn.init.uniform_(m.weight, -math.sqrt(6 / i), math.sqrt(6 / i))
        nn.init.uniform_(m.bias, -1 / math.sqrt(i), 1 / math.sqrt(i))
        return m

    class Block(nn.Module):
        def __init__(self, d, heads):
            super().__init__()
            self.ln1, self.qkv, self.proj = nn.LayerNorm(d), linear(d, 3 * d), linear(d, d)
            self.ln2, self.fc1, self.fc2 = nn.LayerNorm(d), linear(d, 4 * d), linear(4 * d, d)
            self.heads = heads

        def forward(self, x):
            b, l, d = x.shape
            qkv = self.qkv(self.ln1(x)).view(b, l, 3, self.heads, d // self.heads)
            qkv = qkv.permute(2, 0, 3, 1, 4)
            att = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
            x = x + self.proj(att.transpose(1, 2).contiguous().view(b, l, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x)), approximate="none"))

    class SortModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok = nn.Embedding(DIGITS, D_MODEL)
            nn.init.normal_(self.tok.weight, 0.0, 1.0)
            self.pos = nn.Parameter(torch.randn(LENGTH, D_MODEL) * 0.02)
            self.blocks = nn.ModuleList(Block(D_MODEL, HEADS) for _ in range(LAYERS))
            self.ln_f = nn.LayerNorm(D_MODEL)
            self.head = linear(D_MODEL, DIGITS)

        def logits(self, input_ids):
            x = self.tok(input_ids) + self.pos
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln_f(x))

        def forward(self, input_ids, labels):
            """HF's contract: a dict with the mean loss."""
            logits = self.logits(input_ids)
            return {"loss": F.cross_entropy(logits.view(-1, DIGITS), labels.view(-1))}

    return SortModel


def decay_groups(model):
    """HF's `get_decay_parameter_names` grouping: no weight decay on biases
    and layer-norm parameters."""
    from torch import nn

    no_decay = set()
    for name, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            full = f"{name}.{pname}" if name else pname
            if isinstance(module, nn.LayerNorm) or "bias" in pname:
                no_decay.add(full)
    params = dict(model.named_parameters())
    return [
        {"params": [p for n, p in params.items() if n not in no_decay], "weight_decay": WEIGHT_DECAY},
        {"params": [p for n, p in params.items() if n in no_decay], "weight_decay": 0.0},
    ]


def evaluate(model, x, y):
    """Mean loss over the eval batches (as HF and trainbox average them) and
    the token accuracy."""
    import torch
    import torch.nn.functional as F

    model.eval()
    losses, right = [], 0
    with torch.no_grad():
        for i in range(0, len(x), EVAL_BATCH):
            logits = model.logits(x[i:i + EVAL_BATCH])
            losses.append(F.cross_entropy(logits.view(-1, DIGITS), y[i:i + EVAL_BATCH].view(-1)).item())
            right += (logits.argmax(-1) == y[i:i + EVAL_BATCH]).sum().item()
    model.train()
    return sum(losses) / len(losses), right / y.numel()


def torch_child(a):
    """The plain PyTorch loop; its eval runs after the timed loop."""
    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = modules()()
    x, y = dataset(TRAIN_SIZE, 1)
    ex, ey = dataset(EVAL_SIZE, 2)
    opt = torch.optim.AdamW(decay_groups(model), lr=LR, fused=True)
    warmup = math.ceil(a.steps * WARMUP)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warmup) if s < warmup
        else max(0.0, (a.steps - s) / max(1, a.steps - warmup)))
    # HF's order: accelerate's SeedableRandomSampler seeds each epoch with seed + epoch.
    gen, epoch = torch.Generator(), 0
    per_epoch = len(x) // BATCH + (len(x) % BATCH > 0)
    model.train()
    start = time.perf_counter()
    total, step = torch.zeros(()), 0
    while step < a.steps:
        order = torch.randperm(len(x), generator=gen.manual_seed(epoch))
        epoch += 1
        for b in range(per_epoch):
            idx = order[b * BATCH:(b + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            loss = model(x[idx], y[idx])["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            opt.step()
            sched.step()
            total += loss.detach()
            step += 1
            if step == a.steps:
                break
    train_loss = total.item() / a.steps
    runtime = time.perf_counter() - start
    eval_loss, accuracy = evaluate(model, ex, ey)
    write_metrics(a.metrics, {"train_runtime": runtime, "eval_runtime": 0.0,
                              "train_loss": train_loss, "eval_loss": eval_loss,
                              "eval_accuracy": accuracy})


def hf_child(a):
    """HF's Trainer on the same module; its evaluation at the last step (in
    train_runtime, taken out again), the accuracy computed after."""
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = modules()()
    x, y = dataset(TRAIN_SIZE, 1)
    ex, ey = dataset(EVAL_SIZE, 2)

    class Rows(torch.utils.data.Dataset):
        def __init__(self, x, y):
            self.x, self.y = x, y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"input_ids": self.x[i], "labels": self.y[i]}

    args = TrainingArguments(
        output_dir=str(a.work / "hf"), use_cpu=True, report_to=[], disable_tqdm=True,
        save_strategy="no", max_steps=a.steps, per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=EVAL_BATCH, learning_rate=LR, warmup_steps=WARMUP,
        weight_decay=WEIGHT_DECAY, lr_scheduler_type="linear", max_grad_norm=MAX_GRAD_NORM,
        logging_steps=a.steps, eval_strategy="steps", eval_steps=a.steps, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(x, y), eval_dataset=Rows(ex, ey))
    result = trainer.train()
    evals = [e for e in trainer.state.log_history if "eval_loss" in e]
    _, accuracy = evaluate(model, ex, ey)
    write_metrics(a.metrics, {"train_runtime": result.metrics["train_runtime"],
                              "eval_runtime": evals[-1]["eval_runtime"],
                              "train_loss": result.metrics["train_loss"],
                              "eval_loss": evals[-1]["eval_loss"], "eval_accuracy": accuracy,
                              "optim": str(args.optim)})


def trainbox_run(binary, work, steps, env, n):
    """`trainbox train --task sort`; its metrics from trainer_state.json's
    log history (a built-in task writes no train_results.json)."""
    import json

    out_dir = work / f"tb-{n}"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [binary, "train", "--task", "sort", "--output_dir", out_dir, "--max_steps", steps,
           "--per_device_train_batch_size", BATCH, "--per_device_eval_batch_size", EVAL_BATCH,
           "--learning_rate", LR, "--warmup_steps", WARMUP, "--weight_decay", WEIGHT_DECAY,
           "--lr_scheduler_type", "linear", "--max_grad_norm", MAX_GRAD_NORM,
           "--logging_steps", steps, "--eval_strategy", "steps", "--eval_steps", steps,
           "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "--seed", "0"]
    _, wall, rss = run_child(cmd, env, work / f"tb-{n}.log")
    history = json.loads((out_dir / "trainer_state.json").read_text())["log_history"]
    train = next(e for e in history if "train_runtime" in e)
    ev = [e for e in history if "eval_loss" in e][-1]
    return {"train_runtime": train["train_runtime"], "eval_runtime": ev["eval_runtime"],
            "train_loss": train["train_loss"], "eval_loss": ev["eval_loss"],
            "eval_accuracy": ev["eval_accuracy"]}, wall, rss


def side_run(side, work, steps, threads, env, n):
    args = ["--child", side, "--work", work, "--steps", steps, "--threads", threads,
            "--metrics", work / f"{side}-{n}.json"]
    return python_child(__file__, [str(x) for x in args], env, work / f"{side}-{n}.log")


def report(runs, steps, threads, repeats, loads):
    rows = {}
    for side, results in runs.items():
        step_s = median((m["train_runtime"] - m["eval_runtime"]) / steps for m, _, _ in results)
        rows[side] = {
            "step ms": step_s * 1000, "steps/s": 1 / step_s,
            "wall s": median(w for _, w, _ in results),
            "peak RSS MiB": max(r for _, _, r in results),
            "train_loss": median(m["train_loss"] for m, _, _ in results),
            "eval_loss": median(m["eval_loss"] for m, _, _ in results),
            "eval_acc": median(m["eval_accuracy"] for m, _, _ in results),
        }
    cols = ["step ms", "steps/s", "wall s", "peak RSS MiB", "train_loss", "eval_loss", "eval_acc"]
    which = {"step ms", "steps/s", "wall s", "peak RSS MiB"}
    table(f"sort transformer (length {LENGTH}, d_model {D_MODEL}, {LAYERS} layers, {HEADS} heads), "
          f"batch {BATCH}, {steps} steps, {threads} thread{'s' if threads > 1 else ''}, "
          f"median of {repeats} alternating runs ({'; '.join(loads)})",
          rows, cols, [("trainbox", "PyTorch loop", which), ("trainbox", "HF Trainer", which)],
          {"train_loss": 3, "eval_loss": 3, "eval_acc": 3, "step ms": 2})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainbox", help="the trainbox binary")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--work", type=Path, help="keep the files and logs here (default: a temporary folder)")
    ap.add_argument("--child", choices=["torch", "hf"], help=argparse.SUPPRESS)
    ap.add_argument("--metrics", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.threads = int(a.threads)
        return torch_child(a) if a.child == "torch" else hf_child(a)
    if not a.trainbox:
        ap.error("--trainbox PATH is required")
    with tempfile.TemporaryDirectory(prefix="trainbox-bench-loop-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for threads in (int(t) for t in a.threads.split(",")):
            env = thread_env(threads)
            runs = {"trainbox": [], "PyTorch loop": [], "HF Trainer": []}
            loads = [load()]
            for n in range(a.repeats):
                runs["trainbox"].append(trainbox_run(a.trainbox, work, a.steps, env, n))
                runs["PyTorch loop"].append(side_run("torch", work, a.steps, threads, env, n))
                runs["HF Trainer"].append(side_run("hf", work, a.steps, threads, env, n))
            loads.append(load())
            report(runs, a.steps, threads, a.repeats, loads)


if __name__ == "__main__":
    main()
