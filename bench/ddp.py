"""`make bench`, data parallel: the demo with 1 and 2 processes, side by side.

    python bench/ddp.py --trainbox PATH [--batch 32] [--steps 800] [--repeats 2] [--work DIR]

Trains the demo (`trainbox train --task sort`, its default model and data)
for the same number of optimizer steps in three ways, one thread a process
(OMP_NUM_THREADS=1, as torchrun sets it), each a child process, taking turns:

  (a) 1 process,  batch B           the per-process work of (c)
  (b) 1 process,  batch 2B          the same samples per step as (c)
  (c) 2 processes under torchrun (--standalone, Gloo on 127.0.0.1), batch B each

and reads train_steps_per_second and train_samples_per_second (all
processes' samples, as HF counts them) from each run's trainer_state.json.
Prints the medians over the repeats, and:

  scaling efficiency = samples/s of (c) / (2 x samples/s of (a))
                       1.0: two processes do twice the work of one; 0.5: no gain
  speed-up over (b)  = samples/s of (c) / samples/s of (b)
                       what splitting one batch of 2B over two processes buys
  overhead per step  = step time of (c) - step time of (a)
                       what a 2-process step costs beyond one process's share
                       of its work (gradient all-reduce, the control flags
                       agreed after every event, and the two processes'
                       contention for the machine's cores)

Nothing is downloaded.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(cmd, env, log):
    """Runs `cmd` with stdout and stderr to `log`; returns its wall seconds."""
    cmd = [str(c) for c in cmd]
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.call(cmd, env=env, stdout=out, stderr=out)
    wall = time.perf_counter() - start
    if code != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({code}):\n{Path(log).read_text()[-3000:]}")
    return wall


def train(a, work, env, name, batch, nproc, n):
    """One training run; returns (the last log_history entry, wall seconds)."""
    out_dir = work / f"{name}-{n}"
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = [a.trainbox, "train", "--task", "sort", "--output_dir", out_dir,
           "--max_steps", str(a.steps), "--per_device_train_batch_size", str(batch),
           "--learning_rate", "1e-3", "--logging_steps", str(a.steps),
           "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "--seed", "0"]
    if nproc > 1:
        cmd = [a.torchrun, "--standalone", "--nproc_per_node", str(nproc), "--no-python"] + cmd
    wall = run(cmd, env, work / f"{name}-{n}.log")
    state = json.loads((out_dir / "trainer_state.json").read_text())
    return state["log_history"][-1], wall


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainbox", required=True, help="the trainbox binary")
    ap.add_argument("--torchrun", help="torchrun (default: the one next to this Python)")
    ap.add_argument("--batch", type=int, default=32, help="B: the batch of one process")
    ap.add_argument("--steps", type=int, default=800, help="optimizer steps of every run")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", type=Path, help="keep the outputs and logs here (default: a temporary folder)")
    a = ap.parse_args()
    a.torchrun = a.torchrun or str(Path(sys.executable).with_name("torchrun"))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    configs = [("1 proc, batch B", "one-b", a.batch, 1),
               ("1 proc, batch 2B", "one-2b", 2 * a.batch, 1),
               ("2 procs, batch B", "two-b", a.batch, 2)]
    results = {label: [] for label, *_ in configs}
    with tempfile.TemporaryDirectory(prefix="trainbox-bench-ddp-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for n in range(a.repeats):
            for label, name, batch, nproc in configs:
                results[label].append(train(a, work, env, name, batch, nproc, n))
    report(results, configs, a)


def report(results, configs, a):
    rows = {}
    for label, _, batch, nproc in configs:
        runs = results[label]
        sps = statistics.median(e["train_steps_per_second"] for e, _ in runs)
        rows[label] = {
            "procs": nproc,
            "batch/proc": batch,
            "steps/s": sps,
            "samples/s": statistics.median(e["train_samples_per_second"] for e, _ in runs),
            "ms/step": 1e3 / sps,
            "wall s": statistics.median(w for _, w in runs),
        }
    print(f"\nthe demo (sort task, default model), {a.steps} steps, B = {a.batch}, one thread a "
          f"process, {os.cpu_count()} cores, median of {a.repeats} alternating runs")
    cols = ["procs", "batch/proc", "steps/s", "samples/s", "ms/step", "wall s"]
    print(f"{'':<18}" + "".join(f"{c:>12}" for c in cols))
    for label, r in rows.items():
        print(f"{label:<18}" + "".join(
            f"{r[c]:>12}" if isinstance(r[c], int) else f"{r[c]:>12.1f}" for c in cols))
    one, one2, two = (rows[label] for label, *_ in configs)
    efficiency = two["samples/s"] / (2 * one["samples/s"])
    print(f"scaling efficiency = samples/s(2 procs, B) / (2 x samples/s(1 proc, B)) = "
          f"{two['samples/s']:.1f} / (2 x {one['samples/s']:.1f}) = {efficiency:.2f}")
    print(f"speed-up over 1 proc at 2B = samples/s(2 procs, B) / samples/s(1 proc, 2B) = "
          f"{two['samples/s'] / one2['samples/s']:.2f}")
    print(f"overhead per step = ms/step(2 procs, B) - ms/step(1 proc, B) = "
          f"{two['ms/step'] - one['ms/step']:.2f} ms")


if __name__ == "__main__":
    main()
