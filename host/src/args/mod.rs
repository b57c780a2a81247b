//! `TrainingArguments`: Hugging Face's names, defaults and validation.
//!
//! Each field is declared once, in the `training_arguments!` list below; the
//! list drives the struct, its `Default`, the command-line flag
//! (`--logging_steps 5`), the config-file key, `to_json` (HF's
//! `TrainingArguments.to_dict()`) and `--help`. Validation and the derived
//! values (`eval_steps` copied from `logging_steps`, `metric_for_best_model`
//! defaulting to `loss`, ...) happen once, in [`TrainingArguments::finish`] (`post_init.rs`).
//! What is *not* a training argument (the task, plugins) lives in `cli`.

mod post_init;
mod state;
mod unsupported;
mod value;

pub use post_init::Interval;
pub use state::TrainerStateExt;
pub use unsupported::{Unsupported, UNSUPPORTED};
pub use value::{
    Algorithm, ArgValue, IntervalStrategy, Kind, OptimizerName, SaveStrategy, SchedulerType,
};

use crate::pyjson::Json;
use std::collections::BTreeMap;

/// The description of one field, for parsing and `--help`.
#[derive(Debug, Clone, Copy)]
pub struct FieldDoc {
    pub name: &'static str,
    pub doc: &'static str,
    pub kind: Kind,
}

macro_rules! training_arguments {
    ($( #[doc = $doc:literal] $name:ident : $ty:ty = $default:expr; )*) => {
        /// The arguments of a training run, as Hugging Face's `TrainingArguments`.
        ///
        /// Build it with `Default` plus assignments, or with
        /// [`TrainingArguments::set`] from text; call
        /// [`TrainingArguments::finish`] before use.
        #[derive(Debug, Clone, PartialEq)]
        pub struct TrainingArguments {
            $( #[doc = $doc] pub $name: $ty, )*
        }

        impl Default for TrainingArguments {
            fn default() -> Self {
                Self { $( $name: $default, )* }
            }
        }

        impl TrainingArguments {
            /// Every field, in declaration order.
            pub const FIELDS: &'static [FieldDoc] = &[
                $( FieldDoc { name: stringify!($name), doc: $doc, kind: <$ty as ArgValue>::KIND }, )*
            ];

            /// Sets a field from the text of a flag; `values` holds one text,
            /// or several for list fields.
            pub fn set(&mut self, name: &str, values: &[String]) -> Result<(), SetError> {
                match name {
                    $( stringify!($name) => {
                        self.$name = parse_texts::<$ty>(values).map_err(SetError::Invalid)?;
                        Ok(())
                    } )*
                    _ => match unsupported::find(name) {
                        Some(u) if u.is_default_text(values) => Ok(()),
                        Some(u) => Err(SetError::Unsupported(u)),
                        None => Err(SetError::unknown(name)),
                    },
                }
            }

            /// Sets a field from a config-file value.
            pub fn set_json(&mut self, name: &str, value: &Json) -> Result<(), SetError> {
                match name {
                    $( stringify!($name) => {
                        self.$name = <$ty as ArgValue>::from_json(value).map_err(SetError::Invalid)?;
                        Ok(())
                    } )*
                    _ => match unsupported::find(name) {
                        Some(u) if u.is_default_json(value) => Ok(()),
                        Some(u) => Err(SetError::Unsupported(u)),
                        None => Err(SetError::unknown(name)),
                    },
                }
            }

            /// The arguments as HF's `to_dict()`: every field, by name; an
            /// interval as an int where HF's `__post_init__` casts it
            /// ([`TrainingArguments::interval_is_int`]).
            pub fn to_json(&self) -> Json {
                let mut map = BTreeMap::new();
                $( map.insert(stringify!($name).to_string(), ArgValue::to_json(&self.$name)); )*
                for interval in Interval::ALL {
                    if let Some(v) = map.get_mut(interval.flag()) {
                        if let Json::Float(f) = *v {
                            if self.interval_is_int(interval) {
                                *v = Json::Int(f as i64);
                            }
                        }
                    }
                }
                Json::Object(map)
            }

            /// The default of each field, as JSON, for `--help`.
            pub fn default_json(name: &str) -> Option<Json> {
                let d = Self::default();
                match name {
                    $( stringify!($name) => Some(ArgValue::to_json(&d.$name)), )*
                    _ => None,
                }
            }
        }
    };
}

fn parse_texts<T: ArgValue>(values: &[String]) -> Result<T, String> {
    match (T::KIND, values) {
        (Kind::List, _) => {
            let joined = values.join(",");
            T::from_text(&joined)
        }
        (Kind::Bool, []) => T::from_text("true"),
        (_, [one]) => T::from_text(one),
        (_, []) => Err("expects a value".into()),
        (_, _) => Err(format!("expects one value, got {}", values.len())),
    }
}

/// Why a training argument could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// No training argument has this name; `near` is the closest that does.
    Unknown { name: String, near: Option<String> },
    /// The field exists; the value is not one it takes (the reason).
    Invalid(String),
    /// An HF field that trainbox does not support, given a value other
    /// than HF's default.
    Unsupported(&'static Unsupported),
}

impl SetError {
    /// Every name HF's `TrainingArguments` has, implemented or not (the
    /// candidates of a "did you mean").
    pub fn known_names() -> impl Iterator<Item = &'static str> {
        TrainingArguments::FIELDS
            .iter()
            .map(|f| f.name)
            .chain(UNSUPPORTED.iter().map(|u| u.name))
    }

    fn unknown(name: &str) -> SetError {
        let names = Self::known_names();
        SetError::Unknown {
            name: name.to_string(),
            near: crate::suggest::closest(name, names).map(str::to_string),
        }
    }
}

impl std::fmt::Display for SetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetError::Unknown {
                name,
                near: Some(near),
            } => write!(f, "unknown argument {name:?} (did you mean {near:?}?)"),
            SetError::Unknown { name, near: None } => write!(f, "unknown argument {name:?}"),
            SetError::Invalid(why) => f.write_str(why),
            SetError::Unsupported(u) => f.write_str(&u.refusal()),
        }
    }
}

impl std::error::Error for SetError {}

training_arguments! {
    /// Where checkpoints, `trainer_state.json` and plugin directories are written.
    output_dir: String = "trainer_output".into();
    /// Number of epochs to train (a fraction runs part of the last epoch).
    num_train_epochs: f64 = 3.0;
    /// Total number of updates; overrides `num_train_epochs` when positive.
    max_steps: i64 = -1;
    /// Batch size for training.
    per_device_train_batch_size: u32 = 8;
    /// Batch size for evaluation.
    per_device_eval_batch_size: u32 = 8;
    /// Number of batches whose gradients are summed before an update.
    gradient_accumulation_steps: u32 = 1;
    /// Initial learning rate of AdamW.
    learning_rate: f64 = 5e-5;
    /// AdamW weight decay, applied to every parameter but biases and norms.
    weight_decay: f64 = 0.0;
    /// AdamW beta1.
    adam_beta1: f64 = 0.9;
    /// AdamW beta2.
    adam_beta2: f64 = 0.999;
    /// AdamW epsilon.
    adam_epsilon: f64 = 1e-8;
    /// Gradient clipping norm; 0 disables clipping (the norm is still logged).
    max_grad_norm: f64 = 1.0;
    /// Learning-rate schedule: any of HF's `SchedulerType` (linear, cosine, cosine_with_restarts, polynomial, constant, constant_with_warmup, inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr, cosine_warmup_with_min_lr, warmup_stable_decay, greedy).
    lr_scheduler_type: SchedulerType = SchedulerType::Linear;
    /// Keyword arguments of the schedule, as HF's get_scheduler takes them: a JSON object (`{"num_cycles": 2}`), a table in a config file.
    lr_scheduler_kwargs: Option<Json> = None;
    /// The optimizer: adamw_torch, adamw_torch_fused, sgd, adagrad, rmsprop or adafactor (HF's other names are refused with the library they need).
    optim: OptimizerName = OptimizerName::AdamwTorchFused;
    /// Optimizer arguments as HF's "k=v,k=v" (sgd: momentum, dampening, nesterov; adagrad: lr_decay, eps; rmsprop: momentum, alpha, eps, centered).
    optim_args: Option<String> = None;
    /// Warm-up steps; below 1, a ratio of the total number of steps.
    warmup_steps: f64 = 0.0;
    /// Warm-up as a ratio of the total number of steps (used when warmup_steps is 0).
    warmup_ratio: f64 = 0.0;
    /// When to log: no, steps or epoch.
    logging_strategy: IntervalStrategy = IntervalStrategy::Steps;
    /// Log every N steps; below 1, a ratio of the total number of steps.
    logging_steps: f64 = 500.0;
    /// Also log after the first step.
    logging_first_step: bool = false;
    /// Leave NaN and infinite losses out of the logged loss.
    logging_nan_inf_filter: bool = true;
    /// When to evaluate: no, steps or epoch.
    eval_strategy: IntervalStrategy = IntervalStrategy::No;
    /// Evaluate every N steps (defaults to logging_steps); below 1, a ratio.
    eval_steps: Option<f64> = None;
    /// Steps (or epochs, with the epoch strategy) to wait before the first evaluation.
    eval_delay: f64 = 0.0;
    /// Evaluate once before training.
    eval_on_start: bool = false;
    /// When to save a checkpoint: no, steps, epoch or best.
    save_strategy: SaveStrategy = SaveStrategy::Steps;
    /// Save every N steps; below 1, a ratio of the total number of steps.
    save_steps: f64 = 500.0;
    /// Keep at most this many checkpoints (the newest and the best are kept).
    save_total_limit: Option<u32> = None;
    /// Load the best checkpoint when training ends.
    load_best_model_at_end: bool = false;
    /// The metric that decides the best model (`eval_` is prefixed when missing).
    metric_for_best_model: Option<String> = None;
    /// Whether a larger metric is better (default: unless the name ends in "loss").
    greater_is_better: Option<bool> = None;
    /// Seed of the model initialisation and the data order.
    seed: u64 = 42;
    /// Print logs as plain lines (printer) instead of progress bars (progress).
    disable_tqdm: bool = false;
    /// Logger integrations: "all", "none", or a list of names.
    report_to: Vec<String> = vec!["none".into()];
    /// A name for the run, used by logger integrations.
    run_name: Option<String> = None;
    /// Drop the last incomplete batch of each epoch.
    dataloader_drop_last: bool = false;
    /// Restore the state of stateful plugins when resuming.
    restore_callback_states_from_checkpoint: bool = false;
    /// A checkpoint folder to resume from, "true" for the latest in output_dir, or "last" for the latest if any (else a fresh start).
    resume_from_checkpoint: Option<String> = None;
    /// On SIGTERM, save a checkpoint at the step the run stops at (HF's JIT checkpoint, for preemptible machines).
    enable_jit_checkpoint: bool = false;
    /// Train (with --model: the default when no --do_* flag is given).
    do_train: bool = false;
    /// Evaluate on --validation_file after training (set by any eval_strategy but no).
    do_eval: bool = false;
    /// Predict on --test_file, writing predictions.safetensors and predict_results.json.
    do_predict: bool = false;
    /// The columns that hold the labels (default: labels); padded with -100.
    label_names: Option<Vec<String>> = None;
    /// Drop dataset columns that the model's forward does not take (false: such a column is an error).
    remove_unused_columns: bool = true;
    /// The collective library of a multi-process run: gloo or nccl (default: nccl on CUDA, else gloo).
    ddp_backend: Option<String> = None;
    /// Seconds a process of a multi-process run waits for the others (the rendezvous and each collective).
    ddp_timeout: u64 = 1800;
    /// Train on the CPU even when a GPU is present.
    use_cpu: bool = false;
    /// bfloat16 mixed precision (autocast; the weights stay float32). Needs a GPU with bf16, or --use_cpu.
    bf16: bool = false;
    /// float16 mixed precision with dynamic loss scaling (CUDA; on the CPU, as HF, it trains in float32).
    fp16: bool = false;
    /// Allow TF32 in CUDA matmuls and convolutions (Ampere or newer); false forbids it; unset leaves torch's default.
    tf32: Option<bool> = None;
    /// Label smoothing factor (HF's `LabelSmoother`): the loss of the model's logits against its labels, 0 for none.
    label_smoothing_factor: f64 = 0.0;
    /// Move the evaluation's predictions to the CPU every N batches (unset: at the end); the output is the same.
    eval_accumulation_steps: Option<u32> = None;
    /// Checkpoints hold only the model (no optimizer, scheduler or RNG state), so they cannot be resumed from.
    save_only_model: bool = false;
    /// Threads that build the next training and evaluation batches ahead, in order (0: on the training thread).
    dataloader_num_workers: u32 = 0;
    /// Batches each worker builds ahead (default 2 with workers; needs --dataloader_num_workers > 0).
    dataloader_prefetch_factor: Option<u32> = None;
    /// Count the input tokens seen (`num_input_tokens_seen`): all, non_padding, or no (true/false mean all/no).
    include_num_input_tokens_seen: String = "no".into();
    /// The seed of the data order (default: --seed); the model's initialisation keeps --seed.
    data_seed: Option<u64> = None;
    /// HF's `enable_full_determinism`: the seeds, and torch's deterministic algorithms only.
    full_determinism: bool = false;
    /// Empty the CUDA cache every N steps (unset: never; nothing to do on the CPU).
    torch_empty_cache_steps: Option<u32> = None;
    /// For a model that takes `num_items_in_batch`: sum the update's label count over the processes and scale each rank's loss by their number, as HF (docs/train-your-own-model.md).
    average_tokens_across_devices: bool = true;
    /// The project runs are logged under (HF: used by the trackio integration only).
    project: String = "huggingface".into();
    /// Evaluate and predict the loss only: no metrics, no predictions (HF's prediction_step returns `(loss, None, None)`).
    prediction_loss_only: bool = false;
    /// Where TensorBoard writes its events (HF 4's field, gone from 5.24; default: TENSORBOARD_LOGGING_DIR, else output_dir/runs/<run>).
    logging_dir: Option<String> = None;
}

impl TrainingArguments {
    /// The metric key for the best model, with the `eval_` prefix HF adds.
    pub fn best_metric_key(&self) -> Option<String> {
        self.metric_for_best_model.as_ref().map(|m| {
            if m.starts_with("eval_") {
                m.clone()
            } else {
                format!("eval_{m}")
            }
        })
    }

    /// The effective number of warm-up steps for a run of `total` updates.
    pub fn warmup_steps_for(&self, total: u64) -> u64 {
        if self.warmup_steps >= 1.0 {
            self.warmup_steps as u64
        } else if self.warmup_steps > 0.0 {
            (total as f64 * self.warmup_steps).ceil() as u64
        } else {
            (total as f64 * self.warmup_ratio).ceil() as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use post_init::finished;
    use trainbox_pyformat::args as hf_args;

    #[test]
    fn unknown_names_suggest_the_closest_field() {
        let mut a = TrainingArguments::default();
        let err = a.set("loging_steps", &["5".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown argument \"loging_steps\" (did you mean \"logging_steps\"?)"
        );
    }

    #[test]
    fn flags_follow_hf_parsing() {
        let mut a = TrainingArguments::default();
        a.set("logging_first_step", &[]).unwrap();
        assert!(a.logging_first_step);
        a.set("logging_first_step", &["false".into()]).unwrap();
        assert!(!a.logging_first_step);
        a.set("report_to", &["tensorboard".into(), "mlflow".into()])
            .unwrap();
        assert_eq!(a.report_to, ["tensorboard", "mlflow"]);
        a.set("report_to", &["none".into()]).unwrap();
        a.finish().unwrap();
        assert!(a.report_to.is_empty());
        a.set("report_to", &["none".into(), "mlflow".into()])
            .unwrap();
        let err = a.finish().unwrap_err();
        assert!(err.contains("none cannot be combined"), "{err}");
    }

    /// `to_json` of the default arguments is HF's `to_dict()` of its own
    /// defaults, field for field, as the shared table `TRAINING_ARGS` holds
    /// them (the WIT record and the SDK are checked against the same table).
    #[test]
    fn to_json_has_hfs_fields_and_defaults() {
        let a = finished(|_| {}).unwrap();
        let ours = a.to_json();
        let ours = ours.as_object().unwrap();
        let names: Vec<&str> = hf_args::TRAINING_ARGS.iter().map(|f| f.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(
            ours.keys().map(String::as_str).collect::<Vec<_>>(),
            sorted,
            "the fields of TrainingArguments and trainbox_pyformat::args::TRAINING_ARGS differ"
        );
        for field in hf_args::TRAINING_ARGS {
            assert!(
                field.is_default(&ours[field.name]),
                "default of {}: ours {:?}, the table's {:?}",
                field.name,
                ours[field.name],
                field.default
            );
        }
    }

    #[test]
    fn warmup_uses_steps_then_ratio() {
        let mut a = TrainingArguments {
            warmup_steps: 3.0,
            ..Default::default()
        };
        assert_eq!(a.warmup_steps_for(100), 3);
        a.warmup_steps = 0.1;
        assert_eq!(a.warmup_steps_for(24), 3);
        a.warmup_steps = 0.0;
        a.warmup_ratio = 0.5;
        assert_eq!(a.warmup_steps_for(24), 12);
    }
}
