"""Stateful plugins in HF's own checkpoints: early stopping's counter is
saved through HF's ExportableState as the JSON ``trainbox train`` writes,
and ``train(resume_from_checkpoint=...)`` restores it."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from transformers import Trainer

from test_event_flow import TRAINBOX
from trainbox.hf import PluginCallback
from twin import PLUGIN_DIR, RegressionDataset, RegressionModel, hf_args

# Every evaluation after the first counts as no improvement; never stops.
CONFIG = {"early-stopping.early_stopping_patience": "100", "early-stopping.early_stopping_threshold": "1000"}
RUN = dict(eval_strategy="steps", eval_steps=4, save_strategy="steps", save_steps=8,
           metric_for_best_model="eval_loss", num_train_epochs=3,
           restore_callback_states_from_checkpoint=True)


def trainer(out: Path) -> Trainer:
    cb = PluginCallback(PLUGIN_DIR / "early-stopping.wasm", config=CONFIG, print_report=False)
    return Trainer(RegressionModel(), hf_args(out, **RUN), train_dataset=RegressionDataset(64),
                   eval_dataset=RegressionDataset(64, seed=43), callbacks=[cb])


def plugin_state(checkpoint: Path) -> dict:
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    return state["stateful_callbacks"]["PluginCallback"]["attributes"]["plugin_states"]["early-stopping"]


def counter(checkpoint: Path) -> int:
    return plugin_state(checkpoint)["attributes"]["early_stopping_patience_counter"]


def test_resume_restores_the_plugins_counter(tmp_path):
    whole = tmp_path / "whole"
    trainer(whole).train()
    assert counter(whole / "checkpoint-8") == 1
    assert counter(whole / "checkpoint-24") == 5
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    shutil.copytree(whole / "checkpoint-8", resumed / "checkpoint-8")
    t = trainer(resumed)
    t.train(resume_from_checkpoint=str(resumed / "checkpoint-8"))
    assert counter(resumed / "checkpoint-24") == 5, "without the restored counter it would be 4"
    plugins = [cb for cb in t.callback_handler.callbacks if isinstance(cb, PluginCallback)]
    assert len(plugins) == 1, "HF's restore replaced the callback, it did not add one"


def test_the_state_is_the_json_trainbox_train_writes(tmp_path):
    trainer(tmp_path / "hf").train()
    out = tmp_path / "native"
    cmd = [str(TRAINBOX), "train", "--task", "regression", "--disable_tqdm", "--output_dir", str(out),
           "--per_device_train_batch_size", "8", "--per_device_eval_batch_size", "8",
           "--eval_strategy", "steps", "--eval_steps", "4", "--save_steps", "8",
           "--metric_for_best_model", "eval_loss", "--plugin", str(PLUGIN_DIR / "early-stopping.wasm")]
    for k, v in CONFIG.items():
        cmd += ["--plugin_config", f"{k}={v}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    native = json.loads((out / "checkpoint-8" / "trainer_state.json").read_text())
    assert plugin_state(tmp_path / "hf" / "checkpoint-8") == native["stateful_callbacks"]["early-stopping"]
