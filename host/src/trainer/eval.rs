//! Evaluation: HF's `evaluate()` with its `evaluation_loop` (spec §5.6-5.7).

use super::data::{epoch_batches, num_batches};
use super::model::MetricSum;
use super::{speed_metrics, Trainer};
use crate::callbacks::Event;
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
        let started = Instant::now();
        let data = self
            .eval_data
            .as_ref()
            .ok_or_else(|| anyhow!("evaluation needs an evaluation dataset"))?;
        let batches = epoch_batches(
            data.len(),
            self.args.per_device_eval_batch_size as usize,
            self.args.dataloader_drop_last,
            None,
        );
        self.model.begin_evaluation(self.state.global_step);
        let mut loss_sum = 0.0;
        let mut samples = 0usize;
        let mut sums: Vec<MetricSum> = Vec::new();
        for indices in &batches {
            let data = self.eval_data.as_ref().expect("checked above");
            let batch = data.batch(indices);
            let out = tch::no_grad(|| self.model.eval_batch(&batch));
            let n = batch.len();
            loss_sum += out.loss.double_value(&[]) * n as f64;
            samples += n;
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
            metrics.insert("eval_loss", Value::Float(loss_sum / samples as f64));
        }
        for s in sums {
            let key = if s.name.starts_with("eval_") {
                s.name.to_string()
            } else {
                format!("eval_{}", s.name)
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
            "eval",
            runtime,
            samples as f64,
            batches.len() as f64,
        );
        let metrics = self.log(metrics)?;
        self.fire(Event::Evaluate, &metrics)?;
        Ok(metrics)
    }
}
