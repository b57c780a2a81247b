"""`make bench`, second part: a tiny GPT-2 trained by trainbox and by HF's Trainer.

    python bench/own_model.py --trainbox PATH [--steps 60] [--repeats 3] [--threads N] [--work DIR]

Builds a randomly initialised GPT-2 (`transformers.GPT2Config`: 2 layers, 2 heads,
n_embd 128, vocab 256, 128 tokens a sample) in examples/hf-gpt2's wrapper (forward
(input_ids, labels, num_items_in_batch) returns (loss, logits), as HF's
`return_dict=False`), traces it
to `model.pt`, writes that example's byte-level text to Parquet, then trains the
same weights on the same data and batch size, alternately with `trainbox train
--model model.pt` and with `transformers.Trainer` on the eager module, each in a
child process with the same number of threads. Prints one table: steps/s and
tokens/s (from each trainer's own `train_runtime`), wall time of the whole
process, and its peak resident memory (the child's rusage, via wait4), with the
ratios trainbox / HF. Nothing is downloaded.
"""

import argparse
import importlib.util
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def hf_child(work, steps, threads):
    """One HF Trainer run on the eager module with model.pt's weights; writes
    its train metrics to hf-metrics.json."""
    import pyarrow.parquet as pq
    import torch
    import transformers
    from transformers import Trainer, TrainingArguments

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(threads)
    model = gpt2()
    # model.pt's weights, under the wrapper's `model.` prefix.
    traced = torch.jit.load(str(work / "model.pt")).state_dict()
    weights = {k.removeprefix("model."): v for k, v in traced.items()}
    missing, _ = model.load_state_dict(weights, strict=False)
    assert not [k for k in missing if k in dict(model.named_parameters())], missing
    table = pq.read_table(work / "train.parquet").to_pydict()
    data = [{k: torch.tensor(v[i], dtype=torch.int64) for k, v in table.items()}
            for i in range(N_TRAIN)]
    args = TrainingArguments(output_dir=str(work / "hf"), use_cpu=True, report_to=[],
                             disable_tqdm=True, save_strategy="no", max_steps=steps,
                             per_device_train_batch_size=BATCH, learning_rate=5e-4,
                             logging_steps=steps, seed=0)
    result = Trainer(model=model, args=args, train_dataset=data).train()
    (work / "hf-metrics.json").write_text(json.dumps(result.metrics))


def run_child(cmd, env, log):
    """Runs `cmd` with stdout and stderr to `log`; returns (stdout, wall
    seconds, peak RSS in MiB from the child's own rusage, via wait4)."""
    cmd = [str(c) for c in cmd]
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    start = time.perf_counter()
    try:
        pid = os.posix_spawn(cmd[0], cmd, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, fd, 1), (os.POSIX_SPAWN_DUP2, fd, 2)])
    finally:
        os.close(fd)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    out = Path(log).read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({os.waitstatus_to_exitcode(status)}):\n{out[-3000:]}")
    return out, wall, usage.ru_maxrss / 1024


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


def hf_run(work, steps, threads, env, n):
    cmd = [sys.executable, __file__, "--hf_child", str(work), "--steps", str(steps),
           "--threads", str(threads)]
    _, wall, rss = run_child(cmd, env, work / f"hf-{n}.log")
    return json.loads((work / "hf-metrics.json").read_text()), wall, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainbox", help="the trainbox binary")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--work", type=Path, help="keep the files and logs here (default: a temporary folder)")
    ap.add_argument("--hf_child", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.hf_child:
        return hf_child(a.hf_child, a.steps, a.threads)
    if not a.trainbox:
        ap.error("--trainbox PATH is required")
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), MKL_NUM_THREADS=str(a.threads),
               TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory(prefix="trainbox-bench-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        export(work)
        runs = {"trainbox": [], "HF Trainer": []}
        for n in range(a.repeats):
            runs["trainbox"].append(trainbox_run(a.trainbox, work, a.steps, env, n))
            runs["HF Trainer"].append(hf_run(work, a.steps, a.threads, env, n))
    report(runs, a)


def report(runs, a):
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
    print(f"\ntiny GPT-2 (2 layers, 2 heads, n_embd 128, vocab 256, seq {SEQ_LEN}), batch {BATCH}, "
          f"{a.steps} steps, {a.threads} threads, median of {a.repeats} alternating runs")
    cols = ["steps/s", "tokens/s", "wall s", "peak RSS MiB", "train_loss"]
    print(f"{'':<14}" + "".join(f"{c:>14}" for c in cols))
    for side, r in rows.items():
        print(f"{side:<14}" + "".join(f"{r[c]:>14.{3 if c == 'train_loss' else 1}f}" for c in cols))
    tb, hf = rows["trainbox"], rows["HF Trainer"]
    print(f"{'trainbox / HF':<14}" + "".join(f"{tb[c] / hf[c]:>14.2f}" for c in cols))


if __name__ == "__main__":
    main()
