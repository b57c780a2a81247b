//! What the trainer needs of a model.

use super::data::Batch;
use tch::{nn, Tensor};

/// One metric of an evaluation batch, as a sum and a count, so that the
/// trainer can aggregate it over batches exactly (e.g. correct tokens / tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSum {
    pub name: &'static str,
    pub sum: f64,
    pub count: f64,
}

/// The outputs of one evaluation batch.
pub struct EvalBatch {
    /// The mean loss of the batch (a scalar tensor).
    pub loss: Tensor,
    /// Metrics to report with the `eval_` prefix (HF's `compute_metrics`).
    pub metrics: Vec<MetricSum>,
}

/// A trainable model: its variables, its loss, optionally its metrics.
pub trait Model {
    /// The variables to train and checkpoint.
    fn var_store(&self) -> &nn::VarStore;

    /// The mean loss of a batch; `train` enables dropout and the like.
    fn loss(&self, batch: &Batch, train: bool) -> Tensor;

    /// Called at the start of every evaluation, before its first batch, with
    /// the number of updates done.
    fn begin_evaluation(&self, _global_step: u64) {}

    /// Loss and metrics of an evaluation batch (run without gradients).
    fn eval_batch(&self, batch: &Batch) -> EvalBatch {
        EvalBatch {
            loss: self.loss(batch, false),
            metrics: Vec::new(),
        }
    }

    /// Floating-point operations of a training batch (HF's estimate:
    /// 6 × parameters × input elements).
    fn flos(&self, batch: &Batch) -> f64 {
        let params: i64 = self
            .var_store()
            .trainable_variables()
            .iter()
            .map(Tensor::numel)
            .map(|n| n as i64)
            .sum();
        6.0 * params as f64 * batch.inputs.numel() as f64
    }
}
