#!/usr/bin/env bash
# `make install` into a temporary PREFIX (copying the release binary and the
# plugins already built: it builds nothing), then, as a user with only that
# trainbox on PATH, in an empty folder outside the checkout and without the
# Makefile's TRAINBOX_PLUGIN_DIR: the README's command block, then the
# commands of the README that `trainbox plugin new` writes, run in the new
# Rust plugin's folder (built offline with the SDK the binary embeds), and
# those of a Python, a JavaScript and a C plugin.
# Fails naming the command that failed. Run by `make test`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trainbox-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
make -s -C "$repo" install-files PREFIX="$prefix" >/dev/null

# The installed binary and nothing of the checkout: no plugin folder from the
# Makefile, no cargo config (the folder is outside the checkout).
unset TRAINBOX_PLUGIN_DIR
export PATH="$prefix/bin:$PATH"
work=$tmp/work
mkdir -p "$work"
cd "$work"

fail() {
	echo "test-install: $*" >&2
	exit 1
}

[ "$(command -v trainbox)" = "$prefix/bin/trainbox" ] || fail "trainbox on PATH is $(command -v trainbox), not $prefix/bin/trainbox"
[ "$(trainbox plugins dir)" = "$prefix/share/trainbox/plugins" ] ||
	fail "trainbox plugins dir says $(trainbox plugins dir), not $prefix/share/trainbox/plugins"

# The README's block between the marker comment and the closing fence.
block=$(awk '/<!-- tools\/test-install.sh runs the next block/ {on=1; next}
	on && /^```sh/ {inside=1; next}
	inside && /^```/ {exit}
	inside {print}' "$repo/README.md")
[ -n "$block" ] || fail "README.md has no block marked for tools/test-install.sh"
SECONDS=0
echo "test-install: the README's commands, with $prefix/bin/trainbox"
bash -euo pipefail -c "$block" >"$tmp/readme.log" 2>&1 ||
	{ tail -30 "$tmp/readme.log" >&2; fail "a README command failed (above)"; }
[ -f runs/regression/trainer_state.json ] || fail "the README's train left no runs/regression/trainer_state.json"
[ -s runs/regression/plugins/recorder/trace.jsonl ] || fail "the recorder wrote no trace"
grep -q "replayed" "$tmp/readme.log" || fail "the README's replay printed no summary"

echo "test-install: ${SECONDS}s"
# A Rust plugin, as its README says: built offline with the embedded SDK.
trainbox plugin new my-rust-plugin --lang rust >/dev/null
[ -f my-rust-plugin/trainbox-sdk/plugins/sdk/Cargo.toml ] || fail "plugin new --lang rust wrote no SDK"
commands=$(sed -n 's/^    \(trainbox \|make\)/\1/p' my-rust-plugin/README.md)
[ -n "$commands" ] || fail "my-rust-plugin/README.md lists no commands"
echo "test-install: the generated README's commands, in my-rust-plugin/"
# A target directory of its own, kept in the cache: no wait on the lock of
# the shared one, and the SDK's dependencies compile once per machine.
target=${TRAINBOX_CACHE:-$HOME/.cache/trainbox}/install-test-target
(cd my-rust-plugin && CARGO_NET_OFFLINE=true CARGO_TARGET_DIR="$target" bash -euo pipefail -c "$commands") >"$tmp/plugin.log" 2>&1 ||
	{ tail -30 "$tmp/plugin.log" >&2; fail "a command of my-rust-plugin/README.md failed (above)"; }
grep -q "\[my-rust-plugin\] step 2: loss" "$tmp/plugin.log" || fail "the new plugin printed no loss"

# The other languages, each as its README says (the language tools are the
# ones `make plugins` installed in the cache).
plugin_lang() {
	local name=$1 lang=$2
	trainbox plugin new "$name" --lang "$lang" >/dev/null
	local commands
	commands=$(sed -n 's/^    \(trainbox \|make\)/\1/p' "$name/README.md")
	[ -n "$commands" ] || fail "$name/README.md lists no commands"
	echo "test-install: the generated README's commands, in $name/"
	(cd "$name" && bash -euo pipefail -c "$commands") >"$tmp/$name.log" 2>&1 ||
		{ tail -30 "$tmp/$name.log" >&2; fail "a command of $name/README.md failed (above)"; }
	grep -q "\[$name\] step 2: loss" "$tmp/$name.log" || fail "$name printed no loss"
}
plugin_lang my-python-plugin python
plugin_lang my-js-plugin js
plugin_lang my-c-plugin c

# The generated README's way to record a trace of one's own.
echo "test-install: recording a trace as the generated README says"
trainbox train --task regression --max_steps 3 --output_dir runs/recorded \
	--plugin "$(trainbox plugins dir)/recorder.wasm" --plugin_config recorder.values=true >"$tmp/record.log" 2>&1 ||
	{ tail -30 "$tmp/record.log" >&2; fail "recording with the README's flags failed (above)"; }
[ -s runs/recorded/plugins/recorder/events.jsonl ] || fail "the recorder wrote no runs/recorded/plugins/recorder/events.jsonl"
trainbox replay runs/recorded/plugins/recorder/events.jsonl my-c-plugin/my-c-plugin.wasm >"$tmp/replay.log" 2>&1 ||
	{ tail -30 "$tmp/replay.log" >&2; fail "replaying the recorded trace failed (above)"; }
echo "test-install: ok (${SECONDS}s)"
