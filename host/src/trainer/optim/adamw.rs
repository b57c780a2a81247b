//! `torch.optim.AdamW` (single-tensor path): decoupled weight decay, then
//! Adam with bias correction. HF's `adamw_torch` and `adamw_torch_fused`
//! (the fused kernel is the same update).

use super::{take_state, Param, Rule};
use anyhow::{bail, Result};
use std::collections::HashMap;
use tch::Tensor;

/// The settings of AdamW (`--adam_beta1`, `--adam_beta2`, `--adam_epsilon`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWConfig {
    /// `--adam_beta1`.
    pub beta1: f64,
    /// `--adam_beta2`.
    pub beta2: f64,
    /// `--adam_epsilon`.
    pub eps: f64,
}

/// The moments (exp_avg, exp_avg_sq) of each parameter, once it had a gradient.
pub(super) struct AdamW {
    config: AdamWConfig,
    moments: Vec<Option<(Tensor, Tensor)>>,
}

impl AdamW {
    pub(super) fn new(config: AdamWConfig, n: usize) -> AdamW {
        AdamW {
            config,
            moments: (0..n).map(|_| None).collect(),
        }
    }
}

impl Rule for AdamW {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, step: u64) {
        let AdamWConfig { beta1, beta2, eps } = self.config;
        let bias1 = 1.0 - beta1.powi(step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(step as i32)).sqrt();
        for (p, moments) in params.iter_mut().zip(&mut self.moments) {
            let grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            let (m, v) = moments.get_or_insert_with(|| (grad.zeros_like(), grad.zeros_like()));
            let wd = p.weight_decay(weight_decay);
            if wd != 0.0 {
                let _ = p.value.g_mul_scalar_(1.0 - lr * wd);
            }
            let _ = m.lerp_(&grad, 1.0 - beta1);
            let _ = v.g_mul_scalar_(beta2);
            let _ = v.g_add_(&(grad.square() * (1.0 - beta2)));
            let denom = v.sqrt() / bias2_sqrt + eps;
            let _ = p.value.g_sub_(&(&*m / denom * (lr / bias1)));
        }
    }

    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, moments) in params.iter().zip(&self.moments) {
            if let Some((m, v)) = moments {
                out.push((format!("exp_avg.{}", p.name), m.shallow_clone()));
                out.push((format!("exp_avg_sq.{}", p.name), v.shallow_clone()));
            }
        }
        out
    }

    fn load_state(
        &mut self,
        params: &[Param],
        step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()> {
        for (p, moments) in params.iter().zip(&mut self.moments) {
            let shape = p.value.size();
            let m = take_state(tensors, "exp_avg", p, &shape)?;
            let v = take_state(tensors, "exp_avg_sq", p, &shape)?;
            *moments = match (m, v) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) if step == 0 => None,
                _ => bail!("optimizer state has no moments for parameter {:?}", p.name),
            };
        }
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn state_name(&self) -> &'static str {
        "AdamW moments"
    }
}
