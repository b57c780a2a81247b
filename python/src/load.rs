//! Loading a `PluginCallback`'s plugins: the files in dispatch order, each
//! plugin's settings (config, grants narrowed to what it declared, limits,
//! fault policy) and its instance number, through the sandbox as
//! `trainbox train` does (`trainbox::session::plugins`).

use crate::invalid;
use anyhow::Result;
use pyo3::PyResult;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use trainbox_sandbox::pyjson::Json;
use trainbox_sandbox::sandbox::{
    share_open_files, wasm_files, Grants, OnError, PluginSettings, Sandbox, WasmPlugin,
};
use trainbox_sandbox::RunArgs;

/// What `PluginCallback` asked for.
pub struct Request {
    /// Plugin files and folders, in dispatch order.
    pub paths: Vec<String>,
    pub args: RunArgs,
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

/// The plugin files of `paths`: a folder's `.wasm` files sorted by name,
/// a file as itself.
fn files(paths: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let p = PathBuf::from(p);
        if p.is_dir() {
            files.extend(wasm_files(&p)?);
        } else {
            files.push(p);
        }
    }
    Ok(files)
}

/// Compiles and starts every plugin of the request, in order. On error,
/// the plugins already started hear that the run is over.
pub fn start(sandbox: &Sandbox, request: &Request) -> Result<Vec<WasmPlugin>> {
    let compiled = files(&request.paths)?
        .iter()
        .map(|f| sandbox.compile(f))
        .collect::<Result<Vec<_>>>()?;
    share_open_files(compiled.len());
    let mut instances: BTreeMap<&str, usize> = BTreeMap::new();
    let mut plugins: Vec<WasmPlugin> = Vec::new();
    for c in &compiled {
        let name = c.info.name.as_str();
        let n = instances.entry(name).or_default();
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
        let settings = c.narrow(settings, *n == 0);
        match sandbox.instantiate(c, settings, &request.args, *n) {
            Ok(p) => {
                plugins.push(p);
                *n += 1;
            }
            Err(e) => {
                let why = format!("{e:#}");
                for p in &mut plugins {
                    p.finish(&Err(why.clone()));
                }
                return Err(e);
            }
        }
    }
    Ok(plugins)
}
