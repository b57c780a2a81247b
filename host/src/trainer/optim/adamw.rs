//! `torch.optim.AdamW`: decoupled weight decay, then Adam with bias
//! correction. HF's `adamw_torch` runs torch's single-tensor path on the
//! CPU (the formula below, tensor by tensor); `adamw_torch_fused`, HF's
//! default, runs `AdamW(fused=True)`: torch's fused kernel, one pass per
//! parameter group (trainbox-torch-ext), whose float rounding differs from
//! the single-tensor path in the last bits, so each name runs its own.

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
    /// torch's fused kernel (`--optim adamw_torch_fused`) rather than the
    /// single-tensor formula (`adamw_torch`).
    pub fused: bool,
}

/// The moments (exp_avg, exp_avg_sq) of each parameter, once it had a gradient.
/// With the fused kernel, also each parameter's step count (a float32
/// scalar on its device, as torch keeps `state["step"]`).
pub(super) struct AdamW {
    config: AdamWConfig,
    moments: Vec<Option<(Tensor, Tensor)>>,
    steps: Vec<Option<Tensor>>,
}

impl AdamW {
    pub(super) fn new(config: AdamWConfig, n: usize) -> AdamW {
        AdamW {
            config,
            moments: (0..n).map(|_| None).collect(),
            steps: (0..n).map(|_| None).collect(),
        }
    }

    /// The single-tensor update of parameter `i`.
    fn update_one(&mut self, p: &mut Param, i: usize, lr: f64, weight_decay: f64, step: u64) {
        let AdamWConfig {
            beta1, beta2, eps, ..
        } = self.config;
        let grad = p.value.grad();
        if !grad.defined() {
            return;
        }
        // torch's `_single_tensor_adam`, operation for operation: Python's
        // `beta ** step` is C's pow, `addcmul_(g, g, value=c)` rounds
        // `(c * g) * g`, and `addcdiv_(m, denom, value=-s)` `(-s * m) / denom`.
        let bias1 = 1.0 - beta1.powf(step as f64);
        let bias2_sqrt = (1.0 - beta2.powf(step as f64)).powf(0.5);
        let (m, v) = self.moments[i].get_or_insert_with(|| (grad.zeros_like(), grad.zeros_like()));
        let wd = p.weight_decay(weight_decay);
        if wd != 0.0 {
            let _ = p.value.g_mul_scalar_(1.0 - lr * wd);
        }
        let _ = m.lerp_(&grad, 1.0 - beta1);
        let _ = v
            .g_mul_scalar_(beta2)
            .addcmul_(&(&grad * (1.0 - beta2)), &grad);
        let denom = v.sqrt() / bias2_sqrt + eps;
        let _ = p.value.addcdiv_(&(&*m * -(lr / bias1)), &denom);
    }

    /// The fused update: the parameters that have a gradient, grouped as
    /// torch groups them (weight-decay group, then device and dtype), one
    /// kernel call per group.
    fn update_fused(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, step: u64) {
        let mut groups: Vec<((bool, tch::Device, tch::Kind), Vec<usize>)> = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            self.moments[i].get_or_insert_with(|| (grad.zeros_like(), grad.zeros_like()));
            self.steps[i].get_or_insert_with(|| step_tensor(0, &p.value));
            let key = (p.decay, p.value.device(), p.value.kind());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        for ((decay, _, _), members) in groups {
            let pick = |f: &dyn Fn(usize) -> Tensor| -> Vec<Tensor> {
                members.iter().map(|&i| f(i)).collect()
            };
            let moment = |i: usize, second: bool| {
                let (m, v) = self.moments[i].as_ref().expect("moments made above");
                if second { v } else { m }.shallow_clone()
            };
            let group = trainbox_torch_ext::optim::AdamWGroup {
                params: &pick(&|i| params[i].value.shallow_clone()),
                grads: &pick(&|i| params[i].value.grad()),
                exp_avgs: &pick(&|i| moment(i, false)),
                exp_avg_sqs: &pick(&|i| moment(i, true)),
                steps: &pick(&|i| self.steps[i].as_ref().expect("made above").shallow_clone()),
            };
            let hyper = trainbox_torch_ext::optim::AdamWHyper {
                lr,
                beta1: self.config.beta1,
                beta2: self.config.beta2,
                weight_decay: if decay { weight_decay } else { 0.0 },
                eps: self.config.eps,
            };
            if let Err(e) = trainbox_torch_ext::optim::fused_adamw_(&group, hyper) {
                // The kernel refuses (an unusual dtype or device): the
                // single-tensor formula, as torch has no fused path then.
                crate::ui::warn(&format!(
                    "--optim adamw_torch_fused: torch's fused kernel failed ({e}); this update \
                     ran the single-tensor AdamW"
                ));
                for &i in &members {
                    self.steps[i] = Some(step_tensor(step, &params[i].value));
                    self.update_one(&mut params[i], i, lr, weight_decay, step);
                }
            }
        }
    }
}

/// torch's `state["step"]` of a fused optimizer: a float32 scalar on the
/// parameter's device.
fn step_tensor(step: u64, like: &Tensor) -> Tensor {
    Tensor::from(step as f32).to_device(like.device())
}

impl Rule for AdamW {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, step: u64) {
        if self.config.fused {
            self.update_fused(params, lr, weight_decay, step);
            return;
        }
        for (i, p) in params.iter_mut().enumerate() {
            self.update_one(p, i, lr, weight_decay, step);
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
        for (i, (p, moments)) in params.iter().zip(&mut self.moments).enumerate() {
            let shape = p.value.size();
            let m = take_state(tensors, "exp_avg", p, &shape)?;
            let v = take_state(tensors, "exp_avg_sq", p, &shape)?;
            *moments = match (m, v) {
                (Some(m), Some(v)) => Some((m, v)),
                (None, None) if step == 0 => None,
                _ => bail!("optimizer state has no moments for parameter {:?}", p.name),
            };
            // A parameter's step count is the optimizer's, as the
            // single-tensor path counts it.
            self.steps[i] = moments.as_ref().map(|_| step_tensor(step, &p.value));
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
