//! A `[plugins.NAME]` table of the run config, and its keys given one at a
//! time on the command line (`--plugin_grant NAME.KEY=VALUE`): limits,
//! `on_error`, grants and the file they are for. Relative paths are
//! resolved against `base`: the config file's folder for a file, the
//! current directory for a flag.

use super::config::{parse_sha256, RunConfig};
use crate::pyjson::Json;
use crate::sandbox::{DirGrant, OnError};
use anyhow::{anyhow, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

impl RunConfig {
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

    /// Applies a `[plugins.NAME]` table; relative paths are relative to `base`.
    pub(super) fn apply_plugin_section(
        &mut self,
        name: &str,
        section: &Json,
        base: &Path,
    ) -> Result<()> {
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
    use super::super::config::toml_to_json;
    use super::*;
    use crate::sandbox::PluginSettings;

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
}
