"""lazy-import-py (test plugin): imports only inside its functions.

At every log it imports `json` and `statistics` in `on_event` and keeps the
mean of the losses so far; at the end it writes `summary.json` in its
directory (through a function-level `import json`) with the mean, the
number of losses and `"bücher.example".encode("idna")` (a codec the standard
library loads lazily). Built without trainbox_build.py's bundling, each of
these imports fails at run time.
"""
from wit_world import exports
from wit_world.imports import types

LOSSES = []


class Plugin(exports.Plugin):
    def describe(self):
        return types.PluginInfo(name="lazy-import-py", version="0.1.0", api_version="0.2.0",
                                events=[types.Event.LOG], stateful=False, capabilities=[])

    def configure(self, args, config):
        return None

    def on_event(self, event, state, control, payload):
        import statistics

        for entry in payload:
            if entry.key == "loss" and isinstance(entry.value, types.Value_Float):
                LOSSES.append(entry.value.value)
        if LOSSES:
            print(f"step {state.global_step}: mean loss {statistics.fmean(LOSSES):.6f}")
        return control

    def save_state(self):
        return '{"args": {}, "attributes": {}}'

    def load_state(self, state):
        return None

    def finish(self, outcome):
        import json
        import statistics

        summary = {"losses": len(LOSSES), "mean": statistics.fmean(LOSSES) if LOSSES else None,
                   "idna": "bücher.example".encode("idna").decode("ascii")}
        with open("summary.json", "w") as f:
            json.dump(summary, f)
