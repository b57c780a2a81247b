"""{{name}}: a trainbox plugin in Python. It prints the loss of every log
entry; change it to do what you need.

componentize-py makes one Plugin object per exported function, so keep the
plugin's state at module level, not on `self`.

`make` builds it with sdk/trainbox_build.py: every module this file imports,
inside functions too, is bundled into the .wasm (a module it cannot bundle
fails the build, naming the line). HTTP: `import trainbox_http` and
`trainbox_http.post(url, body)`, or `urllib.request.urlopen`, to an origin
the plugin declares (`types.Capability_Http("http://host:port")`) and the
user grants. An exception shows its traceback on the plugin's stderr.
"""
import sys
from typing import List, Tuple

from wit_world import exports
from wit_world.imports import types


class Plugin(exports.Plugin):
    def describe(self) -> types.PluginInfo:
        return types.PluginInfo(
            name="{{name}}",
            version="0.1.0",
            api_version="0.2.0",
            events=[types.Event.LOG],  # the host calls no other event
            stateful=False,
            capabilities=[],
        )

    def configure(self, args: types.TrainingArgs, config: List[Tuple[str, str]]) -> None:
        return None

    def on_event(self, event, state, control, payload):
        for entry in payload:
            if entry.key == "loss" and isinstance(entry.value, types.Value_Float):
                sys.stdout.write(f"step {state.global_step}: loss {entry.value.value:.4f}\n")
        return control

    def save_state(self) -> str:
        return '{"args": {}, "attributes": {}}'

    def load_state(self, state: str) -> None:
        return None

    def finish(self, outcome) -> None:
        return None
