"""HF's callback dispatch cost, measured in this run, beside trainbox's.

Times `CallbackHandler.on_step_end` (which is `call_event`) of transformers
with 1, 4 and 16 trivial `TrainerCallback`s: per dispatch and per callback,
medians of alternating repeats. With `--trainbox-output FILE` (what `cargo
bench --bench dispatch` printed), it reads trainbox's figure for one call
into a trivial Rust plugin and prints the two side by side with the ratio.

    python bench/hf_dispatch.py [--calls N] [--repeats R] [--trainbox-output FILE]
"""

import argparse
import re
import statistics
import sys
import tempfile
import time

# The row of benches/dispatch.rs: one on_step_end into a trivial Rust plugin.
TRAINBOX_ROW = re.compile(r"on_step_end, trivial handler\s+([0-9.]+) µs/call")


def handler_with(n):
    from transformers import TrainerCallback
    from transformers.trainer_callback import CallbackHandler

    class Trivial(TrainerCallback):
        """Hears every event and does nothing, as the trivial plugin."""

    callbacks = [Trivial() for _ in range(n)]
    return CallbackHandler(callbacks, None, None, None, None)


def per_call_us(handler, args, state, control, calls):
    """Microseconds per on_step_end dispatch over `calls` dispatches."""
    on_step_end = handler.on_step_end
    start = time.perf_counter_ns()
    for _ in range(calls):
        on_step_end(args, state, control)
    return (time.perf_counter_ns() - start) / calls / 1e3


def trainbox_figure(path):
    """trainbox's µs per call into a trivial Rust plugin, from the bench output."""
    if path is None:
        return None
    with open(path, encoding="utf-8") as f:
        found = TRAINBOX_ROW.search(f.read())
    if found is None:
        sys.exit(f"{path}: no 'on_step_end, trivial handler' row; did benches/dispatch.rs change its output?")
    return float(found.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--counts", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--trainbox-output", default=None)
    opts = p.parse_args()

    import logging

    import transformers
    from transformers import TrainerControl, TrainerState, TrainingArguments

    logging.getLogger("transformers").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, report_to=[])
    state, control = TrainerState(), TrainerControl()
    handlers = {n: handler_with(n) for n in opts.counts}
    for h in handlers.values():  # warm up
        per_call_us(h, args, state, control, opts.calls // 10)
    times = {n: [] for n in opts.counts}
    for _ in range(opts.repeats):  # alternating: one of each per repeat
        for n, h in handlers.items():
            times[n].append(per_call_us(h, args, state, control, opts.calls))
    ours = trainbox_figure(opts.trainbox_output)

    print(
        f"event dispatch, trainbox vs HF in-process Python (transformers {transformers.__version__}; "
        f"{opts.calls} calls, median of {opts.repeats} alternating):"
    )
    head = f"  {'':<34} {'µs/dispatch':>12} {'µs/callback':>12}"
    if ours is not None:
        head += f" {'trainbox µs/plugin':>19} {'ratio':>7}"
    print(head)
    for n in opts.counts:
        per_dispatch = statistics.median(times[n])
        per_callback = per_dispatch / n
        row = f"  {f'HF, {n} trivial TrainerCallback' + ('s' if n > 1 else ''):<34} {per_dispatch:>12.3f} {per_callback:>12.3f}"
        if ours is not None:
            row += f" {ours:>19.3f} {ours / per_callback:>6.2f}x"
        print(row)
    if ours is not None:
        print("  (ratio: trainbox's call into one trivial Rust plugin over HF's cost per callback; < 1 is cheaper)")


if __name__ == "__main__":
    main()
