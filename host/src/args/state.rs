//! What the run's arguments decide of the state and of the plugins' view
//! of them, here because `TrainerState` and `RunArgs` live in the sandbox
//! crate (`trainbox-sandbox`), which knows nothing of `TrainingArguments`.

use super::{Interval, SaveStrategy, TrainingArguments};
use crate::state::{Logs, Number, TrainerState, Value};
use anyhow::{bail, Result};
use trainbox_sandbox::RunArgs;

/// HF's `TrainerState` methods that read the arguments.
pub trait TrainerStateExt {
    /// HF's `TrainerState.compute_steps`: the run's logging, evaluation and
    /// save intervals from `args`, ratios resolved against `max_steps`. An
    /// unset `eval_steps` leaves the default 500.
    fn compute_steps(&mut self, args: &TrainingArguments, max_steps: u64);

    /// HF's `_determine_best_metric`, after an evaluation: updates
    /// `best_metric` and (when checkpoints are saved) `best_global_step`;
    /// returns whether `metrics` is a new best. An error when the evaluation
    /// lacks `--metric_for_best_model`.
    fn determine_best_metric(&mut self, args: &TrainingArguments, metrics: &Logs) -> Result<bool>;
}

impl TrainerStateExt for TrainerState {
    fn compute_steps(&mut self, args: &TrainingArguments, max_steps: u64) {
        for interval in Interval::ALL {
            let Some(value) = args.interval_steps(interval) else {
                continue;
            };
            let n = Number::interval(value, max_steps, args.interval_is_int(interval));
            match interval {
                Interval::Logging => self.logging_steps = n,
                Interval::Eval => self.eval_steps = n,
                Interval::Save => self.save_steps = n,
            }
        }
    }

    fn determine_best_metric(&mut self, args: &TrainingArguments, metrics: &Logs) -> Result<bool> {
        let Some(key) = args.best_metric_key() else {
            return Ok(false);
        };
        let Some(value) = metrics.get(&key).and_then(Value::as_f64) else {
            let available: Vec<&str> = metrics.keys().collect();
            bail!(
                "--metric_for_best_model {:?}: the evaluation has no metric {key:?}; available metrics: {}; set --metric_for_best_model to one of them",
                args.metric_for_best_model.as_deref().unwrap_or_default(),
                available.join(", ")
            );
        };
        let greater = args.greater_is_better.unwrap_or(false);
        let best = self.best_metric.unwrap_or(if greater {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
        let better = if greater { value > best } else { value < best };
        self.best_metric = Some(if better { value } else { best });
        if better
            && matches!(
                args.save_strategy,
                SaveStrategy::Steps | SaveStrategy::Epoch | SaveStrategy::Best
            )
        {
            self.best_global_step = Some(self.global_step);
        }
        Ok(better)
    }
}

/// The arguments a plugin's `configure` receives (the contract's
/// `training-args`).
impl From<&TrainingArguments> for RunArgs {
    fn from(a: &TrainingArguments) -> Self {
        RunArgs {
            output_dir: a.output_dir.clone(),
            num_train_epochs: a.num_train_epochs,
            max_steps: a.max_steps,
            per_device_train_batch_size: a.per_device_train_batch_size,
            per_device_eval_batch_size: a.per_device_eval_batch_size,
            gradient_accumulation_steps: a.gradient_accumulation_steps,
            learning_rate: a.learning_rate,
            weight_decay: a.weight_decay,
            adam_beta1: a.adam_beta1,
            adam_beta2: a.adam_beta2,
            adam_epsilon: a.adam_epsilon,
            max_grad_norm: a.max_grad_norm,
            lr_scheduler_type: a.lr_scheduler_type.as_str().to_string(),
            warmup_steps: a.warmup_steps,
            warmup_ratio: a.warmup_ratio,
            logging_strategy: a.logging_strategy,
            logging_steps: a.logging_steps,
            logging_first_step: a.logging_first_step,
            logging_nan_inf_filter: a.logging_nan_inf_filter,
            eval_strategy: a.eval_strategy,
            eval_steps: a.eval_steps,
            eval_delay: a.eval_delay,
            eval_on_start: a.eval_on_start,
            save_strategy: a.save_strategy,
            save_steps: a.save_steps,
            save_total_limit: a.save_total_limit,
            load_best_model_at_end: a.load_best_model_at_end,
            metric_for_best_model: a.metric_for_best_model.clone(),
            greater_is_better: a.greater_is_better,
            seed: a.seed,
            disable_tqdm: a.disable_tqdm,
            report_to: a.report_to.clone(),
            run_name: a.run_name.clone(),
            dataloader_drop_last: a.dataloader_drop_last,
            restore_callback_states_from_checkpoint: a.restore_callback_states_from_checkpoint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The intervals of a 24-step run, as (logging, eval, save); each row
    /// checked against transformers 5.24 given the same flags.
    fn steps_of(f: impl FnOnce(&mut TrainingArguments)) -> (Number, Number, Number) {
        let mut a = TrainingArguments::default();
        f(&mut a);
        a.finish().unwrap();
        let mut s = TrainerState::default();
        s.compute_steps(&a, 24);
        (s.logging_steps, s.eval_steps, s.save_steps)
    }

    #[test]
    fn compute_steps_follows_hf() {
        use crate::args::{IntervalStrategy as I, SaveStrategy as S};
        use Number::{Float, Int};
        assert_eq!(
            steps_of(|_| {}),
            (Int(500), Int(500), Int(500)),
            "HF's defaults are ints; eval_steps unset"
        );
        assert_eq!(
            steps_of(|a| {
                a.logging_steps = 0.1;
                a.save_steps = 0.2;
            }),
            (Int(3), Int(500), Int(5)),
            "ratios of max_steps, rounded up"
        );
        assert_eq!(
            steps_of(|a| {
                a.logging_steps = 5.0;
                a.eval_strategy = I::Steps;
                a.save_steps = 10.0;
            }),
            (Int(5), Int(5), Int(10)),
            "ints under their steps strategy; eval_steps from logging_steps"
        );
        assert_eq!(
            steps_of(|a| {
                a.logging_strategy = I::Epoch;
                a.logging_steps = 5.0;
                a.eval_steps = Some(4.0);
                a.save_strategy = S::Epoch;
                a.save_steps = 2.5;
            }),
            (Float(5.0), Float(4.0), Float(2.5)),
            "floats, as given, under another strategy"
        );
        assert_eq!(
            steps_of(|a| a.logging_steps = 1.0),
            (Float(1.0), Int(500), Int(500)),
            "1.0 is never cast"
        );
    }

    /// The plugins' arguments are the run's.
    #[test]
    fn run_args_copy_the_training_arguments() {
        let a = TrainingArguments {
            output_dir: "out".into(),
            eval_strategy: crate::args::IntervalStrategy::Steps,
            eval_steps: Some(3.0),
            report_to: vec!["csv".into()],
            ..Default::default()
        };
        let r = RunArgs::from(&a);
        assert_eq!(r.output_dir, "out");
        assert_eq!(r.lr_scheduler_type, "linear");
        assert_eq!(r.eval_steps, Some(3.0));
        assert_eq!(r.report_to, ["csv"]);
        assert_eq!(r.save_strategy, SaveStrategy::Steps);
    }
}
