"""What the `make bench` scripts share: child processes measured from outside
(wall time, peak RSS through wait4), the thread environment every side gets,
and the side-by-side tables with their medians and ratios."""

import json
import os
import statistics
import sys
import time
from pathlib import Path


def thread_env(threads):
    """The environment of a child with `threads` intra-op threads: libtorch
    (under trainbox and under Python alike) sizes its pool from
    OMP_NUM_THREADS; the Python children also call torch.set_num_threads."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
                TOKENIZERS_PARALLELISM="false")


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


def python_child(script, args, env, log):
    """`run_child` of `script` under this interpreter; the child writes its
    metrics (a JSON object) to `args`' --metrics file, returned parsed with
    the wall time and peak RSS."""
    metrics = Path(args[args.index("--metrics") + 1])
    metrics.unlink(missing_ok=True)
    _, wall, rss = run_child([sys.executable, script, *args], env, log)
    return json.loads(metrics.read_text()), wall, rss


def write_metrics(path, metrics):
    """A child's metrics, for `python_child`."""
    Path(path).write_text(json.dumps(metrics))


def load():
    """uptime's 1-minute load average and the core count, to say how shared
    the machine was during a run."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def table(title, rows, cols, ratios, digits):
    """Prints `rows` ({side: {column: value}}) under `title`, then one line
    per (numerator, denominator) side pair in `ratios`; `digits` gives each
    column's decimals (default 1). Ratios are printed only for the columns
    in `ratios`' third element."""
    width = max(16, *(len(s) for s in rows), *(len(f"{a} / {b}") for a, b, _ in ratios)) + 2
    print(f"\n{title}")
    print(f"{'':<{width}}" + "".join(f"{c:>14}" for c in cols))
    for side, r in rows.items():
        cells = "".join(
            f"{r[c]:>14.{digits.get(c, 1)}f}" if r.get(c) is not None else f"{'-':>14}"
            for c in cols)
        print(f"{side:<{width}}" + cells)
    for a, b, which in ratios:
        cells = "".join(
            f"{rows[a][c] / rows[b][c]:>14.2f}" if c in which else f"{'':>14}" for c in cols)
        print(f"{f'{a} / {b}':<{width}}" + cells)


def median(values):
    """The median of the non-None `values`; None when there are none."""
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
