"""nan-guard: a trainbox plugin in Python (componentize-py).

Watches the logged training loss (on_log) and stops training when it is NaN
or infinite, when it exceeds `max_loss`, or when it diverges: exceeds
`divergence` times the lowest loss logged so far (default 10; 0 turns it off).

Config: --plugin_config nan-guard.max_loss=VALUE, nan-guard.divergence=FACTOR.
Log with --logging_nan_inf_filter false to let a NaN loss reach the log.

componentize-py makes one Plugin object per exported function (at build
time), so the plugin's state lives at module level, not on `self`.
"""
import math
import sys
from typing import List, Optional, Tuple

from wit_world import exports
from wit_world.imports import types
from componentize_py_types import Err

NAME = "nan-guard"
VERSION = "0.1.0"
API_VERSION = "0.2.0"


class _State:
    max_loss: Optional[float] = None
    divergence: float = 10.0
    lowest: Optional[float] = None
    stopped_because: Optional[str] = None


STATE = _State()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def loss_of(payload: List[types.Entry]) -> Optional[float]:
    for entry in payload:
        if entry.key == "loss" and isinstance(entry.value, (types.Value_Float, types.Value_Int)):
            return float(entry.value.value)
    return None


def reason_to_stop(loss: float) -> Optional[str]:
    if not math.isfinite(loss):
        return f"loss is {loss}"
    if STATE.max_loss is not None and loss > STATE.max_loss:
        return f"loss {loss:.6g} > max_loss {STATE.max_loss:.6g}"
    if STATE.divergence > 0 and STATE.lowest is not None and loss > STATE.divergence * STATE.lowest:
        return f"loss {loss:.6g} diverged: more than {STATE.divergence:g} x the lowest {STATE.lowest:.6g}"
    return None


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name=NAME,
            version=VERSION,
            api_version=API_VERSION,
            events=[types.Event.LOG],
            stateful=False,
            capabilities=[],
        )

    def configure(self, args: types.TrainingArgs, config: List[Tuple[str, str]]) -> None:
        for key, value in config:
            if key not in ("max_loss", "divergence"):
                raise Err(f"unknown key {key!r}; known keys: max_loss, divergence")
            try:
                number = float(value)
            except ValueError:
                raise Err(f"{key}={value}: not a number")
            if key == "max_loss":
                STATE.max_loss = number
            else:
                STATE.divergence = number

    def on_event(
        self,
        event: types.Event,
        state: types.TrainerState,
        control: types.TrainerControl,
        payload: List[types.Entry],
    ) -> types.TrainerControl:
        loss = loss_of(payload)
        if loss is None:
            return control
        reason = reason_to_stop(loss)
        if reason is not None:
            if STATE.stopped_because is None:
                say(f"step {state.global_step}: {reason}; stopping training")
                STATE.stopped_because = reason
            control.should_training_stop = True
        elif STATE.lowest is None or loss < STATE.lowest:
            STATE.lowest = loss
        return control

    def save_state(self) -> str:
        return '{"args": {}, "attributes": {}}'

    def load_state(self, state: str) -> None:
        return None

    def finish(self, outcome: types.RunOutcome) -> None:
        if STATE.stopped_because is not None:
            say(f"training was stopped: {STATE.stopped_because}")
