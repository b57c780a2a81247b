//! The run's params, as HF's `MLflowCallback.setup` makes them:
//! `args.to_dict()`, flattened when `MLFLOW_FLATTEN_PARAMS` is set, each
//! value as `str(value)`, values longer than mlflow's `MAX_PARAM_VAL_LENGTH`
//! dropped with a warning, and at most `MLFLOW_MAX_LOG_PARAMS` of them.

use crate::pyrepr::py_str;
use serde_json::{Map, Value};

/// mlflow's `MAX_PARAM_VAL_LENGTH` (mlflow.utils.validation, 3.17).
pub const MAX_PARAM_VAL_LENGTH: usize = 6000;

/// The params to log and a warning for each one dropped.
pub fn params(
    dict: &Map<String, Value>,
    flatten: bool,
    max_log_params: Option<usize>,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut items = Vec::new();
    if flatten {
        flatten_into(&mut items, "", dict);
    } else {
        items.extend(dict.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let mut warnings = Vec::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for (key, value) in items {
        let text = py_str(&value);
        let len = text.chars().count();
        if len > MAX_PARAM_VAL_LENGTH {
            warnings.push(format!(
                "param {key:?} is {len} characters long; MLflow keeps at most {MAX_PARAM_VAL_LENGTH}, so it is not logged"
            ));
        } else {
            out.push((key, text));
        }
    }
    if let Some(max) = max_log_params {
        out.truncate(max);
    }
    (out, warnings)
}

/// HF's `flatten_dict(d, delimiter=".")`: nested objects become `a.b` keys.
fn flatten_into(out: &mut Vec<(String, Value)>, prefix: &str, dict: &Map<String, Value>) {
    for (k, v) in dict {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            // HF's `if v and isinstance(v, MutableMapping)`: an empty dict stays.
            Value::Object(inner) if !inner.is_empty() => flatten_into(out, &key, inner),
            other => out.push((key, other.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dict(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_python_strings() {
        let d = dict(json!({
            "learning_rate": 5e-05, "num_train_epochs": 3.0, "max_steps": -1,
            "run_name": null, "report_to": ["mlflow"], "disable_tqdm": true, "output_dir": "out"
        }));
        let (p, w) = params(&d, false, None);
        assert!(w.is_empty());
        let get = |k: &str| p.iter().find(|(key, _)| key == k).unwrap().1.as_str();
        assert_eq!(get("learning_rate"), "5e-05");
        assert_eq!(get("num_train_epochs"), "3.0");
        assert_eq!(get("max_steps"), "-1");
        assert_eq!(get("run_name"), "None");
        assert_eq!(get("report_to"), "['mlflow']");
        assert_eq!(get("disable_tqdm"), "True");
        assert_eq!(get("output_dir"), "out");
    }

    #[test]
    fn too_long_values_are_dropped_with_a_warning() {
        let d = dict(json!({"ok": "x".repeat(6000), "long": "x".repeat(6001)}));
        let (p, w) = params(&d, false, None);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "ok");
        assert!(w[0].contains("\"long\" is 6001 characters"), "{w:?}");
    }

    #[test]
    fn max_log_params_keeps_the_first() {
        let d = dict(json!({"a": 1, "b": 2, "c": 3}));
        let (p, _) = params(&d, false, Some(2));
        assert_eq!(p, [("a".into(), "1".into()), ("b".into(), "2".into())]);
    }

    #[test]
    fn flatten_joins_nested_keys_with_dots() {
        let d = dict(json!({"a": {"b": {"c": 1}, "d": 2}, "e": 3}));
        let (p, _) = params(&d, true, None);
        let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a.b.c", "a.d", "e"]);
        let (p, _) = params(&dict(json!({"kw": {}, "n": {"x": {}}})), true, None);
        assert_eq!(p, [("kw".into(), "{}".into()), ("n.x".into(), "{}".into())]);
        let (p, _) = params(&d, false, None);
        assert_eq!(p[0], ("a".into(), "{'b': {'c': 1}, 'd': 2}".into()));
    }
}
