//! The plugins of a run: where they come from (the user's folders and
//! files, the built-in folder for `--report_to` and the progress bar), in
//! dispatch order, and how each is compiled, checked and started.
//!
//! The built-in folder is found at run time ([`builtin_dir`], shared with
//! the Python host): a binary built on the `trainbox` crate, in its own
//! `target/`, finds the plugins of an installed trainbox.

use super::identity;
use super::integrations;
use super::setup::{PluginSetup, PluginSource};
use crate::args::TrainingArguments;
use crate::dist::World;
use crate::sandbox::{wasm_files, CompiledPlugin, NotGranted, PluginSettings, Sandbox, WasmPlugin};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use trainbox_sandbox::builtin_dir;
pub use trainbox_sandbox::builtin_dir::{builtin_plugin_dir, PLUGIN_DIR_VAR};

/// The built-in plugin `name` in `dir`, or an error saying how to get it.
pub fn builtin(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.wasm"));
    if !path.is_file() {
        let from = builtin_dir::searched();
        bail!(
            "built-in plugin {name}.wasm not found in {} ({from}); install trainbox with its plugins \
             (`make install`), or build them (`make plugins`) and set {PLUGIN_DIR_VAR}=build/plugins \
             (a program on the library: `Run::builtin_plugins(DIR)`, or `Run::without_progress()`)",
            dir.display()
        );
    }
    Ok(path)
}

/// A plugin file of a run, with the integration it is when `--report_to`
/// named it.
pub type PluginFile = (PathBuf, Option<&'static str>);

/// The plugin files of a run, in dispatch order: the integrations (world
/// zero only: HF's check `is_world_process_zero`), the user's folders and
/// files, then the progress bar (or the printer, with `--disable_tqdm`)
/// when `progress` is set.
pub fn plugin_files(
    args: &TrainingArguments,
    setup: &PluginSetup,
    builtin_dir: &Path,
    progress: bool,
    world: &World,
) -> Result<Vec<PluginFile>> {
    let mut files = Vec::new();
    if world.is_world_zero() {
        for name in integrations::selected(&args.report_to)? {
            files.push((builtin(builtin_dir, name)?, Some(name)));
        }
    }
    for source in &setup.sources {
        match source {
            PluginSource::Dir(dir) => files.extend(wasm_files(dir)?.into_iter().map(|f| (f, None))),
            PluginSource::File(f) => files.push((f.clone(), None)),
        }
    }
    if progress {
        let name = if args.disable_tqdm {
            "printer"
        } else {
            "progress"
        };
        files.push((builtin(builtin_dir, name)?, None));
    }
    Ok(files)
}

/// Compiles the files (world zero first, into the shared compile cache,
/// while the others wait and then find it all cached), checks which file
/// each setting is for, and starts every plugin. On error, the plugins
/// already started hear that the run is over.
pub fn start_all(
    sandbox: &Sandbox,
    files: &[PluginFile],
    setup: &PluginSetup,
    args: &TrainingArguments,
    world: &World,
) -> Result<Vec<WasmPlugin>> {
    let compile = || -> Result<Vec<(CompiledPlugin, Option<&'static str>)>> {
        files
            .iter()
            .map(|(p, integration)| Ok((sandbox.compile(p)?, *integration)))
            .collect()
    };
    let compiled = world_zero_first(world, "compiling the plugins", compile)?;
    // Names unique, settings bound to their files, stored states to theirs.
    identity::check(setup, &compiled)?;
    identity::check_stored_states(args, &compiled)?;
    // Each instance may hold an even share of the descriptors lent to plugins.
    crate::sandbox::share_open_files(compiled.len());
    let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
    let mut plugins: Vec<WasmPlugin> = Vec::new();
    // A start that fails leaves none of the folders made for it.
    integrations::fresh::forget();
    integrations::fresh::watch(&Path::new(&args.output_dir).join("plugins"));
    for (c, integration) in &compiled {
        let name = c.info.name.as_str();
        let n = instances.entry(name).or_default();
        match start(sandbox, c, *integration, setup, args, *n) {
            Ok(Some(plugin)) => {
                plugins.push(plugin);
                *n += 1;
            }
            Ok(None) => {}
            Err(e) => {
                for p in &mut plugins {
                    crate::callbacks::Callback::finish(p, &Err(format!("{e:#}")));
                }
                integrations::fresh::remove_empty();
                return Err(e);
            }
        }
    }
    integrations::fresh::forget();
    Ok(plugins)
}

/// One compiled plugin, checked against the setup as in a run and
/// started alone (`trainbox replay`).
pub fn start_one(
    sandbox: &Sandbox,
    compiled: CompiledPlugin,
    setup: &PluginSetup,
    args: &TrainingArguments,
) -> Result<WasmPlugin> {
    let loaded = [(compiled, None)];
    identity::check(setup, &loaded)?;
    let [(c, _)] = loaded;
    sandbox
        .instantiate(
            &c,
            user_settings(setup, &c, sandbox.rank() == 0),
            &args.into(),
            0,
        )
        .map_err(|e| identity::path_hint(e, &c, None, setup))
}

/// Instance `instance` of a compiled plugin, with the user's settings (and
/// the integration's grants, when `--report_to` named it); `None` when it
/// is skipped for a missing grant (`missing_grant = "skip"`).
fn start(
    sandbox: &Sandbox,
    c: &CompiledPlugin,
    integration: Option<&str>,
    setup: &PluginSetup,
    args: &TrainingArguments,
    instance: usize,
) -> Result<Option<WasmPlugin>> {
    // One warning per plugin, not per instance or rank.
    let mut settings = user_settings(setup, c, instance == 0 && sandbox.rank() == 0);
    if let Some(integration) = integration {
        settings = integrations::settings(integration, &c.info, &args.into(), settings)?;
    }
    let skip = settings.skip_if_not_granted;
    let started = sandbox.instantiate(c, settings, &args.into(), instance);
    match started.map_err(|e| identity::path_hint(e, c, integration, setup)) {
        Ok(plugin) => Ok(Some(plugin)),
        Err(e) if skip && e.downcast_ref::<NotGranted>().is_some() => {
            crate::ui::warn(&format!(
                "{e}; the plugin is skipped (missing_grant = \"skip\")"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The user's settings for a plugin, narrowed to the grants it declared
/// (with a warning when `warn`).
fn user_settings(setup: &PluginSetup, c: &CompiledPlugin, warn: bool) -> PluginSettings {
    c.narrow(setup.settings_for(&c.info.name), warn)
}

/// Runs `work` on world zero, then on the other ranks (which wait for it
/// first): for work whose result the others find cached.
fn world_zero_first<T>(world: &World, what: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    if world.is_world_zero() {
        let out = work()?;
        world.barrier(what)?;
        Ok(out)
    } else {
        world.barrier(what)?;
        work()
    }
}

/// What the `report_to` integrations' grants read of the arguments.
impl From<&TrainingArguments> for integrations::IntegrationArgs {
    fn from(a: &TrainingArguments) -> Self {
        integrations::IntegrationArgs {
            output_dir: a.output_dir.clone(),
            logging_dir: a.logging_dir.clone(),
            project: a.project.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_builtin_plugin_says_how_to_get_it() {
        let dir = std::env::temp_dir().join("trainbox-no-plugins-here");
        let err = builtin(&dir, "progress").unwrap_err().to_string();
        assert!(err.contains("progress.wasm not found"), "{err}");
        assert!(
            err.contains("make install") && err.contains(PLUGIN_DIR_VAR),
            "{err}"
        );
    }
}
