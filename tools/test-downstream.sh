#!/usr/bin/env bash
# A program built on the trainbox crate, as a user writes one outside this
# checkout: a crate of its own whose main.rs is host/examples/custom_model.rs,
# depending on `trainbox` and, in its build.rs, on `trainbox-build` (the
# libtorch rpath), as docs/train-your-own-model.md says. It must build, then
# run with no LD_LIBRARY_PATH and no TRAINBOX_PLUGIN_DIR, finding the progress
# plugin of an installed trainbox (the user's data folder, where `make
# install` puts it). Then `cargo run --example custom_model` in the checkout,
# with none of the Makefile's variables. Run by `make test`; builds nothing
# new but the program (it shares the checkout's target directory and
# Cargo.lock, so the dependencies are those already built).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trainbox-downstream.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "test-downstream: $*" >&2
	exit 1
}
[ -e "$repo/build/libtorch" ] || fail "no $repo/build/libtorch: run \`make torch-env\` first"

# The shipped plugins, installed as `make install` lays them out, in a data folder.
make -s -C "$repo" install-plugins PREFIX="$tmp/data-home" >/dev/null
mv "$tmp/data-home/share/trainbox" "$tmp/data-home/trainbox"

app=$tmp/my-trainer
mkdir -p "$app/src" "$app/.cargo"
cat >"$app/Cargo.toml" <<TOML
[package]
name = "my-trainer"
version = "0.1.0"
edition = "2021"

[dependencies]
trainbox = { path = "$repo/host" }
tch = "0.26.0"
anyhow = "1"

[build-dependencies]
trainbox-build = { path = "$repo/crates/build-helper" }

# trainbox's release profile, so that the dependencies already built are reused.
[profile.release]
debug = "line-tables-only"
incremental = true

[workspace]
TOML
cat >"$app/.cargo/config.toml" <<TOML
[env]
LIBTORCH = "$repo/build/libtorch"
TOML
cat >"$app/build.rs" <<'RS'
fn main() {
    trainbox_build::link_libtorch();
}
RS
cp "$repo/host/examples/custom_model.rs" "$app/src/main.rs"
cp "$repo/Cargo.lock" "$app/Cargo.lock"

SECONDS=0
(cd "$app" && env -u TRAINBOX_PLUGIN_DIR -u LIBTORCH CARGO_NET_OFFLINE=true cargo build --release --quiet) \
	>"$tmp/build.log" 2>&1 || { tail -30 "$tmp/build.log" >&2; fail "the program on the trainbox crate did not build (above)"; }
target=${CARGO_TARGET_DIR:-$app/target}
echo "test-downstream: built my-trainer in ${SECONDS}s"

# Run it from an empty folder, as a user would: no library path, no plugin folder variable.
mkdir -p "$tmp/work"
(cd "$tmp/work" && env -u TRAINBOX_PLUGIN_DIR -u LD_LIBRARY_PATH XDG_DATA_HOME="$tmp/data-home" \
	"$target/release/my-trainer") >"$tmp/run.log" 2>&1 ||
	{ tail -30 "$tmp/run.log" >&2; fail "my-trainer failed (above)"; }
grep -q "^plugins: progress" "$tmp/run.log" || { tail -5 "$tmp/run.log" >&2; fail "my-trainer ran without the installed progress plugin"; }
grep -q "^trained 640 steps" "$tmp/run.log" || { tail -5 "$tmp/run.log" >&2; fail "my-trainer did not train"; }
[ -f "$tmp/work/runs/custom-model/learning_curves.svg" ] || fail "my-trainer wrote no runs/custom-model/learning_curves.svg"

# The example in the checkout, with only what a shell has before any set-up:
# .cargo/config.toml gives cargo libtorch's link and the plugin folder.
(cd "$repo" && env -i HOME="$HOME" PATH="$(dirname "$(command -v cargo)"):/usr/bin:/bin" \
	${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} ${RUSTUP_HOME:+RUSTUP_HOME="$RUSTUP_HOME"} \
	${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} CARGO_NET_OFFLINE=true \
	cargo run --release --quiet --example custom_model ) >"$tmp/example.log" 2>&1 ||
	{ tail -30 "$tmp/example.log" >&2; fail "cargo run --example custom_model failed (above)"; }
grep -q "^plugins: progress" "$tmp/example.log" || fail "the example ran without the checkout's progress plugin"
echo "test-downstream: ok (${SECONDS}s)"
