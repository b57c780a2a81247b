//! Evaluation: HF's `evaluate()` with its `evaluation_loop` (spec §5.6-5.7).

use super::data::{epoch_batches, num_batches, Dataset};
use super::model::MetricSum;
use super::{speed_metrics, Trainer};
use crate::event::Event;
use crate::state::{Logs, Value};
use anyhow::{anyhow, Result};
use std::time::Instant;

impl Trainer {
    /// Number of evaluation batches (`len(eval_dataloader)`).
    pub(super) fn eval_batches(&self) -> Option<u32> {
        let data = self.eval_data.as_ref()?;
        Some(num_batches(
            data.len(),
            self.args.per_device_eval_batch_size as usize,
            self.args.dataloader_drop_last,
        ) as u32)
    }

    /// Evaluates on the evaluation data: one `on_prediction_step` per batch,
    /// then `log` of the metrics and `on_evaluate`. Returns the logged metrics
    /// (`eval_loss`, the model's metrics, speed, `epoch`).
    pub fn evaluate(&mut self) -> Result<Logs> {
        let data = self
            .eval_data
            .take()
            .ok_or_else(|| anyhow!("evaluation needs an evaluation dataset"))?;
        let result = self.evaluation_loop(data.as_ref(), "eval");
        self.eval_data = Some(data);
        let metrics = self.log(result?)?;
        self.fire(Event::Evaluate, &metrics)?;
        Ok(metrics)
    }

    /// Predicts on `data`, as HF's `predict()`: one `on_prediction_step` per
    /// batch, then `on_predict` with the metrics, prefixed `test_` (not logged).
    pub fn predict(&mut self, data: &dyn Dataset) -> Result<Logs> {
        let metrics = self.evaluation_loop(data, "test")?;
        self.fire(Event::Predict, &metrics)?;
        Ok(metrics)
    }

    /// HF's `evaluation_loop`: the batches of `data` in order, without
    /// gradients, then the loss and the model's metrics with `prefix`, and
    /// the speed metrics.
    fn evaluation_loop(&mut self, data: &dyn Dataset, prefix: &str) -> Result<Logs> {
        let started = Instant::now();
        let batches = epoch_batches(
            data.len(),
            self.args.per_device_eval_batch_size as usize,
            self.args.dataloader_drop_last,
            None,
        );
        self.model.begin_evaluation(self.state.global_step);
        let (mut loss_sum, mut samples) = (0.0, 0usize);
        let mut sums: Vec<MetricSum> = Vec::new();
        for indices in &batches {
            let batch = data.batch(indices);
            let out = tch::no_grad(|| self.model.eval_batch(&batch));
            loss_sum += super::train::loss_value(&out.loss)? * batch.len() as f64;
            samples += batch.len();
            for m in out.metrics {
                match sums.iter_mut().find(|s| s.name == m.name) {
                    Some(s) => {
                        s.sum += m.sum;
                        s.count += m.count;
                    }
                    None => sums.push(m),
                }
            }
            self.fire(Event::PredictionStep, &Logs::new())?;
        }
        let mut metrics = Logs::new();
        if samples > 0 {
            metrics.insert(
                format!("{prefix}_loss"),
                Value::Float(loss_sum / samples as f64),
            );
        }
        for s in sums {
            let key = if s.name.starts_with(&format!("{prefix}_")) {
                s.name.to_string()
            } else {
                format!("{prefix}_{}", s.name)
            };
            metrics.insert(
                key,
                Value::Float(if s.count > 0.0 {
                    s.sum / s.count
                } else {
                    f64::NAN
                }),
            );
        }
        let runtime = started.elapsed().as_secs_f64();
        speed_metrics(
            &mut metrics,
            prefix,
            runtime,
            samples as f64,
            batches.len() as f64,
        );
        Ok(metrics)
    }
}
