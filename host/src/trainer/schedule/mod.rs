//! Learning-rate schedules, as HF's `get_scheduler` (transformers 5.24)
//! builds each `SchedulerType` with `--lr_scheduler_kwargs`: the `LambdaLR`
//! ones (`lambdas.rs`) give `base_lr * factor(step)` at every optimizer
//! step, bit for bit HF's; `reduce_lr_on_plateau` and `greedy`
//! (`plateau.rs`) step on the evaluation metric instead and ignore warm-up,
//! as in HF.

mod kwargs;
mod lambdas;
mod plateau;

use crate::args::SchedulerType;
use crate::pyjson::{py_float, Json};
use kwargs::Kwargs;
use lambdas::{Curve, Lambda};
use plateau::{Greedy, OnMetric, Plateau, GREEDY_KEYS, PLATEAU_KEYS};

/// The checkpoint file of a metric-stepped schedule's state.
pub const SCHEDULER_FILE: &str = "scheduler.json";

/// HF's parameter groups: with weight decay and without, always two.
const GROUPS: usize = 2;

/// A learning-rate schedule of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: SchedulerType,
    base_lr: f64,
    warmup: u64,
    total: u64,
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Lambda(Lambda),
    OnMetric(OnMetric),
}

impl Schedule {
    /// The schedule `kind` with `kwargs` for a run of `total` optimizer
    /// steps, `warmup` of them warming up, from the learning rate
    /// `base_lr`; errors are those HF's functions raise, naming the flag.
    pub fn new(
        kind: SchedulerType,
        base_lr: f64,
        warmup: u64,
        total: u64,
        kwargs: Option<&Json>,
    ) -> Result<Schedule, String> {
        use SchedulerType as S;
        let name = kind.as_str();
        let takes: &[&str] = match kind {
            // Called without the kwargs by HF's get_scheduler.
            S::Constant | S::ConstantWithWarmup => {
                if kwargs
                    .and_then(Json::as_object)
                    .is_some_and(|m| !m.is_empty())
                {
                    crate::ui::warn(&format!(
                        "--lr_scheduler_kwargs is not used by the {name} schedule (as in HF)"
                    ));
                }
                let lambda = if kind == S::Constant {
                    Lambda::Constant
                } else {
                    Lambda::ConstantWithWarmup
                };
                return Ok(Schedule::of(
                    kind,
                    base_lr,
                    warmup,
                    total,
                    Shape::Lambda(lambda),
                ));
            }
            S::Linear => &[],
            S::Cosine | S::CosineWithRestarts => &["num_cycles"],
            S::Polynomial => &["lr_end", "power"],
            S::InverseSqrt => &["timescale"],
            S::ReduceLrOnPlateau => PLATEAU_KEYS,
            S::Greedy => GREEDY_KEYS,
            S::CosineWithMinLr => &["num_cycles", "min_lr", "min_lr_rate"],
            S::CosineWarmupWithMinLr => &["num_cycles", "min_lr", "min_lr_rate", "warmup_lr_rate"],
            S::WarmupStableDecay => &[
                "num_decay_steps",
                "num_stable_steps",
                "warmup_type",
                "decay_type",
                "min_lr_ratio",
                "num_cycles",
            ],
        };
        let k = Kwargs::new(name, kwargs, takes)?;
        let lambda = match kind {
            S::Constant | S::ConstantWithWarmup => unreachable!("returned above"),
            S::ReduceLrOnPlateau => {
                let p = Plateau::new(&k, base_lr, GROUPS)?;
                return Ok(Schedule::of(
                    kind,
                    base_lr,
                    warmup,
                    total,
                    Shape::OnMetric(OnMetric::Plateau(p)),
                ));
            }
            S::Greedy => {
                let g = Greedy::new(&k, base_lr, GROUPS)?;
                return Ok(Schedule::of(
                    kind,
                    base_lr,
                    warmup,
                    total,
                    Shape::OnMetric(OnMetric::Greedy(g)),
                ));
            }
            S::Linear => Lambda::Linear,
            S::Cosine => Lambda::Cosine {
                num_cycles: k.number_or("num_cycles", 0.5)?,
            },
            S::CosineWithRestarts => Lambda::CosineWithRestarts {
                num_cycles: k.number_or("num_cycles", 1.0)?,
            },
            S::Polynomial => {
                let lr_end = k.number_or("lr_end", 1e-7)?;
                // Python's `not (lr_init > lr_end)`: a NaN fails too.
                if base_lr.partial_cmp(&lr_end) != Some(std::cmp::Ordering::Greater) {
                    return Err(format!(
                        "--lr_scheduler_kwargs: lr_end ({}) must be smaller than initial lr ({})",
                        py_float(lr_end),
                        py_float(base_lr)
                    ));
                }
                Lambda::Polynomial {
                    lr_end,
                    power: k.number_or("power", 1.0)?,
                    lr_init: base_lr,
                }
            }
            S::InverseSqrt => {
                let timescale = match k.number("timescale")? {
                    Some(t) => t,
                    None if warmup > 0 => warmup as f64,
                    None => 10_000.0,
                };
                if timescale == 0.0 {
                    return Err(
                        "--lr_scheduler_kwargs: timescale must not be 0 (Python: division by zero)"
                            .into(),
                    );
                }
                Lambda::InverseSqrt { timescale }
            }
            S::CosineWithMinLr | S::CosineWarmupWithMinLr => {
                let num_cycles = k.number_or("num_cycles", 0.5)?;
                let min_lr_rate = match (k.number("min_lr")?, k.number("min_lr_rate")?) {
                    (Some(_), Some(_)) => {
                        return Err("--lr_scheduler_kwargs: Only one of min_lr or min_lr_rate should be set".into())
                    }
                    (Some(min_lr), None) => min_lr / base_lr,
                    (None, Some(rate)) => rate,
                    (None, None) => {
                        return Err(format!(
                            "--lr_scheduler_kwargs: One of min_lr or min_lr_rate should be set through the `lr_scheduler_kwargs` (e.g. '{{\"min_lr_rate\": 0.1}}') for {name}"
                        ))
                    }
                };
                if kind == S::CosineWithMinLr {
                    Lambda::CosineWithMinLr {
                        num_cycles,
                        min_lr_rate,
                    }
                } else {
                    Lambda::CosineWarmupWithMinLr {
                        num_cycles,
                        min_lr_rate,
                        warmup_lr_rate: k.number("warmup_lr_rate")?,
                    }
                }
            }
            S::WarmupStableDecay => {
                let Some(num_decay_steps) = k.count("num_decay_steps")? else {
                    return Err("--lr_scheduler_kwargs: warmup_stable_decay needs num_decay_steps (e.g. '{\"num_decay_steps\": 100}')".into());
                };
                let num_stable_steps = match k.count("num_stable_steps")? {
                    Some(s) => {
                        crate::ui::warn("Both num_training_steps and num_stable_steps are specified. num_stable_steps will be used.");
                        s
                    }
                    None => total as f64 - warmup as f64 - num_decay_steps,
                };
                let curve = |key: &str| -> Result<Curve, String> {
                    let text = k.text(
                        key,
                        if key == "warmup_type" {
                            "linear"
                        } else {
                            "cosine"
                        },
                    )?;
                    Curve::parse(text).ok_or_else(|| {
                        let which = key.trim_end_matches("_type");
                        format!("--lr_scheduler_kwargs: Unknown {which} type: {text}, expected 'linear', 'cosine' or '1-sqrt'")
                    })
                };
                Lambda::WarmupStableDecay {
                    num_stable_steps,
                    num_decay_steps,
                    warmup_type: curve("warmup_type")?,
                    decay_type: curve("decay_type")?,
                    min_lr_ratio: k.number_or("min_lr_ratio", 0.0)?,
                    num_cycles: k.number_or("num_cycles", 0.5)?,
                }
            }
        };
        Ok(Schedule::of(
            kind,
            base_lr,
            warmup,
            total,
            Shape::Lambda(lambda),
        ))
    }

    fn of(kind: SchedulerType, base_lr: f64, warmup: u64, total: u64, shape: Shape) -> Schedule {
        Schedule {
            kind,
            base_lr,
            warmup,
            total,
            shape,
        }
    }

    /// The schedule's type.
    pub fn kind(&self) -> SchedulerType {
        self.kind
    }

    /// The learning rate of the update after `step` updates: `LambdaLR`'s
    /// `base_lr * lr_lambda(step)`, or the metric-stepped schedule's
    /// current rate.
    pub fn lr(&self, step: u64) -> f64 {
        match &self.shape {
            Shape::Lambda(l) => self.base_lr * l.factor(step, self.warmup, self.total),
            Shape::OnMetric(m) => m.lr(),
        }
    }

    /// Whether the schedule steps on the evaluation metric.
    pub fn steps_on_metric(&self) -> bool {
        matches!(self.shape, Shape::OnMetric(_))
    }

    /// Steps a metric-stepped schedule on `metric` (HF's `lr_scheduler.step(
    /// metrics[metric_for_best_model])` after an evaluation); the others
    /// ignore it.
    pub fn step_on_metric(&mut self, metric: f64) {
        if let Shape::OnMetric(m) = &mut self.shape {
            m.step(metric);
        }
    }

    /// The state a checkpoint keeps (metric-stepped schedules only; the
    /// others follow from the optimizer's step count).
    pub fn state(&self) -> Option<Json> {
        match &self.shape {
            Shape::OnMetric(m) => {
                let mut state = m.state();
                if let Json::Object(map) = &mut state {
                    map.insert(
                        "lr_scheduler_type".into(),
                        Json::Str(self.kind.as_str().into()),
                    );
                }
                Some(state)
            }
            Shape::Lambda(_) => None,
        }
    }

    /// Restores what `state` wrote.
    pub fn load_state(&mut self, state: &Json) -> Result<(), String> {
        let stored = state
            .as_object()
            .and_then(|o| o.get("lr_scheduler_type"))
            .and_then(Json::as_str);
        if stored != Some(self.kind.as_str()) {
            return Err(format!(
                "holds the state of a {} schedule, and this run has --lr_scheduler_type {}",
                stored.unwrap_or("unknown"),
                self.kind
            ));
        }
        match &mut self.shape {
            Shape::OnMetric(m) => m.load(state),
            Shape::Lambda(_) => Ok(()),
        }
    }
}

impl super::Trainer {
    /// HF's `Trainer._evaluate` after an evaluation of
    /// `_maybe_log_save_evaluate`: a metric-stepped schedule steps on
    /// `metrics[metric_for_best_model]` (with its `eval_` prefix).
    pub(super) fn step_schedule_on_metric(
        &mut self,
        schedule: &mut Schedule,
        metrics: &crate::state::Logs,
    ) -> anyhow::Result<()> {
        if !schedule.steps_on_metric() {
            return Ok(());
        }
        let key = self
            .args
            .best_metric_key()
            .unwrap_or_else(|| "eval_loss".into());
        let Some(value) = metrics.get(&key).and_then(crate::state::Value::as_f64) else {
            let available: Vec<String> = metrics.0.iter().map(|(k, _)| format!("'{k}'")).collect();
            anyhow::bail!(
                "The `metric_for_best_model` training argument is set to '{key}', which is not found in the evaluation metrics. The available evaluation metrics are: [{}]. Consider changing --metric_for_best_model (the {} schedule steps on it)",
                available.join(", "),
                schedule.kind()
            );
        };
        schedule.step_on_metric(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lrs(kind: SchedulerType, warmup: u64, total: u64, kwargs: &str) -> Vec<f64> {
        let kwargs = (!kwargs.is_empty()).then(|| Json::parse(kwargs).unwrap());
        let s = Schedule::new(kind, 1.0, warmup, total, kwargs.as_ref()).unwrap();
        (0..=total).map(|step| s.lr(step)).collect()
    }

    #[test]
    fn linear_warms_up_then_decays_to_zero() {
        let f = lrs(SchedulerType::Linear, 2, 10, "");
        assert_eq!([f[0], f[1], f[2], f[6], f[10]], [0.0, 0.5, 1.0, 0.5, 0.0]);
    }

    #[test]
    fn cosine_and_constants() {
        assert!((lrs(SchedulerType::Cosine, 0, 10, "")[5] - 0.5).abs() < 1e-12);
        assert_eq!(lrs(SchedulerType::Cosine, 0, 10, "")[10], 0.0);
        assert_eq!(lrs(SchedulerType::Constant, 5, 10, "")[0], 1.0);
        assert_eq!(lrs(SchedulerType::ConstantWithWarmup, 4, 10, "")[1], 0.25);
        assert_eq!(lrs(SchedulerType::ConstantWithWarmup, 4, 10, "")[7], 1.0);
    }

    #[test]
    fn restarts_and_warmup_stable_decay() {
        let f = lrs(
            SchedulerType::CosineWithRestarts,
            0,
            10,
            r#"{"num_cycles": 2}"#,
        );
        assert_eq!(f[0], 1.0);
        assert_eq!(f[5], 1.0, "the second cycle restarts at the top");
        let f = lrs(
            SchedulerType::WarmupStableDecay,
            2,
            10,
            r#"{"num_decay_steps": 4, "decay_type": "linear"}"#,
        );
        assert_eq!(
            &f[..],
            &[0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
        );
    }

    #[test]
    fn bad_kwargs_are_refused_with_the_schedules_arguments() {
        let kw = Json::parse(r#"{"num_cycle": 2}"#).unwrap();
        let err = Schedule::new(SchedulerType::Cosine, 1.0, 0, 10, Some(&kw)).unwrap_err();
        assert!(
            err.contains("takes no argument \"num_cycle\" (it takes num_cycles)"),
            "{err}"
        );
        let err = Schedule::new(SchedulerType::CosineWithMinLr, 1.0, 0, 10, None).unwrap_err();
        assert!(err.contains("One of min_lr or min_lr_rate"), "{err}");
        let kw = Json::parse(r#"{"lr_end": 2.0}"#).unwrap();
        let err = Schedule::new(SchedulerType::Polynomial, 1.0, 0, 10, Some(&kw)).unwrap_err();
        assert!(
            err.contains("lr_end (2.0) must be smaller than initial lr (1.0)"),
            "{err}"
        );
    }

    #[test]
    fn plateau_reduces_after_patience_and_its_state_resumes() {
        let kw = Json::parse(r#"{"patience": 1, "factor": 0.5}"#).unwrap();
        let mut s = Schedule::new(SchedulerType::ReduceLrOnPlateau, 0.1, 3, 10, Some(&kw)).unwrap();
        assert_eq!(s.lr(0), 0.1, "no warm-up");
        for metric in [1.0, 1.0] {
            s.step_on_metric(metric);
        }
        assert_eq!(s.lr(5), 0.1);
        let mut resumed =
            Schedule::new(SchedulerType::ReduceLrOnPlateau, 0.1, 3, 10, Some(&kw)).unwrap();
        resumed.load_state(&s.state().unwrap()).unwrap();
        s.step_on_metric(1.0);
        resumed.step_on_metric(1.0);
        assert_eq!(s.lr(6), 0.05);
        assert_eq!(s, resumed);
    }
}
