//! The run configuration: training arguments plus what is not one (task,
//! plugins, grants), read from a TOML, YAML or JSON file (`--config`) and
//! then from the command line, which overrides the file. A JSON file
//! written by HF's `TrainingArguments.to_json_string()` and a YAML file as
//! `HfArgumentParser.parse_yaml_file` takes are read as they are: HF fields
//! that trainbox does not support are listed once in a warning when they are
//! not at HF's default.
//!
//! ```toml
//! task = "sort"                      # --task
//! task_options = { train_size = 4096 } # --task_option KEY=VALUE
//! # or a model and data of your own (`--model`, `--train_file`, ...):
//! # model = "model.pt"; train_file = "train.parquet"; metric = ["accuracy"]
//! plugin_dirs = ["my-plugins"]       # --plugins DIR
//! plugin_files = ["extra.wasm"]      # --plugin PATH
//! logging_steps = 50                 # any training argument, by HF name
//!
//! [plugin_config.recorder]           # --plugin_config recorder.KEY=VALUE
//! key = "value"
//!
//! [plugins.recorder]                 # how the host runs the plugin
//! path = "plugins/recorder.wasm"     # the file these settings are for (relative to this file)
//! sha256 = "9f86d0…"                 # and its content, pinned
//! memory_mb = 64                     # memory cap
//! deadline_ms = 100                  # per-event deadline
//! on_error = "restart"               # restart | disable | abort
//! read_dirs = { "/data" = "data" }   # guest path = host directory
//! write_dirs = { "/out" = "out" }
//! env = ["HOME"]                     # environment variables to pass
//! allow_http = ["http://127.0.0.1:5000"]  # origins it may send HTTP requests to
//! http_timeout_ms = 5000             # connect / first byte / between bytes
//! max_open_files = 256               # files and directories it may hold open
//! disk_mb = 1024                     # what it may keep in its directory and writable grants
//! disk_files = 10000                 # and how many files and directories
//! missing_grant = "fail"             # fail | skip: when it asks for what is not granted
//! ```

use crate::args::{SetError, TrainingArguments, Unsupported};
use crate::pyjson::Json;
use crate::sandbox::PluginSettings;
use crate::tasks::files::{FileOptions, FLAGS as FILE_FLAGS};
use crate::tasks::TaskOptions;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub use crate::session::{PluginPin, PluginSource};

/// A `sha256` value: 64 hex digits (any case), returned in lowercase.
pub fn parse_sha256(hex: &str) -> Result<String> {
    let hex = hex.trim().to_ascii_lowercase();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("sha256 must be 64 hex digits (as `sha256sum FILE` prints), got {hex:?}");
    }
    Ok(hex)
}

/// Everything `trainbox train` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub args: TrainingArguments,
    pub task: String,
    /// Whether `task` was given (it may not be with `--model`).
    pub task_given: bool,
    pub task_options: TaskOptions,
    /// `--model` and the dataset flags.
    pub files: FileOptions,
    pub plugins: Vec<PluginSource>,
    /// `configure` pairs per plugin name.
    pub plugin_config: BTreeMap<String, Vec<(String, String)>>,
    /// Host-side settings per plugin name.
    pub plugin_settings: BTreeMap<String, PluginSettings>,
    /// The file each `[plugins.NAME]` table is for (`path`, `sha256`).
    pub plugin_pins: BTreeMap<String, PluginPin>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            args: TrainingArguments::default(),
            task: "sort".into(),
            task_given: false,
            task_options: TaskOptions::new(),
            files: FileOptions::default(),
            plugins: Vec::new(),
            plugin_config: BTreeMap::new(),
            plugin_settings: BTreeMap::new(),
            plugin_pins: BTreeMap::new(),
        }
    }
}

/// The keys of a config file that are not training arguments.
const RUN_KEYS: &[&str] = &[
    "task",
    "model",
    "train_file",
    "validation_file",
    "test_file",
    "model_input_names",
    "pad_token_id",
    "max_train_samples",
    "max_eval_samples",
    "max_predict_samples",
    "metric",
    "task_options",
    "plugin_dirs",
    "plugin_files",
    "plugin_config",
    "plugins",
];

/// Reads a TOML (`.toml`), YAML (`.yaml`, `.yml`, as HF's
/// `parse_yaml_file`) or JSON (anything else, as HF's `to_json_string()`
/// writes) file into JSON values.
pub fn read_file(path: &Path) -> Result<Json> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
        return super::yaml::parse(&text, path);
    }
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

pub(super) fn toml_to_json(v: toml::Value) -> Json {
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
        // HF fields trainbox does not support, set to other than HF's
        // default: listed once, after the others are applied.
        let mut not_applied = Vec::new();
        for (key, value) in obj {
            let bad = |what: &str| anyhow!("{file}: {key}: {what}");
            match key.as_str() {
                "task" => {
                    self.task = value
                        .as_str()
                        .ok_or_else(|| bad("expected a string"))?
                        .to_string();
                    self.task_given = true;
                }
                "metric" => {
                    let names = string_list(value)
                        .ok_or_else(|| bad("expected a metric name or a list of them"))?;
                    for n in names {
                        self.files
                            .set(key, &n, base)
                            .map_err(|e| bad(&format!("{e:#}")))?;
                    }
                }
                "model_input_names" => {
                    let names =
                        string_list(value).ok_or_else(|| bad("expected a list of column names"))?;
                    self.files
                        .set(key, &names.join(","), base)
                        .map_err(|e| bad(&format!("{e:#}")))?;
                }
                k if FILE_FLAGS.iter().any(|(n, _, _)| *n == k) => {
                    let text = scalar_text(value).ok_or_else(|| bad("expected a single value"))?;
                    self.files
                        .set(key, &text, base)
                        .map_err(|e| bad(&format!("{e:#}")))?;
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
                            .with_context(|| format!("{file}: plugins.{name}"))?;
                    }
                }
                _ => match self.args.set_json(key, value) {
                    Ok(()) => {}
                    Err(SetError::Unsupported(u)) => not_applied.push((u, value.to_compact())),
                    Err(SetError::Unknown { near, .. }) => {
                        let run_key = crate::suggest::closest(key, RUN_KEYS.iter().copied());
                        return Err(match run_key.or(near.as_deref()) {
                            Some(n) => anyhow!("{file}: unknown key {key:?} (did you mean {n:?}?)"),
                            None => anyhow!("{file}: unknown key {key:?}"),
                        });
                    }
                    Err(SetError::Invalid(why)) => bail!("{file}: {key}: {why}"),
                },
            }
        }
        if !not_applied.is_empty() {
            crate::ui::warn(&not_applied_warning(&file.to_string(), &not_applied));
        }
        Ok(())
    }

    /// Adds one `configure` pair for a plugin (later values win).
    pub fn set_plugin_config(&mut self, name: &str, key: &str, value: &str) {
        let pairs = self.plugin_config.entry(name.to_string()).or_default();
        pairs.retain(|(k, _)| k != key);
        pairs.push((key.to_string(), value.to_string()));
    }
}

/// The one warning for a config file's unsupported HF fields: each with
/// its value and the reason.
fn not_applied_warning(file: &str, fields: &[(&Unsupported, String)]) -> String {
    let mut out = format!(
        "{file}: {} setting{} not applied (fields of HF's TrainingArguments that trainbox does not support):",
        fields.len(),
        if fields.len() == 1 { " is" } else { "s are" }
    );
    for (u, value) in fields {
        out.push_str(&format!("\n  {} = {value}: {}", u.name, u.why));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha256_is_64_hex_digits() {
        let hex = "AB".repeat(32);
        assert_eq!(parse_sha256(&hex).unwrap(), "ab".repeat(32));
        for bad in ["", "abc", &"g".repeat(64), &"a".repeat(65)] {
            let err = parse_sha256(bad).unwrap_err().to_string();
            assert!(err.contains("64 hex digits"), "{err}");
        }
    }
}
