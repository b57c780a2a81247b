//! For testing callbacks that react to metrics (early stopping, best-model
//! tracking): the regression task, whose evaluation at step `k * eval_every`
//! reports the k-th value of a script as `eval_score` (1-based k; step 0
//! counts as k = 1; past the end the last value repeats). The script follows
//! the step, not the count of evaluations, so a resumed run continues it.
//! Options: `scores` (comma-separated, required), `eval_every` (default 1),
//! and the regression options.

use super::{regression, Task, TaskOptions};
use crate::trainer::data::Batch;
use crate::trainer::model::{EvalBatch, MetricSum, Model};
use anyhow::{anyhow, Result};
use std::cell::Cell;
use tch::{nn, Tensor};

/// The regression model with a scripted evaluation metric.
pub struct ScriptedModel {
    inner: Box<dyn Model>,
    scores: Vec<f64>,
    eval_every: u64,
    /// The script index of the evaluation under way.
    index: Cell<usize>,
}

impl Model for ScriptedModel {
    fn var_store(&self) -> &nn::VarStore {
        self.inner.var_store()
    }

    fn to_device(&mut self, device: tch::Device) -> Result<()> {
        self.inner.to_device(device)
    }

    fn loss(&self, batch: &Batch, train: bool) -> Result<Tensor> {
        self.inner.loss(batch, train)
    }

    fn logits(&self, batch: &Batch, train: bool) -> Result<Option<Tensor>> {
        self.inner.logits(batch, train)
    }

    fn main_input_name(&self) -> &str {
        self.inner.main_input_name()
    }

    fn begin_evaluation(&self, global_step: u64) {
        let k = (global_step / self.eval_every).max(1) as usize - 1;
        self.index.set(k.min(self.scores.len() - 1));
    }

    fn eval_batch(&self, batch: &Batch) -> Result<EvalBatch> {
        let score = self.scores[self.index.get()];
        let n = batch.len() as f64;
        Ok(EvalBatch {
            loss: Some(self.inner.loss(batch, false)?),
            metrics: vec![MetricSum::mean("score", score * n, n)],
            ..EvalBatch::default()
        })
    }
}

/// The scripted task.
pub fn task(options: &TaskOptions) -> Result<Task> {
    let mut options = options.clone();
    let script = options
        .remove("scores")
        .ok_or_else(|| anyhow!("task scripted needs --task_option scores=V1,V2,..."))?;
    let scores = script
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| anyhow!("--task_option scores={script}: {v:?} is not a number"))
        })
        .collect::<Result<Vec<f64>>>()?;
    let eval_every =
        match options.remove("eval_every") {
            Some(v) => v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                anyhow!("--task_option eval_every={v}: expected a positive integer")
            })?,
            None => 1,
        };
    if scores.is_empty() {
        return Err(anyhow!("--task_option scores= needs at least one value"));
    }
    let base = regression::task(&options)?;
    Ok(Task {
        model: Box::new(ScriptedModel {
            inner: base.model,
            scores,
            eval_every,
            index: Cell::new(0),
        }),
        train: base.train,
        eval: base.eval,
    })
}
