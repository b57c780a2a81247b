//! `torch.optim.RMSprop` (single-tensor path): L2 weight decay added to the
//! gradient, the running mean of squared gradients (and of gradients, when
//! centered), optional momentum.

use super::{take_state, Param, Rule, Steps};
use anyhow::Result;
use std::collections::HashMap;
use tch::Tensor;

/// The settings of RMSprop (`--optim_args momentum=…,alpha=…,eps=…,centered=…`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropConfig {
    /// The smoothing constant of the squared average (torch: 0.99).
    pub alpha: f64,
    /// Added to the denominator (torch: 1e-8).
    pub eps: f64,
    /// torch's `momentum` (0: none).
    pub momentum: f64,
    /// Normalise by the gradient's estimated variance (torch's `centered`).
    pub centered: bool,
}

/// The state of one parameter, made (zero) at its first update as torch does.
struct State {
    square_avg: Tensor,
    momentum_buffer: Option<Tensor>,
    grad_avg: Option<Tensor>,
}

pub(super) struct RmsProp {
    config: RmsPropConfig,
    states: Vec<Option<State>>,
    steps: Steps,
}

impl RmsProp {
    pub(super) fn new(config: RmsPropConfig, n: usize) -> RmsProp {
        RmsProp {
            config,
            states: (0..n).map(|_| None).collect(),
            steps: Steps::new(n),
        }
    }
}

impl Rule for RmsProp {
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, _step: u64) {
        let RmsPropConfig {
            alpha,
            eps,
            momentum,
            centered,
        } = self.config;
        for ((p, state), step) in params
            .iter_mut()
            .zip(&mut self.states)
            .zip(&mut self.steps.0)
        {
            let mut grad = p.value.grad();
            if !grad.defined() {
                continue;
            }
            let state = state.get_or_insert_with(|| State {
                square_avg: p.value.zeros_like(),
                momentum_buffer: (momentum > 0.0).then(|| p.value.zeros_like()),
                grad_avg: centered.then(|| p.value.zeros_like()),
            });
            *step += 1;
            let wd = p.weight_decay(weight_decay);
            if wd != 0.0 {
                grad = &grad + &p.value * wd;
            }
            let _ = state.square_avg.g_mul_scalar_(alpha);
            let _ = state.square_avg.g_add_(&(&grad * &grad * (1.0 - alpha)));
            let avg = match state.grad_avg.as_mut() {
                Some(grad_avg) => {
                    let _ = grad_avg.lerp_(&grad, 1.0 - alpha);
                    (&state.square_avg - &*grad_avg * &*grad_avg).sqrt()
                }
                None => state.square_avg.sqrt(),
            } + eps;
            match state.momentum_buffer.as_mut() {
                Some(buf) if momentum > 0.0 => {
                    let _ = buf.g_mul_scalar_(momentum);
                    let _ = buf.g_add_(&(&grad / &avg));
                    let _ = p.value.g_sub_(&(&*buf * lr));
                }
                _ => {
                    let _ = p.value.g_sub_(&(grad / avg * lr));
                }
            }
        }
    }

    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (p, state) in params.iter().zip(&self.states) {
            let Some(s) = state else { continue };
            out.push((
                format!("square_avg.{}", p.name),
                s.square_avg.shallow_clone(),
            ));
            if let Some(b) = &s.momentum_buffer {
                out.push((format!("momentum_buffer.{}", p.name), b.shallow_clone()));
            }
            if let Some(g) = &s.grad_avg {
                out.push((format!("grad_avg.{}", p.name), g.shallow_clone()));
            }
        }
        self.steps.tensors(params, &mut out);
        out
    }

    fn load_state(
        &mut self,
        params: &[Param],
        _step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()> {
        let RmsPropConfig {
            momentum, centered, ..
        } = self.config;
        for (p, state) in params.iter().zip(&mut self.states) {
            let shape = p.value.size();
            let Some(square_avg) = take_state(tensors, "square_avg", p, &shape)? else {
                *state = None;
                continue;
            };
            let zeros_unless =
                |on: bool, t: Option<Tensor>| on.then(|| t.unwrap_or_else(|| p.value.zeros_like()));
            let momentum_buffer = take_state(tensors, "momentum_buffer", p, &shape)?;
            let grad_avg = take_state(tensors, "grad_avg", p, &shape)?;
            *state = Some(State {
                square_avg,
                momentum_buffer: zeros_unless(momentum > 0.0, momentum_buffer),
                grad_avg: zeros_unless(centered, grad_avg),
            });
        }
        self.steps.load(params, tensors)
    }

    fn keeps_state(&self) -> bool {
        true
    }

    fn state_name(&self) -> &'static str {
        "RMSprop averages"
    }
}
