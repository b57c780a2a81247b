//! Hugging Face's training loop (transformers 5.24, spec §5.4-5.7 and the
//! `_get_expected_events` algorithm of §6.1, extended to gradient
//! accumulation, epoch strategies, delays, ratios and stops), written
//! independently of the host as the oracle the traces are compared with.
//!
//! Each expected line carries the event, `global_step`, `epoch`,
//! `max_steps`, the five control flags as the recorder (placed right after
//! `DefaultFlowCallback`) receives them, and the sorted log or metric keys.

use serde_json::Value;

/// A training configuration of the regression task, in HF terms.
#[derive(Debug, Clone)]
pub struct Hf {
    pub n_train: usize,
    pub n_eval: usize,
    pub batch_size: usize,
    pub ga: usize,
    pub epochs: f64,
    pub max_steps: i64,
    pub logging_strategy: &'static str,
    pub logging_steps: f64,
    pub logging_first_step: bool,
    pub eval_strategy: &'static str,
    pub eval_steps: Option<f64>,
    pub eval_delay: f64,
    pub eval_on_start: bool,
    pub save_strategy: &'static str,
    pub save_steps: f64,
    /// The stopper plugin (loaded after the recorder) requests a stop at
    /// `on_step_end` from this step on.
    pub stop_at: Option<u64>,
    /// The stopper requests an epoch stop at this step.
    pub epoch_stop_at: Option<u64>,
}

impl Default for Hf {
    fn default() -> Self {
        Hf {
            n_train: 64,
            n_eval: 64,
            batch_size: 8,
            ga: 1,
            epochs: 3.0,
            max_steps: -1,
            logging_strategy: "steps",
            logging_steps: 500.0,
            logging_first_step: false,
            eval_strategy: "no",
            eval_steps: None,
            eval_delay: 0.0,
            eval_on_start: false,
            save_strategy: "steps",
            save_steps: 500.0,
            stop_at: None,
            epoch_stop_at: None,
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Control {
    training_stop: bool,
    epoch_stop: bool,
    save: bool,
    evaluate: bool,
    log: bool,
}

const TRAIN_LOG_KEYS: &[&str] = &["epoch", "grad_norm", "learning_rate", "loss"];
const EVAL_KEYS: &[&str] = &[
    "epoch",
    "eval_loss",
    "eval_runtime",
    "eval_samples_per_second",
    "eval_steps_per_second",
];
const FINAL_KEYS: &[&str] = &[
    "epoch",
    "total_flos",
    "train_loss",
    "train_runtime",
    "train_samples_per_second",
    "train_steps_per_second",
];

/// Formats one trace line; the same function formats the recorder's lines.
pub fn line(
    event: &str,
    step: u64,
    epoch: f64,
    max: u64,
    flags: [bool; 5],
    keys: Option<&[String]>,
) -> String {
    let letters = ['T', 'E', 'S', 'V', 'L'];
    let ctl: String = flags
        .iter()
        .zip(letters)
        .map(|(on, c)| if *on { c } else { '.' })
        .collect();
    let keys = keys
        .map(|k| format!(" keys={}", k.join(",")))
        .unwrap_or_default();
    format!("{event:<22} step={step:<3} epoch={epoch:.4} max={max} ctl={ctl}{keys}")
}

/// A recorder trace as lines in the oracle's format.
pub fn trace_lines(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let c = &e["control"];
            let flag = |k: &str| c[k].as_bool().unwrap();
            let flags = [
                flag("should_training_stop"),
                flag("should_epoch_stop"),
                flag("should_save"),
                flag("should_evaluate"),
                flag("should_log"),
            ];
            let keys = e.get("log_keys").or_else(|| e.get("metric_keys")).map(|k| {
                k.as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            });
            line(
                e["event"].as_str().unwrap(),
                e["global_step"].as_u64().unwrap(),
                e["epoch"].as_f64().unwrap(),
                e["max_steps"].as_u64().unwrap(),
                flags,
                keys.as_deref(),
            )
        })
        .collect()
}

struct Sim {
    lines: Vec<String>,
    c: Control,
    step: u64,
    epoch: f64,
    max: u64,
    last_logged: u64,
    n_eval_batches: usize,
}

impl Sim {
    fn emit(&mut self, event: &str, keys: Option<&[&str]>) {
        // The handler's resets happen before any callback sees the event.
        match event {
            "on_train_begin" => self.c.training_stop = false,
            "on_epoch_begin" => self.c.epoch_stop = false,
            "on_step_begin" => {
                self.c.log = false;
                self.c.evaluate = false;
                self.c.save = false;
            }
            "on_log" => self.c.log = false,
            "on_evaluate" => self.c.evaluate = false,
            "on_save" => self.c.save = false,
            _ => {}
        }
        let c = self.c;
        let keys: Option<Vec<String>> = keys.map(|k| k.iter().map(|s| s.to_string()).collect());
        self.lines.push(line(
            event,
            self.step,
            self.epoch,
            self.max,
            [c.training_stop, c.epoch_stop, c.save, c.evaluate, c.log],
            keys.as_deref(),
        ));
    }

    fn evaluate(&mut self) {
        for _ in 0..self.n_eval_batches {
            self.emit("on_prediction_step", None);
        }
        self.emit("on_log", Some(EVAL_KEYS));
        self.emit("on_evaluate", Some(EVAL_KEYS));
    }

    fn maybe_log_save_evaluate(&mut self) {
        if self.c.log && self.step > self.last_logged {
            self.last_logged = self.step;
            self.emit("on_log", Some(TRAIN_LOG_KEYS));
        }
        if self.c.evaluate {
            self.evaluate();
        }
        if self.c.save {
            self.emit("on_save", None);
        }
    }
}

fn every(step: u64, interval: f64) -> bool {
    interval > 0.0 && (step as f64) % interval == 0.0
}

impl Hf {
    /// The `trainbox train` flags for this configuration.
    pub fn flags(&self) -> Vec<String> {
        let mut f: Vec<String> = vec![
            "--task_option".into(),
            format!("train_size={}", self.n_train),
            "--task_option".into(),
            format!("eval_size={}", self.n_eval),
            "--per_device_train_batch_size".into(),
            self.batch_size.to_string(),
            "--per_device_eval_batch_size".into(),
            self.batch_size.to_string(),
            "--gradient_accumulation_steps".into(),
            self.ga.to_string(),
            "--num_train_epochs".into(),
            self.epochs.to_string(),
            "--max_steps".into(),
            self.max_steps.to_string(),
            "--logging_strategy".into(),
            self.logging_strategy.into(),
            "--logging_steps".into(),
            self.logging_steps.to_string(),
            "--logging_first_step".into(),
            self.logging_first_step.to_string(),
            "--eval_strategy".into(),
            self.eval_strategy.into(),
            "--eval_delay".into(),
            self.eval_delay.to_string(),
            "--eval_on_start".into(),
            self.eval_on_start.to_string(),
            "--save_strategy".into(),
            self.save_strategy.into(),
            "--save_steps".into(),
            self.save_steps.to_string(),
        ];
        if let Some(e) = self.eval_steps {
            f.push("--eval_steps".into());
            f.push(e.to_string());
        }
        f
    }

    /// The trace HF's Trainer produces for this configuration.
    pub fn expected(&self) -> Vec<String> {
        let n_batches = self.n_train.div_ceil(self.batch_size);
        let upe = n_batches.div_ceil(self.ga).max(1) as u64;
        // `set_initial_training_values`: only a negative max_steps counts
        // epochs; 0 keeps the epochs of num_train_epochs.
        let (max_steps, epochs) = if self.max_steps > 0 {
            let m = self.max_steps as u64;
            (m, m.div_ceil(upe))
        } else if self.max_steps == 0 {
            (0, self.epochs.ceil() as u64)
        } else {
            (
                (self.epochs * upe as f64).ceil() as u64,
                self.epochs.ceil() as u64,
            )
        };
        let interval = |v: f64| {
            if v < 1.0 {
                (max_steps as f64 * v).ceil()
            } else {
                v
            }
        };
        let ls = interval(self.logging_steps);
        let es = match (self.eval_steps, self.eval_strategy) {
            (Some(v), _) if v != 0.0 => interval(v),
            (_, "steps") => ls,
            _ => 500.0,
        };
        let ss = interval(self.save_steps);

        let mut s = Sim {
            lines: Vec::new(),
            c: Control::default(),
            step: 0,
            epoch: 0.0,
            max: 0,
            last_logged: 0,
            n_eval_batches: self.n_eval.div_ceil(self.batch_size),
        };
        s.emit("on_init_end", None);
        s.max = max_steps;
        s.emit("on_train_begin", None);
        if self.eval_on_start {
            s.evaluate();
        }
        for e in 0..epochs {
            s.emit("on_epoch_begin", None);
            let mut batches_done = 0;
            for u in 0..upe as usize {
                let nb = self.ga.min(n_batches - u * self.ga);
                s.emit("on_step_begin", None);
                for _ in 1..nb {
                    batches_done += 1;
                    s.emit("on_substep_end", None);
                }
                batches_done += 1;
                s.emit("on_pre_optimizer_step", None);
                s.emit("on_optimizer_step", None);
                s.step += 1;
                s.epoch = e as f64 + batches_done as f64 / n_batches as f64;
                // DefaultFlowCallback.on_step_end
                let step = s.step;
                if (step == 1 && self.logging_first_step)
                    || (self.logging_strategy == "steps" && every(step, ls))
                {
                    s.c.log = true;
                }
                if self.eval_strategy == "steps"
                    && every(step, es)
                    && self.eval_delay <= step as f64
                {
                    s.c.evaluate = true;
                }
                if self.save_strategy == "steps" && every(step, ss) {
                    s.c.save = true;
                }
                if step >= max_steps {
                    s.c.training_stop = true;
                    if self.eval_strategy == "steps"
                        && !every(step, es)
                        && self.eval_delay <= step as f64
                    {
                        s.c.evaluate = true;
                    }
                    if self.save_strategy == "steps" {
                        s.c.save = true;
                    }
                }
                s.emit("on_step_end", None);
                // The stopper runs after the recorder.
                if self.stop_at.is_some_and(|at| step >= at) {
                    s.c.training_stop = true;
                }
                if self.epoch_stop_at == Some(step) {
                    s.c.epoch_stop = true;
                }
                s.maybe_log_save_evaluate();
                if s.c.epoch_stop || s.c.training_stop {
                    break;
                }
            }
            // DefaultFlowCallback.on_epoch_end
            if self.logging_strategy == "epoch" {
                s.c.log = true;
            }
            if self.eval_strategy == "epoch" && self.eval_delay <= s.epoch {
                s.c.evaluate = true;
            }
            if self.save_strategy == "epoch" {
                s.c.save = true;
            }
            s.emit("on_epoch_end", None);
            s.maybe_log_save_evaluate();
            if s.c.training_stop {
                break;
            }
        }
        s.emit("on_log", Some(FINAL_KEYS));
        s.emit("on_train_end", None);
        s.lines
    }
}
