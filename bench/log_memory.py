"""Memory per logged step, trainbox beside HF's Trainer, in one run.

Both sides train the regression twin with `logging_steps 1` (one log entry a
step) for a short and a long run, and write `trainer_state.json` at the end
(trainbox always does; HF through `Trainer.save_state()`, as its example
scripts end). The growth of the child's peak resident memory (its rusage,
via wait4) from the short run to the long one, over the entries added, is
what a logged step costs: the entry kept in the log history and whatever
the end of the run (saving the state; trainbox's curves and summary) needs
for it at its peak. Medians of alternating runs.

    python bench/log_memory.py --trainbox PATH [--steps N] [--short N] [--repeats N]
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import load, run_child, thread_env

HF_CHILD = """
import logging, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
from transformers import Trainer
from twin import RegressionDataset, RegressionModel, hf_args
logging.getLogger("transformers").setLevel(logging.ERROR)
torch.set_num_threads(1)
out = Path({out!r})
args = hf_args(out, max_steps={steps}, logging_steps=1)
trainer = Trainer(RegressionModel(), args, train_dataset=RegressionDataset(64))
trainer.train()
trainer.save_state()
"""


def trainbox_run(binary, work, steps, env):
    out = work / f"tb-{steps}"
    cmd = [binary, "train", "--task", "regression", "--output_dir", out, "--max_steps", steps,
           "--logging_steps", 1, "--save_strategy", "no", "--report_to", "none",
           "--disable_tqdm", "--seed", 42]
    _, _, rss = run_child(cmd, env, work / f"tb-{steps}.log")
    return rss, entries(out / "trainer_state.json")


def hf_run(work, steps, env):
    out = work / f"hf-{steps}"
    tests = str(Path(__file__).resolve().parents[1] / "python" / "tests")
    code = HF_CHILD.format(tests=tests, out=str(out), steps=steps)
    _, _, rss = run_child([sys.executable, "-c", code], env, work / f"hf-{steps}.log")
    return rss, entries(out / "trainer_state.json")


def entries(state_file):
    return len(json.loads(Path(state_file).read_text())["log_history"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainbox", required=True)
    p.add_argument("--steps", type=int, default=40_000, help="the long run")
    p.add_argument("--short", type=int, default=1_000, help="the short run")
    p.add_argument("--repeats", type=int, default=2)
    opts = p.parse_args()
    env = thread_env(1)
    sides = {
        "trainbox": lambda work, n: trainbox_run(opts.trainbox, work, n, env),
        "HF Trainer": lambda work, n: hf_run(work, n, env),
    }
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        runs = {(side, n): [] for side in sides for n in (opts.short, opts.steps)}
        for _ in range(opts.repeats):
            for side, run in sides.items():
                for n in (opts.short, opts.steps):
                    runs[(side, n)].append(run(work, n))
        for side in sides:
            short = [r for r, _ in runs[(side, opts.short)]]
            long = [r for r, _ in runs[(side, opts.steps)]]
            added = runs[(side, opts.steps)][0][1] - runs[(side, opts.short)][0][1]
            per_entry_kb = (statistics.median(long) - statistics.median(short)) * 1024 / added
            rows[side] = (statistics.median(short), statistics.median(long), added, per_entry_kb)
    print(f"memory per logged step: the regression twin, logging_steps 1, {opts.short} and "
          f"{opts.steps} steps, trainer_state.json written (median of {opts.repeats} alternating, {load()}):")
    print(f"  {'':<12} {'peak MiB short':>15} {'peak MiB long':>14} {'entries added':>14} {'KiB per entry':>14}")
    for side, (short, long, added, kb) in rows.items():
        print(f"  {side:<12} {short:>15.1f} {long:>14.1f} {added:>14} {kb:>14.3f}")
    ratio = rows["trainbox"][3] / rows["HF Trainer"][3]
    print(f"  trainbox / HF per entry: {ratio:.2f}x (aim: at or below 1x)")


if __name__ == "__main__":
    main()
