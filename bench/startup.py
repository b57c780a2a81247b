"""First load of a plugin: a cold compile cache against a cached load.

Runs `trainbox plugins inspect FILE` (compile, instantiate, describe) on
the Python and JavaScript examples with an empty cache directory and again
with the cache filled, alternating, and prints the medians of wall time,
CPU seconds and peak resident memory of the process; then the time of
`trainbox plugins precompile` of both into an empty cache (what `make
plugins` does ahead of a run).

    python bench/startup.py --trainbox PATH [--plugin-dir DIR] [--repeats R]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

EXAMPLES = [("Python", "nan-guard"), ("JavaScript", "csv-logger")]


def run_once(cmd, cache):
    """(wall s, CPU s, peak RSS MiB, output) of one run of `cmd` with TRAINBOX_CACHE=cache."""
    env = dict(os.environ, TRAINBOX_CACHE=cache)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = b""
    for chunk in iter(lambda: proc.stdout.read(65536), b""):
        out += chunk
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{out.decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.decode(errors="replace")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainbox", required=True)
    p.add_argument("--plugin-dir", default=os.environ.get("TRAINBOX_PLUGIN_DIR", "build/plugins"))
    p.add_argument("--repeats", type=int, default=3)
    opts = p.parse_args()

    rows = {(kind, state): [] for kind, _ in EXAMPLES for state in ("cold", "cached")}
    root = tempfile.mkdtemp(prefix="trainbox-startup-")
    try:
        for r in range(opts.repeats):
            for kind, name in EXAMPLES:
                cache = os.path.join(root, f"{name}-{r}")
                cmd = [opts.trainbox, "plugins", "inspect", os.path.join(opts.plugin_dir, f"{name}.wasm")]
                for state, expect in (("cold", "compiled:     now"), ("cached", "compiled:     from the cache")):
                    wall, cpu, rss, out = run_once(cmd, cache)
                    if expect not in out:
                        raise SystemExit(f"{name}: expected '{expect}' ({state} cache):\n{out}")
                    rows[(kind, state)].append((wall, cpu, rss))
                shutil.rmtree(cache)
        cache = os.path.join(root, "precompile")
        files = [os.path.join(opts.plugin_dir, f"{name}.wasm") for _, name in EXAMPLES]
        pre = run_once([opts.trainbox, "plugins", "precompile", *files], cache)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"first load of a plugin (trainbox plugins inspect: compile, instantiate, describe; median of {opts.repeats} alternating):")
    print(f"  {'':<40} {'wall s':>8} {'CPU s':>8} {'peak MiB':>9}")
    for kind, name in EXAMPLES:
        for state in ("cold", "cached"):
            got = rows[(kind, state)]
            wall, cpu, rss = (statistics.median(x[i] for x in got) for i in range(3))
            label = f"{kind} ({name}), {'empty cache' if state == 'cold' else 'cached'}"
            print(f"  {label:<40} {wall:>8.2f} {cpu:>8.2f} {rss:>9.0f}")
        cold = statistics.median(x[0] for x in rows[(kind, 'cold')])
        cached = statistics.median(x[0] for x in rows[(kind, 'cached')])
        print(f"  {'':<40} {cold / cached:>7.1f}x faster cached")
    print(f"  {'precompile both, empty cache':<40} {pre[0]:>8.2f} {pre[1]:>8.2f} {pre[2]:>9.0f}")


if __name__ == "__main__":
    main()
