"""http-py (test plugin): HTTP from Python, to the origin
`http://127.0.0.1:18767` the user grants.

At every log it POSTs `{"step": N, "loss": L}` to `http-py.url` twice: with
`trainbox_http.post` and with the standard library's
`urllib.request.urlopen`; at train begin it tries `http-py.denied_url`. What
happened goes to `http.txt` in its directory, a line per request.
"""
import json
import urllib.request

import trainbox_http
from wit_world import exports
from wit_world.imports import types

ORIGIN = "http://127.0.0.1:18767"
SETTINGS = {}
SEEN = []


def record(line):
    SEEN.append(line)
    with open("http.txt", "w") as f:
        f.write("\n".join(SEEN) + "\n")


class Plugin(exports.Plugin):
    def describe(self):
        return types.PluginInfo(name="http-py", version="0.1.0", api_version="0.2.0",
                                events=[types.Event.TRAIN_BEGIN, types.Event.LOG], stateful=False,
                                capabilities=[types.Capability_Http(ORIGIN)])

    def configure(self, args, config):
        SETTINGS.update(config)

    def on_event(self, event, state, control, payload):
        if event == types.Event.TRAIN_BEGIN:
            if "denied_url" in SETTINGS:
                try:
                    trainbox_http.post(SETTINGS["denied_url"], "{}")
                    record("denied_url: ALLOWED")
                except trainbox_http.Denied as e:
                    record(f"denied_url: refused: {e}")
            return control
        loss = next((e.value.value for e in payload if e.key == "loss"
                     and isinstance(e.value, types.Value_Float)), None)
        if loss is None:
            return control
        body = json.dumps({"step": state.global_step, "loss": loss})
        reply = trainbox_http.post(SETTINGS["url"], body)
        record(f"trainbox_http step {state.global_step}: status {reply.status} {reply.text().strip()}")
        request = urllib.request.Request(SETTINGS["url"] + "?via=urllib", data=body.encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as r:
            record(f"urllib step {state.global_step}: status {r.status} {r.read().decode().strip()}")
        return control

    def save_state(self):
        return '{"args": {}, "attributes": {}}'

    def load_state(self, state):
        return None

    def finish(self, outcome):
        return None
