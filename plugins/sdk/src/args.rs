//! The training arguments as Hugging Face's `TrainingArguments.to_dict()`
//! would give them: HF's names, strategies as strings, unset values as null.
//! What loggers record as the run's parameters or config.
//!
//! The fields are listed once, in `training_args!` below: the list makes
//! [`to_json`] and the arguments of a plugin driven without `configure`
//! (HF's defaults, from `trainbox_pyformat::args::TRAINING_ARGS`). The
//! generated `TrainingArgs` must have exactly these fields or the default
//! arguments do not compile; the tests check the names against the WIT
//! record and the shared table.

use crate::{IntervalStrategy, SaveStrategy, TrainingArgs};
use serde_json::{json, Map, Value};
use trainbox_pyformat::args::{self as hf, Lit};

/// A field type of [`TrainingArgs`]: how `to_dict()` writes it, and how it is
/// read from the shared table's default.
trait Field: Sized {
    fn to_dict(&self) -> Value;
    fn from_lit(lit: Lit) -> Option<Self>;
}

impl Field for String {
    fn to_dict(&self) -> Value {
        json!(self)
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::Str(s) => Some(s.into()),
            _ => None,
        }
    }
}

impl Field for f64 {
    fn to_dict(&self) -> Value {
        json!(self)
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::Float(f) => Some(f),
            Lit::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}

macro_rules! int_field {
    ($($ty:ty),*) => {$(
        impl Field for $ty {
            fn to_dict(&self) -> Value {
                json!(self)
            }
            fn from_lit(lit: Lit) -> Option<Self> {
                match lit {
                    Lit::Int(i) => i.try_into().ok(),
                    _ => None,
                }
            }
        }
    )*};
}
int_field!(i64, u64, u32);

impl Field for bool {
    fn to_dict(&self) -> Value {
        json!(self)
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl<T: Field> Field for Option<T> {
    fn to_dict(&self) -> Value {
        self.as_ref().map_or(Value::Null, T::to_dict)
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::None => Some(None),
            lit => T::from_lit(lit).map(Some),
        }
    }
}

impl Field for Vec<String> {
    fn to_dict(&self) -> Value {
        json!(self)
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::List(items) => Some(items.iter().map(|s| s.to_string()).collect()),
            _ => None,
        }
    }
}

impl Field for IntervalStrategy {
    fn to_dict(&self) -> Value {
        json!(match self {
            IntervalStrategy::No => "no",
            IntervalStrategy::Steps => "steps",
            IntervalStrategy::Epoch => "epoch",
        })
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::Str("no") => Some(IntervalStrategy::No),
            Lit::Str("steps") => Some(IntervalStrategy::Steps),
            Lit::Str("epoch") => Some(IntervalStrategy::Epoch),
            _ => None,
        }
    }
}

impl Field for SaveStrategy {
    fn to_dict(&self) -> Value {
        json!(match self {
            SaveStrategy::No => "no",
            SaveStrategy::Steps => "steps",
            SaveStrategy::Epoch => "epoch",
            SaveStrategy::Best => "best",
        })
    }
    fn from_lit(lit: Lit) -> Option<Self> {
        match lit {
            Lit::Str("no") => Some(SaveStrategy::No),
            Lit::Str("steps") => Some(SaveStrategy::Steps),
            Lit::Str("epoch") => Some(SaveStrategy::Epoch),
            Lit::Str("best") => Some(SaveStrategy::Best),
            _ => None,
        }
    }
}

/// HF's default of the field `name`, as the field's type.
///
/// # Panics
///
/// When the shared table lacks the field or holds a value of another type
/// (`defaults_are_hfs` checks every field).
fn hf_default<T: Field>(name: &str) -> T {
    hf::default_of(name)
        .and_then(T::from_lit)
        .unwrap_or_else(|| panic!("TRAINING_ARGS has no default of `{name}` for its type"))
}

macro_rules! training_args {
    ($($name:ident),* $(,)?) => {
        /// The arguments as a JSON object, keys in HF's names (sorted), the
        /// intervals above 1 as ints, as HF's `__post_init__` casts them.
        pub fn to_json(a: &TrainingArgs) -> Map<String, Value> {
            let mut map = Map::new();
            $( map.insert(stringify!($name).into(), Field::to_dict(&a.$name)); )*
            for key in hf::INTERVALS {
                let steps = map.get(hf::strategy_of(key)).and_then(Value::as_str) == Some("steps");
                if let Some(v) = map.get_mut(key) {
                    if let Some(i) = v.as_f64().and_then(|f| hf::interval_as_int(key, steps, f)) {
                        *v = json!(i);
                    }
                }
            }
            map
        }

        /// HF's defaults: the arguments of a plugin driven without
        /// `configure` (never by the host).
        pub(crate) fn defaults() -> TrainingArgs {
            TrainingArgs { $( $name: hf_default(stringify!($name)), )* }
        }
    };
}

training_args!(
    output_dir,
    num_train_epochs,
    max_steps,
    per_device_train_batch_size,
    per_device_eval_batch_size,
    gradient_accumulation_steps,
    learning_rate,
    weight_decay,
    adam_beta1,
    adam_beta2,
    adam_epsilon,
    max_grad_norm,
    lr_scheduler_type,
    warmup_steps,
    warmup_ratio,
    logging_strategy,
    logging_steps,
    logging_first_step,
    logging_nan_inf_filter,
    eval_strategy,
    eval_steps,
    eval_delay,
    eval_on_start,
    save_strategy,
    save_steps,
    save_total_limit,
    load_best_model_at_end,
    metric_for_best_model,
    greater_is_better,
    seed,
    disable_tqdm,
    report_to,
    run_name,
    dataloader_drop_last,
    restore_callback_states_from_checkpoint,
);

/// HF's `rewrite_logs`: `eval_x` → `eval/x`, `test_x` → `test/x`, anything
/// else → `train/<key>` (used by TensorBoard, W&B and others).
pub fn rewrite_key(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("eval_") {
        format!("eval/{rest}")
    } else if let Some(rest) = key.strip_prefix("test_") {
        format!("test/{rest}")
    } else {
        format!("train/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trainbox_pyformat::Json;

    /// serde_json's value as the shared crate's, to compare with the table.
    fn as_json(v: &Value) -> Json {
        match v {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Number(n) => n
                .as_i64()
                .map_or_else(|| Json::Float(n.as_f64().unwrap()), Json::Int),
            Value::String(s) => Json::Str(s.clone()),
            Value::Array(a) => Json::Array(a.iter().map(as_json).collect()),
            Value::Object(o) => {
                Json::Object(o.iter().map(|(k, v)| (k.clone(), as_json(v))).collect())
            }
        }
    }

    #[test]
    fn to_json_has_the_wit_records_fields() {
        let wit = trainbox_pyformat::wit::record_fields(
            include_str!("../../../wit/callback.wit"),
            "training-args",
        );
        let mut wit: Vec<String> = wit.iter().map(|f| f.replace('-', "_")).collect();
        wit.sort_unstable();
        let ours: Vec<String> = to_json(&defaults()).keys().cloned().collect();
        assert_eq!(
            ours, wit,
            "args::to_json and the WIT record `training-args` (wit/callback.wit) differ"
        );
    }

    #[test]
    fn defaults_are_hfs() {
        let ours = to_json(&defaults());
        let table: Vec<_> = hf::TRAINING_ARGS.iter().filter(|f| f.in_wit).collect();
        assert_eq!(ours.len(), table.len(), "fields sent to plugins");
        for field in table {
            let value = as_json(&ours[field.name]);
            assert!(
                field.is_default(&value),
                "default of {}: ours {value:?}, the table's {:?}",
                field.name,
                field.default
            );
        }
    }

    #[test]
    fn intervals_are_ints_above_one() {
        let mut a = defaults();
        a.logging_steps = 5.0;
        a.eval_steps = Some(0.25);
        a.save_steps = 1.0;
        let m = to_json(&a);
        assert_eq!(
            (&m["logging_steps"], &m["eval_steps"]),
            (&json!(5), &json!(0.25))
        );
        assert_eq!(m["save_steps"], json!(1.0));
    }

    #[test]
    fn rewrite_logs_follows_hf() {
        assert_eq!(rewrite_key("loss"), "train/loss");
        assert_eq!(rewrite_key("eval_loss"), "eval/loss");
        assert_eq!(rewrite_key("test_accuracy"), "test/accuracy");
        assert_eq!(rewrite_key("train_runtime"), "train/train_runtime");
        assert_eq!(rewrite_key("epoch"), "train/epoch");
    }
}
