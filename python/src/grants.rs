//! `PluginCallback`'s `grants=`: what each plugin may reach, as the run
//! config's `[plugins.NAME]` grants.

use crate::{err, invalid, parse};
use pyo3::PyResult;
use std::collections::BTreeMap;
use std::path::Path;
use trainbox_sandbox::pyjson::Json;
use trainbox_sandbox::sandbox::{DirGrant, Grants};

/// The grants of `text` by plugin name.
pub fn from_json(text: &str) -> PyResult<BTreeMap<String, Grants>> {
    grants_of(&parse(text, "grants")?)
}

/// `{"name": {"env": [...], "http": [...], "dirs": [{"host", "guest",
/// "writable"}]}}` as the grants of each plugin name.
fn grants_of(j: &Json) -> PyResult<BTreeMap<String, Grants>> {
    let mut out = BTreeMap::new();
    let Some(o) = j.as_object() else {
        return Ok(out);
    };
    let strings = |v: Option<&Json>| -> Vec<String> {
        v.and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for (name, g) in o {
        let mut grants = Grants {
            env: strings(g.as_object().and_then(|g| g.get("env"))),
            http: strings(g.as_object().and_then(|g| g.get("http"))),
            ..Grants::default()
        };
        for d in g
            .as_object()
            .and_then(|g| g.get("dirs"))
            .and_then(Json::as_array)
            .unwrap_or_default()
        {
            let d = d
                .as_object()
                .ok_or_else(|| invalid(format!("grants.{name}.dirs: expected objects")))?;
            let host = d
                .get("host")
                .and_then(Json::as_str)
                .ok_or_else(|| invalid(format!("grants.{name}.dirs: each needs a host path")))?;
            let host = Path::new(host)
                .canonicalize()
                .map_err(|e| err(format!("grants.{name}: {host}: {e}")))?;
            grants.dirs.push(DirGrant {
                guest: d
                    .get("guest")
                    .and_then(Json::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| host.display().to_string()),
                writable: d.get("writable").and_then(Json::as_bool).unwrap_or(false),
                host,
            });
        }
        out.insert(name.clone(), grants);
    }
    Ok(out)
}
