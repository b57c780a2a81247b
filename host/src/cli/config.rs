//! The run configuration: training arguments plus what is not one (task,
//! plugins, grants), read from a TOML or JSON file (`--config`) and then
//! from the command line, which overrides the file.
//!
//! ```toml
//! task = "sort"                      # --task
//! task_options = { train_size = 4096 } # --task_option KEY=VALUE
//! plugin_dirs = ["my-plugins"]       # --plugins DIR
//! plugin_files = ["extra.wasm"]      # --plugin PATH
//! logging_steps = 50                 # any training argument, by HF name
//!
//! [plugin_config.recorder]           # --plugin_config recorder.KEY=VALUE
//! key = "value"
//!
//! [plugins.recorder]                 # how the host runs the plugin
//! memory_mb = 64                     # memory cap
//! deadline_ms = 100                  # per-event deadline
//! on_error = "restart"               # restart | disable | abort
//! read_dirs = { "/data" = "data" }   # guest path = host directory
//! write_dirs = { "/out" = "out" }
//! env = ["HOME"]                     # environment variables to pass
//! allow_http = ["http://127.0.0.1:5000"]  # origins it may send HTTP requests to
//! http_timeout_ms = 5000             # connect / first byte / between bytes
//! missing_grant = "fail"             # fail | skip: when it asks for what is not granted
//! ```

use crate::args::TrainingArguments;
use crate::pyjson::Json;
use crate::sandbox::{DirGrant, OnError, PluginSettings};
use crate::tasks::TaskOptions;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where user plugins come from, in command-line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// Every `.wasm` in a folder, sorted by file name.
    Dir(PathBuf),
    File(PathBuf),
}

/// Everything `trainbox train` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub args: TrainingArguments,
    pub task: String,
    pub task_options: TaskOptions,
    pub plugins: Vec<PluginSource>,
    /// `configure` pairs per plugin name.
    pub plugin_config: BTreeMap<String, Vec<(String, String)>>,
    /// Host-side settings per plugin name.
    pub plugin_settings: BTreeMap<String, PluginSettings>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            args: TrainingArguments::default(),
            task: "sort".into(),
            task_options: TaskOptions::new(),
            plugins: Vec::new(),
            plugin_config: BTreeMap::new(),
            plugin_settings: BTreeMap::new(),
        }
    }
}

/// The keys of a config file that are not training arguments.
const RUN_KEYS: &[&str] = &[
    "task",
    "task_options",
    "plugin_dirs",
    "plugin_files",
    "plugin_config",
    "plugins",
];
const PLUGIN_KEYS: &[&str] = &[
    "memory_mb",
    "deadline_ms",
    "on_error",
    "read_dirs",
    "write_dirs",
    "env",
    "allow_http",
    "http_timeout_ms",
    "missing_grant",
];

/// Reads a TOML (`.toml`) or JSON (anything else) file into JSON values.
pub fn read_file(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "toml") {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            anyhow!(
                "{}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', " ")
            )
        })?;
        Ok(toml_to_json(toml::Value::Table(table)))
    } else {
        Json::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
    }
}

fn toml_to_json(v: toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::Str(s),
        toml::Value::Integer(i) => Json::Int(i),
        toml::Value::Float(f) => Json::Float(f),
        toml::Value::Boolean(b) => Json::Bool(b),
        toml::Value::Datetime(d) => Json::Str(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Json::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// A scalar config value as the text a flag would carry.
fn scalar_text(v: &Json) -> Option<String> {
    Some(match v {
        Json::Str(s) => s.clone(),
        Json::Int(i) => i.to_string(),
        Json::Float(f) => f.to_string(),
        Json::Bool(b) => b.to_string(),
        _ => return None,
    })
}

fn string_list(v: &Json) -> Option<Vec<String>> {
    match v {
        Json::Str(s) => Some(vec![s.clone()]),
        Json::Array(a) => a.iter().map(|x| x.as_str().map(String::from)).collect(),
        _ => None,
    }
}

impl RunConfig {
    /// Applies a config file; relative paths in it are relative to the file.
    pub fn apply_file(&mut self, path: &Path) -> Result<()> {
        let json = read_file(path)?;
        let file = path.display();
        let base = path.parent().unwrap_or(Path::new("."));
        let obj = json
            .as_object()
            .ok_or_else(|| anyhow!("{file}: expected a table of settings"))?;
        for (key, value) in obj {
            let bad = |what: &str| anyhow!("{file}: {key}: {what}");
            match key.as_str() {
                "task" => {
                    self.task = value
                        .as_str()
                        .ok_or_else(|| bad("expected a string"))?
                        .to_string()
                }
                "task_options" => {
                    let table = value.as_object().ok_or_else(|| bad("expected a table"))?;
                    for (k, v) in table {
                        let text = scalar_text(v).ok_or_else(|| bad("expected scalar values"))?;
                        self.task_options.insert(k.clone(), text);
                    }
                }
                "plugin_dirs" | "plugin_files" => {
                    for p in string_list(value).ok_or_else(|| bad("expected a list of paths"))? {
                        let p = base.join(p);
                        self.plugins.push(if key == "plugin_dirs" {
                            PluginSource::Dir(p)
                        } else {
                            PluginSource::File(p)
                        });
                    }
                }
                "plugin_config" => {
                    let table = value
                        .as_object()
                        .ok_or_else(|| bad("expected a table of plugin tables"))?;
                    for (name, kv) in table {
                        let kv = kv
                            .as_object()
                            .ok_or_else(|| bad(&format!("{name}: expected a table")))?;
                        for (k, v) in kv {
                            let text = scalar_text(v)
                                .ok_or_else(|| bad(&format!("{name}.{k}: expected a scalar")))?;
                            self.set_plugin_config(name, k, &text);
                        }
                    }
                }
                "plugins" => {
                    let table = value
                        .as_object()
                        .ok_or_else(|| bad("expected a table of plugin tables"))?;
                    for (name, section) in table {
                        self.apply_plugin_section(name, section, base)
                            .map_err(|e| anyhow!("{file}: plugins.{name}: {e}"))?;
                    }
                }
                _ => self.args.set_json(key, value).map_err(|e| {
                    let near = crate::suggest::closest(key, RUN_KEYS.iter().copied());
                    match near {
                        Some(n) if e.starts_with("unknown argument") => {
                            anyhow!("{file}: unknown key {key:?} (did you mean {n:?}?)")
                        }
                        _ if e.starts_with("unknown argument") => anyhow!(
                            "{file}: {}",
                            e.replacen("unknown argument", "unknown key", 1)
                        ),
                        _ => anyhow!("{file}: {key}: {e}"),
                    }
                })?,
            }
        }
        Ok(())
    }

    /// Adds one `configure` pair for a plugin (later values win).
    pub fn set_plugin_config(&mut self, name: &str, key: &str, value: &str) {
        let pairs = self.plugin_config.entry(name.to_string()).or_default();
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.to_string(), value.to_string()));
    }

    fn apply_plugin_section(&mut self, name: &str, section: &Json, base: &Path) -> Result<()> {
        let table = section
            .as_object()
            .ok_or_else(|| anyhow!("expected a table"))?;
        let s = self.plugin_settings.entry(name.to_string()).or_default();
        for (key, v) in table {
            match key.as_str() {
                "memory_mb" => s.limits.memory_bytes = (positive(key, v)? as usize) << 20,
                "deadline_ms" => s.limits.deadline = Duration::from_millis(positive(key, v)?),
                "on_error" => {
                    let text = v
                        .as_str()
                        .ok_or_else(|| anyhow!("on_error must be a string"))?;
                    s.on_error = text.parse::<OnError>().map_err(|e| anyhow!(e))?;
                }
                "read_dirs" | "write_dirs" => {
                    let dirs = v.as_object().ok_or_else(|| {
                        anyhow!("{key} must be a table of guest path = host directory")
                    })?;
                    for (guest, host) in dirs {
                        let host = host
                            .as_str()
                            .ok_or_else(|| anyhow!("{key}.{guest} must be a directory path"))?;
                        s.grants.dirs.push(DirGrant {
                            host: base.join(host),
                            guest: guest.clone(),
                            writable: key == "write_dirs",
                        });
                    }
                }
                "env" => s.grants.env.extend(
                    string_list(v)
                        .ok_or_else(|| anyhow!("env must be a list of variable names"))?,
                ),
                "allow_http" => {
                    let origins = string_list(v)
                        .ok_or_else(|| anyhow!("allow_http must be a list of origins"))?;
                    for o in origins {
                        s.grants.http.push(
                            crate::sandbox::normalize_origin(&o)
                                .map_err(|e| anyhow!("allow_http: {e}"))?,
                        );
                    }
                }
                "http_timeout_ms" => {
                    s.limits.http_timeout = Duration::from_millis(positive(key, v)?)
                }
                "missing_grant" => {
                    s.skip_if_not_granted = match v.as_str() {
                        Some("fail") => false,
                        Some("skip") => true,
                        _ => bail!("missing_grant must be \"fail\" or \"skip\""),
                    }
                }
                _ => match crate::suggest::closest(key, PLUGIN_KEYS.iter().copied()) {
                    Some(n) => bail!("unknown key {key:?} (did you mean {n:?}?)"),
                    None => bail!("unknown key {key:?}; keys: {}", PLUGIN_KEYS.join(", ")),
                },
            }
        }
        Ok(())
    }
}

/// A plugin setting that must be a positive integer.
fn positive(key: &str, v: &Json) -> Result<u64> {
    v.as_i64()
        .filter(|n| *n > 0)
        .map(|n| n as u64)
        .ok_or_else(|| anyhow!("{key} must be a positive integer"))
}
