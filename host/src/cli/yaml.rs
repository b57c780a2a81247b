//! YAML config files, as `HfArgumentParser.parse_yaml_file` reads them
//! (PyYAML's `safe_load`), turned into the JSON values the config reader
//! takes. PyYAML follows YAML 1.1, where a plain `yes`, `no`, `on` or `off`
//! is a boolean; they are read as booleans here too (quoted or not, which
//! the YAML reader cannot tell apart).

use crate::pyjson::Json;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::{Yaml, YamlLoader};

/// Reads the YAML document `text` (of the file `path`, for errors).
pub fn parse(text: &str, path: &Path) -> Result<Json> {
    let docs = YamlLoader::load_from_str(text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    match docs.len() {
        0 => Ok(Json::Object(BTreeMap::new())),
        1 => to_json(&docs[0], path),
        n => bail!(
            "{}: holds {n} YAML documents; a config file is one mapping of settings",
            path.display()
        ),
    }
}

fn to_json(y: &Yaml, path: &Path) -> Result<Json> {
    Ok(match y {
        Yaml::Null => Json::Null,
        Yaml::Boolean(b) => Json::Bool(*b),
        Yaml::Integer(i) => Json::Int(*i),
        Yaml::Real(_) => Json::Float(
            y.as_f64()
                .ok_or_else(|| anyhow!("{}: {y:?} is not a number", path.display()))?,
        ),
        Yaml::String(s) => match s.as_str() {
            "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Json::Bool(true),
            "no" | "No" | "NO" | "off" | "Off" | "OFF" => Json::Bool(false),
            _ => Json::Str(s.clone()),
        },
        Yaml::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| to_json(v, path))
                .collect::<Result<_>>()?,
        ),
        Yaml::Hash(map) => {
            let mut out = BTreeMap::new();
            for (k, v) in map {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    other => bail!("{}: a key must be a name, got {other:?}", path.display()),
                };
                out.insert(key, to_json(v, path)?);
            }
            Json::Object(out)
        }
        Yaml::Alias(_) | Yaml::BadValue => {
            bail!("{}: YAML aliases are not supported", path.display())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_reads_as_pyyaml_safe_load() {
        let json = parse(
            "learning_rate: 5.0e-5\nlogging_steps: 10\npush_to_hub: no\nreport_to: [tensorboard]\nrun_name: ~\noutput_dir: out\n",
            Path::new("a.yaml"),
        )
        .unwrap();
        let o = json.as_object().unwrap();
        assert_eq!(o["learning_rate"], Json::Float(5e-5));
        assert_eq!(o["logging_steps"], Json::Int(10));
        assert_eq!(o["push_to_hub"], Json::Bool(false));
        assert_eq!(
            o["report_to"],
            Json::Array(vec![Json::Str("tensorboard".into())])
        );
        assert_eq!(o["run_name"], Json::Null);
        assert_eq!(o["output_dir"], Json::Str("out".into()));
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let err = parse("a: [1, 2\n", Path::new("cfg.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("cfg.yaml: "), "{err}");
        let err = parse("a: 1\n---\nb: 2\n", Path::new("cfg.yaml")).unwrap_err();
        assert!(err.to_string().contains("2 YAML documents"), "{err}");
    }
}
