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
use crate::sandbox::{DirGrant, OnError, PluginSettings};
use crate::tasks::files::{FileOptions, FLAGS as FILE_FLAGS};
use crate::tasks::TaskOptions;
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

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

    /// Applies one key of a `[plugins.NAME]` table given as a flag
    /// (`--plugin_grant NAME.KEY=VALUE`): `read_dirs`/`write_dirs` take
    /// `GUEST=DIR`, with DIR relative to `base`; numbers are numbers.
    pub fn apply_plugin_flag(
        &mut self,
        name: &str,
        key: &str,
        value: &str,
        base: &Path,
    ) -> Result<()> {
        let value = match key {
            "read_dirs" | "write_dirs" => {
                let (guest, host) = value.split_once('=').ok_or_else(|| {
                    anyhow!("{key} takes GUEST=DIR (the path the plugin sees = a directory here)")
                })?;
                Json::Object(BTreeMap::from([(
                    guest.to_string(),
                    Json::Str(host.into()),
                )]))
            }
            // The limits: memory_mb, deadline_ms, max_open_files, ...
            k if k.ends_with("_mb") || k.ends_with("_ms") || k.ends_with("_files") => {
                match value.parse::<i64>() {
                    Ok(n) => Json::Int(n),
                    Err(_) => Json::Str(value.to_string()),
                }
            }
            _ => Json::Str(value.to_string()),
        };
        let section = Json::Object(BTreeMap::from([(key.to_string(), value)]));
        self.apply_plugin_section(name, &section, base)
    }

    fn apply_plugin_section(&mut self, name: &str, section: &Json, base: &Path) -> Result<()> {
        let table: PluginTable = serde_json::from_value(to_serde(section)).map_err(|e| {
            // serde names the field and lists the known ones.
            anyhow!("{}", e.to_string().replace(" at line 0 column 0", ""))
        })?;
        if table.path.is_some() || table.sha256.is_some() {
            let pin = self.plugin_pins.entry(name.to_string()).or_default();
            if let Some(path) = &table.path {
                pin.path = Some(base.join(path));
            }
            if let Some(hex) = &table.sha256 {
                pin.sha256 = Some(parse_sha256(hex)?);
            }
        }
        let s = self.plugin_settings.entry(name.to_string()).or_default();
        if let Some(mb) = table.memory_mb {
            s.limits.memory_bytes = (positive("memory_mb", mb)? as usize) << 20;
        }
        if let Some(ms) = table.deadline_ms {
            s.limits.deadline = Duration::from_millis(positive("deadline_ms", ms)?);
        }
        if let Some(ms) = table.http_timeout_ms {
            s.limits.http_timeout = Duration::from_millis(positive("http_timeout_ms", ms)?);
        }
        if let Some(n) = table.max_open_files {
            s.limits.max_open_files = positive("max_open_files", n)? as usize;
        }
        if let Some(mb) = table.disk_mb {
            s.limits.disk_bytes = positive("disk_mb", mb)?.saturating_mul(1 << 20);
        }
        if let Some(n) = table.disk_files {
            s.limits.disk_files = positive("disk_files", n)?;
        }
        if let Some(policy) = table.on_error {
            s.on_error = policy.parse::<OnError>()?;
        }
        for (dirs, writable) in [(table.read_dirs, false), (table.write_dirs, true)] {
            for (guest, host) in dirs.unwrap_or_default() {
                s.grants.dirs.push(DirGrant {
                    host: base.join(host),
                    guest,
                    writable,
                });
            }
        }
        s.grants
            .env
            .extend(table.env.map(OneOrMany::into_vec).unwrap_or_default());
        for o in table
            .allow_http
            .map(OneOrMany::into_vec)
            .unwrap_or_default()
        {
            s.grants.http.push(
                crate::sandbox::normalize_origin(&o).map_err(|e| anyhow!("allow_http: {e}"))?,
            );
        }
        if let Some(missing) = table.missing_grant {
            s.skip_if_not_granted = missing == MissingGrant::Skip;
        }
        Ok(())
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

/// A `[plugins.NAME]` table: how the host runs one plugin. Unknown keys
/// are refused, naming the known ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a table of plugin settings")]
struct PluginTable {
    /// The plugin file the table is for; grants need it.
    path: Option<String>,
    /// The sha256 the file's content must have.
    sha256: Option<String>,
    /// Memory cap in MiB.
    #[serde(default, deserialize_with = "whole_number")]
    memory_mb: Option<i64>,
    /// Per-event deadline in milliseconds.
    #[serde(default, deserialize_with = "whole_number")]
    deadline_ms: Option<i64>,
    /// `restart`, `disable` or `abort`.
    on_error: Option<String>,
    /// Guest path = host directory, read-only.
    read_dirs: Option<BTreeMap<String, String>>,
    /// Guest path = host directory, read-write.
    write_dirs: Option<BTreeMap<String, String>>,
    /// Environment variables to pass, by name.
    env: Option<OneOrMany>,
    /// Origins it may send HTTP requests to.
    allow_http: Option<OneOrMany>,
    /// Connect / first byte / between bytes, in milliseconds.
    #[serde(default, deserialize_with = "whole_number")]
    http_timeout_ms: Option<i64>,
    /// Files and directories it may hold open at once.
    #[serde(default, deserialize_with = "whole_number")]
    max_open_files: Option<i64>,
    /// Disk quota in MiB, its directory and writable grants together.
    #[serde(default, deserialize_with = "whole_number")]
    disk_mb: Option<i64>,
    /// Files and directories it may keep there.
    #[serde(default, deserialize_with = "whole_number")]
    disk_files: Option<i64>,
    /// What to do when the plugin asks for what is not granted.
    missing_grant: Option<MissingGrant>,
}

/// A whole number, written as an int or as a float without a fraction
/// (`64` or `64.0`, as JSON writers may); anything else is refused.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Ok(Some(n as i64))
    } else {
        Err(serde::de::Error::custom(format!(
            "expected a whole number, got {n}"
        )))
    }
}

/// A string, or a list of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged, expecting = "a string or a list of strings")]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `missing_grant = "fail" | "skip"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum MissingGrant {
    Fail,
    Skip,
}

/// A config value as serde sees it. A non-finite float becomes the string
/// `"NaN"`/`"inf"`, so that a number field refuses it instead of taking it
/// for "not set".
fn to_serde(v: &Json) -> serde_json::Value {
    use serde_json::Value as V;
    match v {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Int(i) => V::from(*i),
        Json::Float(f) => {
            serde_json::Number::from_f64(*f).map_or_else(|| V::String(f.to_string()), V::Number)
        }
        Json::Str(s) => V::String(s.clone()),
        Json::Array(a) => V::Array(a.iter().map(to_serde).collect()),
        Json::Object(o) => V::Object(o.iter().map(|(k, v)| (k.clone(), to_serde(v))).collect()),
    }
}

/// A plugin setting that must be a positive integer.
fn positive(key: &str, n: i64) -> Result<u64> {
    u64::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("{key} must be a positive integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Result<PluginSettings> {
        let table: toml::Table = toml_text.parse().unwrap();
        let json = toml_to_json(toml::Value::Table(table));
        let mut cfg = RunConfig::default();
        cfg.apply_plugin_section("p", &json, Path::new("/base"))?;
        Ok(cfg.plugin_settings.remove("p").unwrap())
    }

    #[test]
    fn plugin_tables_set_limits_policy_and_grants() {
        let s = section(
            r#"
            memory_mb = 8
            deadline_ms = 250
            on_error = "disable"
            read_dirs = { "/data" = "data" }
            env = "HOME"
            allow_http = ["HTTP://127.0.0.1:5000"]
            missing_grant = "skip"
            "#,
        )
        .unwrap();
        assert_eq!(s.limits.memory_bytes, 8 << 20);
        assert_eq!(s.limits.deadline, Duration::from_millis(250));
        assert_eq!(s.on_error, OnError::Disable);
        assert_eq!(s.grants.dirs[0].host, Path::new("/base/data"));
        assert!(!s.grants.dirs[0].writable);
        assert_eq!(s.grants.env, ["HOME"]);
        assert_eq!(s.grants.http, ["http://127.0.0.1:5000"]);
        assert!(s.skip_if_not_granted);
    }

    #[test]
    fn plugin_tables_set_file_limits() {
        let s = section("max_open_files = 16\ndisk_mb = 8\ndisk_files = 100").unwrap();
        assert_eq!(s.limits.max_open_files, 16);
        assert_eq!(s.limits.disk_bytes, 8 << 20);
        assert_eq!(s.limits.disk_files, 100);
        let err = section("disk_mb = 0").unwrap_err().to_string();
        assert_eq!(err, "disk_mb must be a positive integer");
        let d = section("").unwrap().limits;
        assert_eq!(
            (d.max_open_files, d.disk_bytes, d.disk_files),
            (256, 1 << 30, 10_000)
        );
    }

    #[test]
    fn plugin_tables_refuse_unknown_keys_and_bad_values() {
        let err = section("memry_mb = 8").unwrap_err().to_string();
        assert!(err.contains("unknown field `memry_mb`"), "{err}");
        assert!(err.contains("memory_mb"), "names the known keys: {err}");
        let err = section("deadline_ms = 0").unwrap_err().to_string();
        assert_eq!(err, "deadline_ms must be a positive integer");
        let err = section("memory_mb = \"8\"").unwrap_err().to_string();
        assert!(err.contains("invalid type"), "{err}");
        assert_eq!(
            section("memory_mb = 8.0").unwrap().limits.memory_bytes,
            8 << 20
        );
        let err = section("memory_mb = 8.5").unwrap_err().to_string();
        assert!(err.contains("expected a whole number, got 8.5"), "{err}");
        let err = section("memory_mb = nan").unwrap_err().to_string();
        assert!(err.contains("invalid type"), "NaN is not unset: {err}");
        let err = section("env = 3").unwrap_err().to_string();
        assert!(err.contains("a string or a list of strings"), "{err}");
        let err = section("on_error = \"ignore\"").unwrap_err().to_string();
        assert!(err.contains("restart, disable or abort"), "{err}");
        let err = section("missing_grant = \"maybe\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fail") && err.contains("skip"), "{err}");
    }

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
