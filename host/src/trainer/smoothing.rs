//! `--label_smoothing_factor`: HF's `LabelSmoother`, applied as HF's
//! `Trainer.compute_loss` applies it: when the factor is not 0 and the batch
//! has a `labels` column, the loss is computed by the trainer from the
//! model's logits (training and evaluation alike), not taken from the model.
//! A model that gives only a loss ([`Model::logits`] is `None`) is refused.
//!
//! trainbox's models do not take HF's loss kwargs (`num_items_in_batch`), so
//! each micro-batch is normalised by its own label count, as HF does for
//! such models, and the loop divides by the accumulation steps.

use super::data::Batch;
use super::model::{EvalBatch, Model};
use super::Trainer;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// The label HF's `LabelSmoother` ignores.
pub const IGNORE_INDEX: i64 = -100;

/// HF's `LabelSmoother(epsilon)(logits, labels)` without
/// `num_items_in_batch` and without shifting: `(1 - ε) * nll + ε * smooth`,
/// the negative log-likelihood and the mean negative log-probability over
/// the classes, both averaged over the labels that are not -100. The same
/// operations in the same order as HF's, so the values are HF's.
pub fn label_smoothed_loss(epsilon: f64, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
    let log_probs = -logits.f_log_softmax(-1, None::<Kind>)?;
    let mut labels = labels.shallow_clone();
    if labels.dim() + 1 == log_probs.dim() {
        labels = labels.f_unsqueeze(-1)?;
    }
    if labels.dim() != log_probs.dim() {
        bail!(
            "--label_smoothing_factor: the labels have shape {:?}, the logits {:?}; the labels \
             need one class index per row of logits",
            labels.size(),
            log_probs.size()
        );
    }
    if labels.is_floating_point() {
        bail!(
            "--label_smoothing_factor: the labels are {:?}, not class indices (an integer \
             column); label smoothing applies to classification",
            labels.kind()
        );
    }
    let labels = labels.f_to_kind(Kind::Int64)?;
    let padding_mask = labels.f_eq(IGNORE_INDEX)?;
    let labels = labels.f_clamp_min(0)?;
    let mut nll_loss = log_probs.f_gather(-1, &labels, false)?;
    let mut smoothed_loss = log_probs.f_sum_dim_intlist([-1i64].as_slice(), true, Kind::Float)?;
    let _ = nll_loss.f_masked_fill_(&padding_mask, 0.0)?;
    let _ = smoothed_loss.f_masked_fill_(&padding_mask, 0.0)?;
    let numel = padding_mask.numel() as i64;
    let denominator = -(padding_mask.f_to_kind(Kind::Int64)?.f_sum(None::<Kind>)?) + numel;
    let classes = *log_probs.size().last().unwrap_or(&1);
    let nll_loss = nll_loss.f_sum(None::<Kind>)?.f_div(&denominator)?;
    let smoothed_loss = smoothed_loss
        .f_sum(None::<Kind>)?
        .f_div(&(denominator * classes))?;
    Ok(nll_loss * (1.0 - epsilon) + smoothed_loss * epsilon)
}

impl Trainer {
    /// The loss HF's `compute_loss` takes for `batch`: label-smoothed when
    /// `--label_smoothing_factor` is set and the batch has `labels`, else
    /// `None` (the model's own loss).
    pub(super) fn smoothed_loss(&self, batch: &Batch, train: bool) -> Result<Option<Tensor>> {
        let epsilon = self.args.label_smoothing_factor;
        let Some(labels) = batch.columns.get("labels") else {
            return Ok(None);
        };
        if epsilon == 0.0 {
            return Ok(None);
        }
        let logits = logits_of(self.model.as_ref(), batch, train)?;
        label_smoothed_loss(epsilon, &logits, labels).map(Some)
    }
}

impl Trainer {
    /// HF's `compute_loss` of a training batch: label-smoothed, or the
    /// model's own loss; then, every `--torch_empty_cache_steps`, the CUDA
    /// cache emptied, as HF's `training_step` does right after it.
    pub(super) fn training_loss(&self, batch: &Batch) -> Result<Tensor> {
        let loss = match self.smoothed_loss(batch, true)? {
            Some(loss) => loss,
            None => self.model.loss(batch, true)?,
        };
        self.maybe_empty_cache()?;
        Ok(loss)
    }

    /// Replaces the model's evaluation loss of `batch` by the label-smoothed
    /// one (HF's `prediction_step` takes `compute_loss`'s), from the logits
    /// the batch gave, or the model's [`Model::logits`].
    pub(super) fn smooth_eval_loss(&self, batch: &Batch, out: &mut EvalBatch) -> Result<()> {
        let epsilon = self.args.label_smoothing_factor;
        let Some(labels) = batch.columns.get("labels") else {
            return Ok(());
        };
        if epsilon == 0.0 || out.loss.is_none() {
            return Ok(());
        }
        let logits = match &out.predictions {
            Some(logits) => logits.shallow_clone(),
            None => logits_of(self.model.as_ref(), batch, false)?,
        };
        out.loss = Some(label_smoothed_loss(epsilon, &logits, labels)?);
        Ok(())
    }
}

/// The model's logits, or the error that label smoothing needs them.
pub(super) fn logits_of(model: &dyn Model, batch: &Batch, train: bool) -> Result<Tensor> {
    match model.logits(batch, train)? {
        Some(logits) => Ok(logits),
        None => bail!(
            "--label_smoothing_factor needs the model's logits, but the model gives only a loss: \
             return (loss, logits) from forward (or a dict with \"logits\"), implement \
             `Model::logits`, or train without --label_smoothing_factor"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoothing_zero_is_cross_entropy_and_ignores_padding() {
        let logits =
            Tensor::from_slice(&[2.0f32, 0.5, -1.0, 0.1, 0.2, 3.0, 1.0, 1.0, 1.0]).view([3, 3]);
        let labels = Tensor::from_slice(&[0i64, 2, -100]);
        let ours = label_smoothed_loss(0.0, &logits, &labels).unwrap();
        let ce = logits
            .narrow(0, 0, 2)
            .cross_entropy_for_logits(&labels.narrow(0, 0, 2));
        assert!((ours.double_value(&[]) - ce.double_value(&[])).abs() < 1e-6);
    }

    #[test]
    fn full_smoothing_is_the_mean_negative_log_probability() {
        let logits = Tensor::from_slice(&[2.0f32, 0.5, -1.0, 0.1]).view([1, 4]);
        let labels = Tensor::from_slice(&[1i64]);
        let ours = label_smoothed_loss(1.0, &logits, &labels)
            .unwrap()
            .double_value(&[]);
        let want = -logits.log_softmax(-1, Kind::Float).mean(Kind::Float);
        assert!((ours - want.double_value(&[])).abs() < 1e-6);
    }

    #[test]
    fn float_labels_are_refused() {
        let logits = Tensor::ones([2, 3], tch::kind::FLOAT_CPU);
        let labels = Tensor::from_slice(&[0.5f32, 1.5]);
        let err = label_smoothed_loss(0.1, &logits, &labels).unwrap_err();
        assert!(err.to_string().contains("not class indices"), "{err}");
    }
}
