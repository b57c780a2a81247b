//! `torch.optim.SGD` (single-tensor path): L2 weight decay added to the
//! gradient, optional momentum with dampening, Nesterov.

use super::{take_state, Param, Rule};
use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

/// The settings of SGD (`--optim_args momentum=…,dampening=…,nesterov=…`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    /// torch's `momentum` (0: plain SGD).
    pub momentum: f64,
    /// torch's `dampening` of the momentum.
    pub dampening: f64,
    /// Nesterov momentum (needs momentum and no dampening, as torch).
    pub nesterov: bool,
}

/// The momentum buffer of each parameter (with momentum only).
pub(super) struct Sgd {
    config: SgdConfig,
    buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    pub(super) fn new(config: SgdConfig, n: usize) -> Sgd {
        Sgd {
            config,
            buffers: (0..n).map(|_| None).collect(),
        }
    }
}

impl Rule for Sgd {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, _step: u64) {
        let SgdConfig {
            momentum,
            dampening,
            nesterov,
        } = self.config;
        for (p, buffer) in params.iter_mut().zip(&mut self.buffers) {
            let mut grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            let wd = p.weight_decay(weight_decay);
            if wd != 0.0 {
                grad = &grad + &p.value * wd;
            }
            if momentum != 0.0 {
                let buf = match buffer {
                    None => buffer.insert(grad.copy()),
                    Some(buf) => {
                        let _ = buf.g_mul_scalar_(momentum);
                        let _ = buf.g_add_(&(&grad * (1.0 - dampening)));
                        buf
                    }
                };
                grad = if nesterov {
                    &grad + &*buf * momentum
                } else {
                    buf.shallow_clone()
                };
            }
            let _ = p.value.g_sub_(&(grad * lr));
        }
    }

    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)> {
        params
            .iter()
            .zip(&self.buffers)
            .filter_map(|(p, b)| {
                b.as_ref()
                    .map(|b| (format!("momentum_buffer.{}", p.name), b.shallow_clone()))
            })
            .collect()
    }

    fn load_state(
        &mut self,
        params: &[Param],
        _step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()> {
        for (p, buffer) in params.iter().zip(&mut self.buffers) {
            *buffer = take_state(tensors, "momentum_buffer", p, &p.value.size())?;
        }
        Ok(())
    }

    fn keeps_state(&self) -> bool {
        self.config.momentum != 0.0
    }

    fn state_name(&self) -> &'static str {
        "SGD momentum buffers"
    }
}
