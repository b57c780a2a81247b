//! `TrainingArguments`: Hugging Face's names, defaults and validation.
//!
//! Each field is declared once, in the `training_arguments!` list below; the
//! list drives the struct, its `Default`, the command-line flag
//! (`--logging_steps 5`), the config-file key, `to_json` (HF's
//! `TrainingArguments.to_dict()`) and `--help`. Validation and the derived
//! values (`eval_steps` copied from `logging_steps`, `metric_for_best_model`
//! defaulting to `loss`, ...) happen once, in [`TrainingArguments::finish`].
//! What is *not* a training argument (the task, plugins) lives in `cli`.

mod value;

pub use value::{ArgValue, IntervalStrategy, Kind, SaveStrategy, SchedulerType};

use crate::pyjson::Json;
use std::collections::BTreeMap;
use trainbox_pyformat::args as hf_args;

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
                    _ => Err(SetError::unknown(name)),
                }
            }

            /// Sets a field from a config-file value.
            pub fn set_json(&mut self, name: &str, value: &Json) -> Result<(), SetError> {
                match name {
                    $( stringify!($name) => {
                        self.$name = <$ty as ArgValue>::from_json(value).map_err(SetError::Invalid)?;
                        Ok(())
                    } )*
                    _ => Err(SetError::unknown(name)),
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
}

impl SetError {
    fn unknown(name: &str) -> SetError {
        let names = TrainingArguments::FIELDS.iter().map(|f| f.name);
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
    /// Learning-rate schedule: linear, cosine, constant or constant_with_warmup.
    lr_scheduler_type: SchedulerType = SchedulerType::Linear;
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
    /// A checkpoint folder to resume from, or "true" for the latest in output_dir.
    resume_from_checkpoint: Option<String> = None;
}

impl TrainingArguments {
    /// Validates the arguments and fills the derived defaults, as HF's
    /// `__post_init__`. Errors use HF's wording, with the flag named.
    pub fn finish(&mut self) -> Result<(), String> {
        if self.per_device_train_batch_size == 0 || self.per_device_eval_batch_size == 0 {
            return Err(
                "--per_device_train_batch_size and --per_device_eval_batch_size must be at least 1"
                    .into(),
            );
        }
        if self.gradient_accumulation_steps == 0 {
            return Err("--gradient_accumulation_steps must be at least 1".into());
        }
        for (name, v) in [
            ("learning_rate", self.learning_rate),
            ("weight_decay", self.weight_decay),
            ("max_grad_norm", self.max_grad_norm),
            ("warmup_steps", self.warmup_steps),
            ("eval_delay", self.eval_delay),
            ("num_train_epochs", self.num_train_epochs),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("--{name} must be a finite number >= 0, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.warmup_ratio) {
            return Err("warmup_ratio must lie in range [0,1]".into());
        }
        if self.eval_strategy == IntervalStrategy::Steps && self.eval_steps.is_none_or(|s| s == 0.0)
        {
            if self.logging_steps > 0.0 {
                self.eval_steps = Some(self.logging_steps);
            } else {
                return Err(format!(
                    "evaluation strategy {} requires either non-zero --eval_steps or --logging_steps",
                    self.eval_strategy
                ));
            }
        }
        if self.logging_strategy == IntervalStrategy::Steps && self.logging_steps == 0.0 {
            return Err(format!(
                "logging strategy {} requires non-zero --logging_steps",
                self.logging_strategy
            ));
        }
        // As HF 5.24, `--save_steps 0` under the steps strategy is accepted:
        // DefaultFlowCallback then saves only at the end of training.
        for interval in Interval::ALL {
            let Some(v) = self.interval_steps(interval) else {
                continue;
            };
            let name = interval.flag();
            // trainbox's own check: HF lets a negative interval through.
            if v < 0.0 {
                return Err(format!("--{name} must be >= 0, got {v}"));
            }
            // HF casts to int, and so requires a whole number, only under the
            // interval's own steps strategy.
            if self.interval_strategy_is_steps(interval) && v > 1.0 && v.fract() != 0.0 {
                return Err(format!("--{name} must be an integer if bigger than 1: {v}"));
            }
        }
        if self.load_best_model_at_end && self.save_strategy != SaveStrategy::Best {
            let same = matches!(
                (self.eval_strategy, self.save_strategy),
                (IntervalStrategy::No, SaveStrategy::No)
                    | (IntervalStrategy::Steps, SaveStrategy::Steps)
                    | (IntervalStrategy::Epoch, SaveStrategy::Epoch)
            );
            if !same {
                return Err(format!(
                    "--load_best_model_at_end requires the save and eval strategy to match, except when --save_strategy is best, but found eval strategy {} and save strategy {}",
                    self.eval_strategy, self.save_strategy
                ));
            }
            if self.eval_strategy == IntervalStrategy::Steps {
                let eval_steps = self.eval_steps.unwrap_or(self.logging_steps);
                save_steps_fit_eval_steps(self.save_steps, eval_steps)?;
            }
        }
        if self.metric_for_best_model.is_none() && self.load_best_model_at_end {
            self.metric_for_best_model = Some("loss".into());
        }
        if self.greater_is_better.is_none() {
            if let Some(metric) = &self.metric_for_best_model {
                self.greater_is_better = Some(!metric.ends_with("loss"));
            }
        }
        // HF's `Trainer.__init__`. `--save_strategy best` with `--eval_strategy
        // no` is accepted, as HF does: nothing is evaluated, so nothing is saved.
        if self.save_strategy == SaveStrategy::Best && self.metric_for_best_model.is_none() {
            return Err(
                "--metric_for_best_model must be provided when using --save_strategy best or --load_best_model_at_end (e.g. --metric_for_best_model loss)"
                    .into(),
            );
        }
        self.report_to = normalize_report_to(&self.report_to)?;
        Ok(())
    }

    /// The value of a step interval: `None` for an unset `eval_steps`.
    pub fn interval_steps(&self, interval: Interval) -> Option<f64> {
        match interval {
            Interval::Logging => Some(self.logging_steps),
            Interval::Eval => self.eval_steps,
            Interval::Save => Some(self.save_steps),
        }
    }

    fn interval_strategy_is_steps(&self, interval: Interval) -> bool {
        match interval {
            Interval::Logging => self.logging_strategy == IntervalStrategy::Steps,
            Interval::Eval => self.eval_strategy == IntervalStrategy::Steps,
            Interval::Save => self.save_strategy == SaveStrategy::Steps,
        }
    }

    /// Whether HF holds a step interval of 1 or more as an int after
    /// `__post_init__`: it casts one above 1 to int under the interval's own
    /// steps strategy only; otherwise the value stays as it was given, a
    /// float from HF's command-line parser (`--logging_steps 5` is `5.0`), or
    /// the int default 500 of `logging_steps` and `save_steps` (trainbox
    /// cannot tell that default from an explicit `500`, which HF would keep a
    /// float). A ratio (below 1) is made an int later, by `compute_steps`.
    pub fn interval_is_int(&self, interval: Interval) -> bool {
        let Some(v) = self.interval_steps(interval) else {
            return false;
        };
        let steps = self.interval_strategy_is_steps(interval);
        hf_args::interval_as_int(interval.flag(), steps, v).is_some()
    }

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

/// One of the three step intervals: `logging_steps`, `eval_steps`, `save_steps`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Logging,
    Eval,
    Save,
}

impl Interval {
    pub const ALL: [Interval; 3] = [Interval::Logging, Interval::Eval, Interval::Save];

    /// The argument's name.
    pub fn flag(self) -> &'static str {
        match self {
            Interval::Logging => "logging_steps",
            Interval::Eval => "eval_steps",
            Interval::Save => "save_steps",
        }
    }
}

/// HF's check, for `--load_best_model_at_end` under the steps strategies,
/// that every evaluation step with a new best is also a save step:
/// `save_steps` a multiple of `eval_steps`, both counts or both ratios.
fn save_steps_fit_eval_steps(save: f64, eval: f64) -> Result<(), String> {
    if save % eval == 0.0 {
        return Ok(());
    }
    // As HF prints them: counts above 1 as ints, ratios as floats.
    let show = |v: f64| {
        if v > 1.0 {
            format!("{}", v as i64)
        } else {
            crate::pyjson::py_float(v)
        }
    };
    let (s, e) = (show(save), show(eval));
    let prefix = "--load_best_model_at_end requires the saving steps to be";
    if save >= 1.0 && eval >= 1.0 {
        return Err(format!(
            "{prefix} a round multiple of the evaluation steps, but found {s}, which is not a round multiple of {e}"
        ));
    }
    if save >= 1.0 || eval >= 1.0 {
        return Err(format!(
            "{prefix} a multiple of the evaluation steps, which cannot get guaranteed when mixing ratio and absolute steps for save_steps {s} and eval_steps {e}: give both as ratios (below 1) or both as step counts"
        ));
    }
    // Ratios: HF compares them in millionths, which spares 0.3 and 0.1 the
    // float remainder of `0.3 % 0.1`.
    const LARGE_MULTIPLIER: f64 = 1_000_000.0;
    if (save * LARGE_MULTIPLIER) % (eval * LARGE_MULTIPLIER) != 0.0 {
        return Err(format!(
            "{prefix} a multiple of the evaluation steps, but found {s}, which is not a multiple of {e}"
        ));
    }
    Ok(())
}

/// `"none"` alone becomes no integration; everything else is kept in order,
/// without repeats (`"all"` is expanded where the shipped integrations are
/// known). As HF, `"none"` beside another integration is an error.
fn normalize_report_to(list: &[String]) -> Result<Vec<String>, String> {
    if list.len() > 1 && list.iter().any(|i| i == "none") {
        return Err(format!(
            "--report_to none cannot be combined with other integrations (got {}): pass none alone, or only the integrations to use",
            list.join(" ")
        ));
    }
    let mut out = Vec::new();
    for item in list {
        if item != "none" && !out.contains(item) {
            out.push(item.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(f: impl FnOnce(&mut TrainingArguments)) -> Result<TrainingArguments, String> {
        let mut a = TrainingArguments::default();
        f(&mut a);
        a.finish().map(|_| a)
    }

    #[test]
    fn eval_steps_default_to_logging_steps() {
        let a = finished(|a| {
            a.eval_strategy = IntervalStrategy::Steps;
            a.logging_steps = 5.0;
        })
        .unwrap();
        assert_eq!(a.eval_steps, Some(5.0));
    }

    #[test]
    fn fractional_steps_above_one_are_rejected() {
        let err = finished(|a| a.logging_steps = 2.5).unwrap_err();
        assert_eq!(
            err,
            "--logging_steps must be an integer if bigger than 1: 2.5"
        );
    }

    #[test]
    fn load_best_model_needs_matching_strategies() {
        let err = finished(|a| {
            a.load_best_model_at_end = true;
            a.eval_strategy = IntervalStrategy::Epoch;
        })
        .unwrap_err();
        assert!(
            err.contains("but found eval strategy epoch and save strategy steps"),
            "{err}"
        );
        let err = finished(|a| {
            a.load_best_model_at_end = true;
            a.eval_strategy = IntervalStrategy::Steps;
            a.eval_steps = Some(4.0);
            a.save_steps = 6.0;
        })
        .unwrap_err();
        assert!(err.contains("round multiple"), "{err}");
    }

    /// `--load_best_model_at_end` under the steps strategies with
    /// (eval_steps, save_steps); the messages are transformers 5.24's.
    fn load_best_with(eval: f64, save: f64) -> Result<TrainingArguments, String> {
        finished(|a| {
            a.load_best_model_at_end = true;
            a.eval_strategy = IntervalStrategy::Steps;
            a.eval_steps = Some(eval);
            a.save_steps = save;
        })
    }

    #[test]
    fn load_best_model_checks_ratios_and_counts_as_hf() {
        let prefix = "--load_best_model_at_end requires the saving steps to be a multiple of the evaluation steps";
        assert_eq!(
            load_best_with(5.0, 0.5).unwrap_err(),
            format!("{prefix}, which cannot get guaranteed when mixing ratio and absolute steps for save_steps 0.5 and eval_steps 5: give both as ratios (below 1) or both as step counts")
        );
        assert_eq!(
            load_best_with(0.1, 0.25).unwrap_err(),
            format!("{prefix}, but found 0.25, which is not a multiple of 0.1")
        );
        assert_eq!(
            load_best_with(4.0, 6.0).unwrap_err(),
            "--load_best_model_at_end requires the saving steps to be a round multiple of the evaluation steps, but found 6, which is not a round multiple of 4"
        );
        // Accepted by HF: a remainder of 0, even across a ratio and a count,
        // and ratios that are multiples in millionths (0.3 % 0.1 is not 0).
        for (eval, save) in [
            (0.25, 10.0),
            (0.5, 10.0),
            (0.1, 0.3),
            (0.1, 0.2),
            (5.0, 10.0),
        ] {
            assert!(
                load_best_with(eval, save).is_ok(),
                "eval {eval}, save {save}"
            );
        }
    }

    #[test]
    fn save_strategy_best_needs_a_metric_but_no_evaluation() {
        let err = finished(|a| {
            a.save_strategy = SaveStrategy::Best;
            a.eval_strategy = IntervalStrategy::Steps;
        })
        .unwrap_err();
        assert_eq!(
            err,
            "--metric_for_best_model must be provided when using --save_strategy best or --load_best_model_at_end (e.g. --metric_for_best_model loss)"
        );
        // HF accepts `best` without evaluations (and then never saves).
        let a = finished(|a| {
            a.save_strategy = SaveStrategy::Best;
            a.metric_for_best_model = Some("loss".into());
        })
        .unwrap();
        assert_eq!(a.eval_strategy, IntervalStrategy::No);
        // With --load_best_model_at_end the metric defaults to the loss.
        let a = finished(|a| {
            a.save_strategy = SaveStrategy::Best;
            a.load_best_model_at_end = true;
            a.eval_strategy = IntervalStrategy::Epoch;
        })
        .unwrap();
        assert_eq!(a.metric_for_best_model.as_deref(), Some("loss"));
    }

    #[test]
    fn intervals_are_checked_under_their_own_steps_strategy_only() {
        let a = finished(|a| {
            a.logging_strategy = IntervalStrategy::Epoch;
            a.logging_steps = 2.5;
            a.eval_steps = Some(3.5);
            a.save_strategy = SaveStrategy::No;
            a.save_steps = 4.5;
        });
        assert!(a.is_ok(), "{a:?}");
        let err = finished(|a| a.save_steps = 4.5).unwrap_err();
        assert_eq!(err, "--save_steps must be an integer if bigger than 1: 4.5");
        // HF accepts a save interval of 0: it saves only at the end.
        assert!(finished(|a| a.save_steps = 0.0).is_ok());
        let err = finished(|a| a.logging_steps = 0.0).unwrap_err();
        assert_eq!(
            err,
            "logging strategy steps requires non-zero --logging_steps"
        );
        let err = finished(|a| a.logging_steps = -2.0).unwrap_err();
        assert_eq!(err, "--logging_steps must be >= 0, got -2");
    }

    #[test]
    fn intervals_are_ints_where_hf_casts_them() {
        let a = finished(|a| {
            a.logging_strategy = IntervalStrategy::Epoch;
            a.logging_steps = 5.0;
            a.eval_strategy = IntervalStrategy::Steps;
            a.eval_steps = Some(4.0);
            a.save_strategy = SaveStrategy::Epoch;
        })
        .unwrap();
        assert!(
            !a.interval_is_int(Interval::Logging),
            "5.0 outside its steps strategy"
        );
        assert!(
            a.interval_is_int(Interval::Eval),
            "4 under the steps strategy"
        );
        assert!(a.interval_is_int(Interval::Save), "HF's int default 500");
        let a = finished(|a| a.logging_steps = 1.0).unwrap();
        assert!(!a.interval_is_int(Interval::Logging), "1.0 is not above 1");
        assert!(!a.interval_is_int(Interval::Eval), "unset");
    }

    #[test]
    fn best_metric_defaults_follow_hf() {
        let a = finished(|a| {
            a.load_best_model_at_end = true;
            a.eval_strategy = IntervalStrategy::Steps;
            a.eval_steps = Some(5.0);
            a.save_steps = 10.0;
        })
        .unwrap();
        assert_eq!(a.metric_for_best_model.as_deref(), Some("loss"));
        assert_eq!(a.greater_is_better, Some(false));
        assert_eq!(a.best_metric_key().as_deref(), Some("eval_loss"));
        let a = finished(|a| a.metric_for_best_model = Some("accuracy".into())).unwrap();
        assert_eq!(a.greater_is_better, Some(true));
    }

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
