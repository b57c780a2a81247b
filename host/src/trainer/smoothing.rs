//! `--label_smoothing_factor`: HF's `LabelSmoother`, applied as HF's
//! `Trainer.compute_loss` applies it: when the factor is not 0 and the batch
//! has a `labels` column, the loss is computed by the trainer from the
//! model's logits (training and evaluation alike), not taken from the model.
//! A model that gives only a loss ([`Model::logits`] is `None`) is refused.
//!
//! As HF 5.24: a causal LM ([`Model::shifts_labels`]: a TorchScript module
//! whose class is one of transformers' causal LM classes) has its logits
//! `[..., :-1, :]` compared with its labels `[..., 1:]`; a model that takes
//! `num_items_in_batch` ([`Model::accepts_loss_kwargs`]) has the summed
//! losses divided by that count (the labels of the whole update, see
//! `loss_kwargs`), and the loop does not divide by the accumulation steps;
//! any other model has each micro-batch normalised by its own label count,
//! and the loop divides by the accumulation steps.

use super::data::Batch;
use super::loss_kwargs::IGNORE_INDEX;
use super::model::{EvalBatch, Model};
use super::Trainer;
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

/// HF's `LabelSmoother(epsilon)(logits, labels, shift_labels,
/// num_items_in_batch)`: `(1 - ε) * nll + ε * smooth`, the negative
/// log-likelihood and the mean negative log-probability over the classes,
/// both summed over the labels that are not -100 and divided by
/// `num_items` when given, else by the count of those labels. With `shift`,
/// `logits[..., :-1, :]` against `labels[..., 1:]` (a causal LM). The same
/// operations in the same order as HF's, so the values are HF's.
pub fn label_smoothed_loss(
    epsilon: f64,
    logits: &Tensor,
    labels: &Tensor,
    shift: bool,
    num_items: Option<&Tensor>,
) -> Result<Tensor> {
    let (logits, labels) = if shift {
        shifted(logits, labels)?
    } else {
        (logits.shallow_clone(), labels.shallow_clone())
    };
    let log_probs = -logits.f_log_softmax(-1, None::<Kind>)?;
    let mut labels = labels;
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
    let denominator = match num_items {
        Some(n) => n.f_to_device(nll_loss.device())?,
        None => {
            let numel = padding_mask.numel() as i64;
            -(padding_mask.f_to_kind(Kind::Int64)?.f_sum(None::<Kind>)?) + numel
        }
    };
    let classes = *log_probs.size().last().unwrap_or(&1);
    let nll_loss = nll_loss.f_sum(None::<Kind>)?.f_div(&denominator)?;
    let smoothed_loss = smoothed_loss
        .f_sum(None::<Kind>)?
        .f_div(&(denominator * classes))?;
    Ok(nll_loss * (1.0 - epsilon) + smoothed_loss * epsilon)
}

/// `logits[..., :-1, :]` and `labels[..., 1:]`, contiguous, as HF's
/// `shift_labels`; an error when they have no sequence dimension.
fn shifted(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, Tensor)> {
    if logits.dim() < 2 || labels.dim() < 1 {
        bail!(
            "--label_smoothing_factor on a causal LM: the logits have shape {:?} and the labels \
             {:?}; a causal LM's need a sequence dimension ([batch, sequence, vocabulary] and \
             [batch, sequence])",
            logits.size(),
            labels.size()
        );
    }
    let len = logits.size()[logits.dim() - 2];
    let logits = logits.f_narrow(-2, 0, (len - 1).max(0))?.f_contiguous()?;
    let last = *labels.size().last().unwrap_or(&0);
    let labels = labels
        .f_narrow(-1, 1.min(last), (last - 1).max(0))?
        .f_contiguous()?;
    Ok((logits, labels))
}

impl Trainer {
    /// HF's `LabelSmoother` call for `batch` (shifted for a causal LM, by
    /// the batch's `num_items_in_batch` when it has one).
    fn smooth(
        &self,
        epsilon: f64,
        logits: &Tensor,
        batch: &Batch,
        labels: &Tensor,
    ) -> Result<Tensor> {
        let num_items = batch.columns.get(super::loss_kwargs::NUM_ITEMS_IN_BATCH);
        label_smoothed_loss(
            epsilon,
            logits,
            labels,
            self.model.shifts_labels(),
            num_items,
        )
    }

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
        self.smooth(epsilon, &logits, batch, labels).map(Some)
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
        out.loss = Some(self.smooth(epsilon, &logits, batch, labels)?);
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
        let ours = label_smoothed_loss(0.0, &logits, &labels, false, None).unwrap();
        let ce = logits
            .narrow(0, 0, 2)
            .cross_entropy_for_logits(&labels.narrow(0, 0, 2));
        assert!((ours.double_value(&[]) - ce.double_value(&[])).abs() < 1e-6);
    }

    #[test]
    fn full_smoothing_is_the_mean_negative_log_probability() {
        let logits = Tensor::from_slice(&[2.0f32, 0.5, -1.0, 0.1]).view([1, 4]);
        let labels = Tensor::from_slice(&[1i64]);
        let ours = label_smoothed_loss(1.0, &logits, &labels, false, None)
            .unwrap()
            .double_value(&[]);
        let want = -logits.log_softmax(-1, Kind::Float).mean(Kind::Float);
        assert!((ours - want.double_value(&[])).abs() < 1e-6);
    }

    #[test]
    fn a_causal_lm_is_shifted_and_divided_by_the_count_given() {
        // [1, 3, 2] logits, labels [1, 3]: shifted, positions 0 and 1
        // predict labels 1 and 2; the last position predicts nothing.
        let logits = Tensor::from_slice(&[2.0f32, 0.5, -1.0, 0.1, 0.3, 3.0]).view([1, 3, 2]);
        let labels = Tensor::from_slice(&[-100i64, 1, 0]).view([1, 3]);
        let ours = label_smoothed_loss(0.0, &logits, &labels, true, None).unwrap();
        let ce = logits
            .narrow(1, 0, 2)
            .view([2, 2])
            .cross_entropy_for_logits(&Tensor::from_slice(&[1i64, 0]));
        assert!((ours.double_value(&[]) - ce.double_value(&[])).abs() < 1e-6);
        let four = Tensor::scalar_tensor(4.0, (Kind::Float, tch::Device::Cpu));
        let by_four = label_smoothed_loss(0.0, &logits, &labels, true, Some(&four)).unwrap();
        let want = ce.double_value(&[]) * 2.0 / 4.0;
        assert!((by_four.double_value(&[]) - want).abs() < 1e-6);
    }

    #[test]
    fn float_labels_are_refused() {
        let logits = Tensor::ones([2, 3], tch::kind::FLOAT_CPU);
        let labels = Tensor::from_slice(&[0.5f32, 1.5]);
        let err = label_smoothed_loss(0.1, &logits, &labels, false, None).unwrap_err();
        assert!(err.to_string().contains("not class indices"), "{err}");
    }
}
