//! YAML config files, as `HfArgumentParser.parse_yaml_file` reads them
//! (PyYAML's `safe_load`), turned into the JSON values the config reader
//! takes. PyYAML follows YAML 1.1: a plain (unquoted) `yes`, `no`, `on` or
//! `off` is a boolean and `~` is null, while a quoted `'no'` stays a
//! string; scalars are resolved here by the same rule, from the parser's
//! events (which keep the quoting).

use crate::pyjson::Json;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Reads the YAML document `text` (of the file `path`, for errors).
pub fn parse(text: &str, path: &Path) -> Result<Json> {
    let mut builder = Builder::default();
    Parser::new_from_str(text)
        .load(&mut builder, true)
        .map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if let Some(why) = builder.error {
        bail!("{}: {why}", path.display());
    }
    match builder.docs.len() {
        0 => Ok(Json::Object(BTreeMap::new())),
        1 => Ok(builder.docs.pop().unwrap_or(Json::Null)),
        n => bail!(
            "{}: holds {n} YAML documents; a config file is one mapping of settings",
            path.display()
        ),
    }
}

/// A sequence or mapping being read; a mapping holds its pending key.
enum Open {
    Seq(Vec<Json>),
    Map(BTreeMap<String, Json>, Option<String>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    docs: Vec<Json>,
    error: Option<String>,
}

impl Builder {
    fn push_value(&mut self, value: Json, line: usize) {
        match self.stack.last_mut() {
            None => self.docs.push(value),
            Some(Open::Seq(items)) => items.push(value),
            Some(Open::Map(map, key)) => match key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => match value {
                    Json::Str(s) => *key = Some(s),
                    Json::Int(i) => *key = Some(i.to_string()),
                    Json::Bool(b) => *key = Some(if b { "True" } else { "False" }.into()),
                    _ => {
                        self.error
                            .get_or_insert(format!("line {line}: a key must be a name"));
                        *key = Some(String::new());
                    }
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let line = mark.line();
        match ev {
            Event::Scalar(text, style, _, _) => {
                let value = if style == TScalarStyle::Plain {
                    plain(&text)
                } else {
                    Json::Str(text)
                };
                self.push_value(value, line);
            }
            Event::SequenceStart(..) => self.stack.push(Open::Seq(Vec::new())),
            Event::MappingStart(..) => self.stack.push(Open::Map(BTreeMap::new(), None)),
            Event::SequenceEnd | Event::MappingEnd => {
                let value = match self.stack.pop() {
                    Some(Open::Seq(items)) => Json::Array(items),
                    Some(Open::Map(map, _)) => Json::Object(map),
                    None => return,
                };
                self.push_value(value, line);
            }
            Event::Alias(_) => {
                self.error
                    .get_or_insert(format!("line {line}: YAML aliases are not supported"));
            }
            _ => {}
        }
    }
}

/// A plain scalar as PyYAML's `SafeLoader` resolves it.
fn plain(text: &str) -> Json {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Json::Null,
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Json::Bool(true)
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Json::Bool(false)
        }
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Json::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Json::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Json::Float(f64::NAN),
        _ => {}
    }
    let digits = text.replace('_', "");
    if let Ok(i) = digits.parse::<i64>() {
        return Json::Int(i);
    }
    // PyYAML 1.1 floats have a dot (`5.0e-5`; a bare `5e-5` is a string
    // there, which HF's float fields then parse; reading it as a number
    // here gives the same value).
    if digits.bytes().any(|b| b.is_ascii_digit()) {
        if let Ok(f) = digits.parse::<f64>() {
            return Json::Float(f);
        }
    }
    Json::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_reads_as_pyyaml_safe_load() {
        let json = parse(
            "learning_rate: 5.0e-5\nlogging_steps: 10\npush_to_hub: no\nsave_strategy: 'no'\nreport_to: [tensorboard]\nrun_name: ~\noutput_dir: out\nlr_scheduler_kwargs:\n  num_cycles: 2\n",
            Path::new("a.yaml"),
        )
        .unwrap();
        let o = json.as_object().unwrap();
        assert_eq!(o["learning_rate"], Json::Float(5e-5));
        assert_eq!(o["logging_steps"], Json::Int(10));
        assert_eq!(o["push_to_hub"], Json::Bool(false));
        assert_eq!(o["save_strategy"], Json::Str("no".into()));
        assert_eq!(
            o["report_to"],
            Json::Array(vec![Json::Str("tensorboard".into())])
        );
        assert_eq!(o["run_name"], Json::Null);
        assert_eq!(o["output_dir"], Json::Str("out".into()));
        assert_eq!(
            o["lr_scheduler_kwargs"].as_object().unwrap()["num_cycles"],
            Json::Int(2)
        );
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let err = parse("a: [1, 2\n", Path::new("cfg.yaml")).unwrap_err();
        assert!(err.to_string().starts_with("cfg.yaml: "), "{err}");
        let err = parse("a: 1\n---\nb: 2\n", Path::new("cfg.yaml")).unwrap_err();
        assert!(err.to_string().contains("2 YAML documents"), "{err}");
        let err = parse("a: &x 1\nb: *x\n", Path::new("cfg.yaml")).unwrap_err();
        assert!(err.to_string().contains("aliases"), "{err}");
    }
}
