//! What the trainer needs of a model.

use super::data::Batch;
use anyhow::Result;
use std::path::Path;
use tch::{nn, Device, Tensor};

/// Moves every variable of `vs` to `device` in place (`set_data`): the
/// variables keep their identity, so shallow copies of them (a module's
/// weights, the optimizer's parameters) follow.
pub fn move_variables(vs: &nn::VarStore, device: Device) {
    tch::no_grad(|| {
        for (_, mut var) in vs.variables() {
            if var.device() != device {
                let moved = var.to_device(device);
                var.set_data(&moved);
            }
        }
    });
}

/// How a metric's sum and count become its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reduce {
    /// `sum / count` (accuracy, mean squared error, …).
    #[default]
    Mean,
    /// `exp(sum / count)`: perplexity from summed losses.
    ExpOfMean,
}

/// One metric of an evaluation batch, as a sum and a count, so that the
/// trainer can aggregate it over batches exactly (e.g. correct tokens / tokens).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSum {
    pub name: &'static str,
    pub sum: f64,
    pub count: f64,
    pub reduce: Reduce,
}

impl MetricSum {
    /// A metric whose value is `sum / count` over all batches.
    pub fn mean(name: &'static str, sum: f64, count: f64) -> MetricSum {
        MetricSum {
            name,
            sum,
            count,
            reduce: Reduce::Mean,
        }
    }

    /// The metric's value over everything added to it; NaN without a count.
    pub fn value(&self) -> f64 {
        if self.count <= 0.0 {
            return f64::NAN;
        }
        let mean = self.sum / self.count;
        match self.reduce {
            Reduce::Mean => mean,
            Reduce::ExpOfMean => mean.exp(),
        }
    }
}

/// The outputs of one evaluation batch.
#[derive(Default)]
pub struct EvalBatch {
    /// The mean loss of the batch (a scalar tensor); `None` when the model
    /// gives none (a batch without labels), and then no `eval_loss`.
    pub loss: Option<Tensor>,
    /// Metrics to report with the `eval_` prefix (HF's `compute_metrics`).
    pub metrics: Vec<MetricSum>,
    /// The model's predictions (its logits), kept by `predict`.
    pub predictions: Option<Tensor>,
    /// The batch's labels, kept by `predict` beside the predictions.
    pub labels: Option<Tensor>,
}

/// A trainable model: its variables, its loss, optionally its metrics.
pub trait Model {
    /// The variables to train and checkpoint.
    fn var_store(&self) -> &nn::VarStore;

    /// Moves the model to `device`; the trainer calls it once, when it is
    /// built, before anything reads the variables. By default every
    /// variable of the var store is moved in place, so that the tensors the
    /// model holds (shallow copies of them) follow, as
    /// `VarStore::set_device` does; a model that owns its var store should
    /// call `set_device` instead (the store then knows its device), and one
    /// that holds other tensors must move them too.
    fn to_device(&mut self, device: Device) -> Result<()> {
        move_variables(self.var_store(), device);
        Ok(())
    }

    /// Puts the model in training (`true`) or evaluation mode; the trainer
    /// calls it before every training batch and every evaluation.
    fn set_training(&mut self, _train: bool) -> Result<()> {
        Ok(())
    }

    /// The trainable variables in the model's order (the order of the
    /// plugins' parameter views and of the gradient norm's sum); by default
    /// the var store's, sorted by name.
    fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut params: Vec<(String, Tensor)> = self
            .var_store()
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        params
    }

    /// Whether parameter `name` sits in a layer-norm module, which HF's
    /// weight decay exempts by type (beside its name patterns, which the
    /// optimizer applies to every model).
    fn in_layer_norm(&self, _name: &str) -> bool {
        false
    }

    /// The mean loss of a batch; `train` enables dropout and the like.
    fn loss(&self, batch: &Batch, train: bool) -> Result<Tensor>;

    /// The logits of a batch (`[..., classes]`, the last dimension the
    /// classes of the `labels` column), for a loss the trainer computes
    /// itself: HF's `LabelSmoother` under `--label_smoothing_factor`. `None`
    /// (the default): the model gives only its loss, and label smoothing
    /// is refused.
    fn logits(&self, _batch: &Batch, _train: bool) -> Result<Option<Tensor>> {
        Ok(None)
    }

    /// HF's `model_accepts_loss_kwargs`: the model's loss takes the batch's
    /// `num_items_in_batch` column (a 0-dim float tensor: the labels that are
    /// not -100 in all the batches of the update, over every rank under
    /// `--average_tokens_across_devices`) and divides its summed loss by it.
    /// The trainer then does not divide the loss by the accumulation steps
    /// (HF's `loss_is_scaled_for_ga`), and multiplies it by the number of
    /// processes under `--average_tokens_across_devices`. Default `false`:
    /// each batch's mean loss, divided by the accumulation steps.
    fn accepts_loss_kwargs(&self) -> bool {
        false
    }

    /// Whether the model is a causal LM that shifts its labels (position `i`
    /// predicts label `i + 1`): `--label_smoothing_factor` compares
    /// `logits[..., :-1, :]` with `labels[..., 1:]`, as HF does for its
    /// causal LM classes. Default `false`.
    fn shifts_labels(&self) -> bool {
        false
    }

    /// Whether `num_items_in_batch` counts `labels[..., 1:]`, as HF's
    /// `_loss_shifts_labels` (a model whose loss type is a causal LM's;
    /// HF decides it apart from the label smoother's rule: a GPT-2 is
    /// smoothed shifted but counted unshifted). Default `false`.
    fn counts_shifted_labels(&self) -> bool {
        false
    }

    /// Called at the start of every evaluation, before its first batch, with
    /// the number of updates done.
    fn begin_evaluation(&self, _global_step: u64) {}

    /// Loss and metrics of an evaluation batch (run without gradients).
    fn eval_batch(&self, batch: &Batch) -> Result<EvalBatch> {
        Ok(EvalBatch {
            loss: Some(self.loss(batch, false)?),
            ..EvalBatch::default()
        })
    }

    /// The column whose elements count as the batch's tokens (HF's
    /// `main_input_name`).
    fn main_input_name(&self) -> &str {
        "input_ids"
    }

    /// The parameters HF's flos estimate counts: by default every
    /// trainable element.
    fn flos_parameters(&self) -> i64 {
        self.var_store()
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum()
    }

    /// Floating-point operations of a training batch (HF's estimate:
    /// 6 × [`Model::flos_parameters`] × elements of the main input; 0
    /// without it).
    fn flos(&self, batch: &Batch) -> f64 {
        let Some(input) = batch.columns.get(self.main_input_name()) else {
            return 0.0;
        };
        6.0 * self.flos_parameters() as f64 * input.numel() as f64
    }

    /// A file the model also saves into checkpoints and `output_dir`, beside
    /// `model.safetensors` (a TorchScript module's `model.pt`).
    fn export_file(&self) -> Option<&'static str> {
        None
    }

    /// Writes [`Model::export_file`] to `path`.
    fn export(&self, _path: &Path) -> Result<()> {
        Ok(())
    }

    /// Restores, from checkpoint folder `dir`, what `model.safetensors` does
    /// not hold (a module's buffers, from its `model.pt`). Called before the
    /// variables are read for the optimizer; the weights are loaded after.
    fn restore(&mut self, _dir: &Path) -> Result<()> {
        Ok(())
    }
}
