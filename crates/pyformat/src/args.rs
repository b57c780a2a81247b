//! Hugging Face's `TrainingArguments.to_dict()` for the fields trainbox
//! keeps: their names, in the order of the WIT record `training-args`, and
//! the value a default `TrainingArguments()` holds after `__post_init__`
//! (checked against transformers itself by `tests/spec/training_args.rs`).
//!
//! The one list both sides follow. The host's `TrainingArguments` and its
//! `to_json`, the WIT record and the SDK's `args::to_json` and default
//! arguments are each checked against [`TRAINING_ARGS`] by a test, so a field
//! added to one side and not to the others fails the build's tests.

use crate::Json;

/// A constant Python value: what [`TRAINING_ARGS`] holds as defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lit {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'static str),
    /// A list of strings.
    List(&'static [&'static str]),
}

impl Lit {
    /// The value as a [`Json`].
    pub fn to_json(self) -> Json {
        match self {
            Lit::None => Json::Null,
            Lit::Bool(b) => Json::Bool(b),
            Lit::Int(i) => Json::Int(i),
            Lit::Float(f) => Json::Float(f),
            Lit::Str(s) => Json::Str(s.into()),
            Lit::List(items) => Json::Array(items.iter().map(|s| Json::Str((*s).into())).collect()),
        }
    }
}

/// One field of `TrainingArguments`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field {
    /// HF's name, also the host's flag (`--logging_steps`) and, in
    /// kebab-case, the WIT record's field.
    pub name: &'static str,
    /// `TrainingArguments().to_dict()[name]` in transformers 5.24, with
    /// `report_to` normalised as HF does for `"none"` (to `[]`).
    pub default: Lit,
    /// Whether plugins receive it (a field of the WIT record `training-args`).
    pub in_wit: bool,
    /// Whether transformers 5.24 has it (`warmup_ratio`, gone from HF in
    /// v5, is trainbox's own; its default is trainbox's).
    pub in_hf: bool,
}

impl Field {
    /// Whether `value` is this field's default as trainbox writes it: the
    /// table's value, exactly (an int is not a float), except that a float
    /// equal to the int default of an [`INT_DEFAULTS_OF_FLOATS`] field counts.
    pub fn is_default(&self, value: &Json) -> bool {
        let want = self.default.to_json();
        *value == want
            || (INT_DEFAULTS_OF_FLOATS.contains(&self.name)
                && matches!(value, Json::Float(_))
                && value.as_f64() == want.as_f64())
    }
}

/// A field of HF's that plugins receive.
const fn field(name: &'static str, default: Lit) -> Field {
    Field {
        name,
        default,
        in_wit: true,
        in_hf: true,
    }
}

/// The fields of `TrainingArguments` that trainbox keeps, in the WIT record's
/// order, then those the host keeps to itself.
pub const TRAINING_ARGS: &[Field] = &[
    field("output_dir", Lit::Str("trainer_output")),
    field("num_train_epochs", Lit::Float(3.0)),
    field("max_steps", Lit::Int(-1)),
    field("per_device_train_batch_size", Lit::Int(8)),
    field("per_device_eval_batch_size", Lit::Int(8)),
    field("gradient_accumulation_steps", Lit::Int(1)),
    field("learning_rate", Lit::Float(5e-5)),
    field("weight_decay", Lit::Float(0.0)),
    field("adam_beta1", Lit::Float(0.9)),
    field("adam_beta2", Lit::Float(0.999)),
    field("adam_epsilon", Lit::Float(1e-8)),
    field("max_grad_norm", Lit::Float(1.0)),
    field("lr_scheduler_type", Lit::Str("linear")),
    field("warmup_steps", Lit::Int(0)),
    Field {
        name: "warmup_ratio",
        default: Lit::Float(0.0),
        in_wit: true,
        in_hf: false,
    },
    field("logging_strategy", Lit::Str("steps")),
    field("logging_steps", Lit::Int(500)),
    field("logging_first_step", Lit::Bool(false)),
    field("logging_nan_inf_filter", Lit::Bool(true)),
    field("eval_strategy", Lit::Str("no")),
    field("eval_steps", Lit::None),
    field("eval_delay", Lit::Int(0)),
    field("eval_on_start", Lit::Bool(false)),
    field("save_strategy", Lit::Str("steps")),
    field("save_steps", Lit::Int(500)),
    field("save_total_limit", Lit::None),
    field("load_best_model_at_end", Lit::Bool(false)),
    field("metric_for_best_model", Lit::None),
    field("greater_is_better", Lit::None),
    field("seed", Lit::Int(42)),
    field("disable_tqdm", Lit::Bool(false)),
    field("report_to", Lit::List(&[])),
    field("run_name", Lit::None),
    field("dataloader_drop_last", Lit::Bool(false)),
    field("restore_callback_states_from_checkpoint", Lit::Bool(false)),
    Field {
        name: "resume_from_checkpoint",
        default: Lit::None,
        in_wit: false,
        in_hf: true,
    },
    Field {
        name: "enable_jit_checkpoint",
        default: Lit::Bool(false),
        in_wit: false,
        in_hf: true,
    },
    host_field("do_train", Lit::Bool(false)),
    host_field("do_eval", Lit::Bool(false)),
    host_field("do_predict", Lit::Bool(false)),
    host_field("label_names", Lit::None),
    host_field("remove_unused_columns", Lit::Bool(true)),
    host_field("ddp_backend", Lit::None),
    host_field("ddp_timeout", Lit::Int(1800)),
    host_field("use_cpu", Lit::Bool(false)),
    host_field("bf16", Lit::Bool(false)),
    host_field("fp16", Lit::Bool(false)),
    host_field("tf32", Lit::None),
    host_field("lr_scheduler_kwargs", Lit::None),
    host_field("optim", Lit::Str("adamw_torch_fused")),
    host_field("optim_args", Lit::None),
    host_field("label_smoothing_factor", Lit::Float(0.0)),
    host_field("eval_accumulation_steps", Lit::None),
    host_field("save_only_model", Lit::Bool(false)),
    host_field("dataloader_num_workers", Lit::Int(0)),
    host_field("dataloader_prefetch_factor", Lit::None),
    host_field("include_num_input_tokens_seen", Lit::Str("no")),
    host_field("data_seed", Lit::None),
    host_field("full_determinism", Lit::Bool(false)),
    host_field("torch_empty_cache_steps", Lit::None),
    host_field("average_tokens_across_devices", Lit::Bool(true)),
    host_field("project", Lit::Str("huggingface")),
    host_field("prediction_loss_only", Lit::Bool(false)),
    // Gone from transformers 5.24 (TensorBoard reads TENSORBOARD_LOGGING_DIR);
    // kept by trainbox as HF 4's flag for where TensorBoard writes.
    Field {
        name: "logging_dir",
        default: Lit::None,
        in_wit: false,
        in_hf: false,
    },
];

/// A field of HF's that the host keeps to itself (plugins do not receive it).
const fn host_field(name: &'static str, default: Lit) -> Field {
    Field {
        name,
        default,
        in_wit: false,
        in_hf: true,
    }
}

/// The fields whose value HF's `__post_init__` turns into an int when it is
/// a whole number above 1 (`logging_steps=5.0` is written `5`; a ratio such
/// as `0.25` stays a float).
pub const INTERVALS: [&str; 3] = ["logging_steps", "eval_steps", "save_steps"];

/// Float fields whose HF default is the int `0` (`warmup_steps: float = 0`):
/// `to_dict()` of a default `TrainingArguments()` holds `0`, while trainbox
/// writes the float `0.0`, as HF itself does for a value given on the
/// command line (argparse's `type=float`). Comparisons with the table take
/// the two as equal for these fields only.
pub const INT_DEFAULTS_OF_FLOATS: [&str; 2] = ["warmup_steps", "eval_delay"];

/// The strategy field that governs an interval (`logging_steps` ->
/// `logging_strategy`).
pub fn strategy_of(interval: &str) -> &'static str {
    match interval {
        "logging_steps" => "logging_strategy",
        "eval_steps" => "eval_strategy",
        _ => "save_strategy",
    }
}

/// HF's int default of `logging_steps` and `save_steps`.
pub const DEFAULT_INTERVAL: f64 = 500.0;

/// An interval as `to_dict()` holds it, after HF's `__post_init__` cast:
/// `Some(int)` for a whole number above 1 when the interval's own strategy
/// is `steps`, or when it is HF's int default 500 (`logging_steps`,
/// `save_steps`; an explicit 500 cannot be told from it); `None` when it
/// stays a float (`--logging_strategy epoch --logging_steps 5` keeps `5.0`).
pub fn interval_as_int(interval: &str, strategy_is_steps: bool, v: f64) -> Option<i64> {
    let whole = v > 1.0 && v.fract() == 0.0;
    let hf_default = interval != "eval_steps" && v == DEFAULT_INTERVAL;
    (whole && (strategy_is_steps || hf_default)).then_some(v as i64)
}

/// The default of the field `name`.
pub fn default_of(name: &str) -> Option<Lit> {
    TRAINING_ARGS
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_the_wit_records_fields_in_order() {
        let wit =
            crate::wit::record_fields(include_str!("../../../wit/callback.wit"), "training-args");
        let ours: Vec<String> = TRAINING_ARGS
            .iter()
            .filter(|f| f.in_wit)
            .map(|f| f.name.replace('_', "-"))
            .collect();
        assert_eq!(
            ours, wit,
            "TRAINING_ARGS and the WIT record `training-args` (wit/callback.wit) differ"
        );
    }

    #[test]
    fn defaults_compare_exactly_but_for_int_defaults_of_floats() {
        let field = |name| TRAINING_ARGS.iter().find(|f| f.name == name).unwrap();
        assert!(field("warmup_steps").is_default(&Json::Float(0.0)));
        assert!(field("warmup_steps").is_default(&Json::Int(0)));
        assert!(!field("warmup_steps").is_default(&Json::Float(0.5)));
        assert!(field("logging_steps").is_default(&Json::Int(500)));
        assert!(!field("logging_steps").is_default(&Json::Float(500.0)));
        for name in INT_DEFAULTS_OF_FLOATS {
            assert!(matches!(field(name).default, Lit::Int(_)), "{name}");
        }
    }

    #[test]
    fn intervals_become_ints_only_when_whole_and_above_one() {
        assert_eq!(interval_as_int("logging_steps", true, 500.0), Some(500));
        assert_eq!(interval_as_int("logging_steps", true, 5.0), Some(5));
        assert_eq!(interval_as_int("logging_steps", false, 5.0), None);
        assert_eq!(interval_as_int("save_steps", false, 500.0), Some(500));
        assert_eq!(interval_as_int("eval_steps", false, 500.0), None);
        assert_eq!(interval_as_int("eval_steps", true, 1.0), None);
        assert_eq!(interval_as_int("save_steps", true, 0.25), None);
        assert_eq!(interval_as_int("save_steps", true, 2.5), None);
        assert_eq!(strategy_of("eval_steps"), "eval_strategy");
        for name in INTERVALS {
            assert!(default_of(name).is_some(), "{name} is a field");
        }
    }
}
