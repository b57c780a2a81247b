//! HF's `LambdaLR` factors (transformers 5.24, `optimization.py`), each
//! written as the Python is, operation for operation, in f64 (Python's
//! float), so that `base_lr * factor` is HF's learning rate bit for bit.
//! Python's `max(a, b)` is [`py_max`] (the first when neither is larger).

use std::f64::consts::PI;

/// Python's `max(a, b)`: `b` only when it is larger.
pub(super) fn py_max(a: f64, b: f64) -> f64 {
    if b > a {
        b
    } else {
        a
    }
}

/// The linear warm-up every schedule but three shares:
/// `float(current_step) / float(max(1, num_warmup_steps))`.
fn warm(step: f64, warmup: f64) -> f64 {
    step / py_max(1.0, warmup)
}

/// A schedule's shape, with the arguments `get_scheduler` gives it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Lambda {
    Constant,
    ConstantWithWarmup,
    Linear,
    Cosine {
        num_cycles: f64,
    },
    CosineWithRestarts {
        num_cycles: f64,
    },
    Polynomial {
        lr_end: f64,
        power: f64,
        lr_init: f64,
    },
    InverseSqrt {
        timescale: f64,
    },
    CosineWithMinLr {
        num_cycles: f64,
        min_lr_rate: f64,
    },
    CosineWarmupWithMinLr {
        num_cycles: f64,
        min_lr_rate: f64,
        warmup_lr_rate: Option<f64>,
    },
    WarmupStableDecay {
        num_stable_steps: f64,
        num_decay_steps: f64,
        warmup_type: Curve,
        decay_type: Curve,
        min_lr_ratio: f64,
        num_cycles: f64,
    },
}

/// The curves of the warm-up-stable-decay schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    Linear,
    Cosine,
    OneMinusSqrt,
}

impl Curve {
    pub(super) fn parse(text: &str) -> Option<Curve> {
        match text {
            "linear" => Some(Curve::Linear),
            "cosine" => Some(Curve::Cosine),
            "1-sqrt" => Some(Curve::OneMinusSqrt),
            _ => None,
        }
    }
}

impl Lambda {
    /// The factor at `current_step` of a run of `total` steps, `warmup` of them warming up.
    pub(super) fn factor(&self, current_step: u64, warmup: u64, total: u64) -> f64 {
        let (step, w, t) = (current_step as f64, warmup as f64, total as f64);
        match *self {
            Lambda::Constant => 1.0,
            Lambda::ConstantWithWarmup => {
                if step < w {
                    step / py_max(1.0, w)
                } else {
                    1.0
                }
            }
            Lambda::Linear => {
                if step < w {
                    return warm(step, w);
                }
                py_max(0.0, (t - step) / py_max(1.0, t - w))
            }
            Lambda::Cosine { num_cycles } => {
                if step < w {
                    return warm(step, w);
                }
                let progress = (step - w) / py_max(1.0, t - w);
                py_max(0.0, 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos()))
            }
            Lambda::CosineWithRestarts { num_cycles } => {
                if step < w {
                    return warm(step, w);
                }
                let progress = (step - w) / py_max(1.0, t - w);
                if progress >= 1.0 {
                    return 0.0;
                }
                py_max(
                    0.0,
                    0.5 * (1.0 + (PI * py_mod(num_cycles * progress, 1.0)).cos()),
                )
            }
            Lambda::Polynomial {
                lr_end,
                power,
                lr_init,
            } => {
                if step < w {
                    warm(step, w)
                } else if step > t {
                    lr_end / lr_init
                } else {
                    let lr_range = lr_init - lr_end;
                    let decay_steps = t - w;
                    let pct_remaining = 1.0 - (step - w) / decay_steps;
                    let decay = lr_range * py_pow(pct_remaining, power) + lr_end;
                    decay / lr_init
                }
            }
            Lambda::InverseSqrt { timescale } => {
                if step < w {
                    return warm(step, w);
                }
                let shift = timescale - w;
                1.0 / ((step + shift) / timescale).sqrt()
            }
            Lambda::CosineWithMinLr {
                num_cycles,
                min_lr_rate,
            } => {
                if step < w {
                    return warm(step, w);
                }
                let progress = (step - w) / py_max(1.0, t - w);
                let factor = 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos());
                let factor = factor * (1.0 - min_lr_rate) + min_lr_rate;
                py_max(0.0, factor)
            }
            Lambda::CosineWarmupWithMinLr {
                num_cycles,
                min_lr_rate,
                warmup_lr_rate,
            } => {
                if step < w {
                    return match warmup_lr_rate {
                        None => (step + 1.0) / py_max(1.0, w),
                        Some(rate) => rate + (1.0 - rate) * step / py_max(1.0, w - 1.0),
                    };
                }
                let progress = (step - w + 1.0) / py_max(1.0, t - w);
                let factor = 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos());
                let factor = factor * (1.0 - min_lr_rate) + min_lr_rate;
                py_max(0.0, factor)
            }
            Lambda::WarmupStableDecay {
                num_stable_steps: s,
                num_decay_steps: d,
                warmup_type,
                decay_type,
                min_lr_ratio,
                num_cycles,
            } => {
                if step < w {
                    let progress = step / py_max(1.0, w);
                    let factor = match warmup_type {
                        Curve::Linear => progress,
                        Curve::Cosine => 0.5 * (1.0 - (PI * progress).cos()),
                        Curve::OneMinusSqrt => 1.0 - (1.0 - progress).sqrt(),
                    };
                    let factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio;
                    return py_max(0.0, factor);
                }
                if step < w + s {
                    return 1.0;
                }
                if step < w + s + d {
                    let progress = (step - w - s) / py_max(1.0, d);
                    let factor = match decay_type {
                        Curve::Linear => 1.0 - progress,
                        Curve::Cosine => 0.5 * (1.0 + (PI * num_cycles * 2.0 * progress).cos()),
                        Curve::OneMinusSqrt => 1.0 - progress.sqrt(),
                    };
                    let factor = factor * (1.0 - min_lr_ratio) + min_lr_ratio;
                    return py_max(0.0, factor);
                }
                min_lr_ratio
            }
        }
    }
}

/// Python's float `%`: the result takes the sign of the divisor.
fn py_mod(a: f64, b: f64) -> f64 {
    let m = a % b;
    if m != 0.0 && (m < 0.0) != (b < 0.0) {
        m + b
    } else {
        m
    }
}

/// Python's float `**` where it returns a float: 1 for a zero exponent or
/// a base of 1, else C's `pow` (as CPython's `float_pow`).
fn py_pow(base: f64, exp: f64) -> f64 {
    if exp == 0.0 || base == 1.0 {
        1.0
    } else {
        base.powf(exp)
    }
}
