"""raiser-py (test plugin): raises inside a helper at a given step.

`--plugin_config raiser-py.step=N` (default 4): at the log of step N,
`on_event` calls `ratio`, which divides by zero; `raiser-py.in=configure`
raises a KeyError in `configure` instead. The host shows the traceback on the
plugin's stderr and counts the fault.
"""
from wit_world import exports
from wit_world.imports import types

SETTINGS = {"step": 4, "in": "on_event"}


def ratio(loss, steps_left):
    return loss / steps_left


class Plugin(exports.Plugin):
    def describe(self):
        return types.PluginInfo(name="raiser-py", version="0.1.0", api_version="0.2.0",
                                events=[types.Event.LOG], stateful=False, capabilities=[])

    def configure(self, args, config):
        for key, value in config:
            SETTINGS[key] = int(value) if key == "step" else value
        if SETTINGS["in"] == "configure":
            return {}["missing_setting"]

    def on_event(self, event, state, control, payload):
        if state.global_step == SETTINGS["step"]:
            print(f"step {state.global_step}: about to divide")
            ratio(1.0, state.global_step - SETTINGS["step"])
        return control

    def save_state(self):
        return '{"args": {}, "attributes": {}}'

    def load_state(self, state):
        return None

    def finish(self, outcome):
        return None
