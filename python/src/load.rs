//! Loading a `PluginCallback`'s plugins: the files in dispatch order (the
//! `report_to` integrations from the built-in folder, then the user's),
//! each plugin's settings (config, grants narrowed to what it declared,
//! an integration's own grants, limits, fault policy) and its instance
//! number, through the sandbox as `trainbox train` does
//! (`trainbox::session::plugins`).

use crate::invalid;
use anyhow::{bail, Result};
use pyo3::PyResult;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trainbox_sandbox::builtin_dir;
use trainbox_sandbox::integrations::{self, fresh, IntegrationArgs};
use trainbox_sandbox::pyjson::Json;
use trainbox_sandbox::sandbox::{
    share_open_files, wasm_files, CompiledPlugin, Grants, OnError, PluginSettings, Sandbox,
    WasmPlugin,
};
use trainbox_sandbox::RunArgs;

/// What `PluginCallback` asked for.
pub struct Request {
    /// Plugin files and folders, in dispatch order.
    pub paths: Vec<String>,
    pub args: RunArgs,
    /// What the integrations' grants read of HF's arguments.
    pub integration_args: IntegrationArgs,
    /// The `report_to` integrations, as [`integrations::selected`] expands them.
    pub report_to: Vec<&'static str>,
    /// The built-in folder the integrations' plugins come from.
    pub builtin_dir: PathBuf,
    /// `configure` pairs per plugin name.
    pub config: BTreeMap<String, Vec<(String, String)>>,
    pub grants: BTreeMap<String, Grants>,
    pub on_error: OnError,
    pub memory_mb: Option<u64>,
    pub deadline_ms: Option<u64>,
}

/// `{"name.key": value}` as `configure` pairs per plugin name (a value
/// that is not a string is passed as its JSON text).
pub fn config_of(j: &Json) -> PyResult<BTreeMap<String, Vec<(String, String)>>> {
    let mut config: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let Some(o) = j.as_object() else {
        return Err(invalid("config: expected a dict of \"name.key\": value"));
    };
    for (k, v) in o {
        let (name, key) = k
            .split_once('.')
            .filter(|(n, k)| !n.is_empty() && !k.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "config key {k:?}: expected \"NAME.KEY\" (e.g. \"csv-logger.every\")"
                ))
            })?;
        let value = match v {
            Json::Str(s) => s.clone(),
            other => other.to_compact(),
        };
        config
            .entry(name.to_string())
            .or_default()
            .push((key.to_string(), value));
    }
    Ok(config)
}

/// The plugin files of a request, in dispatch order, each with the
/// integration it is: the `report_to` integrations' plugins from the
/// built-in folder, then the files of `paths` (a folder's `.wasm` files
/// sorted by name, a file as itself).
fn files(request: &Request) -> Result<Vec<(PathBuf, Option<&'static str>)>> {
    let mut files = Vec::new();
    for name in &request.report_to {
        files.push((builtin(&request.builtin_dir, name)?, Some(*name)));
    }
    for p in &request.paths {
        let p = PathBuf::from(p);
        if p.is_dir() {
            files.extend(wasm_files(&p)?.into_iter().map(|f| (f, None)));
        } else {
            files.push((p, None));
        }
    }
    Ok(files)
}

/// The integration `name`'s plugin in the built-in folder `dir`, or an
/// error saying how to get it.
fn builtin(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(format!("{name}.wasm"));
    if !path.is_file() {
        bail!(
            "report_to {name}: {name}.wasm not found in {} ({}); install trainbox's plugins \
             (`make install`), or build them (`make plugins`) and pass builtin_dir=\"build/plugins\" \
             (or set {}=build/plugins)",
            dir.display(),
            builtin_dir::searched(),
            builtin_dir::PLUGIN_DIR_VAR
        );
    }
    Ok(path)
}

/// Compiles and starts every plugin of the request, in order. On error,
/// the plugins already started hear that the run is over, and the folders
/// made for them that hold no file are removed again.
pub fn start(sandbox: &Sandbox, request: &Request) -> Result<Vec<WasmPlugin>> {
    let compiled = files(request)?
        .iter()
        .map(|(f, integration)| Ok((sandbox.compile(f)?, *integration)))
        .collect::<Result<Vec<_>>>()?;
    share_open_files(compiled.len());
    fresh::forget();
    fresh::watch(&Path::new(&request.args.output_dir).join("plugins"));
    let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
    let mut plugins: Vec<WasmPlugin> = Vec::new();
    for (c, integration) in &compiled {
        let name = c.info.name.as_str();
        let n = instances.entry(name).or_default();
        let started = settings(c, *integration, request, *n == 0)
            .and_then(|s| sandbox.instantiate(c, s, &request.args, *n));
        match started {
            Ok(p) => {
                plugins.push(p);
                *n += 1;
            }
            Err(e) => {
                let why = format!("{e:#}");
                for p in &mut plugins {
                    p.finish(&Err(why.clone()));
                }
                fresh::remove_empty();
                return Err(e);
            }
        }
    }
    fresh::forget();
    Ok(plugins)
}

/// One plugin's settings: the user's, narrowed to what it declared (with a
/// warning when `warn`), then an integration's own grants and config.
fn settings(
    c: &CompiledPlugin,
    integration: Option<&str>,
    request: &Request,
    warn: bool,
) -> Result<PluginSettings> {
    let name = c.info.name.as_str();
    let mut settings = PluginSettings {
        config: request.config.get(name).cloned().unwrap_or_default(),
        grants: request.grants.get(name).cloned().unwrap_or_default(),
        on_error: request.on_error,
        ..PluginSettings::default()
    };
    if let Some(mb) = request.memory_mb {
        settings.limits.memory_bytes = (mb as usize) << 20;
    }
    if let Some(ms) = request.deadline_ms {
        settings.limits.deadline = Duration::from_millis(ms);
    }
    let settings = c.narrow(settings, warn);
    match integration {
        Some(i) => integrations::settings(i, &c.info, &request.integration_args, settings),
        None => Ok(settings),
    }
}
