"""trainbox plugins inside Hugging Face's ``transformers.Trainer``.

    from trainbox.hf import PluginCallback
    trainer = Trainer(model, args, train_dataset=ds,
                      callbacks=[PluginCallback("plugins/", config={"csv-logger.every": "10"})])

Each of HF's events reaches the plugins with HF's state, control and
``logs`` / ``metrics``; the control they return is merged into HF's
``TrainerControl`` as ``trainbox train`` merges it (a stop, once requested,
stays requested). A plugin that faults is restarted, disabled or aborts the
run as ``on_error`` says; it never raises into HF's loop otherwise.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import weakref
from typing import Any, Iterable, Mapping, Sequence, Union

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from trainbox import _native

PathLike = Union[str, "os.PathLike[str]"]

__all__ = ["PluginCallback", "PluginReport"]

# Live callbacks by configuration, in creation order: HF restores a callback
# state by building a new instance from `state()["args"]` and dropping the
# old one, which has loaded its plugins already and heard `on_init_end`. The
# new one takes over the old one's plugins (as the native host restores
# states into the plugins it started), or loads its own when none is live.
_LIVE: "weakref.WeakValueDictionary[int, PluginCallback]" = weakref.WeakValueDictionary()


@atexit.register
def _abandon_live() -> None:
    # A run HF began and never ended (its loop raised) is over when Python
    # exits: its plugins hear that it was aborted, as in `trainbox train`.
    for cb in list(_LIVE.values()):
        if cb._native is not None:
            cb._native.abandon()


class PluginReport:
    """What one plugin cost and suffered in a run, as the end-of-run table."""

    __slots__ = ("label", "calls", "time_s", "faults", "restarts", "disabled", "slow")

    def __init__(self, d: Mapping[str, Any]) -> None:
        self.label: str = d["label"]
        self.calls: int = d["calls"]
        self.time_s: float = d["time_s"]
        self.faults: list[str] = list(d["faults"])
        self.restarts: int = d["restarts"]
        self.disabled: bool = d["disabled"]
        self.slow: bool = d["slow"]

    def __repr__(self) -> str:
        return (
            f"PluginReport(label={self.label!r}, calls={self.calls}, time_s={self.time_s:.6f}, "
            f"faults={self.faults!r}, restarts={self.restarts}, disabled={self.disabled})"
        )


class _ModelStats:
    """The model's trainable parameters as the plugins' ``model-stats`` view
    reads them, computed only when a plugin asks (as ``trainbox train``)."""

    def __init__(self, model: Any) -> None:
        self._params = {n: p for n, p in model.named_parameters() if p.requires_grad}

    def names(self) -> list[str]:
        return list(self._params)

    def count(self) -> int:
        return sum(p.numel() for p in self._params.values())

    def _tensor(self, name: str, grad: bool) -> Any:
        p = self._params.get(name)
        if p is None:
            return None
        return p.grad if grad else p

    def stats(self, name: str, grad: bool) -> tuple[int, float, float, float, float, float, int] | None:
        import torch

        t = self._tensor(name, grad)
        if t is None:
            return None
        with torch.no_grad():
            t = t.detach()
            if not t.is_floating_point():
                t = t.float()
            n = t.numel()
            if n == 0:
                return (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
            finite = int(torch.isfinite(t).sum())
            std = float(t.std()) if n > 1 else 0.0
            return (n, float(t.norm()), float(t.mean()), std, float(t.min()), float(t.max()), n - finite)

    def histogram(self, name: str, grad: bool, bins: int) -> tuple[float, float, list[int]] | None:
        import torch

        t = self._tensor(name, grad)
        if t is None:
            return None
        with torch.no_grad():
            flat = t.detach().reshape(-1)
            if flat.dtype not in (torch.float32, torch.float64):
                flat = flat.float()
            if flat.numel() == 0:
                return None
            finite = torch.isfinite(flat)
            kept = int(finite.sum())
            if kept == 0:
                return None
            if kept < flat.numel():
                flat = flat[finite]
            lo, hi = float(flat.min()), float(flat.max())
            if lo == hi:
                return (lo, hi, [kept])
            counts = torch.histc(flat, bins=max(1, bins)).double().cpu().tolist()
            return (lo, hi, [int(c) for c in counts])


class _GradNorm:
    """The total gradient norm of HF's last update, before clipping: what
    ``accelerator.clip_grad_norm_`` returned in HF's loop, kept as HF's
    tensor and read to a float only when a plugin asks."""

    def __init__(self) -> None:
        self.last: Any = None

    def value(self) -> float | None:
        return None if self.last is None else float(self.last)


def _calling_trainer(frame: Any) -> Any:
    """The ``transformers.Trainer`` whose loop is calling an event, found a
    few frames up (HF passes callbacks no handle on it), or None."""
    from transformers import Trainer

    for _ in range(8):
        if frame is None:
            return None
        obj = frame.f_locals.get("self")
        if isinstance(obj, Trainer):
            return obj
        frame = frame.f_back
    return None


def _hear_grad_norms(trainer: Any, sink: _GradNorm) -> None:
    """Makes ``sink`` hear every gradient norm ``trainer`` computes: HF
    clips (or, with ``max_grad_norm=0``, measures) through its
    accelerator's ``clip_grad_norm_`` before ``on_pre_optimizer_step``, and
    that call returns the norm before clipping. The accelerator is wrapped
    once; HF builds a new one only for a hyperparameter search, which
    begins a new ``train()``."""
    accelerator = getattr(trainer, "accelerator", None)
    clip = getattr(accelerator, "clip_grad_norm_", None)
    if clip is None:
        return
    sinks = getattr(clip, "_trainbox_sinks", None)
    if sinks is None:
        sinks = weakref.WeakSet()

        def clip_grad_norm_(*args: Any, **kwargs: Any) -> Any:
            norm = clip(*args, **kwargs)
            for s in list(sinks):
                s.last = norm
            return norm

        clip_grad_norm_._trainbox_sinks = sinks  # type: ignore[attr-defined]
        accelerator.clip_grad_norm_ = clip_grad_norm_
    sinks.add(sink)


def _paths(plugins: PathLike | Iterable[PathLike]) -> list[str]:
    if isinstance(plugins, (str, os.PathLike)):
        return [os.fspath(plugins)]
    return [os.fspath(p) for p in plugins]


def _names(report_to: str | Iterable[str] | None) -> list[str]:
    if report_to is None:
        return []
    if isinstance(report_to, str):
        return [report_to]
    return [str(n) for n in report_to]


def _args_json(args: Any) -> str:
    return json.dumps(args.to_dict(), default=str, allow_nan=True)


def _len(loader: Any) -> int | None:
    try:
        return len(loader) if loader is not None else None
    except TypeError:
        return None


class PluginCallback(TrainerCallback, ExportableState):
    """A ``transformers.TrainerCallback`` that runs trainbox plugins.

    ``plugins``: a plugin file, a folder (its ``.wasm`` files, sorted by name,
    as ``trainbox train --plugins``) or a list of both, in dispatch order.
    ``config``: ``{"NAME.KEY": value}``, what ``--plugin_config`` passes.
    ``grants``: per plugin name, ``{"env": [...], "http": [...], "dirs":
    [{"host": ..., "guest": ..., "writable": bool}]}``, the run config's
    grants. ``on_error``: ``"restart"``, ``"disable"`` or ``"abort"`` (only
    then does a plugin fault raise). ``memory_mb`` and ``deadline_ms``
    override the sandbox's limits for every plugin. ``report_to``: the
    logger integrations of ``trainbox train --report_to`` (``"tensorboard"``,
    ``["mlflow", "wandb"]``, ``"all"``: those whose configuration is set),
    loaded first from ``builtin_dir`` (by default ``$TRAINBOX_PLUGIN_DIR``,
    else where ``make install`` put trainbox's plugins), each granted
    what the native host grants it: HF's environment variables it reads,
    the folder it writes (TensorBoard's ``output_dir/runs``, ...) and
    MLflow's tracking origin. Plugins are loaded when
    HF first calls the callback (``on_init_end``), with HF's arguments;
    each plugin writes in ``<output_dir>/plugins/<name>/``. Stateful
    plugins go into HF's checkpoints (``stateful_callbacks``) and are
    restored under ``restore_callback_states_from_checkpoint=True``. The
    views read HF's model, optimizer and dataloaders from the events'
    arguments, and the gradient norm (before clipping) from the Trainer
    whose ``train()`` calls ``on_train_begin``.
    """

    def __init__(
        self,
        plugins: PathLike | Iterable[PathLike] = (),
        config: Mapping[str, Any] | None = None,
        grants: Mapping[str, Mapping[str, Any]] | None = None,
        on_error: str = "restart",
        memory_mb: int | None = None,
        deadline_ms: int | None = None,
        print_report: bool = True,
        report_to: str | Iterable[str] | None = None,
        builtin_dir: PathLike | None = None,
        _restoring: bool = False,
    ) -> None:
        if on_error not in ("restart", "disable", "abort"):
            raise ValueError(f"on_error={on_error!r}: expected 'restart', 'disable' or 'abort'")
        self.plugins = _paths(plugins)
        self.config = {str(k): v for k, v in (config or {}).items()}
        self.grants = {str(k): dict(v) for k, v in (grants or {}).items()}
        self.on_error = on_error
        self.memory_mb = memory_mb
        self.deadline_ms = deadline_ms
        self.print_report = print_report
        self.report_to = _names(report_to)
        self.builtin_dir = os.fspath(builtin_dir) if builtin_dir is not None else None
        self._native: _native.Plugins | None = None
        self._hooked: list[str] = []
        self._pending_states: str | None = None
        self._seen: tuple[int, int, int, int] = (0, 0, 0, 0)
        self._reports: list[PluginReport] = []
        self._table: list[str] = []
        self._grad_norm = _GradNorm()
        self._key = self._config_key()
        if _restoring:
            # HF is restoring this callback's state: take over the live twin's plugins.
            for other in list(_LIVE.values()):
                if other is not self and other._native is not None and other._key == self._key:
                    native = other._native
                    other._bind(None)
                    self._bind(native)
                    self._seen = other._seen
                    self._grad_norm = other._grad_norm
                    _LIVE.pop(id(other), None)
                    break

    def _config_key(self) -> str:
        return json.dumps(
            [
                self.plugins,
                self.config,
                self.grants,
                self.on_error,
                self.memory_mb,
                self.deadline_ms,
                self.report_to,
                self.builtin_dir,
            ],
            sort_keys=True,
            default=str,
        )

    # -- loading -------------------------------------------------------------

    def _load(self, args: Any) -> _native.Plugins:
        native = _native.Plugins(
            self.plugins,
            _args_json(args),
            json.dumps(self.config),
            json.dumps(self.grants),
            self.on_error,
            self.memory_mb,
            self.deadline_ms,
            self.report_to,
            self.builtin_dir,
        )
        self._bind(native)
        self._seen = (0, 0, 0, 0)
        native.set_view(grad_norm=self._grad_norm)
        _LIVE[id(self)] = self
        if self._pending_states is not None:
            native.load_states(self._pending_states)
            self._pending_states = None
        return native

    def _bind(self, native: _native.Plugins | None) -> None:
        """Makes ``native`` the loaded plugins (None: none). The frequent
        events become its functions, set as this object's attributes over
        the methods below, so that HF's handler calls into the sandbox
        directly; without plugins the methods load them."""
        self._native = native
        for name in self._hooked:
            self.__dict__.pop(name, None)
        self._hooked = []
        if native is not None:
            for name, hook in native.hooks():
                if getattr(type(self), name) is not getattr(PluginCallback, name):
                    continue  # a subclass's own method stays the one HF calls
                setattr(self, name, hook)
                self._hooked.append(name)

    @property
    def names(self) -> list[str]:
        """The loaded plugins' labels in dispatch order (empty before loading)."""
        return self._native.names() if self._native is not None else []

    # -- HF's ExportableState --------------------------------------------------

    def state(self) -> dict:
        """HF's ``ExportableState``: how to rebuild this callback, and the
        stateful plugins' states (the JSON ``trainbox train`` writes for them)."""
        states: dict = {}
        if self._native is not None and self._native.stateful():
            states = json.loads(self._native.save_states())
        elif self._pending_states is not None:
            states = json.loads(self._pending_states)
        return {
            "args": {
                "plugins": self.plugins,
                "config": self.config,
                "grants": self.grants,
                "on_error": self.on_error,
                "memory_mb": self.memory_mb,
                "deadline_ms": self.deadline_ms,
                "print_report": self.print_report,
                "report_to": self.report_to,
                "builtin_dir": self.builtin_dir,
                "_restoring": True,
            },
            "attributes": {"plugin_states": states},
        }

    @property
    def plugin_states(self) -> dict:
        """The stateful plugins' states, by plugin name; setting it restores them."""
        return self.state()["attributes"]["plugin_states"]

    @plugin_states.setter
    def plugin_states(self, states: Mapping[str, Any]) -> None:
        text = json.dumps(states)
        if self._native is not None:
            self._native.load_states(text)
        else:
            self._pending_states = text

    # -- reports ---------------------------------------------------------------

    def reports(self) -> list[PluginReport]:
        """Per plugin: calls, time, faults, restarts, whether it was disabled."""
        if self._native is not None:
            return [PluginReport(d) for d in self._native.reports()]
        return list(self._reports)

    def report_table(self) -> list[str]:
        """The end-of-run table, as ``trainbox train`` prints it."""
        return self._native.report_table() if self._native is not None else list(self._table)

    # -- events ----------------------------------------------------------------

    def _event(self, name: str, args: Any, state: Any, control: Any, payload: Any, kwargs: dict) -> Any:
        native = self._native or self._load(args)
        model = kwargs.get("model")
        optimizer = kwargs.get("optimizer")
        train_dl = kwargs.get("train_dataloader")
        eval_dl = kwargs.get("eval_dataloader")
        seen = (id(model), id(optimizer), id(train_dl), id(eval_dl))
        if seen != self._seen:
            self._seen = seen
            native.set_view(
                _ModelStats(model) if model is not None and hasattr(model, "named_parameters") else None,
                optimizer if optimizer is not None and hasattr(optimizer, "param_groups") else None,
                _len(train_dl),
                _len(eval_dl),
            )
        native.event(name, state, control, payload)
        return control

    # The events. Those that may bring new objects for the views (the model,
    # optimizer and dataloaders of a training run or an evaluation) refresh
    # them; the others (`_native.Plugins.hooks()`) are the loaded plugins' own functions
    # once they are loaded (`_bind`), and these methods only load them.

    def on_init_end(self, args, state, control, **kwargs):
        return self._event("on_init_end", args, state, control, None, kwargs)

    def on_train_begin(self, args, state, control, **kwargs):
        if self._native is not None and self._native.in_training:
            # The last train() raised before on_train_end: that run was
            # aborted; this one starts with the plugins loaded afresh.
            self._native.abandon()
            self._bind(None)
        self._grad_norm.last = None
        trainer = _calling_trainer(sys._getframe(1))
        if trainer is not None:
            _hear_grad_norms(trainer, self._grad_norm)
        return self._event("on_train_begin", args, state, control, None, kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        out = self._event("on_train_end", args, state, control, None, kwargs)
        native = self._native
        if native is not None:
            # The run is over: a later train() loads the plugins afresh.
            native.finish(None)
            self._reports = [PluginReport(d) for d in native.reports()]
            self._table = native.report_table()
            self._bind(None)
            _LIVE.pop(id(self), None)
            if self.print_report and state.is_world_process_zero:
                for line in self._table:
                    print(line, file=sys.stderr)
        return out

    def on_epoch_begin(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_epoch_begin", state, control)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_epoch_end", state, control)
        return control

    def on_step_begin(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_step_begin", state, control)
        return control

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_pre_optimizer_step", state, control)
        return control

    def on_optimizer_step(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_optimizer_step", state, control)
        return control

    def on_substep_end(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_substep_end", state, control)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_step_end", state, control)
        return control

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        return self._event("on_evaluate", args, state, control, metrics, kwargs)

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        return self._event("on_predict", args, state, control, metrics, kwargs)

    def on_save(self, args, state, control, **kwargs):
        (self._native or self._load(args)).event("on_save", state, control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        (self._native or self._load(args)).event("on_log", state, control, logs)
        return control

    def on_prediction_step(self, args, state, control, **kwargs):
        return self._event("on_prediction_step", args, state, control, None, kwargs)

    def on_push_begin(self, args, state, control, **kwargs):
        return control
