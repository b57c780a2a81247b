//! `torch.optim.Adagrad` (single-tensor path, dense gradients): L2 weight
//! decay added to the gradient, a per-parameter step for `lr_decay`, the
//! sum of squared gradients.

use super::{take_state, Param, Rule, Steps};
use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

/// The settings of Adagrad (`--optim_args lr_decay=…,eps=…`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradConfig {
    /// torch's `lr_decay`: the rate is `lr / (1 + (step - 1) * lr_decay)`.
    pub lr_decay: f64,
    /// Added to the denominator (torch: 1e-10).
    pub eps: f64,
}

/// The sum of squared gradients of each parameter, and its steps. torch
/// fills the sums with `initial_accumulator_value` (0, as HF leaves it) at
/// construction; a zero sum made at the first update is the same.
pub(super) struct Adagrad {
    config: AdagradConfig,
    sums: Vec<Option<Tensor>>,
    steps: Steps,
}

impl Adagrad {
    pub(super) fn new(config: AdagradConfig, n: usize) -> Adagrad {
        Adagrad {
            config,
            sums: (0..n).map(|_| None).collect(),
            steps: Steps::new(n),
        }
    }
}

impl Rule for Adagrad {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, _step: u64) {
        let AdagradConfig { lr_decay, eps } = self.config;
        for ((p, sum), step) in params.iter_mut().zip(&mut self.sums).zip(&mut self.steps.0) {
            let mut grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            *step += 1;
            let wd = p.weight_decay(weight_decay);
            if wd != 0.0 {
                grad = &grad + &p.value * wd;
            }
            let clr = lr / (1.0 + (*step as f64 - 1.0) * lr_decay);
            let sum = sum.get_or_insert_with(|| p.value.zeros_like());
            let _ = sum.g_add_(&(&grad * &grad));
            let std = sum.sqrt() + eps;
            let _ = p.value.g_sub_(&(grad / std * clr));
        }
    }

    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = params
            .iter()
            .zip(&self.sums)
            .filter_map(|(p, s)| {
                s.as_ref()
                    .map(|s| (format!("sum.{}", p.name), s.shallow_clone()))
            })
            .collect();
        self.steps.tensors(params, &mut out);
        out
    }

    fn load_state(
        &mut self,
        params: &[Param],
        _step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()> {
        for (p, sum) in params.iter().zip(&mut self.sums) {
            *sum = take_state(tensors, "sum", p, &p.value.size())?;
        }
        self.steps.load(params, tensors)
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn state_name(&self) -> &'static str {
        "Adagrad sums"
    }
}
