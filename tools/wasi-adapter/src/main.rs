//! Writes the WASI preview-1 adapters (the bytes the crate of wasmtime 48
//! carries) into a folder, for `wasm-tools component new --adapt`, which
//! turns a preview-1 core module (C with wasi-libc) into a component.
//!
//! Run: `cargo run --release -p wasi-adapter -- OUT_DIR`

use std::path::PathBuf;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in [
        (
            "wasi_snapshot_preview1.reactor.wasm",
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        ),
        (
            "wasi_snapshot_preview1.command.wasm",
            WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        ),
    ] {
        std::fs::write(dir.join(name), bytes)?;
        println!("{}", dir.join(name).display());
    }
    Ok(())
}
