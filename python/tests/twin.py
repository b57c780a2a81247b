"""HF's regression twin (its test suite's ``RegressionModel`` and
``RegressionDataset``: y = a*x + b + noise, two scalar parameters from 0),
and a Python recorder that writes the trace ``recorder.wasm`` writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from transformers import TrainerCallback, TrainingArguments

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = Path(os.environ.get("TRAINBOX_PLUGIN_DIR", ROOT / "build" / "plugins")).resolve()


class RegressionDataset(torch.utils.data.Dataset):
    """``length`` samples of y = a*x + b + noise."""

    def __init__(self, length: int = 64, a: float = 2.0, b: float = 3.0, seed: int = 42) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(length, generator=g)
        self.y = a * self.x + b + 0.1 * torch.randn(length, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"input_x": self.x[i], "labels": self.y[i]}


class RegressionModel(torch.nn.Module):
    """y = a*x + b with ``a`` and ``b`` learned, from 0."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.0))
        self.b = torch.nn.Parameter(torch.tensor(0.0))

    def forward(self, input_x, labels=None):
        y = input_x * self.a + self.b
        if labels is None:
            return (y,)
        return (torch.nn.functional.mse_loss(y, labels), y)


def _number(v: float) -> float:
    return float(v)


class PyRecorder(TrainerCallback):
    """What HF's own Python callbacks see, as recorder.wasm's JSON lines."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def _rec(self, event, state, control, payload=None, field=None):
        e = {
            "event": event,
            "global_step": state.global_step,
            "epoch": float(state.epoch or 0.0),
            "max_steps": state.max_steps,
            "control": {
                "should_training_stop": control.should_training_stop,
                "should_epoch_stop": control.should_epoch_stop,
                "should_save": control.should_save,
                "should_evaluate": control.should_evaluate,
                "should_log": control.should_log,
            },
        }
        if field:
            e[field] = sorted(k for k, v in (payload or {}).items() if isinstance(v, (int, float, str, bool)))
        self.events.append(e)


def _make(name, field=None, payload_kw=None):
    def handler(self, args, state, control, **kw):
        self._rec(name, state, control, kw.get(payload_kw) if payload_kw else None, field)

    handler.__name__ = name
    return handler


for _n in [
    "on_init_end", "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_step_begin", "on_substep_end", "on_pre_optimizer_step", "on_optimizer_step",
    "on_step_end", "on_prediction_step", "on_save",
]:
    setattr(PyRecorder, _n, _make(_n))
PyRecorder.on_log = _make("on_log", "log_keys", "logs")
PyRecorder.on_evaluate = _make("on_evaluate", "metric_keys", "metrics")
PyRecorder.on_predict = _make("on_predict", "metric_keys", "metrics")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


def line(e: dict) -> str:
    """One trace line, in tests/spec/oracle.rs's format."""
    c = e["control"]
    ctl = "".join(
        ch if c[k] else "."
        for k, ch in [
            ("should_training_stop", "T"), ("should_epoch_stop", "E"), ("should_save", "S"),
            ("should_evaluate", "V"), ("should_log", "L"),
        ]
    )
    keys = e.get("log_keys", e.get("metric_keys"))
    tail = f" keys={','.join(keys)}" if keys is not None else ""
    return f"{e['event']:<22} step={e['global_step']:<3} epoch={e['epoch']:.4f} max={e['max_steps']} ctl={ctl}{tail}"


def hf_args(out: Path, **kw) -> TrainingArguments:
    base = dict(
        output_dir=str(out), report_to="none", disable_tqdm=True, use_cpu=True,
        per_device_train_batch_size=8, per_device_eval_batch_size=8, seed=42,
        save_strategy="no",
    )
    base.update(kw)
    return TrainingArguments(**base)
