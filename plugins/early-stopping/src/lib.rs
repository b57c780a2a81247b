//! early-stopping: HF's `EarlyStoppingCallback`. Stops training when the
//! metric `metric_for_best_model` has not improved for
//! `early_stopping_patience` evaluations in a row, where an improvement must
//! beat `state.best_metric` by more than `early_stopping_threshold`.
//! Stateful: its patience counter is kept in checkpoints, so it survives a
//! resume (with `--restore_callback_states_from_checkpoint`).
//!
//! Config: `early-stopping.early_stopping_patience` (default 1),
//! `early-stopping.early_stopping_threshold` (default 0.0).

use serde::{Deserialize, Serialize};
use trainbox_sdk::{
    export_plugin, state, Callback, Config, Context, Event, IntervalStrategy, Logs, TrainingArgs,
};

/// HF's constructor arguments (the `args` of the saved state).
#[derive(Serialize, Deserialize, Clone, Copy)]
struct Args {
    early_stopping_patience: u32,
    early_stopping_threshold: f64,
}

/// What changes during training (the `attributes` of the saved state).
#[derive(Serialize, Deserialize, Default)]
struct Attributes {
    early_stopping_patience_counter: u32,
}

struct EarlyStopping {
    args: Args,
    counter: u32,
    /// `metric_for_best_model` with the `eval_` prefix.
    metric: String,
    greater_is_better: bool,
}

impl Default for EarlyStopping {
    fn default() -> Self {
        EarlyStopping {
            args: Args {
                early_stopping_patience: 1,
                early_stopping_threshold: 0.0,
            },
            counter: 0,
            metric: String::new(),
            greater_is_better: false,
        }
    }
}

impl EarlyStopping {
    /// HF's `check_metric_value`.
    fn check_metric_value(&mut self, best: Option<f64>, value: f64) {
        let improved = match best {
            None => true,
            Some(best) => {
                let better = if self.greater_is_better {
                    value > best
                } else {
                    value < best
                };
                better && (value - best).abs() > self.args.early_stopping_threshold
            }
        };
        self.counter = if improved { 0 } else { self.counter + 1 };
    }
}

impl Callback for EarlyStopping {
    const NAME: &'static str = "early-stopping";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const EVENTS: &'static [Event] = &[Event::TrainBegin, Event::Evaluate];
    const STATEFUL: bool = true;

    fn configure(&mut self, args: &TrainingArgs, config: &Config) -> Result<(), String> {
        config.only(&["early_stopping_patience", "early_stopping_threshold"])?;
        if let Some(p) = config.parse("early_stopping_patience")? {
            self.args.early_stopping_patience = p;
        }
        if let Some(t) = config.parse("early_stopping_threshold")? {
            self.args.early_stopping_threshold = t;
        }
        let Some(metric) = &args.metric_for_best_model else {
            return Err("EarlyStoppingCallback requires metric_for_best_model to be defined: pass --metric_for_best_model".into());
        };
        if args.eval_strategy == IntervalStrategy::No {
            return Err("EarlyStoppingCallback requires an eval strategy: pass --eval_strategy steps or epoch".into());
        }
        self.metric = if metric.starts_with("eval_") {
            metric.clone()
        } else {
            format!("eval_{metric}")
        };
        self.greater_is_better = args.greater_is_better.unwrap_or(!metric.ends_with("loss"));
        Ok(())
    }

    fn on_train_begin(&mut self, cx: &mut Context) {
        if !cx.args.load_best_model_at_end {
            println!(
                "Using EarlyStoppingCallback without load_best_model_at_end=True. Once training is finished, the best model will not be loaded automatically."
            );
        }
    }

    fn on_evaluate(&mut self, cx: &mut Context, metrics: &Logs) {
        let Some(value) = metrics.float(&self.metric) else {
            println!(
                "early stopping required metric_for_best_model, but did not find {} so early stopping is disabled",
                self.metric
            );
            return;
        };
        self.check_metric_value(cx.state.best_metric, value);
        if self.counter >= self.args.early_stopping_patience {
            cx.control.should_training_stop = true;
        }
    }

    fn save_state(&self) -> String {
        state::exportable(
            &self.args,
            &Attributes {
                early_stopping_patience_counter: self.counter,
            },
        )
    }

    fn load_state(&mut self, text: &str) -> Result<(), String> {
        // As HF's `from_state`: the stored constructor arguments win.
        self.args = state::args(text)?;
        self.counter = state::attributes::<Attributes>(text)?.early_stopping_patience_counter;
        Ok(())
    }
}

export_plugin!(EarlyStopping);

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(patience: u32, threshold: f64, greater: bool) -> EarlyStopping {
        EarlyStopping {
            args: Args {
                early_stopping_patience: patience,
                early_stopping_threshold: threshold,
            },
            greater_is_better: greater,
            ..Default::default()
        }
    }

    #[test]
    fn check_metric_value_follows_hf() {
        // The cases of HF's EarlyStoppingCallbackTest.
        let mut cb = callback(3, 0.0, true);
        cb.check_metric_value(Some(0.9), 0.8);
        assert_eq!(cb.counter, 1);
        cb.counter = 2;
        cb.check_metric_value(Some(0.8), 0.95);
        assert_eq!(cb.counter, 0);
        let mut cb = callback(3, 0.1, true);
        cb.check_metric_value(Some(0.8), 0.85);
        assert_eq!(
            cb.counter, 1,
            "an improvement not above the threshold does not count"
        );
        cb.check_metric_value(None, 0.1);
        assert_eq!(cb.counter, 0, "the first evaluation always improves");
    }

    #[test]
    fn state_round_trips_in_hf_shape() {
        let mut cb = callback(5, 0.2, false);
        cb.counter = 2;
        let text = cb.save_state();
        assert!(
            text.contains("\"early_stopping_patience_counter\":2"),
            "{text}"
        );
        let mut fresh = EarlyStopping::default();
        fresh.load_state(&text).unwrap();
        assert_eq!((fresh.counter, fresh.args.early_stopping_patience), (2, 5));
        assert!(fresh.load_state("{\"args\": 1}").is_err());
    }
}
