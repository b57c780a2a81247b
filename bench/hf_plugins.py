"""trainbox plugins inside HF's Trainer (trainbox.hf.PluginCallback), in one run:

1. the cost of one event: HF's `CallbackHandler.on_step_end` with one
   trivial wasm plugin (stopper.wasm, never stopping) through
   PluginCallback, next to one trivial Python `TrainerCallback`, and the
   handler with no callback at all (HF's own dispatch floor);
2. HF's steps/s training the regression twin without plugins, with the
   trivial plugin, and with the recorder (a line per event).

    python bench/hf_plugins.py [--plugin-dir build/plugins] [--calls N] [--steps N]
"""

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python" / "tests"))

from hf_dispatch import handler_with, per_call_us  # noqa: E402


def dispatch(plugin_dir, calls, repeats):
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from transformers.trainer_callback import CallbackHandler

    from trainbox.hf import PluginCallback

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, report_to=[])
        state, control = TrainerState(), TrainerControl()
        wasm = PluginCallback(plugin_dir / "stopper.wasm", config={"stopper.at_step": "1000000000"}, print_report=False)
        handlers = {
            "HF, no callback": handler_with(0),
            "HF, 1 trivial Python TrainerCallback": handler_with(1),
            "HF, 1 trivial wasm plugin (PluginCallback)": CallbackHandler([wasm], None, None, None, None),
        }
        handlers["HF, 1 trivial wasm plugin (PluginCallback)"].on_init_end(args, state, control)
        for h in handlers.values():
            per_call_us(h, args, state, control, calls // 10)
        times = {k: [] for k in handlers}
        for _ in range(repeats):
            for k, h in handlers.items():
                times[k].append(per_call_us(h, args, state, control, calls))
    med = {k: statistics.median(v) for k, v in times.items()}
    floor = med["HF, no callback"]
    print(f"one on_step_end through HF's CallbackHandler ({calls} calls, median of {repeats} alternating):")
    print(f"  {'':<44} {'µs/dispatch':>12} {'µs over no callback':>20}")
    for k, v in med.items():
        print(f"  {k:<44} {v:>12.3f} {v - floor:>20.3f}")
    py = med["HF, 1 trivial Python TrainerCallback"] - floor
    wa = med["HF, 1 trivial wasm plugin (PluginCallback)"] - floor
    print(f"  wasm plugin / Python callback: {wa / py:.2f}x (aim: within 2x)")


def steps_per_s(plugin_dir, steps, repeats):
    import torch
    from transformers import Trainer

    from trainbox.hf import PluginCallback
    from twin import RegressionDataset, RegressionModel, hf_args

    torch.set_num_threads(1)
    setups = {
        "no plugin": lambda: [],
        "trivial wasm plugin": lambda: [PluginCallback(plugin_dir / "stopper.wasm", config={"stopper.at_step": "1000000000"}, print_report=False)],
        "recorder.wasm": lambda: [PluginCallback(plugin_dir / "recorder.wasm", print_report=False)],
    }
    rates = {k: [] for k in setups}
    for _ in range(repeats):
        for k, make in setups.items():
            with tempfile.TemporaryDirectory() as out:
                args = hf_args(Path(out), max_steps=steps, logging_steps=50, per_device_train_batch_size=8)
                t = Trainer(RegressionModel(), args, train_dataset=RegressionDataset(64), callbacks=make())
                start = time.perf_counter()
                t.train()
                rates[k].append(steps / (time.perf_counter() - start))
    base = statistics.median(rates["no plugin"])
    print(f"HF Trainer on the regression twin, {steps} steps, 1 thread (median of {repeats} alternating):")
    for k, v in rates.items():
        r = statistics.median(v)
        print(f"  {k:<24} {r:>9.1f} steps/s  {r / base:>6.3f}x")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--plugin-dir", default=os.environ.get("TRAINBOX_PLUGIN_DIR", "build/plugins"))
    p.add_argument("--calls", type=int, default=50_000)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    opts = p.parse_args()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    plugin_dir = Path(opts.plugin_dir).resolve()
    dispatch(plugin_dir, opts.calls, opts.repeats)
    steps_per_s(plugin_dir, opts.steps, opts.repeats)


if __name__ == "__main__":
    main()
