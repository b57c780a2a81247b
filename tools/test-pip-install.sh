#!/usr/bin/env bash
# `pip install ./python`, as python/README.md tells a user: into a fresh
# virtual environment, with pip fetching maturin from the package registry
# (PEP 517 build isolation) and building the extension with cargo. Then, from
# that environment: the package and its type stubs are there, `describe`
# reads a plugin, and a plugin runs inside HF's Trainer. torch and
# transformers (HF's `trainbox[hf]` extra) are not downloaded again: a .pth
# file appends the torch environment's site-packages *after* the fresh
# environment's own, so `trainbox` is the freshly installed one (checked).
# Run by `make test`; shares the target directory, so only the extension is
# linked anew.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${1:?usage: test-pip-install.sh TORCH_ENV_PYTHON PLUGIN_DIR}
plugins=${2:?usage: test-pip-install.sh TORCH_ENV_PYTHON PLUGIN_DIR}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trainbox-pip.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "test-pip-install: $*" >&2
	exit 1
}

# The torch environment is a venv: its base interpreter makes the fresh one.
base=$("$python" -c 'import sys; print(sys._base_executable)')
cd "$repo"
"$base" -m venv "$tmp/venv"
venv=$tmp/venv/bin/python
"$venv" -m pip install --quiet ./python 2>"$tmp/pip.log" ||
	{ cat "$tmp/pip.log" >&2; fail "pip install ./python failed"; }

"$venv" - "$plugins/printer.wasm" <<'PY' || fail "the installed package is incomplete"
import importlib.resources, sys
import trainbox
files = importlib.resources.files("trainbox")
for f in ("_native.pyi", "py.typed", "hf.py"):
    assert (files / f).is_file(), f"the wheel lacks trainbox/{f}"
assert "printer" in trainbox.describe(sys.argv[1])
try:
    import trainbox.hf
except ModuleNotFoundError as e:
    assert e.name == "transformers", e
else:
    raise AssertionError("transformers is not in the fresh environment yet")
PY

site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
fresh=$("$venv" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "$site" >"$fresh/zz-torch-env.pth"
"$venv" - "$plugins/printer.wasm" "$tmp/out" "$repo/python/tests" <<'PY' >"$tmp/run.log" 2>&1 ||
import sys
sys.path.insert(0, sys.argv[3])
import trainbox
assert trainbox.__file__.startswith(sys.prefix), f"not the fresh install: {trainbox.__file__}"
from transformers import Trainer
from trainbox.hf import PluginCallback
from twin import RegressionDataset, RegressionModel, hf_args
cb = PluginCallback(sys.argv[1], print_report=False)
args = hf_args(sys.argv[2], num_train_epochs=1, logging_steps=4)
Trainer(RegressionModel(), args, train_dataset=RegressionDataset(64), callbacks=[cb]).train()
assert [r.calls > 0 for r in cb.reports()] == [True], cb.reports()
PY
	{ cat "$tmp/run.log" >&2; fail "the freshly installed package did not run a plugin in HF's Trainer"; }
grep -q "^\[printer\] {'loss'" "$tmp/run.log" || { cat "$tmp/run.log" >&2; fail "the printer printed no log"; }
echo "test-pip-install: pip install ./python into a fresh venv works, and runs a plugin in HF's Trainer"
