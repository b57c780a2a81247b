//! `trainbox plugins list DIR` and `trainbox plugins inspect FILE`: what a
//! plugin says of itself, and whether it loads, without training;
//! `trainbox plugins dir`: the folder of the built-in plugins;
//! `trainbox plugins precompile DIR|FILE...`: into the compile cache
//! ahead of a run (`precompile.rs`).

use crate::sandbox::{default_cache_dir, CompiledPlugin, Sandbox};
use crate::view::RunView;
use anyhow::{bail, Result};
use std::path::Path;

fn describe(c: &CompiledPlugin) -> String {
    let events: Vec<&str> = c.info.events.iter().map(|e| e.hf_name()).collect();
    let caps: Vec<String> = c
        .info
        .capabilities
        .iter()
        .map(ToString::to_string)
        .collect();
    format!(
        "{}\n  name:         {}\n  version:      {}\n  api:          trainbox:callback@{}\n  events:       {}\n  stateful:     {}\n  capabilities: {}\n  size:         {} bytes\n  sha256:       {}\n  validates:    yes\n  compiled:     {}",
        c.path.display(),
        c.info.name,
        c.info.version,
        c.api.as_str(),
        events.join(", "),
        c.info.stateful,
        if caps.is_empty() { "none".to_string() } else { caps.join(", ") },
        c.size,
        c.sha256,
        if c.cached { "from the cache" } else { "now" }
    )
}

pub fn run(argv: &[String]) -> Result<i32> {
    if let [cmd, rest @ ..] = argv {
        if cmd == "precompile" {
            return super::precompile::run(rest);
        }
    }
    let sandbox = Sandbox::new(RunView::default(), default_cache_dir())?;
    match argv {
        [cmd, file] if cmd == "inspect" => {
            let c = sandbox.compile(Path::new(file))?;
            println!("{}", describe(&c));
            Ok(0)
        }
        [cmd] if cmd == "dir" => {
            println!("{}", crate::session::builtin_plugin_dir().display());
            Ok(0)
        }
        [cmd, dir] if cmd == "list" => {
            let mut failed = false;
            for path in super::wasm_files(Path::new(dir))? {
                match sandbox.compile(&path) {
                    Ok(c) => println!("{}", describe(&c)),
                    Err(e) => {
                        failed = true;
                        eprintln!("trainbox: {e:#}");
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        _ => bail!(
            "usage: trainbox plugins list DIR | trainbox plugins inspect FILE | trainbox plugins dir | trainbox plugins precompile DIR|FILE..."
        ),
    }
}
