"""The native host's sandbox outcomes inside HF's Trainer: a hostile plugin
that loops, allocates without end, panics, exits or tries to get out is
stopped, restarted and disabled as in ``trainbox train``, and HF's run
finishes; only ``on_error="abort"`` raises into HF's loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import Trainer, TrainerCallback

from trainbox.hf import PluginCallback
from twin import PLUGIN_DIR, RegressionDataset, RegressionModel, hf_args, read_jsonl


def train(out: Path, cb: PluginCallback, **kw) -> Trainer:
    args = hf_args(out, num_train_epochs=3, **kw)
    trainer = Trainer(RegressionModel(), args, train_dataset=RegressionDataset(64), callbacks=[cb])
    trainer.train()
    return trainer


def hostile(mode: str, **limits) -> PluginCallback:
    return PluginCallback(
        [PLUGIN_DIR / "recorder.wasm", PLUGIN_DIR / "hostile.wasm"],
        config={"hostile.mode": mode},
        print_report=False,
        **limits,
    )


@pytest.mark.parametrize(
    "mode, limits, cause, faults, disabled",
    [
        ("loop", {"deadline_ms": 250}, "ran past its deadline of 250 ms", 4, True),
        ("alloc", {"memory_mb": 32}, "memory limit exceeded", 4, True),
        ("panic", {}, "a panic", 4, True),
        ("exit", {"on_error": "disable"}, "called exit", 1, True),
    ],
)
def test_a_hostile_plugin_is_contained_and_hf_finishes(tmp_path, mode, limits, cause, faults, disabled):
    cb = hostile(mode, **limits)
    trainer = train(tmp_path, cb)
    assert trainer.state.global_step == 24, "HF's run finished"
    reports = {r.label: r for r in cb.reports()}
    h = reports["hostile"]
    assert len(h.faults) == faults and all(cause in f for f in h.faults), h
    assert h.disabled is disabled
    assert reports["recorder"].faults == [] and reports["recorder"].calls > 100
    events = read_jsonl(tmp_path / "plugins" / "recorder" / "events.jsonl")
    assert events[-1]["event"] == "on_train_end", "the other plugins kept receiving events"
    assert cb.report_table(), "the end-of-run table"
    assert any("hostile" in l for l in cb.report_table())


def test_on_error_abort_raises_into_hf(tmp_path):
    cb = hostile("panic", on_error="abort")
    with pytest.raises(RuntimeError, match="panic"):
        train(tmp_path, cb)


def test_escape_attempts_are_denied(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    own = tmp_path / "out" / "plugins" / "hostile"
    own.mkdir(parents=True)
    (own / "link-out").symlink_to(outside)
    train(tmp_path / "out", hostile("escape"))
    lines = (own / "escape.txt").read_text().splitlines()
    assert len(lines) == 11, lines
    for l in lines:
        if l.startswith("list /:"):
            assert l.endswith("ALLOWED 1 entries"), l
        else:
            assert ": denied" in l, f"escaped: {l}"
    assert not (tmp_path / "out" / "plugins" / "escaped.txt").exists()
    assert not Path("/tmp/trainbox-escaped.txt").exists()


def test_a_broken_file_is_one_clear_error_naming_it(tmp_path):
    bad = tmp_path / "broken.wasm"
    bad.write_text("not wasm")
    cb = PluginCallback(bad)
    with pytest.raises(RuntimeError, match="broken.wasm: not a WebAssembly file"):
        train(tmp_path / "out", cb)


def test_config_keys_must_name_a_plugin(tmp_path):
    cb = PluginCallback(PLUGIN_DIR / "recorder.wasm", config={"every": "10"})
    with pytest.raises(ValueError, match="NAME.KEY"):
        train(tmp_path, cb)


RAISES = """
import sys
from pathlib import Path
from transformers import Trainer, TrainerCallback
from trainbox.hf import PluginCallback
from twin import PLUGIN_DIR, RegressionDataset, RegressionModel, hf_args

class Boom(TrainerCallback):
    def on_step_end(self, args, state, control, **kw):
        if state.global_step == 5:
            raise KeyboardInterrupt("stopped by the user")

out = Path(sys.argv[1])
cb = PluginCallback(PLUGIN_DIR / "recorder.wasm", print_report=False)
Trainer(RegressionModel(), hf_args(out, num_train_epochs=3), train_dataset=RegressionDataset(64),
        callbacks=[cb, Boom()]).train()
"""


def test_a_run_hf_never_ends_is_aborted_for_the_plugins(tmp_path):
    here = Path(__file__).resolve().parent
    done = subprocess.run([sys.executable, "-c", RAISES, str(tmp_path)], cwd=here,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(here)})
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr, done.stderr
    events = read_jsonl(tmp_path / "plugins" / "recorder" / "events.jsonl")
    assert events[-1]["event"] == "on_step_end" and events[-1]["global_step"] == 5
    outcome = (tmp_path / "plugins" / "recorder" / "outcome.txt").read_text()
    assert outcome.startswith("aborted: HF's training loop stopped before on_train_end"), outcome


def test_a_second_train_after_a_raise_aborts_the_first_and_loads_afresh(tmp_path):
    own = tmp_path / "plugins" / "recorder"

    class Boom(TrainerCallback):
        """Raises at step 5 of the first run; notes what the plugins were told when the second begins."""

        armed, told = True, None

        def on_train_begin(self, args, state, control, **kw):
            if not self.armed:
                self.told = (own / "outcome.txt").read_text()

        def on_step_end(self, args, state, control, **kw):
            if self.armed and state.global_step == 5:
                self.armed = False
                raise ValueError("boom")

    cb, boom = PluginCallback(PLUGIN_DIR / "recorder.wasm", print_report=False), Boom()
    args = hf_args(tmp_path, num_train_epochs=3)
    trainer = Trainer(RegressionModel(), args, train_dataset=RegressionDataset(64), callbacks=[cb, boom])
    with pytest.raises(ValueError, match="boom"):
        trainer.train()
    assert cb._native is not None and cb._native.in_training
    trainer.train()
    assert boom.told.startswith("aborted: HF's training loop stopped before on_train_end"), boom.told
    events = [e["event"] for e in read_jsonl(own / "events.jsonl")]
    assert events.count("on_train_begin") == 2 and events.count("on_train_end") == 1
    assert events[-1] == "on_train_end"
    assert (own / "outcome.txt").read_text() == "completed\n"
