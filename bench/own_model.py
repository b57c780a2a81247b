"""`make bench`, second part: a tiny GPT-2 trained by trainbox and by HF's Trainer.

    python bench/own_model.py --trainbox PATH [--steps 60] [--repeats 3] [--threads 1,2] [--work DIR]

Builds a randomly initialised GPT-2 (`transformers.GPT2Config`: 2 layers, 2 heads,
n_embd 128, vocab 256, 128 tokens a sample) in examples/hf-gpt2's wrapper (forward
(input_ids, labels, num_items_in_batch) returns (loss, logits), as HF's
`return_dict=False`), traces it
to `model.pt`, writes that example's byte-level text to Parquet, then trains the
same weights on the same data and batch size, alternately with `trainbox train
--model model.pt`, with a plain PyTorch loop on HF's eager module (the loop an
expert writes: shuffle per epoch, index the pre-built tensors,
zero_grad(set_to_none=True), forward, backward, clip_grad_norm_(1.0), fused
AdamW, linear LambdaLR, the loss summed on the device and read at the end) and
with `transformers.Trainer` on that module, each in a child process with the
same number of threads and HF's default arguments. Prints one table per thread count: steps/s and
tokens/s (from each side's own `train_runtime`), wall time of the whole
process, and its peak resident memory (the child's rusage, via wait4), with the
ratios trainbox / PyTorch and trainbox / HF. Nothing is downloaded.
"""

import argparse
import importlib.util
import json
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import run_child, table, thread_env  # noqa: E402

SEQ_LEN = 128
BATCH = 8
N_TRAIN = 256
ROOT = Path(__file__).resolve().parent.parent


def example():
    """examples/hf-gpt2/export.py: its wrapper (HF's contract for trainbox),
    its byte-level text and its Parquet writer."""
    spec = importlib.util.spec_from_file_location("hf_gpt2_export",
                                                  ROOT / "examples/hf-gpt2/export.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpt2():
    """A GPT-2 twice the example's width, 128 tokens a sample: HF's own
    module, which HF's Trainer trains (it takes the loss kwargs)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    # Dropout 0: a traced module keeps the mode it was traced in.
    config = GPT2Config(vocab_size=256, n_positions=SEQ_LEN, n_embd=128, n_layer=2, n_head=2,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None)
    return GPT2LMHeadModel(config)


def export(work):
    """model.pt and train.parquet (`input_ids`, `labels`: list<int64>, snappy)."""
    import warnings

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    # Tracing HF's masking code warns that its shape checks become constants.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.manual_seed(0)
    ex = example()
    # The example's wrapper: forward(input_ids, labels, num_items_in_batch).
    model = ex.GPT2LMHeadModel(gpt2()).eval()
    x = torch.randint(0, 256, (2, SEQ_LEN))
    torch.jit.trace(model, (x, x, ex.count(x))).save(str(work / "model.pt"))
    ex.write_parquet(work / "train.parquet", ex.chunks(random.Random(0), N_TRAIN, SEQ_LEN))


def eager(work):
    """HF's GPT-2 module with model.pt's weights (under the wrapper's
    `model.` prefix), and train.parquet's columns as int64 tensors."""
    import pyarrow.parquet as pq
    import torch

    model = gpt2()
    traced = torch.jit.load(str(work / "model.pt")).state_dict()
    weights = {k.removeprefix("model."): v for k, v in traced.items()}
    missing, _ = model.load_state_dict(weights, strict=False)
    assert not [k for k in missing if k in dict(model.named_parameters())], missing
    columns = pq.read_table(work / "train.parquet").to_pydict()
    return model, {k: torch.tensor(v, dtype=torch.int64) for k, v in columns.items()}


def torch_child(work, steps, threads):
    """The plain PyTorch loop on the eager module, with HF's defaults (no
    warmup, no weight decay, linear decay to 0, max_grad_norm 1.0, fused
    AdamW); writes its metrics to torch-metrics.json."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model, columns = eager(work)
    x, y = columns["input_ids"], columns["labels"]
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0, fused=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (steps - s) / steps))
    # HF's order: accelerate's SeedableRandomSampler seeds each epoch with seed + epoch.
    gen, epoch = torch.Generator(), 0
    per_epoch = math.ceil(len(x) / BATCH)
    model.train()
    start = time.perf_counter()
    total, step = torch.zeros(()), 0
    while step < steps:
        order = torch.randperm(len(x), generator=gen.manual_seed(epoch))
        epoch += 1
        for b in range(per_epoch):
            idx = order[b * BATCH:(b + 1) * BATCH]
            opt.zero_grad(set_to_none=True)
            labels = y[idx]
            # HF's Trainer divides the summed token losses by the unshifted label count.
            loss = model(input_ids=x[idx], labels=labels,
                         num_items_in_batch=(labels != -100).sum()).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += loss.detach()
            step += 1
            if step == steps:
                break
    train_loss = total.item() / steps
    runtime = time.perf_counter() - start
    (work / "torch-metrics.json").write_text(json.dumps({
        "train_runtime": runtime, "train_steps_per_second": steps / runtime,
        "train_loss": train_loss}))


def hf_child(work, steps, threads):
    """One HF Trainer run on the eager module with model.pt's weights; writes
    its train metrics to hf-metrics.json."""
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    model, columns = eager(work)
    data = [{k: v[i] for k, v in columns.items()} for i in range(N_TRAIN)]
    args = TrainingArguments(output_dir=str(work / "hf"), use_cpu=True, report_to=[],
                             disable_tqdm=True, save_strategy="no", max_steps=steps,
                             per_device_train_batch_size=BATCH, learning_rate=5e-4,
                             logging_steps=steps, seed=0)
    result = Trainer(model=model, args=args, train_dataset=data).train()
    (work / "hf-metrics.json").write_text(json.dumps(result.metrics))


def trainbox_run(binary, work, steps, env, n):
    out_dir = work / f"tb-{n}"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [binary, "train", "--model", work / "model.pt", "--train_file", work / "train.parquet",
           "--output_dir", out_dir, "--max_steps", str(steps),
           "--per_device_train_batch_size", str(BATCH), "--learning_rate", "5e-4",
           "--logging_steps", str(steps), "--save_strategy", "no", "--report_to", "none",
           "--disable_tqdm", "--seed", "0"]
    _, wall, rss = run_child(cmd, env, work / f"tb-{n}.log")
    metrics = json.loads((out_dir / "train_results.json").read_text())
    return metrics, wall, rss


def python_run(side, work, steps, threads, env, n):
    """The `side` child ("hf" or "torch"): its metrics, wall time, peak RSS."""
    cmd = [sys.executable, __file__, f"--{side}_child", str(work), "--steps", str(steps),
           "--threads", str(threads)]
    _, wall, rss = run_child(cmd, env, work / f"{side}-{n}.log")
    return json.loads((work / f"{side}-metrics.json").read_text()), wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainbox", help="the trainbox binary")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--work", type=Path, help="keep the files and logs here (default: a temporary folder)")
    ap.add_argument("--hf_child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--torch_child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.hf_child:
        return hf_child(a.hf_child, a.steps, int(a.threads))
    if a.torch_child:
        return torch_child(a.torch_child, a.steps, int(a.threads))
    if not a.trainbox:
        ap.error("--trainbox PATH is required")
    with tempfile.TemporaryDirectory(prefix="trainbox-bench-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export(work)
        for threads in (int(t) for t in a.threads.split(",")):
            env = thread_env(threads)
            runs = {"trainbox": [], "PyTorch loop": [], "HF Trainer": []}
            for n in range(a.repeats):
                runs["trainbox"].append(trainbox_run(a.trainbox, work, a.steps, env, n))
                runs["PyTorch loop"].append(python_run("torch", work, a.steps, threads, env, n))
                runs["HF Trainer"].append(python_run("hf", work, a.steps, threads, env, n))
            report(runs, a, threads)


def report(runs, a, threads):
    rows = {}
    for side, results in runs.items():
        sps = statistics.median(m["train_steps_per_second"] for m, _, _ in results)
        rows[side] = {
            "steps/s": sps,
            "tokens/s": sps * BATCH * SEQ_LEN,
            "wall s": statistics.median(w for _, w, _ in results),
            "peak RSS MiB": max(r for _, _, r in results),
            "train_loss": statistics.median(m["train_loss"] for m, _, _ in results),
        }
    cols = ["steps/s", "tokens/s", "wall s", "peak RSS MiB", "train_loss"]
    which = {"steps/s", "tokens/s", "wall s", "peak RSS MiB"}
    table(f"tiny GPT-2 (2 layers, 2 heads, n_embd 128, vocab 256, seq {SEQ_LEN}), batch {BATCH}, "
          f"{a.steps} steps, {threads} thread{'s' if threads > 1 else ''}, median of {a.repeats} alternating runs",
          rows, cols, [("trainbox", "PyTorch loop", which), ("trainbox", "HF Trainer", which)],
          {"train_loss": 3})


if __name__ == "__main__":
    main()
