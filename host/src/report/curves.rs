//! The learning curves of runs as plain data: a series of (step, value)
//! per metric, read from `log_history`, and the panels they are drawn in,
//! each with its scale. Drawing them is `plot.rs`'s business; this file
//! knows no pixels.
//!
//! A run's series, in order: the train loss (HF's `loss` key), `eval_loss`,
//! any other loss, then every other eval metric by name. Speed keys
//! (`eval_runtime`, `eval_samples_per_second`, …) are not metrics and are
//! left out, as are non-finite values and the final `train_loss` (a mean
//! over the run, not a point of the curve).

use crate::state::{LogHistory, Value};
use serde::Serialize;

/// How many decades a loss must span before it is drawn on a log scale.
pub const LOG_SCALE_DECADES: f64 = 1.5;

/// One metric of one run: its value at each step it was logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    /// The key in `log_history` (`loss`, `eval_loss`, `eval_accuracy`).
    pub metric: String,
    /// (global step, value), in the order they were logged.
    pub points: Vec<(u64, f64)>,
}

/// Every plotted series of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunCurves {
    /// The run's name in legends: its output folder's name.
    pub run: String,
    pub series: Vec<Series>,
}

/// Whether a log key is drawn: the train loss and every eval metric but
/// the speed keys.
pub fn is_plotted(key: &str) -> bool {
    const SPEED: [&str; 4] = [
        "_runtime",
        "_samples_per_second",
        "_steps_per_second",
        "_jit_compilation_time",
    ];
    key == "loss" || (key.starts_with("eval_") && !SPEED.iter().any(|s| key.ends_with(s)))
}

/// Whether a metric belongs in the loss panel.
pub fn is_loss(metric: &str) -> bool {
    metric.ends_with("loss")
}

impl RunCurves {
    /// The series of `run` from its `log_history`: an entry's numbers under
    /// [`is_plotted`] keys, at the entry's `step`.
    pub fn from_history(run: &str, history: &LogHistory) -> RunCurves {
        let mut series: Vec<Series> = Vec::new();
        history.for_each(|entry| {
            let Some(step) = entry.get("step").and_then(Value::as_f64) else {
                return;
            };
            for (key, value) in entry.iter() {
                let value = match value {
                    Value::Float(f) => *f,
                    Value::Int(i) => *i as f64,
                    _ => continue,
                };
                if !is_plotted(key) || !value.is_finite() {
                    continue;
                }
                let point = (step as u64, value);
                match series.iter_mut().find(|s| s.metric == key) {
                    Some(s) => s.points.push(point),
                    None => series.push(Series {
                        metric: key.to_string(),
                        points: vec![point],
                    }),
                }
            }
        });
        series.sort_by_key(|s| order_key(&s.metric));
        RunCurves {
            run: run.to_string(),
            series,
        }
    }

    /// The series of `metric`, if the run logged it.
    pub fn get(&self, metric: &str) -> Option<&Series> {
        self.series.iter().find(|s| s.metric == metric)
    }

    /// Whether nothing was logged that could be drawn.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// The train loss, `eval_loss`, other losses, then other metrics by name.
fn order_key(metric: &str) -> (u8, String) {
    let rank = match metric {
        "loss" => 0,
        "eval_loss" => 1,
        m if is_loss(m) => 2,
        _ => 3,
    };
    (rank, metric.to_string())
}

/// The y axis of a panel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Linear from `lo` to `hi`.
    Linear { lo: f64, hi: f64 },
    /// Logarithmic from `lo` to `hi` (both positive).
    Log { lo: f64, hi: f64 },
}

/// One chart of the picture: the metrics it shows, over every run.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// The caption and the y axis label (`loss`, `eval_accuracy`).
    pub title: String,
    pub metrics: Vec<String>,
    pub scale: Scale,
}

/// The panels for `runs`: one for the losses (when any run logged one),
/// then one per other metric, in series order.
pub fn panels(runs: &[RunCurves]) -> Vec<Panel> {
    let mut metrics: Vec<&str> = Vec::new();
    for s in runs.iter().flat_map(|r| &r.series) {
        if !metrics.contains(&s.metric.as_str()) {
            metrics.push(&s.metric);
        }
    }
    metrics.sort_by_key(|m| order_key(m));
    let values = |names: &[&str]| -> Vec<f64> {
        runs.iter()
            .flat_map(|r| &r.series)
            .filter(|s| names.contains(&s.metric.as_str()))
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .collect()
    };
    let (losses, others): (Vec<&str>, Vec<&str>) = metrics.into_iter().partition(|m| is_loss(m));
    let mut out = Vec::new();
    if !losses.is_empty() {
        out.push(Panel {
            title: "loss".into(),
            metrics: losses.iter().map(|m| m.to_string()).collect(),
            scale: loss_scale(&values(&losses)),
        });
    }
    for m in others {
        out.push(Panel {
            title: m.to_string(),
            metrics: vec![m.to_string()],
            scale: metric_scale(&values(&[m])),
        });
    }
    out
}

/// Whether `values` call for a log scale: all positive, spanning more than
/// [`LOG_SCALE_DECADES`] decades.
pub fn wants_log_scale(values: &[f64]) -> bool {
    let (lo, hi) = bounds(values);
    lo > 0.0 && (hi / lo).log10() > LOG_SCALE_DECADES
}

/// The scale of the loss panel: log when the losses span decades, else
/// linear with a margin, from zero when the smallest loss is under half
/// the largest.
pub fn loss_scale(values: &[f64]) -> Scale {
    let (lo, hi) = bounds(values);
    if wants_log_scale(values) {
        return Scale::Log {
            lo: lo / 1.5,
            hi: hi * 1.5,
        };
    }
    let (min, max) = (lo, hi);
    let (lo, hi) = padded(lo, hi);
    // From zero when the losses reach the lower half of the axis anyway.
    let lo = if min >= 0.0 && min < max / 2.0 {
        0.0
    } else {
        lo
    };
    Scale::Linear { lo, hi }
}

/// The scale of a metric's panel: 0 to 1 when every value lies there (an
/// accuracy, an F1), else the values' range with a margin.
pub fn metric_scale(values: &[f64]) -> Scale {
    let (lo, hi) = bounds(values);
    if lo >= 0.0 && hi <= 1.0 {
        return Scale::Linear { lo: 0.0, hi: 1.0 };
    }
    let (lo, hi) = padded(lo, hi);
    Scale::Linear { lo, hi }
}

/// The smallest and largest of `values` ((0, 1) for none).
fn bounds(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

/// `lo..hi` widened by 5% each side; a single value gets a range around it.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        return (lo - d, hi + d);
    }
    (lo - 0.05 * span, hi + 0.05 * span)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Logs;

    fn entry(pairs: &[(&str, Value)]) -> Logs {
        let mut logs = Logs::new();
        for (k, v) in pairs {
            logs.insert(*k, v.clone());
        }
        logs
    }

    fn history() -> Vec<Logs> {
        use Value::{Float, Int};
        vec![
            entry(&[
                ("loss", Float(2.5)),
                ("grad_norm", Float(1.0)),
                ("learning_rate", Float(1e-3)),
                ("epoch", Float(0.5)),
                ("step", Int(4)),
            ]),
            entry(&[
                ("eval_loss", Float(2.0)),
                ("eval_accuracy", Float(0.25)),
                ("eval_runtime", Float(0.1)),
                ("eval_samples_per_second", Float(640.0)),
                ("eval_steps_per_second", Float(80.0)),
                ("epoch", Float(0.5)),
                ("step", Int(4)),
            ]),
            entry(&[("loss", Float(f64::NAN)), ("step", Int(6))]),
            entry(&[
                ("loss", Float(0.5)),
                ("epoch", Float(1.0)),
                ("step", Int(8)),
            ]),
            entry(&[
                ("eval_loss", Float(0.75)),
                ("eval_accuracy", Int(1)),
                ("eval_label", Value::Text("x".into())),
                ("step", Int(8)),
            ]),
            entry(&[
                ("train_runtime", Float(1.5)),
                ("train_loss", Float(1.5)),
                ("step", Int(8)),
            ]),
        ]
    }

    #[test]
    fn series_are_the_losses_and_eval_metrics_at_their_steps() {
        let curves = RunCurves::from_history("run", &history().into());
        let names: Vec<&str> = curves.series.iter().map(|s| s.metric.as_str()).collect();
        assert_eq!(names, ["loss", "eval_loss", "eval_accuracy"]);
        assert_eq!(
            curves.get("loss").unwrap().points,
            [(4, 2.5), (8, 0.5)],
            "a NaN loss is left out, not drawn as a gap at 0"
        );
        assert_eq!(
            curves.get("eval_loss").unwrap().points,
            [(4, 2.0), (8, 0.75)]
        );
        assert_eq!(
            curves.get("eval_accuracy").unwrap().points,
            [(4, 0.25), (8, 1.0)],
            "an int metric counts"
        );
    }

    #[test]
    fn speed_keys_and_run_totals_are_not_curves() {
        for key in [
            "eval_runtime",
            "eval_samples_per_second",
            "eval_steps_per_second",
            "train_loss",
            "train_runtime",
            "grad_norm",
            "learning_rate",
            "epoch",
        ] {
            assert!(!is_plotted(key), "{key}");
        }
        for key in [
            "loss",
            "eval_loss",
            "eval_accuracy",
            "eval_f1",
            "eval_mse_loss",
        ] {
            assert!(is_plotted(key), "{key}");
        }
    }

    #[test]
    fn a_loss_spanning_more_than_one_and_a_half_decades_is_drawn_on_a_log_scale() {
        let cases: &[(&[f64], bool, &str)] = &[
            (&[2.0, 1.0, 0.5], false, "less than a decade"),
            (&[3.0, 0.1], false, "1.48 decades"),
            (&[3.2, 0.1], true, "1.51 decades"),
            (&[5.0, 0.01, 0.002], true, "3.4 decades"),
            (&[5.0, 0.0], false, "a zero cannot be on a log scale"),
            (&[5.0, -0.01], false, "nor a negative value"),
            (&[], false, "no values"),
        ];
        for (values, want, why) in cases {
            assert_eq!(wants_log_scale(values), *want, "{why}: {values:?}");
            let scale = loss_scale(values);
            assert_eq!(
                matches!(scale, Scale::Log { .. }),
                *want,
                "{why}: {scale:?}"
            );
        }
        let Scale::Log { lo, hi } = loss_scale(&[5.0, 0.01]) else {
            panic!("log")
        };
        assert!(lo < 0.01 && hi > 5.0, "every value inside: {lo}..{hi}");
    }

    #[test]
    fn a_linear_loss_starts_at_zero_at_most_and_contains_every_value() {
        let Scale::Linear { lo, hi } = loss_scale(&[0.2, 1.0]) else {
            panic!("linear")
        };
        assert!(lo == 0.0 && hi > 1.0, "{lo}..{hi}");
        let Scale::Linear { lo, hi } = loss_scale(&[1.0, 1.2]) else {
            panic!("linear")
        };
        assert!(
            lo > 0.9 && lo < 1.0 && hi > 1.2,
            "close losses keep their detail: {lo}..{hi}"
        );
        let Scale::Linear { lo, hi } = loss_scale(&[0.01, 0.2]) else {
            panic!("linear")
        };
        assert_eq!(lo, 0.0, "a margin never goes below zero for a loss");
        assert!(hi > 0.2);
        let Scale::Linear { lo, hi } = loss_scale(&[0.5]) else {
            panic!("linear")
        };
        assert!(lo < 0.5 && hi > 0.5, "one value gets a range: {lo}..{hi}");
    }

    #[test]
    fn metrics_within_zero_and_one_are_drawn_from_zero_to_one() {
        assert_eq!(
            metric_scale(&[0.25, 0.9]),
            Scale::Linear { lo: 0.0, hi: 1.0 }
        );
        let Scale::Linear { lo, hi } = metric_scale(&[3.0, 12.0]) else {
            panic!("linear")
        };
        assert!(lo < 3.0 && hi > 12.0, "{lo}..{hi}");
    }

    #[test]
    fn panels_hold_the_losses_together_and_one_metric_each() {
        let a = RunCurves::from_history("a", &history().into());
        let mut b = a.clone();
        b.run = "b".into();
        b.series.push(Series {
            metric: "eval_f1".into(),
            points: vec![(8, 0.5)],
        });
        let panels = panels(&[a, b]);
        let titles: Vec<&str> = panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["loss", "eval_accuracy", "eval_f1"]);
        assert_eq!(panels[0].metrics, ["loss", "eval_loss"]);
        let Scale::Linear { lo, hi } = panels[0].scale else {
            panic!("linear: {:?}", panels[0].scale)
        };
        assert_eq!(lo, 0.0, "0.5 is under half of 2.5");
        assert!((hi - 2.6).abs() < 1e-9, "2.5 and a 5% margin: {hi}");
        assert_eq!(panels[1].scale, Scale::Linear { lo: 0.0, hi: 1.0 });
    }
}
