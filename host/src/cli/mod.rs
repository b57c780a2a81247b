//! The command line: `trainbox train`, `replay`, `report`, `plugins list|inspect`,
//! `plugin new` and `cache`.
//! Parsing is in `flags` and `config`; each subcommand is one module.

mod cache;
mod config;
mod flags;
mod interrupt;
mod new;
mod output_dir;
mod plugin_table;
mod plugins;
mod precompile;
mod ranks;
mod replay;
mod report;
mod results;
mod sdk;
mod splits;
mod train;
mod yaml;

pub use crate::session::integrations::INTEGRATIONS;
pub use crate::session::{builtin_plugin_dir, wasm_files};
pub use config::{PluginSource, RunConfig};
pub use flags::parse_train;

use anyhow::{bail, Result};

const USAGE: &str = "trainbox: train libtorch models with sandboxed WebAssembly callbacks

USAGE:
    trainbox train [FLAGS]            train a built-in task, or your own TorchScript model
                                      on dataset files (see `trainbox train --help`)
    trainbox plugins list DIR         describe every plugin in DIR
    trainbox plugins inspect FILE     describe one plugin file
    trainbox plugins precompile DIR|FILE...   compile plugins into the compile cache
                                      ahead of a run, on all cores
    trainbox plugins dir              where the built-in plugins are ($TRAINBOX_PLUGIN_DIR,
                                      else PREFIX/share/trainbox/plugins beside PREFIX/bin)
    trainbox replay TRACE PLUGIN      feed a recorded event trace to a plugin, offline
    trainbox report DIR [DIR...] [--out DIR]   learning curves (SVG, PNG) and a
                                      summary table of one or several runs
    trainbox plugin new NAME --lang rust|python|js|c   start a plugin
    trainbox cache [show|clear]       the compile cache: where, how big; empty it
    trainbox --version

EXIT STATUS:
    0 success; 1 training completed but a plugin faulted (see the report);
    2 an error stopped the command; 130 (SIGINT, Ctrl-C) or 143 (SIGTERM):
    `train` stopped after the current step and printed how to resume
";

/// Runs the command line; returns the process exit code.
pub fn run(argv: Vec<String>) -> Result<i32> {
    let (cmd, rest) = match argv.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("--help", &argv[..]),
    };
    match cmd {
        "train" if rest.iter().any(|a| a == "--help" || a == "-h") => {
            print!("{}", flags::train_help());
            Ok(0)
        }
        "train" => train::run(flags::parse_train(rest)?),
        "plugins" => plugins::run(rest),
        "replay" => replay::run(rest),
        "report" => report::run(rest),
        "plugin" => new::run(rest),
        "cache" => cache::run(rest),
        "--version" | "-V" => {
            println!(
                "trainbox {} (trainbox:callback@{})",
                env!("CARGO_PKG_VERSION"),
                crate::sandbox::API_VERSION
            );
            Ok(0)
        }
        "--help" | "-h" | "help" => {
            print!("{USAGE}");
            Ok(0)
        }
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
