//! The run as callbacks may see it between events: log history, parameters
//! and gradients, learning rates, dataloader lengths. The trainer updates it;
//! callbacks read it only when they ask, so that an event costs the same
//! however long the run has been going.
//!
//! No tensor appears here: the host that owns the model implements
//! [`Parameters`] over its own tensors (the `trainbox` binary over libtorch's),
//! and the views ask it only when a plugin does.

use crate::state::LogHistory;
use std::sync::{Arc, Mutex, MutexGuard};

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

/// Most bins a histogram may have (`views.model-stats.histogram`).
pub const MAX_HISTOGRAM_BINS: u32 = 4096;

/// A histogram of a tensor's finite values: `counts.len()` equal-width bins
/// from `min` to `max`, as `wandb.watch` computes it (wandb 0.31's
/// `log_tensor_stats`): the tensor flattened, in float32 unless it is
/// float64, NaN and infinities dropped, then `histc(bins, min, max)`; one
/// bin holding every value when they are all equal.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The smallest finite value: the first bin's lower edge.
    pub min: f64,
    /// The largest finite value: the last bin's upper edge.
    pub max: f64,
    /// The number of finite values in each equal-width bin.
    pub counts: Vec<u64>,
}

/// The model's trainable parameters, as `views.model-stats` reads them;
/// each host implements it over its own tensors. `grad` asks for the
/// parameter's gradient instead (`None` when it has none).
pub trait Parameters: Send {
    /// The parameters' names, in the host's order.
    fn names(&self) -> Vec<String>;
    /// Number of elements of all of them.
    fn count(&self) -> u64;
    /// Statistics of a parameter (or of its gradient).
    fn stats(&self, name: &str, grad: bool) -> Option<TensorStats>;
    /// Histogram of a parameter (or of its gradient, the one
    /// [`stats`](Self::stats) reads) with `bins` bins, 1 to
    /// [`MAX_HISTOGRAM_BINS`].
    fn histogram(&self, name: &str, grad: bool, bins: u32) -> Option<Histogram>;
}

/// The optimizer's learning rates, read when a plugin asks: for a host
/// that does not step the optimizer itself (the Python host reads them
/// from HF's optimizer), instead of [`RunData::learning_rates`].
pub trait LearningRates: Send {
    /// The learning rate of each parameter group, now.
    fn learning_rates(&self) -> Vec<f64>;
}

/// Where the gradient norm is read, for a host whose loop computes it
/// itself (the Python host reads the norm HF's Trainer clipped with),
/// instead of [`RunData::grad_norm`].
pub trait GradNorm: Send {
    /// The total gradient norm of the last update, before clipping.
    fn grad_norm(&self) -> Option<f64>;
}

/// No model (yet): no parameters.
struct NoParameters;

impl Parameters for NoParameters {
    fn names(&self) -> Vec<String> {
        Vec::new()
    }
    fn count(&self) -> u64 {
        0
    }
    fn stats(&self, _: &str, _: bool) -> Option<TensorStats> {
        None
    }
    fn histogram(&self, _: &str, _: bool, _: u32) -> Option<Histogram> {
        None
    }
}

/// What [`RunView`] holds.
pub struct RunData {
    /// `TrainerState.log_history`: a shared handle on the state's own.
    pub log_history: LogHistory,
    /// The trainable parameters (none until the host sets them).
    pub parameters: Box<dyn Parameters>,
    /// Total gradient norm of the last update, before clipping.
    pub grad_norm: Option<f64>,
    /// Where to read the gradient norm instead, when the host has one.
    pub grad_norm_source: Option<Box<dyn GradNorm>>,
    /// Learning rate per parameter group of the last optimizer step.
    pub learning_rates: Vec<f64>,
    /// Where to read the learning rates instead, when the host has one.
    pub learning_rates_source: Option<Box<dyn LearningRates>>,
    /// Batches per epoch of the training data.
    pub train_batches: Option<u32>,
    /// Batches of the evaluation data.
    pub eval_batches: Option<u32>,
}

impl Default for RunData {
    fn default() -> Self {
        RunData {
            log_history: LogHistory::default(),
            parameters: Box::new(NoParameters),
            grad_norm: None,
            grad_norm_source: None,
            learning_rates: Vec::new(),
            learning_rates_source: None,
            train_batches: None,
            eval_batches: None,
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
