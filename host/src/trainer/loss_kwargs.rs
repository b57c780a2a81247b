//! HF's `num_items_in_batch`, for a model that takes loss kwargs
//! ([`Model::accepts_loss_kwargs`]): before the first forward of an update,
//! the labels that are not -100 are counted over all its batches (over
//! `labels[..., 1:]` when HF's loss type is a causal LM's,
//! [`Model::counts_shifted_labels`]), summed over
//! the ranks under `--average_tokens_across_devices`, and given to every
//! forward of the update as the batch's `num_items_in_batch` column (a
//! 0-dim float tensor on the device, as HF's count divided by its parallel
//! sizes is). The model divides its summed loss by it, so the trainer does
//! not divide by the accumulation steps (HF's `loss_is_scaled_for_ga`), and
//! multiplies by the number of processes under
//! `--average_tokens_across_devices` (HF's `loss_scale`: the mean of the
//! ranks' gradients is then the gradient of the loss over all their tokens).
//! An evaluation batch gets its own count (HF's `prediction_step`), summed
//! over the ranks under `--average_tokens_across_devices` and its loss then
//! times the processes, as in training (the ranks' evaluation batches are
//! evened out, so each takes part in every sum).
//!
//! [`Model::accepts_loss_kwargs`]: super::model::Model::accepts_loss_kwargs
//! [`Model::counts_shifted_labels`]: super::model::Model::counts_shifted_labels

use super::data::Batch;
use super::model::Model;
use super::prefetch::Loader;
use super::Trainer;
use anyhow::Result;
use std::collections::VecDeque;
use tch::{Kind, Tensor};

/// The label HF ignores (when it counts, and in `LabelSmoother`).
pub const IGNORE_INDEX: i64 = -100;

/// The argument (and batch column) that carries HF's `num_items_in_batch`.
pub const NUM_ITEMS_IN_BATCH: &str = "num_items_in_batch";

/// The batches of one update, built before its first forward, and their
/// `num_items_in_batch`; empty, with no count, for a model that does not
/// take it (its batches are built one by one, as before).
#[derive(Default)]
pub(super) struct Window {
    batches: VecDeque<(Vec<i64>, Result<Batch>)>,
    /// The update's count, on the device.
    pub num_items: Option<Tensor>,
}

impl Window {
    /// The update's next batch: the window's, else the loader's.
    pub fn next_batch(
        &mut self,
        loader: &mut Loader,
        trainer: &Trainer,
    ) -> Option<(Vec<i64>, Result<Batch>)> {
        self.batches
            .pop_front()
            .or_else(|| loader.next_batch(trainer.train_data.as_ref()))
    }
}

/// HF's count: the elements of the `labels` column that are not -100, over
/// `labels[..., 1:]` when `shift`; `None` when the first batch has no
/// `labels`.
pub fn count_items(batches: &[&Batch], shift: bool) -> Result<Option<f64>> {
    if !batches
        .first()
        .is_some_and(|b| b.columns.contains_key("labels"))
    {
        return Ok(None);
    }
    let mut total = 0i64;
    for batch in batches {
        let Some(labels) = batch.columns.get("labels") else {
            continue;
        };
        let labels = if shift && labels.dim() > 0 {
            let last = *labels.size().last().unwrap_or(&0);
            labels.f_narrow(-1, 1.min(last), (last - 1).max(0))?
        } else {
            labels.shallow_clone()
        };
        total += labels
            .f_ne(IGNORE_INDEX)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
    }
    Ok(Some(total as f64))
}

/// `batch` with the `num_items_in_batch` column (shallow copies).
pub fn with_num_items(batch: &Batch, num_items: &Tensor) -> Batch {
    let mut columns: std::collections::BTreeMap<String, Tensor> = batch
        .columns
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    columns.insert(NUM_ITEMS_IN_BATCH.to_owned(), num_items.shallow_clone());
    Batch { columns }
}

/// `batch` with its own `num_items_in_batch` (its labels alone, on its
/// device), when `model` takes it and the batch has labels; else the batch
/// as it is. An evaluation batch's (HF's `prediction_step`), and that of a
/// check before training.
pub fn with_own_count(model: &dyn Model, batch: Batch) -> Result<Batch> {
    if !model.accepts_loss_kwargs() {
        return Ok(batch);
    }
    let device = batch
        .columns
        .values()
        .next()
        .map_or(tch::Device::Cpu, Tensor::device);
    match count_items(&[&batch], model.counts_shifted_labels())? {
        Some(count) => Ok(with_num_items(
            &batch,
            &Tensor::scalar_tensor(count, (Kind::Float, device)),
        )),
        None => Ok(batch),
    }
}

impl Trainer {
    /// The next update's window of `len` batches: built now, with their
    /// count, when the model takes `num_items_in_batch`.
    pub(super) fn update_window(&self, loader: &mut Loader, len: usize) -> Result<Window> {
        if !self.model.accepts_loss_kwargs() {
            return Ok(Window::default());
        }
        let batches: VecDeque<_> = (0..len)
            .map_while(|_| loader.next_batch(self.train_data.as_ref()))
            .collect();
        // A batch that failed to build is reported at its own forward.
        let built: Vec<&Batch> = batches
            .iter()
            .filter_map(|(_, b)| b.as_ref().ok())
            .collect();
        let num_items = match count_items(&built, self.model.counts_shifted_labels())? {
            Some(count) => Some(self.count_tensor(
                self.count_over_ranks("adding up the update's labels (num_items_in_batch)", count)?,
            )),
            None => None,
        };
        Ok(Window { batches, num_items })
    }

    /// `count`, summed over the ranks under `--average_tokens_across_devices`.
    fn count_over_ranks(&self, what: &str, count: f64) -> Result<f64> {
        let mut count = [count];
        if self.averages_tokens_across_ranks() {
            self.world.sum(what, &mut count)?;
        }
        Ok(count[0])
    }

    /// Whether counts are summed over the ranks, and losses multiplied by
    /// their number (HF's `loss_scale`).
    fn averages_tokens_across_ranks(&self) -> bool {
        self.args.average_tokens_across_devices && self.world.size() > 1
    }

    /// An evaluation batch with its `num_items_in_batch` (its own labels,
    /// summed over the ranks under `--average_tokens_across_devices`), when
    /// the model takes it and the batch has labels, else the batch as it is;
    /// and the factor of its loss (the processes when the count was summed,
    /// as HF's `compute_loss`; else 1).
    pub(super) fn with_eval_num_items(&self, batch: Batch) -> Result<(Batch, f64)> {
        if !self.model.accepts_loss_kwargs() {
            return Ok((batch, 1.0));
        }
        let Some(count) = count_items(&[&batch], self.model.counts_shifted_labels())? else {
            return Ok((batch, 1.0));
        };
        let count = self.count_over_ranks("adding up an evaluation batch's labels", count)?;
        let scale = if self.averages_tokens_across_ranks() {
            self.world.size() as f64
        } else {
            1.0
        };
        Ok((with_num_items(&batch, &self.count_tensor(count)), scale))
    }

    /// The training loss of a micro-batch as the update needs it: with a
    /// count, the model's loss over the update's labels, times the
    /// processes under `--average_tokens_across_devices`; without, the
    /// batch's mean loss divided by the update's batches.
    pub(super) fn scaled_for_update(
        &self,
        loss: Tensor,
        num_items: Option<&Tensor>,
        batches_in_update: usize,
    ) -> Tensor {
        match num_items {
            None => loss / batches_in_update as f64,
            Some(_) if self.averages_tokens_across_ranks() => loss * self.world.size() as f64,
            Some(_) => loss,
        }
    }

    /// A count as HF passes it: a 0-dim float32 tensor on the device.
    fn count_tensor(&self, count: f64) -> Tensor {
        Tensor::scalar_tensor(count, (Kind::Float, self.device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_labels_that_are_not_ignored_shifted_or_not() {
        let a = Batch::new([(
            "labels",
            Tensor::from_slice(&[1i64, 2, -100, 3, -100, -100]).view([2, 3]),
        )]);
        let b = Batch::new([("labels", Tensor::from_slice(&[-100i64, 5, 6]).view([1, 3]))]);
        assert_eq!(count_items(&[&a, &b], false).unwrap(), Some(5.0));
        // Shifted: the first column is no target (1 and 3 of a are dropped).
        assert_eq!(count_items(&[&a, &b], true).unwrap(), Some(3.0));
        let none = Batch::new([("x", Tensor::from_slice(&[1.0f32]))]);
        assert_eq!(count_items(&[&none], false).unwrap(), None);
    }

    #[test]
    fn the_count_column_is_added_beside_the_others() {
        let a = Batch::new([("labels", Tensor::from_slice(&[1i64, 2]))]);
        let n = Tensor::scalar_tensor(2.0, (Kind::Float, tch::Device::Cpu));
        let with = with_num_items(&a, &n);
        assert_eq!(with.columns[NUM_ITEMS_IN_BATCH].dim(), 0);
        assert_eq!(with.len(), 2);
    }
}
