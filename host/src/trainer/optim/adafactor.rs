//! `transformers.optimization.Adafactor` as HF's Trainer builds it for
//! `--optim adafactor`: `lr=learning_rate, scale_parameter=False,
//! relative_step=False` (so the step size is the scheduled learning rate),
//! no first moment (`beta1=None`), the second moment factored into row and
//! column means for parameters of two or more dimensions, the update
//! clipped to a root mean square of `clip_threshold`.

use super::{take_state, Param, Rule, Steps};
use anyhow::Result;
use std::collections::HashMap;
use tch::{Kind, Tensor};

/// The settings of Adafactor; HF's Trainer passes none but the learning
/// rate, so these are the class's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdafactorConfig {
    /// `eps[0]`, added to the squared gradient.
    pub eps: f64,
    /// The RMS above which the update is scaled down (HF: 1.0).
    pub clip_threshold: f64,
    /// The exponent of the second moment's decay, `-0.8` in HF's Trainer.
    pub decay_rate: f64,
}

impl Default for AdafactorConfig {
    fn default() -> Self {
        AdafactorConfig {
            eps: 1e-30,
            clip_threshold: 1.0,
            decay_rate: -0.8,
        }
    }
}

/// The second-moment estimate of one parameter.
enum Moment {
    /// Row and column means (parameters of two or more dimensions).
    Factored {
        row: Tensor,
        col: Tensor,
    },
    Full(Tensor),
}

pub(super) struct Adafactor {
    config: AdafactorConfig,
    moments: Vec<Option<Moment>>,
    steps: Steps,
}

impl Adafactor {
    pub(super) fn new(config: AdafactorConfig, n: usize) -> Adafactor {
        Adafactor {
            config,
            moments: (0..n).map(|_| None).collect(),
            steps: Steps::new(n),
        }
    }
}

/// The shapes of the row and column means of a parameter of `shape`.
fn factored_shapes(shape: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let n = shape.len();
    let row = shape[..n - 1].to_vec();
    let mut col = shape[..n - 2].to_vec();
    col.push(shape[n - 1]);
    (row, col)
}

/// Adafactor's `_rms`: `norm(2) / numel ** 0.5`.
fn rms(t: &Tensor) -> Tensor {
    t.norm() / (t.numel() as f64).powf(0.5)
}

impl Rule for Adafactor {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, _step: u64) {
        let AdafactorConfig {
            eps,
            clip_threshold,
            decay_rate,
        } = self.config;
        for ((p, moment), step) in params
            .iter_mut()
            .zip(&mut self.moments)
            .zip(&mut self.steps.0)
        {
            let grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            let shape = grad.size();
            let moment = moment.get_or_insert_with(|| {
                if shape.len() >= 2 {
                    let (row, col) = factored_shapes(&shape);
                    Moment::Factored {
                        row: Tensor::zeros(row.as_slice(), (grad.kind(), grad.device())),
                        col: Tensor::zeros(col.as_slice(), (grad.kind(), grad.device())),
                    }
                } else {
                    Moment::Full(grad.zeros_like())
                }
            });
            *step += 1;
            let beta2t = 1.0 - (*step as f64).powf(decay_rate);
            let squared = grad.square() + eps;
            let mut update = match moment {
                Moment::Factored { row, col } => {
                    let _ = row.g_mul_scalar_(beta2t);
                    let _ =
                        row.g_add_(&(squared.mean_dim(-1, false, None::<Kind>) * (1.0 - beta2t)));
                    let _ = col.g_mul_scalar_(beta2t);
                    let _ =
                        col.g_add_(&(squared.mean_dim(-2, false, None::<Kind>) * (1.0 - beta2t)));
                    let r = (&*row / row.mean_dim(-1, true, None::<Kind>))
                        .rsqrt()
                        .unsqueeze(-1);
                    let c = col.unsqueeze(-2).rsqrt();
                    r * c * &grad
                }
                Moment::Full(v) => {
                    let _ = v.g_mul_scalar_(beta2t);
                    let _ = v.g_add_(&(squared * (1.0 - beta2t)));
                    v.rsqrt() * &grad
                }
            };
            update = &update / (rms(&update) / clip_threshold).clamp_min(1.0);
            let _ = update.g_mul_scalar_(lr);
            let wd = p.weight_decay(weight_decay);
            if wd != 0.0 {
                let decayed = &p.value * (-wd * lr);
                let _ = p.value.g_add_(&decayed);
            }
            let _ = p.value.g_sub_(&update);
        }
    }

    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, moment) in params.iter().zip(&self.moments) {
            match moment {
                Some(Moment::Factored { row, col }) => {
                    out.push((format!("exp_avg_sq_row.{}", p.name), row.shallow_clone()));
                    out.push((format!("exp_avg_sq_col.{}", p.name), col.shallow_clone()));
                }
                Some(Moment::Full(v)) => {
                    out.push((format!("exp_avg_sq.{}", p.name), v.shallow_clone()));
                }
                None => {}
            }
        }
        self.steps.tensors(params, &mut out);
        out
    }

    fn load_state(
        &mut self,
        params: &[Param],
        _step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()> {
        for (p, moment) in params.iter().zip(&mut self.moments) {
            let shape = p.value.size();
            *moment = if shape.len() >= 2 {
                let (rs, cs) = factored_shapes(&shape);
                let row = take_state(tensors, "exp_avg_sq_row", p, &rs)?;
                let col = take_state(tensors, "exp_avg_sq_col", p, &cs)?;
                match (row, col) {
                    (Some(row), Some(col)) => Some(Moment::Factored { row, col }),
                    (None, None) => None,
                    _ => anyhow::bail!(
                        "optimizer state of {:?} has one of exp_avg_sq_row and exp_avg_sq_col only",
                        p.name
                    ),
                }
            } else {
                take_state(tensors, "exp_avg_sq", p, &shape)?.map(Moment::Full)
            };
        }
        self.steps.load(params, tensors)
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn state_name(&self) -> &'static str {
        "Adafactor second moments"
    }
}
