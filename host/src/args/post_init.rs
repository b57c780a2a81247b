//! HF's `TrainingArguments.__post_init__`: the checks of the arguments,
//! with HF's wording and the flag named, the values derived from others
//! (`eval_steps` from `logging_steps`, the best-model metric and its
//! direction, `report_to`), and how the three step intervals are held (an
//! int or a float, as HF casts them).

use super::{IntervalStrategy, SaveStrategy, TrainingArguments};
use trainbox_pyformat::args as hf_args;

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
        if !self.do_eval && self.eval_strategy != IntervalStrategy::No {
            self.do_eval = true;
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
        if self.metric_for_best_model.is_none()
            && (self.load_best_model_at_end || self.lr_scheduler_type.steps_on_metric())
        {
            self.metric_for_best_model = Some("loss".into());
        }
        if self.lr_scheduler_type.steps_on_metric() && self.eval_strategy == IntervalStrategy::No {
            return Err(format!(
                "lr_scheduler_type {} requires an eval strategy",
                self.lr_scheduler_type
            ));
        }
        self.optim.algorithm()?;
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
        if let Some(backend) = &self.ddp_backend {
            // HF's choices are torch's backends; trainbox links gloo and nccl.
            if !["gloo", "nccl"].contains(&backend.as_str()) {
                return Err(format!(
                    "--ddp_backend {backend}: trainbox runs gloo (CPU, or CUDA through host copies) or nccl (CUDA)"
                ));
            }
        }
        if self.ddp_timeout == 0 {
            return Err(
                "--ddp_timeout must be a positive number of seconds (HF's default: 1800)".into(),
            );
        }
        self.finish_loop_args()?;
        // HF's `_validate_args`; the checks that need the device (bf16
        // support, TF32) are in the device module.
        if self.fp16 && self.bf16 {
            return Err(
                "At most one of fp16 and bf16 can be True, but not both (--fp16, --bf16)".into(),
            );
        }
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

    /// The argument's name, from the shared table's list (in this order).
    pub fn flag(self) -> &'static str {
        hf_args::INTERVALS[self as usize]
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
pub(super) fn finished(
    f: impl FnOnce(&mut TrainingArguments),
) -> Result<TrainingArguments, String> {
    let mut a = TrainingArguments::default();
    f(&mut a);
    a.finish().map(|_| a)
}

/// The values `--include_num_input_tokens_seen` takes (after HF maps
/// `true` to `all` and `false` to `no`).
pub const TOKENS_SEEN: [&str; 3] = ["all", "non_padding", "no"];

impl TrainingArguments {
    /// The checks and normalisations of the loop's arguments (label
    /// smoothing, workers, token counting, seeds, cache emptying), as HF's
    /// `__post_init__` and `_validate_args` make them.
    fn finish_loop_args(&mut self) -> Result<(), String> {
        // HF: a bool becomes "all" or "no".
        let tokens = self.include_num_input_tokens_seen.to_ascii_lowercase();
        self.include_num_input_tokens_seen = match tokens.as_str() {
            "true" => "all".into(),
            "false" => "no".into(),
            t if TOKENS_SEEN.contains(&t) => t.into(),
            // trainbox's own check: HF counts every token for any other text.
            t => {
                return Err(format!(
                    "--include_num_input_tokens_seen {t}: expected all, non_padding or no (or true/false)"
                ))
            }
        };
        if let Some(steps) = self.torch_empty_cache_steps {
            if steps == 0 {
                return Err(format!(
                    "`torch_empty_cache_steps` must be an integer bigger than 0, got {steps}. (--torch_empty_cache_steps)"
                ));
            }
        }
        if self.dataloader_num_workers == 0 && self.dataloader_prefetch_factor.is_some() {
            return Err("--dataloader_prefetch_factor can only be set when data is loaded in a different process, i.e. when --dataloader_num_workers > 0.".into());
        }
        // trainbox's own checks, where HF fails later (a division by zero)
        // or trains on a meaningless target.
        if self.dataloader_prefetch_factor == Some(0) {
            return Err("--dataloader_prefetch_factor must be at least 1".into());
        }
        if self.eval_accumulation_steps == Some(0) {
            return Err(
                "--eval_accumulation_steps must be at least 1 (unset: accumulate to the end)"
                    .into(),
            );
        }
        let eps = self.label_smoothing_factor;
        if !(0.0..=1.0).contains(&eps) {
            return Err(format!(
                "--label_smoothing_factor must lie in [0, 1] (0: no smoothing), got {eps}"
            ));
        }
        Ok(())
    }

    /// The seed of the data order: `--data_seed`, else `--seed` (HF's
    /// sampler seed).
    pub fn sampler_seed(&self) -> u64 {
        self.data_seed.unwrap_or(self.seed)
    }

    /// Batches each worker builds ahead: `--dataloader_prefetch_factor`,
    /// else torch's default of 2.
    pub fn prefetch_factor(&self) -> usize {
        self.dataloader_prefetch_factor.unwrap_or(2) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn loop_args_are_checked_and_normalised_as_hf() {
        let a = finished(|a| a.include_num_input_tokens_seen = "true".into()).unwrap();
        assert_eq!(a.include_num_input_tokens_seen, "all");
        let a = finished(|a| a.include_num_input_tokens_seen = "False".into()).unwrap();
        assert_eq!(a.include_num_input_tokens_seen, "no");
        let err = finished(|a| a.include_num_input_tokens_seen = "some".into()).unwrap_err();
        assert!(err.contains("all, non_padding or no"), "{err}");
        let err = finished(|a| a.dataloader_prefetch_factor = Some(2)).unwrap_err();
        assert!(err.contains("--dataloader_num_workers > 0"), "{err}");
        let a = finished(|a| {
            a.dataloader_num_workers = 2;
            a.dataloader_prefetch_factor = Some(3);
        })
        .unwrap();
        assert_eq!(a.prefetch_factor(), 3);
        let err = finished(|a| a.torch_empty_cache_steps = Some(0)).unwrap_err();
        assert!(err.contains("bigger than 0"), "{err}");
        let err = finished(|a| a.eval_accumulation_steps = Some(0)).unwrap_err();
        assert!(err.contains("--eval_accumulation_steps"), "{err}");
        let err = finished(|a| a.label_smoothing_factor = 1.5).unwrap_err();
        assert!(err.contains("--label_smoothing_factor"), "{err}");
        let a = finished(|a| a.seed = 7).unwrap();
        assert_eq!(a.sampler_seed(), 7);
        let a = finished(|a| a.data_seed = Some(9)).unwrap();
        assert_eq!((a.sampler_seed(), a.seed), (9, 42));
    }
}
