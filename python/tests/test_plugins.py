"""The example plugins of every language and two integrations inside HF's
Trainer, with the outcomes the native host's tests assert
(tests/spec/languages.rs, tests/spec/integrations/): the Rust printer, the
Python NaN guard, the JavaScript CSV logger, the C gradient-norm warner, and
TensorBoard (read by TensorBoard's own EventAccumulator) and MLflow
(against a tracking server on 127.0.0.1, read back with MlflowClient)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from transformers import Trainer

from trainbox.hf import PluginCallback
from twin import PLUGIN_DIR, RegressionDataset, RegressionModel, hf_args

READERS_PYTHON = os.environ.get("TRAINBOX_READERS_PYTHON")


def train(out: Path, cb: PluginCallback, **kw) -> Trainer:
    args = hf_args(out, **{"num_train_epochs": 3, **kw})
    trainer = Trainer(
        RegressionModel(), args, train_dataset=RegressionDataset(64),
        eval_dataset=RegressionDataset(64, seed=43), callbacks=[cb],
    )
    trainer.train()
    return trainer


def plugin(name: str, **kw) -> PluginCallback:
    return PluginCallback(PLUGIN_DIR / f"{name}.wasm", print_report=False, **kw)


def training_logs(trainer: Trainer) -> list[dict]:
    return [e for e in trainer.state.log_history if "loss" in e]


def test_rust_printer_prints_every_log(tmp_path, capfd):
    trainer = train(tmp_path, plugin("printer"), logging_steps=4)
    out = capfd.readouterr().out
    printed = [l for l in out.splitlines() if l.startswith("[printer]")]
    logs = training_logs(trainer)
    assert len(logs) == 6
    for entry, line in zip(logs, printed):
        assert line.startswith(f"[printer] {{'loss': '{entry['loss']:.4g}', 'grad_norm': '{entry['grad_norm']:.4g}'"), (
            entry, line)


def test_python_nan_guard_stops_hf_when_the_loss_is_nan(tmp_path, capfd):
    trainer = train(
        tmp_path, plugin("nan-guard"), logging_steps=1, learning_rate=1e38, logging_nan_inf_filter=False
    )
    step = trainer.state.global_step
    assert step < 24, f"stopped early, at step {step}"
    out = capfd.readouterr().out
    assert f"[nan-guard] step {step}: loss is " in out, out
    assert "[nan-guard] training was stopped: loss is" in out, f"finish ran: {out}"
    last = [e for e in trainer.state.log_history if "loss" in e][-1]
    assert not math.isfinite(last["loss"]), last


def test_python_nan_guard_refuses_a_bad_config(tmp_path):
    with pytest.raises(RuntimeError, match=r"nan-guard: configuration rejected: max_loss=abc: not a number"):
        train(tmp_path, plugin("nan-guard", config={"nan-guard.max_loss": "abc"}))


def test_js_csv_logger_writes_every_log_entry(tmp_path):
    trainer = train(tmp_path, plugin("csv-logger"), logging_steps=4)
    lines = (tmp_path / "plugins" / "csv-logger" / "logs.csv").read_text().splitlines()
    assert lines[0] == "step,loss,grad_norm,learning_rate,epoch"
    logs = training_logs(trainer)
    assert len(lines) == 1 + len(logs) + 1, "a header, the logs, the summary"
    for line, entry in zip(lines[1:], logs):
        cells = line.split(",")
        assert int(cells[0]) == entry["step"]
        assert abs(float(cells[1]) - entry["loss"]) < 1e-9, (line, entry)


@pytest.mark.parametrize("max_grad_norm", [1.0, 0.0], ids=["clipped", "unclipped"])
def test_c_grad_warn_flags_exactly_the_large_gradient_norms(tmp_path, capfd, max_grad_norm):
    # The view reads the norm HF measured before clipping (as HF logs it),
    # also when HF does not clip at all (max_grad_norm=0).
    trainer = train(tmp_path, plugin("grad-warn", config={"grad-warn.threshold": "9"}),
                    logging_steps=1, max_grad_norm=max_grad_norm)
    logs = training_logs(trainer)
    expected = [e["step"] for e in logs if e["grad_norm"] > 9]
    assert 0 < len(expected) < len(logs), "some norms exceed 9, some do not"
    out = capfd.readouterr().out
    prefix = "[grad-warn] WARNING step "
    warned = [int(l[len(prefix):].split(":")[0]) for l in out.splitlines() if l.startswith(prefix)]
    assert warned == expected, out


def readers(script: str, *args: str) -> dict:
    if not READERS_PYTHON:
        pytest.fail("TRAINBOX_READERS_PYTHON is not set: run the tests through `make test` (it installs the readers)")
    done = subprocess.run([READERS_PYTHON, "-c", script, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


READ_EVENTS = """
import glob, json, os, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
ea.Reload()
print(json.dumps({"files": sorted(os.listdir(sys.argv[1])),
                  "scalars": {t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]},
                  "texts": ea.Tags()["tensors"]}))
"""


def rewrite(key: str) -> str:
    for prefix in ("eval", "test"):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1:]}"
    return f"train/{key}"


def test_tensorboard_events_hold_every_logged_number(tmp_path):
    logdir = tmp_path / "tb"
    logdir.mkdir()
    cb = plugin(
        "tensorboard",
        config={"tensorboard.logdir_is_run": "true", "tensorboard.hostname": "host", "tensorboard.pid": "7"},
        grants={"tensorboard": {"env": ["TENSORBOARD_LOGGING_DIR"],
                                 "dirs": [{"host": str(logdir), "guest": "/tensorboard", "writable": True}]}},
    )
    trainer = train(tmp_path / "out", cb, logging_steps=5, eval_strategy="epoch")
    found = readers(READ_EVENTS, str(logdir))
    assert len(found["files"]) == 1 and found["files"][0].endswith(".host.7.0"), found["files"]
    assert_events_hold_the_log_history(found, trainer)


def test_report_to_tensorboard_writes_under_output_dir_runs_with_no_hand_written_grants(tmp_path):
    out = tmp_path / "out"
    cb = PluginCallback(report_to="tensorboard", builtin_dir=PLUGIN_DIR, print_report=False)
    trainer = train(out, cb, logging_steps=5, eval_strategy="epoch")
    assert [r.label for r in cb.reports()] == ["tensorboard"]
    assert [r.faults for r in cb.reports()] == [[]]
    # HF's default: output_dir/runs/<%b%d_%H-%M-%S>_<hostname>/, one run folder.
    (run_dir,) = list((out / "runs").iterdir())
    found = readers(READ_EVENTS, str(run_dir))
    assert len(found["files"]) == 1 and found["files"][0].startswith("events.out.tfevents."), found["files"]
    assert_events_hold_the_log_history(found, trainer)


def test_report_to_names_an_unknown_integration_and_a_missing_plugin_folder(tmp_path):
    with pytest.raises(ValueError, match="wandbx is not supported, only .*tensorboard"):
        train(tmp_path / "a", PluginCallback(report_to=["wandbx"], builtin_dir=PLUGIN_DIR))
    empty = tmp_path / "no-plugins"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="tensorboard.wasm not found in .*builtin_dir="):
        train(tmp_path / "b", PluginCallback(report_to="tensorboard", builtin_dir=empty))
    assert not (tmp_path / "b" / "plugins").exists(), "a failed start leaves no folders"


def assert_events_hold_the_log_history(found: dict, trainer: Trainer) -> None:
    expected: dict[str, list] = {}
    for entry in trainer.state.log_history:
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)):
                expected.setdefault(rewrite(key), []).append([entry["step"], value])
    got = found["scalars"]
    assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
    for tag, points in expected.items():
        assert [p[0] for p in got[tag]] == [p[0] for p in points], tag
        for (_, g), (_, e) in zip(got[tag], points):
            assert g == pytest.approx(e, rel=1e-6, abs=1e-30), (tag, g, e)
    assert "args/text_summary" in found["texts"], "the training arguments as text"


QUERY_RUN = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
exp = client.get_experiment_by_name(sys.argv[2])
runs = client.search_runs([exp.experiment_id]) if exp else []
out = []
for r in runs:
    history = {k: [[m.step, m.value] for m in sorted(client.get_metric_history(r.info.run_id, k), key=lambda m: m.step)]
               for k in r.data.metrics}
    out.append({"status": r.info.status, "params": r.data.params, "history": history})
print(json.dumps(out))
"""


# The variables HF's MLflowCallback reads, which the plugin declares.
MLFLOW_VARS = [
    "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TAGS", "MLFLOW_NESTED_RUN", "MLFLOW_RUN_ID",
    "MLFLOW_FLATTEN_PARAMS", "MLFLOW_MAX_LOG_PARAMS", "HF_MLFLOW_LOG_ARTIFACTS", "DISABLE_MLFLOW_INTEGRATION",
    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
]


@pytest.mark.parametrize("granted", ["by_hand", "by_report_to"])
def test_mlflow_logs_the_run_to_a_tracking_server(tmp_path, monkeypatch, granted):
    uri = os.environ.get("TRAINBOX_MLFLOW_URI")
    if not uri:
        pytest.fail("TRAINBOX_MLFLOW_URI is not set: run the tests through `make test` "
                    "(tools/with-mlflow-server.sh starts the tracking server)")
    experiment = f"hf-plugin-{os.getpid()}-{time.time_ns()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(uri))
    if granted == "by_hand":
        cb = plugin("mlflow", grants={"mlflow": {"env": MLFLOW_VARS, "http": [origin]}})
    else:
        # report_to grants HF's variables and the origin of MLFLOW_TRACKING_URI itself.
        cb = PluginCallback(report_to="mlflow", builtin_dir=PLUGIN_DIR, print_report=False)
    trainer = train(tmp_path, cb, logging_steps=4, eval_strategy="epoch")
    assert [r.faults for r in cb.reports()] == [[]]
    (run,) = readers(QUERY_RUN, uri, experiment)
    assert run["status"] == "FINISHED"
    assert run["params"]["learning_rate"] == str(trainer.args.learning_rate)
    assert float(run["params"]["num_train_epochs"]) == trainer.args.num_train_epochs
    expected: dict[str, list] = {}
    for entry in trainer.state.log_history:
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)):
                expected.setdefault(key, []).append([entry["step"], float(value)])
    assert sorted(run["history"]) == sorted(expected)
    for key, points in expected.items():
        got = run["history"][key]
        assert [p[0] for p in got] == [p[0] for p in points], key
        for (_, g), (_, e) in zip(got, points):
            assert g == pytest.approx(e, rel=1e-12), (key, g, e)
