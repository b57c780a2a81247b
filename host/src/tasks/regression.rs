//! The twin of HF's test set-up: `RegressionDataset` (y = a*x + b + noise,
//! 64 samples) and `RegressionModel` (two scalars, `a` and `b`, from 0).
//! Options: `train_size`, `eval_size` (64 each), `a` (2), `b` (3), `noise` (0.1).

use super::{OptionReader, Task, TaskOptions};
use crate::trainer::data::{Batch, SplitMix64, TensorDataset};
use crate::trainer::model::Model;
use anyhow::Result;
use tch::{nn, Tensor};

/// y = a*x + b, with `a` and `b` learned.
pub struct RegressionModel {
    vs: nn::VarStore,
    a: Tensor,
    b: Tensor,
}

impl RegressionModel {
    pub fn new() -> Self {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let a = vs.root().zeros("a", &[]);
        let b = vs.root().zeros("b", &[]);
        RegressionModel { vs, a, b }
    }
}

impl Default for RegressionModel {
    fn default() -> Self {
        Self::new()
    }
}

impl Model for RegressionModel {
    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn to_device(&mut self, device: tch::Device) -> Result<()> {
        self.vs.set_device(device);
        Ok(())
    }

    fn loss(&self, batch: &Batch, _train: bool) -> Result<Tensor> {
        let y = batch.get("input_x")? * &self.a + &self.b;
        Ok(y.mse_loss(batch.get("labels")?, tch::Reduction::Mean))
    }

    fn main_input_name(&self) -> &str {
        "input_x"
    }
}

/// `length` samples of y = a*x + b + noise, from a fixed seed.
pub fn dataset(length: usize, a: f64, b: f64, noise: f64, seed: u64) -> TensorDataset {
    let mut rng = SplitMix64(seed);
    let x: Vec<f32> = (0..length).map(|_| rng.normal() as f32).collect();
    let y: Vec<f32> = x
        .iter()
        .map(|&x| (a * f64::from(x) + b + noise * rng.normal()) as f32)
        .collect();
    TensorDataset::new([
        ("input_x", Tensor::from_slice(&x)),
        ("labels", Tensor::from_slice(&y)),
    ])
}

/// The regression task.
pub fn task(options: &TaskOptions) -> Result<Task> {
    let mut o = OptionReader::new("regression", options);
    let train_size = o.get("train_size", 64usize)?;
    let eval_size = o.get("eval_size", 64usize)?;
    let a = o.get("a", 2.0f64)?;
    let b = o.get("b", 3.0f64)?;
    let noise = o.get("noise", 0.1f64)?;
    o.finish()?;
    Ok(Task {
        model: Box::new(RegressionModel::new()),
        train: Box::new(dataset(train_size, a, b, noise, 42)),
        eval: Box::new(dataset(eval_size, a, b, noise, 43)),
    })
}
