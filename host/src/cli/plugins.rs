//! `trainbox plugins list DIR` and `trainbox plugins inspect FILE`: what a
//! plugin says of itself, and whether it loads, without training;
//! `trainbox plugins dir`: the folder of the built-in plugins;
//! `trainbox plugins precompile DIR|FILE...`: into the compile cache
//! ahead of a run (`precompile.rs`).

use crate::sandbox::{default_cache_dir, Sandbox};
use crate::view::RunView;
use anyhow::{bail, Result};
use std::path::Path;

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
            println!("{}", c.summary());
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
                    Ok(c) => println!("{}", c.summary()),
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
