//! Evaluation: HF's `evaluate()` with its `evaluation_loop` (spec §5.6-5.7).

use super::data::Dataset;
use super::model::MetricSum;
use super::{speed_metrics, Trainer};
use crate::event::Event;
use crate::state::{Logs, Value};
use anyhow::{anyhow, bail, Context, Result};
use std::time::Instant;
use tch::Tensor;

impl Trainer {
    /// Number of evaluation batches (`len(eval_dataloader)`).
    pub(super) fn eval_batches(&self) -> Option<u32> {
        let data = self.eval_data.as_ref()?;
        Some(self.eval_shard(data.as_ref()).len() as u32)
    }

    /// Evaluates on the evaluation data: one `on_prediction_step` per batch,
    /// then `log` of the metrics and `on_evaluate`. Returns the logged metrics
    /// (`eval_loss`, the model's metrics, speed, `epoch`).
    pub fn evaluate(&mut self) -> Result<Logs> {
        let data = self
            .eval_data
            .take()
            .ok_or_else(|| anyhow!("evaluation needs an evaluation dataset"))?;
        let result = self.evaluation_loop(data.as_ref(), "eval", None);
        self.eval_data = Some(data);
        let metrics = self.log(result?)?;
        self.fire(Event::Evaluate, &metrics)?;
        Ok(metrics)
    }

    /// Predicts on `data`, as HF's `predict(test_dataset, metric_key_prefix)`:
    /// one `on_prediction_step` per batch, then `on_predict` with the
    /// metrics, prefixed `metric_key_prefix` (HF's default is `test`; its
    /// example scripts pass `predict`), not logged. Returns the
    /// predictions and labels of every sample with the metrics.
    pub fn predict(
        &mut self,
        data: &dyn Dataset,
        metric_key_prefix: &str,
    ) -> Result<PredictionOutput> {
        let mut kept = Kept::default();
        let metrics = self.evaluation_loop(data, metric_key_prefix, Some(&mut kept))?;
        self.fire(Event::Predict, &metrics)?;
        Ok(PredictionOutput {
            predictions: nested_concat(kept.predictions)?,
            label_ids: nested_concat(kept.labels)?,
            metrics,
        })
    }

    /// HF's `evaluation_loop`: the batches of `data` in order, without
    /// gradients, then the loss and the model's metrics with `prefix`, and
    /// the speed metrics; the predictions are kept into `kept` when given.
    fn evaluation_loop(
        &mut self,
        data: &dyn Dataset,
        prefix: &str,
        mut kept: Option<&mut Kept>,
    ) -> Result<Logs> {
        let started = Instant::now();
        let batches = self.eval_shard(data);
        self.model.set_training(false)?;
        self.model.begin_evaluation(self.state.global_step);
        let (mut loss_sum, mut with_loss) = (0.0, 0usize);
        let mut sums: Vec<MetricSum> = Vec::new();
        // Samples repeated only to even the ranks out count for nothing; a
        // batch of nothing but those still runs, for the names of the
        // model's metrics.
        // --dataloader_num_workers: the batches built ahead, in order.
        let mut loader = super::prefetch::Loader::new(
            data,
            batches.iter().map(|b| run_on(b).to_vec()).collect(),
            self.args.dataloader_num_workers as usize,
            self.args.prefetch_factor(),
        );
        for (step, shard) in batches.iter().enumerate() {
            let (indices, counted) = (run_on(shard), shard.real != 0);
            let Some((_, batch)) = loader.next_batch(data) else {
                bail!("the evaluation's batches ran out");
            };
            let at = || {
                format!(
                    "{prefix} batch (samples {})",
                    super::train::sample_list(indices)
                )
            };
            let batch = batch.with_context(at)?.to_device(self.device);
            let (batch, loss_scale) = self.with_eval_num_items(batch).with_context(at)?;
            // Under autocast, as HF's prediction_step (--bf16, --fp16).
            let autocast = self.autocast()?;
            let mut out = tch::no_grad(|| -> Result<_> {
                let mut out = self.model.eval_batch(&batch)?;
                self.smooth_eval_loss(&batch, &mut out)?;
                if loss_scale != 1.0 {
                    out.loss = out.loss.map(|l| l * loss_scale);
                }
                Ok(out)
            })
            .with_context(at)?;
            drop(autocast);
            if self.args.prediction_loss_only {
                // HF's prediction_step returns (loss, None, None).
                out.metrics.clear();
                (out.predictions, out.labels) = (None, None);
            }
            if let (Some(loss), true) = (&out.loss, counted) {
                loss_sum += super::train::loss_value(loss)? * batch.len() as f64;
                with_loss += batch.len();
            }
            for mut m in out.metrics {
                if !counted {
                    (m.sum, m.count) = (0.0, 0.0);
                }
                match sums.iter_mut().find(|s| s.name == m.name) {
                    Some(s) => {
                        s.sum += m.sum;
                        s.count += m.count;
                    }
                    None => sums.push(m),
                }
            }
            if let (Some(kept), true) = (kept.as_deref_mut(), counted) {
                // Kept on the device, then moved to the CPU every
                // --eval_accumulation_steps batches, or at the end (HF).
                kept.on_device
                    .extend(out.predictions.take().map(|p| (true, p)));
                kept.on_device.extend(out.labels.take().map(|l| (false, l)));
            }
            if let (Some(kept), Some(every)) =
                (kept.as_deref_mut(), self.args.eval_accumulation_steps)
            {
                if (step + 1).is_multiple_of(every as usize) {
                    kept.move_to_host();
                }
            }
            self.fire(Event::PredictionStep, &Logs::new())?;
        }
        if let Some(kept) = kept.as_deref_mut() {
            kept.move_to_host();
        }
        let ((loss_sum, with_loss), sums) = self.sum_evaluation((loss_sum, with_loss), sums)?;
        if let Some(kept) = kept {
            self.gather_predictions(kept)?;
        }
        let mut metrics = Logs::new();
        if with_loss > 0 {
            metrics.insert(
                format!("{prefix}_loss"),
                Value::Float(loss_sum / with_loss as f64),
            );
        }
        for s in sums {
            let key = if s.name.starts_with(&format!("{prefix}_")) {
                s.name.to_string()
            } else {
                format!("{prefix}_{}", s.name)
            };
            metrics.insert(key, Value::Float(s.value()));
        }
        // As HF: the dataset's length and ceil(len / batch), whatever
        // `dataloader_drop_last` left out.
        let runtime = started.elapsed().as_secs_f64();
        let bs = self.args.per_device_eval_batch_size as usize;
        speed_metrics(
            &mut metrics,
            prefix,
            runtime,
            data.len() as f64,
            // HF: ceil(samples / (batch × processes)).
            data.len().div_ceil(bs * self.world.size()) as f64,
        );
        Ok(metrics)
    }
}

/// The samples a shard batch runs on: its real ones, or, for a batch of
/// nothing but repeats, all of them (counted for nothing).
fn run_on(shard: &crate::dist::shard::ShardBatch) -> &[i64] {
    match shard.real {
        0 => &shard.indices[..],
        real => &shard.indices[..real],
    }
}

/// What `predict` returns, as HF's `PredictionOutput`.
#[derive(Debug)]
pub struct PredictionOutput {
    /// The model's predictions (logits) of every sample, in order; `None`
    /// when the model gives none.
    pub predictions: Option<Tensor>,
    /// The labels of every sample, when the data has them.
    pub label_ids: Option<Tensor>,
    /// The metrics, with the prefix asked for.
    pub metrics: Logs,
}

/// Per-batch outputs kept by `predict`.
#[derive(Default)]
pub(super) struct Kept {
    pub predictions: Vec<Tensor>,
    pub labels: Vec<Tensor>,
    /// Outputs not yet moved to the CPU, in order (`true`: a prediction).
    on_device: Vec<(bool, Tensor)>,
}

impl Kept {
    /// Moves the outputs still on the device to the CPU, as HF's
    /// `nested_numpify` (which also makes bfloat16, from autocast, float32).
    fn move_to_host(&mut self) {
        for (is_prediction, t) in self.on_device.drain(..) {
            let t = t.to_device(tch::Device::Cpu);
            let t = match t.kind() {
                tch::Kind::BFloat16 => t.to_kind(tch::Kind::Float),
                _ => t,
            };
            if is_prediction {
                self.predictions.push(t);
            } else {
                self.labels.push(t);
            }
        }
    }
}

/// HF's `nested_concat` over batches: concatenated along the samples; where
/// the second dimension differs between batches (sequences padded per
/// batch), padded to the longest with -100, as `torch_pad_and_concatenate`.
fn nested_concat(parts: Vec<Tensor>) -> Result<Option<Tensor>> {
    let Some(first) = parts.first() else {
        return Ok(None);
    };
    let dims = first.dim();
    if dims == 0 {
        bail!(
            "the model's logits are a scalar per batch; predictions need one row per sample \
             (first dimension = the batch)"
        );
    }
    let tail = |t: &Tensor| t.size().get(2..).map(<[i64]>::to_vec);
    if let Some(t) = parts
        .iter()
        .find(|t| t.dim() != dims || tail(t) != tail(first))
    {
        bail!(
            "the model's logits have shape {:?} in one batch and {:?} in another; only the \
             first two dimensions (the batch, the sequence) may differ between batches",
            first.size(),
            t.size()
        );
    }
    if dims < 2 {
        return Ok(Some(Tensor::f_cat(&parts, 0)?));
    }
    let width = parts.iter().map(|t| t.size()[1]).max().unwrap_or(0);
    let padded = parts
        .iter()
        .map(|t| {
            let extra = width - t.size()[1];
            if extra == 0 {
                return Ok(t.shallow_clone());
            }
            let mut shape = t.size();
            shape[1] = extra;
            let pad = Tensor::f_full(&shape, -100, (t.kind(), t.device()))?;
            Ok(Tensor::f_cat(&[t.shallow_clone(), pad], 1)?)
        })
        .collect::<Result<Vec<Tensor>>>()?;
    Ok(Some(Tensor::f_cat(&padded, 0)?))
}
