//! What a plugin receives of the run's arguments: [`RunArgs`], the
//! contract's `training-args` record as plain data, and the strategy enums
//! it holds. Each host fills it from its own arguments (the `trainbox`
//! binary from its `TrainingArguments`, the Python host from HF's).

/// Defines a strategy enum with HF's spellings: `CHOICES` (in declaration
/// order), `as_str`, `from_name` and `Display`. The `trainbox` crate
/// defines its other argument enums with it too, so that every choice
/// argument is spelled one way.
#[macro_export]
macro_rules! choice_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vmeta])* $variant),* }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub const CHOICES: &'static [&'static str] = &[$($text),*];

            /// HF's spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            /// The value HF spells `text`, if any.
            pub fn from_name(text: &str) -> ::std::option::Option<Self> {
                match text {
                    $($text => ::std::option::Option::Some($name::$variant),)*
                    _ => ::std::option::Option::None,
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice_enum!(
    /// When to log or evaluate (`IntervalStrategy`).
    IntervalStrategy { No = "no", Steps = "steps", Epoch = "epoch" }
);

choice_enum!(
    /// When to save a checkpoint (`SaveStrategy`).
    SaveStrategy { No = "no", Steps = "steps", Epoch = "epoch", Best = "best" }
);

/// The run's arguments as a plugin's `configure` receives them: exactly
/// the fields of the contract's `training-args` record (`wit/callback.wit`),
/// in its order and with its meaning; `output_dir` also places each plugin's
/// own directory, `<output_dir>/plugins/<name>/`.
#[derive(Debug, Clone, PartialEq)]
pub struct RunArgs {
    pub output_dir: String,
    pub num_train_epochs: f64,
    /// -1 when unset: the run then lasts `num_train_epochs`.
    pub max_steps: i64,
    pub per_device_train_batch_size: u32,
    pub per_device_eval_batch_size: u32,
    pub gradient_accumulation_steps: u32,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub adam_beta1: f64,
    pub adam_beta2: f64,
    pub adam_epsilon: f64,
    pub max_grad_norm: f64,
    /// HF's spelling of the schedule (`linear`, `cosine`, …).
    pub lr_scheduler_type: String,
    pub warmup_steps: f64,
    pub warmup_ratio: f64,
    pub logging_strategy: IntervalStrategy,
    /// An absolute number of steps, or a ratio of the run when below 1.
    pub logging_steps: f64,
    pub logging_first_step: bool,
    pub logging_nan_inf_filter: bool,
    pub eval_strategy: IntervalStrategy,
    pub eval_steps: Option<f64>,
    pub eval_delay: f64,
    pub eval_on_start: bool,
    pub save_strategy: SaveStrategy,
    pub save_steps: f64,
    pub save_total_limit: Option<u32>,
    pub load_best_model_at_end: bool,
    pub metric_for_best_model: Option<String>,
    pub greater_is_better: Option<bool>,
    pub seed: u64,
    pub disable_tqdm: bool,
    pub report_to: Vec<String>,
    pub run_name: Option<String>,
    pub dataloader_drop_last: bool,
    pub restore_callback_states_from_checkpoint: bool,
}

#[cfg(test)]
impl RunArgs {
    /// HF's default arguments (transformers 5.24) with `output_dir`, for tests.
    pub(crate) fn example(output_dir: &str) -> RunArgs {
        RunArgs {
            output_dir: output_dir.into(),
            num_train_epochs: 3.0,
            max_steps: -1,
            per_device_train_batch_size: 8,
            per_device_eval_batch_size: 8,
            gradient_accumulation_steps: 1,
            learning_rate: 5e-5,
            weight_decay: 0.0,
            adam_beta1: 0.9,
            adam_beta2: 0.999,
            adam_epsilon: 1e-8,
            max_grad_norm: 1.0,
            lr_scheduler_type: "linear".into(),
            warmup_steps: 0.0,
            warmup_ratio: 0.0,
            logging_strategy: IntervalStrategy::Steps,
            logging_steps: 500.0,
            logging_first_step: false,
            logging_nan_inf_filter: true,
            eval_strategy: IntervalStrategy::No,
            eval_steps: None,
            eval_delay: 0.0,
            eval_on_start: false,
            save_strategy: SaveStrategy::Steps,
            save_steps: 500.0,
            save_total_limit: None,
            load_best_model_at_end: false,
            metric_for_best_model: None,
            greater_is_better: None,
            seed: 42,
            disable_tqdm: false,
            report_to: Vec::new(),
            run_name: None,
            dataloader_drop_last: false,
            restore_callback_states_from_checkpoint: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_spell_as_hf() {
        assert_eq!(SaveStrategy::CHOICES, ["no", "steps", "epoch", "best"]);
        for s in IntervalStrategy::CHOICES {
            assert_eq!(IntervalStrategy::from_name(s).unwrap().as_str(), *s);
        }
        assert_eq!(SaveStrategy::from_name("Best"), None);
        assert_eq!(format!("{}", SaveStrategy::Best), "best");
    }
}
