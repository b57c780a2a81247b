"""One contract, two hosts: recorder.wasm inside HF's real Trainer (through
PluginCallback) sees exactly what HF's own Python callbacks see, and the
same trace as in ``trainbox train`` for the same arguments: the
configurations of tests/spec/event_flow.rs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from transformers import Trainer

from trainbox.hf import PluginCallback
from twin import PLUGIN_DIR, PyRecorder, RegressionDataset, RegressionModel, hf_args, line, read_jsonl

TRAINBOX = Path(os.environ.get("TRAINBOX_BIN", Path(os.environ.get("CARGO_TARGET_DIR", "target")) / "release" / "trainbox"))

# name: (HF TrainingArguments beyond the defaults, stopper config or None)
CASES = {
    "defaults": ({}, None),
    "logging_5": ({"logging_steps": 5}, None),
    "save_5": ({"save_steps": 5}, None),
    "eval_5": ({"eval_strategy": "steps", "eval_steps": 5}, None),
    "eval_epoch": ({"eval_strategy": "epoch"}, None),
    "mixed": ({"logging_steps": 3, "save_steps": 10, "eval_steps": 5, "eval_strategy": "steps"}, None),
    "ga_3": ({"gradient_accumulation_steps": 3, "logging_steps": 2}, None),
    "ga_3_eval_epoch": ({"gradient_accumulation_steps": 3, "eval_strategy": "epoch"}, None),
    "first_step": ({"logging_first_step": True, "logging_steps": 10}, None),
    "first_step_no_logging": ({"logging_first_step": True, "logging_strategy": "no"}, None),
    "epoch_all": ({"logging_strategy": "epoch", "eval_strategy": "epoch", "save_strategy": "epoch"}, None),
    "eval_delay": ({"eval_strategy": "steps", "eval_steps": 5, "eval_delay": 12}, None),
    "eval_delay_epoch": ({"eval_strategy": "epoch", "eval_delay": 2}, None),
    "max_steps": ({"max_steps": 10, "logging_steps": 4, "eval_strategy": "epoch"}, None),
    "ratios": ({"logging_steps": 0.25, "eval_steps": 0.5, "eval_strategy": "steps", "save_steps": 0.2}, None),
    "eval_on_start": ({"eval_on_start": True, "eval_strategy": "epoch"}, None),
    "stopper": ({"logging_steps": 2, "save_steps": 5}, {"stopper.at_step": "5"}),
    "epoch_stop": ({}, {"stopper.at_step": "3", "stopper.mode": "epoch"}),
}


def hf_run(out: Path, kw: dict, stopper: dict | None) -> tuple[list[str], list[str]]:
    """The Python recorder's and recorder.wasm's traces of one HF run."""
    kw = {"save_strategy": "steps", "save_steps": 500, "num_train_epochs": 3, **kw}
    plugins = [PLUGIN_DIR / "recorder.wasm"] + ([PLUGIN_DIR / "stopper.wasm"] if stopper else [])
    py = PyRecorder()
    cb = PluginCallback(plugins, config=stopper or {}, print_report=False)
    trainer = Trainer(
        RegressionModel(),
        hf_args(out, **kw),
        train_dataset=RegressionDataset(64),
        eval_dataset=RegressionDataset(64, seed=43),
        callbacks=[py, cb],
    )
    trainer.train()
    wasm = read_jsonl(out / "plugins" / "recorder" / "events.jsonl")
    return [line(e) for e in py.events], [line(e) for e in wasm]


def native_run(out: Path, kw: dict, stopper: dict | None) -> list[str]:
    """recorder.wasm's trace of ``trainbox train`` with the same arguments."""
    flags = ["--save_strategy", "steps", "--save_steps", "500", "--num_train_epochs", "3"]
    for k, v in kw.items():
        flags += [f"--{k}", str(v).lower() if isinstance(v, bool) else str(v)]
    cmd = [str(TRAINBOX), "train", "--task", "regression", "--disable_tqdm", "--output_dir", str(out),
           "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
           "--plugin", str(PLUGIN_DIR / "recorder.wasm"), *flags]
    if stopper:
        cmd += ["--plugin", str(PLUGIN_DIR / "stopper.wasm")]
        for k, v in stopper.items():
            cmd += ["--plugin_config", f"{k}={v}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stderr}"
    return [line(e) for e in read_jsonl(out / "plugins" / "recorder" / "events.jsonl")]


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_wasm_recorder_sees_what_hf_callbacks_see_and_what_trainbox_shows(case, tmp_path):
    kw, stopper = CASES[case]
    py, wasm = hf_run(tmp_path / "hf", kw, stopper)
    assert len(py) > 10
    assert wasm == py, "recorder.wasm in HF's Trainer differs from HF's own Python callback"
    if stopper:
        assert any("ctl=T" in l or "ctl=.E" in l for l in wasm), "the stopper's flag reached HF"
    native = native_run(tmp_path / "native", kw, stopper)
    assert native == wasm, "trainbox train's trace differs from the HF Trainer's"


def test_the_hot_events_are_bound_while_training_and_a_second_train_delivers_again(tmp_path):
    """While plugins are loaded, HF's handler calls the sandbox's own
    functions (no Python frame); after on_train_end they are released and
    the next train() loads the plugins afresh and hears every event again."""
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        """Notes what kind of object PluginCallback's on_step_end is mid-run."""

        def __init__(self) -> None:
            self.kinds: list[str] = []

        def on_step_end(self, args, state, control, **kw):
            self.kinds.append(type(cb.on_step_end).__name__)

    py, cb, probe = PyRecorder(), PluginCallback(PLUGIN_DIR / "recorder.wasm", print_report=False), Probe()
    trainer = Trainer(RegressionModel(), hf_args(tmp_path, num_train_epochs=1, logging_steps=3),
                      train_dataset=RegressionDataset(64), callbacks=[py, cb, probe])
    trainer.train()
    assert set(probe.kinds) == {"builtin_function_or_method"}, probe.kinds
    assert "on_step_end" not in vars(cb) and cb._native is None
    first = len(py.events)
    trainer.train()
    wasm = [line(e) for e in read_jsonl(tmp_path / "plugins" / "recorder" / "events.jsonl")]
    # The second run hears all but on_init_end, which only Trainer() sends.
    assert len(py.events) == 2 * first - 1 and len(wasm) == len(py.events), (first, len(wasm))
    assert wasm == [line(e) for e in py.events]


def test_a_subclass_that_overrides_an_event_is_still_called_and_its_super_delivers(tmp_path):
    """Binding the frequent events must not hide a subclass's own method."""

    class Counting(PluginCallback):
        """Counts on_log and passes it on."""

        logs = 0

        def on_log(self, args, state, control, **kwargs):
            self.logs += 1
            return super().on_log(args, state, control, **kwargs)

    py, cb = PyRecorder(), Counting(PLUGIN_DIR / "recorder.wasm", print_report=False)
    trainer = Trainer(RegressionModel(), hf_args(tmp_path, num_train_epochs=1, logging_steps=2),
                      train_dataset=RegressionDataset(64), callbacks=[py, cb])
    trainer.train()
    heard = [e for e in py.events if e["event"] == "on_log"]
    assert cb.logs == len(heard) > 1
    wasm = [line(e) for e in read_jsonl(tmp_path / "plugins" / "recorder" / "events.jsonl")]
    assert wasm == [line(e) for e in py.events]
