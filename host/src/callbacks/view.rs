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
    /// Computes the statistics of `t` (no gradient is recorded).
    pub fn of(t: &Tensor) -> TensorStats {
        tch::no_grad(|| {
            let t = t.to_kind(tch::Kind::Double);
            let numel = t.numel() as u64;
            if numel == 0 {
                return TensorStats {
                    numel,
                    norm: 0.0,
                    mean: 0.0,
                    std: 0.0,
                    min: 0.0,
                    max: 0.0,
                    nonfinite: 0,
                };
            }
            let nonfinite = numel - t.isfinite().sum(tch::Kind::Int64).int64_value(&[]) as u64;
            TensorStats {
                numel,
                norm: t.norm().double_value(&[]),
                mean: t.mean(tch::Kind::Double).double_value(&[]),
                std: if numel > 1 {
                    t.std(true).double_value(&[])
                } else {
                    0.0
                },
                min: t.min().double_value(&[]),
                max: t.max().double_value(&[]),
                nonfinite,
            }
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
            g.defined().then(|| TensorStats::of(&g))
        } else {
            Some(TensorStats::of(p))
        }
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
