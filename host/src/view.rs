//! The run as callbacks may see it between events: log history, parameters
//! and gradients, learning rates, dataloader lengths. The trainer updates it;
//! callbacks read it only when they ask, so that an event costs the same
//! however long the run has been going.

use crate::state::Logs;
use std::sync::{Arc, Mutex, MutexGuard};
use tch::Tensor;

/// Summary statistics of one tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorStats {
    pub numel: u64,
    pub norm: f64,
    pub mean: f64,
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// NaN or infinite elements.
    pub nonfinite: u64,
}

impl TensorStats {
    /// Computes the statistics of `t` in its own dtype, without copying it
    /// and without recording gradients; `None` if libtorch refuses.
    pub fn of(t: &Tensor) -> Option<TensorStats> {
        tch::no_grad(|| Self::compute(t).ok())
    }

    fn compute(t: &Tensor) -> Result<TensorStats, tch::TchError> {
        let t = if t.is_floating_point() {
            t.shallow_clone()
        } else {
            t.f_to_kind(tch::Kind::Float)?
        };
        let numel = t.numel() as u64;
        if numel == 0 {
            return Ok(TensorStats {
                numel,
                norm: 0.0,
                mean: 0.0,
                std: 0.0,
                min: 0.0,
                max: 0.0,
                nonfinite: 0,
            });
        }
        let scalar = |r: Result<Tensor, tch::TchError>| r?.f_double_value(&[]);
        let finite = t
            .f_isfinite()?
            .f_sum(tch::Kind::Int64)?
            .f_int64_value(&[])?;
        Ok(TensorStats {
            numel,
            norm: scalar(t.f_norm())?,
            mean: scalar(t.f_mean(None))?,
            std: if numel > 1 {
                scalar(t.f_std(true))?
            } else {
                0.0
            },
            min: scalar(t.f_min())?,
            max: scalar(t.f_max())?,
            nonfinite: numel - finite as u64,
        })
    }
}

/// What [`RunView`] holds.
#[derive(Default)]
pub struct RunData {
    /// A copy of `TrainerState.log_history`.
    pub log_history: Vec<Logs>,
    /// The trainable parameters by name (shallow copies: same storage).
    pub parameters: Vec<(String, Tensor)>,
    /// Total gradient norm of the last update, before clipping.
    pub grad_norm: Option<f64>,
    /// Learning rate per parameter group of the last optimizer step.
    pub learning_rates: Vec<f64>,
    /// Batches per epoch of the training data.
    pub train_batches: Option<u32>,
    /// Batches of the evaluation data.
    pub eval_batches: Option<u32>,
}

impl RunData {
    /// Statistics of a parameter (or of its gradient, when `grad`).
    pub fn tensor_stats(&self, name: &str, grad: bool) -> Option<TensorStats> {
        let (_, p) = self.parameters.iter().find(|(n, _)| n == name)?;
        if grad {
            let g = p.grad();
            if g.defined() {
                TensorStats::of(&g)
            } else {
                None
            }
        } else {
            TensorStats::of(p)
        }
    }

    /// Number of elements of all trainable parameters.
    pub fn parameter_count(&self) -> u64 {
        self.parameters.iter().map(|(_, p)| p.numel() as u64).sum()
    }
}

/// A shared handle on [`RunData`]; cheap to clone.
#[derive(Clone, Default)]
pub struct RunView(Arc<Mutex<RunData>>);

impl RunView {
    /// Locks the data (poisoning is ignored: the data stays consistent).
    pub fn lock(&self) -> MutexGuard<'_, RunData> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
