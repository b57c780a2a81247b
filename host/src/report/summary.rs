//! The summary of a finished run, from its `TrainerState`: how far it
//! went, its final and best metric with their steps, where the final model
//! and the best checkpoint are, its wall time and speed. Printed at the end
//! of `trainbox train` ([`Summary::lines`]) and as one row per run by
//! `trainbox report` ([`Summary::table`]).

use super::curves::{RunCurves, Series};
use super::{run_name, SVG_FILE};
use crate::state::{TrainerState, Value};
use std::path::{Path, PathBuf};

/// The files a finished run leaves in `output_dir` as its model: the
/// weights (the trainer's `model.safetensors`) and, for a `--model` run,
/// the trained TorchScript module (`model.pt`).
pub const FINAL_MODEL_FILES: [&str; 2] = ["model.safetensors", "model.pt"];

/// The metric a run is judged by: its last value and its best, each with
/// its step.
#[derive(Debug, Clone, PartialEq)]
pub struct BestMetric {
    /// The key in `log_history` (`eval_loss`, `eval_accuracy`).
    pub metric: String,
    /// (step, value) of its last evaluation.
    pub last: (u64, f64),
    /// (step, value) of its best evaluation.
    pub best: (u64, f64),
}

/// What a person wants to know when a run ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub run: String,
    pub output_dir: PathBuf,
    /// `global_step` and `max_steps`: fewer steps than planned means the
    /// run was stopped early.
    pub steps: u64,
    pub max_steps: u64,
    pub epoch: f64,
    /// (step, value) of the last logged train loss.
    pub train_loss: Option<(u64, f64)>,
    /// HF's `train_loss`: the mean over the run.
    pub mean_train_loss: Option<f64>,
    pub metric: Option<BestMetric>,
    /// `best_model_checkpoint`, as the run wrote it.
    pub best_checkpoint: Option<String>,
    /// The [`FINAL_MODEL_FILES`] present in `output_dir`.
    pub model_files: Vec<PathBuf>,
    /// `train_runtime` in seconds.
    pub wall_secs: Option<f64>,
    pub samples_per_second: Option<f64>,
    /// The learning curves' SVG, when written.
    pub curves: Option<PathBuf>,
}

impl Summary {
    /// The summary of the run in `output_dir` whose state is `state`.
    /// `metric` is the key the run compares checkpoints by (the `eval_`
    /// form of `metric_for_best_model`); without one, `eval_loss` when
    /// logged. `greater_is_better` defaults to HF's: false for a loss.
    pub fn of(
        state: &TrainerState,
        output_dir: &Path,
        metric: Option<&str>,
        greater_is_better: Option<bool>,
    ) -> Summary {
        let curves = RunCurves::from_history("", &state.log_history);
        let final_entry = state
            .log_history
            .rfind(|e| e.get("train_runtime").is_some());
        let number = |key: &str| {
            final_entry
                .as_ref()
                .and_then(|e| e.get(key))
                .and_then(Value::as_f64)
        };
        let tracked = metric.is_some();
        let metric = metric
            .map(str::to_string)
            .or_else(|| curves.get("eval_loss").map(|_| "eval_loss".to_string()));
        let metric = metric.and_then(|m| {
            let series = curves.get(&m)?;
            let greater = greater_is_better.unwrap_or(!m.ends_with("loss"));
            // The state's pointer is the truth when the run tracked this metric.
            let best = match (tracked, state.best_global_step, state.best_metric) {
                (true, Some(step), Some(value)) => (step, value),
                _ => best_of(series, greater)?,
            };
            Some(BestMetric {
                metric: m,
                last: *series.points.last()?,
                best,
            })
        });
        let svg = output_dir.join(SVG_FILE);
        Summary {
            run: run_name(output_dir),
            output_dir: output_dir.to_path_buf(),
            steps: state.global_step,
            max_steps: state.max_steps,
            epoch: state.epoch,
            train_loss: curves.get("loss").and_then(|s| s.points.last().copied()),
            mean_train_loss: number("train_loss"),
            metric,
            best_checkpoint: state.best_model_checkpoint.clone(),
            model_files: FINAL_MODEL_FILES
                .iter()
                .map(|f| output_dir.join(f))
                .filter(|p| p.is_file())
                .collect(),
            wall_secs: number("train_runtime"),
            samples_per_second: number("train_samples_per_second"),
            curves: svg.is_file().then_some(svg),
        }
    }

    /// The end-of-run lines: a headline, then one labelled line per fact.
    pub fn lines(&self) -> Vec<String> {
        let mut head = if self.steps < self.max_steps {
            format!(
                "trainbox: trained {} of {} steps (stopped early, epoch {})",
                self.steps,
                self.max_steps,
                num(self.epoch)
            )
        } else {
            format!(
                "trainbox: trained {} steps ({} epochs)",
                self.steps,
                num(self.epoch)
            )
        };
        if let Some(secs) = self.wall_secs {
            head += &format!(" in {}", format_duration(secs));
        }
        if let Some(speed) = self.samples_per_second {
            head += &format!(", {} samples/s", num(speed));
        }
        let mut rows: Vec<(String, String)> = Vec::new();
        if let Some((step, loss)) = self.train_loss {
            let mut text = format!("{} at step {step}", num(loss));
            if let Some(mean) = self.mean_train_loss {
                text += &format!(" ({} over the run)", num(mean));
            }
            rows.push(("train loss".into(), text));
        }
        if let Some(m) = &self.metric {
            rows.push((
                m.metric.clone(),
                format!(
                    "{} at step {}, best {} at step {}",
                    num(m.last.1),
                    m.last.0,
                    num(m.best.1),
                    m.best.0
                ),
            ));
        }
        if !self.model_files.is_empty() {
            let files: Vec<String> = self
                .model_files
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            rows.push(("final model".into(), files.join(", ")));
        }
        if let Some(best) = &self.best_checkpoint {
            rows.push(("best checkpoint".into(), best.clone()));
        }
        if let Some(svg) = &self.curves {
            rows.push((
                "learning curves".into(),
                format!("{} (and .png)", svg.display()),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        std::iter::once(head)
            .chain(rows.iter().map(|(k, v)| format!("  {k:<width$}  {v}")))
            .collect()
    }

    /// `trainbox report`'s table: a header and one row per run (steps,
    /// final train loss, best metric at its step, best checkpoint, wall
    /// time); `-` where a run has no such value.
    pub fn table(summaries: &[Summary]) -> Vec<String> {
        let header = [
            "run",
            "steps",
            "train loss",
            "best metric",
            "best checkpoint",
            "wall time",
        ];
        let rows: Vec<[String; 6]> = summaries.iter().map(Summary::row).collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| -> String {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                // Numbers right-aligned, text left-aligned.
                if i == 1 || i == 2 {
                    out += &" ".repeat(pad);
                    out += cell;
                } else {
                    out += cell;
                    out += &" ".repeat(pad);
                }
                out += "  ";
            }
            out.trim_end().to_string()
        };
        std::iter::once(line(&header.map(String::from)))
            .chain(rows.iter().map(|r| line(r)))
            .collect()
    }

    fn row(&self) -> [String; 6] {
        let dash = || "-".to_string();
        let steps = if self.steps < self.max_steps {
            format!("{}/{}", self.steps, self.max_steps)
        } else {
            self.steps.to_string()
        };
        [
            self.run.clone(),
            steps,
            self.train_loss.map_or_else(dash, |(_, v)| num(v)),
            self.metric.as_ref().map_or_else(dash, |m| {
                format!("{} {} @ {}", m.metric, num(m.best.1), m.best.0)
            }),
            self.best_checkpoint.as_ref().map_or_else(dash, |b| {
                Path::new(b)
                    .file_name()
                    .map_or(b.clone(), |n| n.to_string_lossy().into_owned())
            }),
            self.wall_secs.map_or_else(dash, format_duration),
        ]
    }
}

/// The best point of a series: the largest when `greater`, else the
/// smallest; the first of equals, as HF keeps the earlier checkpoint.
fn best_of(series: &Series, greater: bool) -> Option<(u64, f64)> {
    series.points.iter().copied().reduce(|best, p| {
        let better = if greater { p.1 > best.1 } else { p.1 < best.1 };
        if better {
            p
        } else {
            best
        }
    })
}

/// A number to four significant digits, without trailing zeros.
fn num(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// A wall time: `12.3 s`, `3 min 05 s`, `2 h 04 min`.
pub fn format_duration(secs: f64) -> String {
    if secs < 60.0 {
        return format!("{secs:.1} s");
    }
    let s = secs.round() as u64;
    if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, s / 60 % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Logs;

    fn entry(pairs: &[(&str, f64)]) -> Logs {
        let mut logs = Logs::new();
        for (k, v) in pairs {
            let value = if *k == "step" {
                Value::Int(*v as i64)
            } else {
                Value::Float(*v)
            };
            logs.insert(*k, value);
        }
        logs
    }

    fn state() -> TrainerState {
        let mut s = TrainerState {
            global_step: 20,
            max_steps: 20,
            epoch: 2.0,
            ..Default::default()
        };
        s.log_history = crate::state::LogHistory::from(vec![
            entry(&[("loss", 1.0), ("step", 10.0)]),
            entry(&[("eval_loss", 0.8), ("eval_accuracy", 0.5), ("step", 10.0)]),
            entry(&[("loss", 0.5), ("step", 20.0)]),
            entry(&[("eval_loss", 0.9), ("eval_accuracy", 0.75), ("step", 20.0)]),
            entry(&[
                ("train_runtime", 75.0),
                ("train_samples_per_second", 1234.5678),
                ("train_loss", 0.75),
                ("step", 20.0),
            ]),
        ]);
        s
    }

    #[test]
    fn the_summary_names_final_and_best_metric_with_their_steps() {
        let dir = Path::new("/nonexistent/runs/demo");
        let s = Summary::of(&state(), dir, None, None);
        assert_eq!(s.run, "demo");
        assert_eq!(s.train_loss, Some((20, 0.5)));
        assert_eq!(s.mean_train_loss, Some(0.75));
        assert_eq!(
            s.metric,
            Some(BestMetric {
                metric: "eval_loss".into(),
                last: (20, 0.9),
                best: (10, 0.8),
            }),
            "eval_loss by default, lower is better"
        );
        assert_eq!(
            (s.wall_secs, s.samples_per_second),
            (Some(75.0), Some(1234.5678))
        );
        let acc = Summary::of(&state(), dir, Some("eval_accuracy"), Some(true));
        let m = acc.metric.unwrap();
        assert_eq!((m.last, m.best), ((20, 0.75), (20, 0.75)));
    }

    #[test]
    fn a_tracked_metric_takes_the_states_best_pointer() {
        let mut st = state();
        st.best_global_step = Some(10);
        st.best_metric = Some(0.8);
        st.best_model_checkpoint = Some("runs/demo/checkpoint-10".into());
        let s = Summary::of(&st, Path::new("runs/demo"), Some("eval_loss"), Some(false));
        assert_eq!(s.metric.as_ref().unwrap().best, (10, 0.8));
        let lines = s.lines();
        assert_eq!(
            lines[0],
            "trainbox: trained 20 steps (2 epochs) in 1 min 15 s, 1235 samples/s"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.trim_start().starts_with("best checkpoint")
                    && l.ends_with("runs/demo/checkpoint-10")),
            "{lines:#?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("eval_loss")
                    && l.ends_with("0.9 at step 20, best 0.8 at step 10")),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_run_stopped_early_says_so_and_the_table_shows_its_steps() {
        let mut st = state();
        st.max_steps = 40;
        let s = Summary::of(&st, Path::new("runs/demo"), None, None);
        assert!(s.lines()[0].contains("trained 20 of 40 steps (stopped early"));
        let table = Summary::table(&[s]);
        assert_eq!(table.len(), 2);
        let cells: Vec<&str> = table[1].split_whitespace().collect();
        assert_eq!(cells[..3], ["demo", "20/40", "0.5"], "{table:#?}");
        assert!(table[1].contains("eval_loss 0.8 @ 10"), "{table:#?}");
        assert!(table[1].ends_with("1 min 15 s"), "{table:#?}");
    }

    #[test]
    fn numbers_and_durations_are_short() {
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(0.00001234), "1.234e-5");
        assert_eq!(format_duration(12.34), "12.3 s");
        assert_eq!(format_duration(3725.0), "1 h 02 min");
    }
}
