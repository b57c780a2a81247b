//! The schedules that step on the evaluation metric: torch's
//! `ReduceLROnPlateau` and transformers' `GreedyLR`, stepped by the loop
//! after each evaluation of `_maybe_log_save_evaluate` with
//! `metrics[metric_for_best_model]`, as HF's `Trainer._evaluate`. Every
//! parameter group starts at `--learning_rate` and is changed alike, so one
//! learning rate is kept. Their state goes into the checkpoint
//! (`scheduler.json`).

use super::kwargs::Kwargs;
use super::lambdas::py_max;
use crate::pyjson::Json;
use std::collections::BTreeMap;

/// Python's `min(a, b)`: `b` only when it is smaller.
fn py_min(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

/// `mode` and `threshold_mode`, as both classes compare a metric to the best.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Better {
    max: bool,
    relative: bool,
    threshold: f64,
}

impl Better {
    fn read(k: &Kwargs, threshold: f64, threshold_mode: &str) -> Result<Better, String> {
        let mode = k.text("mode", "min")?;
        if mode != "min" && mode != "max" {
            return Err(format!("--lr_scheduler_kwargs: mode {mode} is unknown!"));
        }
        let threshold_mode = k.text("threshold_mode", threshold_mode)?;
        if threshold_mode != "rel" && threshold_mode != "abs" {
            return Err(format!(
                "--lr_scheduler_kwargs: threshold mode {threshold_mode} is unknown!"
            ));
        }
        Ok(Better {
            max: mode == "max",
            relative: threshold_mode == "rel",
            threshold: k.number_or("threshold", threshold)?,
        })
    }

    fn worst(self) -> f64 {
        if self.max {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }

    /// torch's `_is_better` (GreedyLR's `is_better` is the same).
    fn is_better(self, a: f64, best: f64) -> bool {
        match (self.max, self.relative) {
            (false, true) => a < best * (1.0 - self.threshold),
            (false, false) => a < best - self.threshold,
            (true, true) => a > best * (self.threshold + 1.0),
            (true, false) => a > best + self.threshold,
        }
    }
}

/// The running state of a metric-stepped schedule.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum OnMetric {
    Plateau(Plateau),
    Greedy(Greedy),
}

/// `torch.optim.lr_scheduler.ReduceLROnPlateau`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Plateau {
    better: Better,
    factor: f64,
    patience: f64,
    cooldown: f64,
    min_lr: f64,
    eps: f64,
    lr: f64,
    best: f64,
    num_bad_epochs: f64,
    cooldown_counter: f64,
    last_epoch: f64,
}

/// `transformers.optimization.GreedyLR`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Greedy {
    better: Better,
    factor: f64,
    patience: f64,
    cooldown: f64,
    warmup: f64,
    min_lr: f64,
    max_lr: f64,
    eps: f64,
    smooth: bool,
    window_size: usize,
    reset_start_original: f64,
    init_lr: f64,
    lr: f64,
    best: f64,
    num_bad_epochs: f64,
    num_good_epochs: f64,
    cooldown_counter: f64,
    warmup_counter: f64,
    reset_start: f64,
    last_epoch: f64,
    window: Vec<f64>,
    window_sum: f64,
}

/// The keys `ReduceLROnPlateau` takes.
pub(super) const PLATEAU_KEYS: &[&str] = &[
    "mode",
    "factor",
    "patience",
    "threshold",
    "threshold_mode",
    "cooldown",
    "min_lr",
    "eps",
];

/// The keys `GreedyLR` takes.
pub(super) const GREEDY_KEYS: &[&str] = &[
    "mode",
    "factor",
    "patience",
    "threshold",
    "threshold_mode",
    "cooldown",
    "warmup",
    "min_lr",
    "max_lr",
    "eps",
    "verbose",
    "smooth",
    "window_size",
    "reset_start",
];

fn check_factor(factor: f64) -> Result<(), String> {
    if factor >= 1.0 {
        return Err("--lr_scheduler_kwargs: Factor should be < 1.0.".into());
    }
    Ok(())
}

impl Plateau {
    pub(super) fn new(k: &Kwargs, lr: f64, groups: usize) -> Result<Plateau, String> {
        let factor = k.number_or("factor", 0.1)?;
        check_factor(factor)?;
        let better = Better::read(k, 1e-4, "rel")?;
        Ok(Plateau {
            better,
            factor,
            patience: k.count("patience")?.unwrap_or(10.0),
            cooldown: k.count("cooldown")?.unwrap_or(0.0),
            min_lr: k.per_group("min_lr", 0.0, groups)?,
            eps: k.number_or("eps", 1e-8)?,
            lr,
            best: better.worst(),
            num_bad_epochs: 0.0,
            cooldown_counter: 0.0,
            last_epoch: 0.0,
        })
    }

    /// torch's `ReduceLROnPlateau.step(metrics)`.
    fn step(&mut self, current: f64) {
        self.last_epoch += 1.0;
        if self.better.is_better(current, self.best) {
            self.best = current;
            self.num_bad_epochs = 0.0;
        } else {
            self.num_bad_epochs += 1.0;
        }
        if self.cooldown_counter > 0.0 {
            self.cooldown_counter -= 1.0;
            self.num_bad_epochs = 0.0;
        }
        if self.num_bad_epochs > self.patience {
            let old_lr = self.lr;
            let new_lr = py_max(old_lr * self.factor, self.min_lr);
            if old_lr - new_lr > self.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0.0;
        }
    }
}

impl Greedy {
    pub(super) fn new(k: &Kwargs, lr: f64, groups: usize) -> Result<Greedy, String> {
        let factor = k.number_or("factor", 0.95)?;
        check_factor(factor)?;
        let better = Better::read(k, 1e-6, "abs")?;
        let window_size = k.count("window_size")?.unwrap_or(50.0);
        if window_size < 1.0 {
            return Err("--lr_scheduler_kwargs: window_size must be at least 1".into());
        }
        let reset_start = k.count("reset_start")?.unwrap_or(500.0);
        k.flag("verbose", false)?;
        Ok(Greedy {
            better,
            factor,
            patience: k.count("patience")?.unwrap_or(10.0),
            cooldown: k.count("cooldown")?.unwrap_or(0.0),
            warmup: k.count("warmup")?.unwrap_or(0.0),
            min_lr: k.per_group("min_lr", 1e-3, groups)?,
            max_lr: k.per_group("max_lr", 1.0, groups)?,
            eps: k.number_or("eps", 1e-8)?,
            smooth: k.flag("smooth", false)?,
            window_size: window_size as usize,
            reset_start_original: reset_start,
            init_lr: lr,
            lr,
            best: better.worst(),
            num_bad_epochs: 0.0,
            num_good_epochs: 0.0,
            cooldown_counter: 0.0,
            warmup_counter: 0.0,
            reset_start,
            last_epoch: 0.0,
            window: Vec::new(),
            window_sum: 0.0,
        })
    }

    /// `GreedyLR.step(metrics)`.
    fn step(&mut self, metric: f64) {
        let mut current = metric;
        if self.smooth {
            self.window.push(current);
            self.window_sum += current;
            if self.window.len() > self.window_size {
                let removed = self.window.remove(0);
                self.window_sum -= removed;
            }
            current = self.window_sum / self.window.len() as f64;
        }
        self.last_epoch += 1.0;
        if self.cooldown_counter > 0.0 {
            self.cooldown_counter -= 1.0;
            self.num_bad_epochs = 0.0;
            self.num_good_epochs = 0.0;
        } else if self.warmup_counter > 0.0 {
            self.warmup_counter -= 1.0;
            self.num_bad_epochs = 0.0;
            self.num_good_epochs = 0.0;
        } else {
            if self.better.is_better(current, self.best) {
                self.best = current;
                self.num_bad_epochs = 0.0;
                self.num_good_epochs += 1.0;
            } else {
                self.num_bad_epochs += 1.0;
                self.num_good_epochs = 0.0;
            }
            if self.num_good_epochs > self.patience {
                let old_lr = self.lr;
                let new_lr = py_min(old_lr / self.factor, self.max_lr);
                if new_lr - old_lr > self.eps {
                    self.lr = new_lr;
                }
                self.reset_start = self.reset_start_original;
                self.warmup_counter = self.warmup;
                self.num_good_epochs = 0.0;
            } else if self.num_bad_epochs > self.patience {
                let old_lr = self.lr;
                let new_lr = py_max(old_lr * self.factor, self.min_lr);
                if old_lr - new_lr > self.eps {
                    self.lr = new_lr;
                }
                // Every group is at its minimum exactly when this one is.
                if self.lr <= self.min_lr {
                    self.reset_start -= 1.0;
                    if self.reset_start <= 0.0 {
                        self.reset();
                    }
                }
                self.cooldown_counter = self.cooldown;
                self.num_bad_epochs = 0.0;
            }
        }
    }

    /// `GreedyLR._reset`.
    fn reset(&mut self) {
        self.lr = self.init_lr;
        self.best = self.better.worst();
        self.num_bad_epochs = 0.0;
        self.num_good_epochs = 0.0;
        self.cooldown_counter = 0.0;
        self.warmup_counter = 0.0;
        self.reset_start = self.reset_start_original;
        self.window.clear();
        self.window_sum = 0.0;
    }
}

/// The fields of the state file, as (name, value) pairs.
fn numbers(pairs: &[(&str, f64)]) -> BTreeMap<String, Json> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Json::Float(*v)))
        .collect()
}

impl OnMetric {
    /// The current learning rate (HF logs `param_groups[0]["lr"]`).
    pub(super) fn lr(&self) -> f64 {
        match self {
            OnMetric::Plateau(p) => p.lr,
            OnMetric::Greedy(g) => g.lr,
        }
    }

    /// One step on the metric's value.
    pub(super) fn step(&mut self, metric: f64) {
        match self {
            OnMetric::Plateau(p) => p.step(metric),
            OnMetric::Greedy(g) => g.step(metric),
        }
    }

    /// The running state (not the settings, which come from the arguments).
    pub(super) fn state(&self) -> Json {
        let map = match self {
            OnMetric::Plateau(p) => numbers(&[
                ("lr", p.lr),
                ("best", p.best),
                ("num_bad_epochs", p.num_bad_epochs),
                ("cooldown_counter", p.cooldown_counter),
                ("last_epoch", p.last_epoch),
            ]),
            OnMetric::Greedy(g) => {
                let mut map = numbers(&[
                    ("lr", g.lr),
                    ("best", g.best),
                    ("num_bad_epochs", g.num_bad_epochs),
                    ("num_good_epochs", g.num_good_epochs),
                    ("cooldown_counter", g.cooldown_counter),
                    ("warmup_counter", g.warmup_counter),
                    ("reset_start", g.reset_start),
                    ("last_epoch", g.last_epoch),
                    ("window_sum", g.window_sum),
                ]);
                map.insert(
                    "window".into(),
                    Json::Array(g.window.iter().map(|v| Json::Float(*v)).collect()),
                );
                map
            }
        };
        Json::Object(map)
    }

    /// Restores what `state` wrote.
    pub(super) fn load(&mut self, state: &Json) -> Result<(), String> {
        let obj = state.as_object().ok_or("expected an object")?;
        let get = |key: &str| -> Result<f64, String> {
            obj.get(key)
                .and_then(Json::as_f64)
                .ok_or_else(|| format!("{key} is missing or not a number"))
        };
        match self {
            OnMetric::Plateau(p) => {
                p.lr = get("lr")?;
                p.best = get("best")?;
                p.num_bad_epochs = get("num_bad_epochs")?;
                p.cooldown_counter = get("cooldown_counter")?;
                p.last_epoch = get("last_epoch")?;
            }
            OnMetric::Greedy(g) => {
                g.lr = get("lr")?;
                g.best = get("best")?;
                g.num_bad_epochs = get("num_bad_epochs")?;
                g.num_good_epochs = get("num_good_epochs")?;
                g.cooldown_counter = get("cooldown_counter")?;
                g.warmup_counter = get("warmup_counter")?;
                g.reset_start = get("reset_start")?;
                g.last_epoch = get("last_epoch")?;
                g.window_sum = get("window_sum")?;
                g.window = obj
                    .get("window")
                    .and_then(Json::as_array)
                    .ok_or("window is missing")?
                    .iter()
                    .map(|v| v.as_f64().ok_or("window holds a non-number"))
                    .collect::<Result<_, _>>()?;
            }
        }
        Ok(())
    }
}
