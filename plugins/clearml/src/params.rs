//! The `Transformers` hyperparameter section as HF's `ClearMLCallback`
//! writes it (`_copy_training_args_as_hparams`: each `TrainingArguments`
//! field by `getattr`, then `Task._arguments.copy_from_dict`), with clearml
//! 2.1's strings: `str(value)`, `json.dumps` of a list, `""` and no type
//! for `None`, an enum's member name with its type's name and a
//! `Values:` description.

use serde_json::{json, Map, Value};
use trainbox_pyformat::args as hf;
use trainbox_pyformat::{float_repr, json_str};
use trainbox_sdk::{args, TrainingArgs};

/// HF's section name.
pub const SECTION: &str = "Transformers";

/// The extra parameter HF sets beside the arguments, and its description.
const IGNORE_OVERRIDES: (&str, &str) = (
    "_ignore_hparams_ui_overrides_",
    "If True, ignore Transformers hyperparameters overrides done in the UI/backend \
     when running remotely. Otherwise, the overrides will be applied when running remotely",
);

/// The enum-typed fields of `TrainingArguments`: the enum's name and its
/// members `(NAME, value)` in transformers 5.24's order.
fn enum_of(field: &str) -> Option<(&'static str, &'static [(&'static str, &'static str)])> {
    const INTERVAL: &[(&str, &str)] = &[("NO", "no"), ("STEPS", "steps"), ("EPOCH", "epoch")];
    const SAVE: &[(&str, &str)] = &[
        ("NO", "no"),
        ("STEPS", "steps"),
        ("EPOCH", "epoch"),
        ("BEST", "best"),
    ];
    const SCHEDULER: &[(&str, &str)] = &[
        ("LINEAR", "linear"),
        ("COSINE", "cosine"),
        ("COSINE_WITH_RESTARTS", "cosine_with_restarts"),
        ("POLYNOMIAL", "polynomial"),
        ("CONSTANT", "constant"),
        ("CONSTANT_WITH_WARMUP", "constant_with_warmup"),
        ("INVERSE_SQRT", "inverse_sqrt"),
        ("REDUCE_ON_PLATEAU", "reduce_lr_on_plateau"),
        ("COSINE_WITH_MIN_LR", "cosine_with_min_lr"),
        ("COSINE_WARMUP_WITH_MIN_LR", "cosine_warmup_with_min_lr"),
        ("WARMUP_STABLE_DECAY", "warmup_stable_decay"),
        ("GREEDY", "greedy"),
    ];
    match field {
        "eval_strategy" | "logging_strategy" => Some(("IntervalStrategy", INTERVAL)),
        "save_strategy" => Some(("SaveStrategy", SAVE)),
        "lr_scheduler_type" => Some(("SchedulerType", SCHEDULER)),
        _ => None,
    }
}

/// One `ParamsItem`: `value` and `type` as clearml stores them.
fn item(name: &str, value: String, ty: Option<String>, description: String) -> Value {
    let mut m = Map::new();
    m.insert("section".into(), json!(SECTION));
    m.insert("name".into(), json!(name));
    m.insert("value".into(), json!(value));
    if let Some(ty) = ty {
        m.insert("type".into(), json!(ty));
    }
    m.insert("description".into(), json!(description));
    Value::Object(m)
}

/// clearml's `stringify` and `get_basic_type` of a plain value.
fn stringify(v: &Value) -> (String, Option<String>) {
    match v {
        Value::Null => (String::new(), None),
        Value::Bool(b) => (
            (if *b { "True" } else { "False" }).into(),
            Some("bool".into()),
        ),
        Value::Number(n) if n.is_f64() => {
            (float_repr(n.as_f64().unwrap_or(0.0)), Some("float".into()))
        }
        Value::Number(n) => (n.to_string(), Some("int".into())),
        Value::String(s) => (s.clone(), Some("str".into())),
        Value::Array(items) => {
            let text: Vec<String> = items
                .iter()
                .map(|i| match i {
                    Value::String(s) => json_str(s),
                    other => other.to_string(),
                })
                .collect();
            let ty = match items.first() {
                Some(Value::String(_)) if items.iter().all(Value::is_string) => "list/str",
                _ => "list",
            };
            (format!("[{}]", text.join(", ")), Some(ty.into()))
        }
        Value::Object(_) => (v.to_string(), Some("dict".into())),
    }
}

/// The `Transformers` section: the arguments HF has (not trainbox's own
/// ones, nor `*_token`), then HF's `_ignore_hparams_ui_overrides_`.
pub fn section(a: &TrainingArgs) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in args::to_json(a) {
        let in_hf = hf::TRAINING_ARGS.iter().any(|f| f.name == name && f.in_hf);
        if !in_hf || name.ends_with("_token") {
            continue;
        }
        // `warmup_steps` and `eval_delay` default to the int 0 in HF.
        let value = match (hf::INT_DEFAULTS_OF_FLOATS.contains(&name.as_str()), &value) {
            (true, Value::Number(n))
                if n.as_f64() == hf::default_of(&name).and_then(|d| d.to_json().as_f64()) =>
            {
                hf::default_of(&name)
                    .and_then(|d| d.to_json().as_i64())
                    .map_or(value, |i| json!(i))
            }
            _ => value,
        };
        let entry = match (enum_of(&name), value.as_str()) {
            (Some((ty, members)), Some(v)) => match members.iter().find(|(_, val)| *val == v) {
                Some((member, _)) => {
                    let names: Vec<&str> = members.iter().map(|(n, _)| *n).collect();
                    let description = format!("Values:\n{}", names.join(",\n"));
                    item(&name, (*member).into(), Some(ty.into()), description)
                }
                None => {
                    let (text, ty) = stringify(&value);
                    item(&name, text, ty, String::new())
                }
            },
            _ => {
                let (text, ty) = stringify(&value);
                item(&name, text, ty, String::new())
            }
        };
        out.insert(name, entry);
    }
    let (name, description) = IGNORE_OVERRIDES;
    out.insert(
        name.into(),
        item(name, "True".into(), Some("bool".into()), description.into()),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_clearmls_strings() {
        assert_eq!(stringify(&json!(null)), (String::new(), None));
        assert_eq!(stringify(&json!(5e-05)).0, "5e-05");
        assert_eq!(stringify(&json!(3.0)).0, "3.0");
        assert_eq!(
            stringify(&json!(["a", "b"])),
            ("[\"a\", \"b\"]".into(), Some("list/str".into()))
        );
        assert_eq!(stringify(&json!([])), ("[]".into(), Some("list".into())));
    }
}
