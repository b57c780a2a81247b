//! AdamW, owned here rather than taken from tch: its moments and step count
//! are plain named tensors, so checkpoints can store and restore them, and the
//! points between gradient clipping, the update and zeroing stay visible to
//! the loop (where HF's events sit).
//!
//! The update is PyTorch's `torch.optim.AdamW` (single-tensor path):
//! decoupled weight decay, then Adam with bias correction.

use anyhow::{bail, Result};
use tch::Tensor;

/// The settings of AdamW.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

struct Param {
    name: String,
    value: Tensor,
    decay: bool,
    exp_avg: Option<Tensor>,
    exp_avg_sq: Option<Tensor>,
}

/// AdamW over named parameters, in two groups: with weight decay and
/// without (biases and normalisation weights, as HF's default grouping).
pub struct AdamW {
    config: AdamWConfig,
    params: Vec<Param>,
    /// Updates done.
    pub step: u64,
}

/// Whether HF's grouping exempts a parameter from weight decay: its
/// lower-cased name contains `bias`, `layernorm` or `rmsnorm`, or has a
/// part `norm` or ending in `_norm` (HF's `get_decay_parameter_names`
/// patterns); or it sits in a layer norm, which HF finds by module type and
/// trainbox by name: a part starting with `ln` (`ln_1`, `ln_f`, as GPT-2
/// and the built-in models name theirs).
pub fn is_no_decay(name: &str) -> bool {
    let lower = name.to_lowercase();
    ["bias", "layernorm", "rmsnorm"]
        .iter()
        .any(|p| lower.contains(p))
        || lower
            .split('.')
            .any(|part| part == "norm" || part.ends_with("_norm") || part.starts_with("ln"))
}

impl AdamW {
    /// AdamW over `params`; those `is_no_decay` names and those for which
    /// `in_layer_norm` holds (HF's exemption by module type) get no weight
    /// decay.
    pub fn new(
        config: AdamWConfig,
        params: Vec<(String, Tensor)>,
        in_layer_norm: &dyn Fn(&str) -> bool,
    ) -> AdamW {
        let params = params
            .into_iter()
            .map(|(name, value)| Param {
                decay: !is_no_decay(&name) && !in_layer_norm(&name),
                name,
                value,
                exp_avg: None,
                exp_avg_sq: None,
            })
            .collect();
        AdamW {
            config,
            params,
            step: 0,
        }
    }

    /// The learning rate of each parameter group (decay, no decay) at `lr`.
    pub fn group_learning_rates(&self, lr: f64) -> Vec<f64> {
        let groups = [true, false]
            .iter()
            .filter(|d| self.params.iter().any(|p| p.decay == **d))
            .count();
        vec![lr; groups.max(1)]
    }

    /// Gives every parameter that has no gradient (none of this update's
    /// samples reached it) a zero one, so that every rank of a
    /// data-parallel run all-reduces the same list of gradients.
    pub fn define_missing_gradients(&self) {
        let zeros: Vec<Tensor> = self
            .params
            .iter()
            .filter(|p| !p.value.grad().defined())
            .map(|p| p.value.sum(tch::Kind::Float) * 0.0)
            .collect();
        if !zeros.is_empty() {
            Tensor::stack(&zeros, 0).sum(tch::Kind::Float).backward();
        }
    }

    /// The gradients that exist now.
    pub fn gradients(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|p| p.value.grad())
            .filter(Tensor::defined)
            .collect()
    }

    /// The total L2 norm of the gradients; when `max_norm > 0`, scales them
    /// down to it (as `clip_grad_norm_`). Returns the norm before clipping.
    pub fn clip_grad_norm(&self, max_norm: f64) -> f64 {
        tch::no_grad(|| {
            let grads = self.gradients();
            if grads.is_empty() {
                return 0.0;
            }
            let norms: Vec<Tensor> = grads
                .iter()
                .map(|g| g.norm().to_kind(tch::Kind::Double))
                .collect();
            let total = Tensor::stack(&norms, 0).norm().double_value(&[]);
            if max_norm > 0.0 {
                let coef = max_norm / (total + 1e-6);
                if coef < 1.0 {
                    for mut g in grads {
                        let _ = g.g_mul_scalar_(coef);
                    }
                }
            }
            total
        })
    }

    /// One AdamW update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let bias1 = 1.0 - beta1.powi(self.step as i32);
        let bias2_sqrt = (1.0 - beta2.powi(self.step as i32)).sqrt();
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.value.grad();
                if !grad.defined() {
                    continue;
                }
                let m = p.exp_avg.get_or_insert_with(|| grad.zeros_like());
                let v = p.exp_avg_sq.get_or_insert_with(|| grad.zeros_like());
                if p.decay && weight_decay != 0.0 {
                    let _ = p.value.g_mul_scalar_(1.0 - lr * weight_decay);
                }
                let _ = m.lerp_(&grad, 1.0 - beta1);
                let _ = v.g_mul_scalar_(beta2);
                let _ = v.g_add_(&(grad.square() * (1.0 - beta2)));
                let denom = v.sqrt() / bias2_sqrt + eps;
                let _ = p.value.g_sub_(&(&*m / denom * (lr / bias1)));
            }
        });
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.value.zero_grad();
        }
    }

    /// The moments as named tensors (`exp_avg.<param>`, `exp_avg_sq.<param>`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for p in &self.params {
            if let (Some(m), Some(v)) = (&p.exp_avg, &p.exp_avg_sq) {
                out.push((format!("exp_avg.{}", p.name), m.shallow_clone()));
                out.push((format!("exp_avg_sq.{}", p.name), v.shallow_clone()));
            }
        }
        out
    }

    /// Restores moments saved by `state_tensors`, and the step count.
    pub fn load_state_tensors(&mut self, step: u64, tensors: Vec<(String, Tensor)>) -> Result<()> {
        let mut tensors: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        for p in &mut self.params {
            let m = tensors.remove(&format!("exp_avg.{}", p.name));
            let v = tensors.remove(&format!("exp_avg_sq.{}", p.name));
            match (m, v) {
                (Some(m), Some(v)) => {
                    if m.size() != p.value.size() || v.size() != p.value.size() {
                        bail!(
                            "optimizer state of {:?} has shape {:?}, the parameter has {:?}",
                            p.name,
                            m.size(),
                            p.value.size()
                        );
                    }
                    if !m.is_floating_point() || !v.is_floating_point() {
                        bail!("optimizer state of {:?} is not floating point", p.name);
                    }
                    // In the parameter's dtype and device, which AdamW's
                    // in-place updates require.
                    let like = |t: Tensor| t.to_device(p.value.device()).to_kind(p.value.kind());
                    p.exp_avg = Some(like(m));
                    p.exp_avg_sq = Some(like(v));
                }
                (None, None) if step == 0 => {}
                _ => bail!("optimizer state has no moments for parameter {:?}", p.name),
            }
        }
        if let Some(name) = tensors.keys().next() {
            bail!("optimizer state has an entry {name:?} for no parameter of this model");
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(weight_decay: f64) -> AdamWConfig {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
        }
    }

    #[test]
    fn grouping_exempts_biases_and_norms() {
        assert!(is_no_decay("encoder.layer0.bias"));
        assert!(is_no_decay("blocks.0.ln1.weight"));
        assert!(is_no_decay("final_norm.weight"));
        assert!(is_no_decay("bert.embeddings.LayerNorm.weight"));
        assert!(is_no_decay("transformer.h.0.ln_1.weight"));
        assert!(is_no_decay("model.norm.weight"));
        assert!(!is_no_decay("normalizer.weight"));
        assert!(!is_no_decay("blocks.0.qkv.weight"));
    }

    #[test]
    fn one_step_matches_the_adamw_formula() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let loss = (&p * &p).sum(tch::Kind::Float);
        loss.backward();
        let mut opt = AdamW::new(config(0.1), vec![("w".into(), p.shallow_clone())], &|_| {
            false
        });
        opt.step(0.01);
        // First Adam step moves each weight by lr * sign(grad); decay first scales by (1 - lr*wd).
        let got: Vec<f32> = Vec::try_from(&p.detach()).unwrap();
        let want = [1.0 * (1.0 - 0.001) - 0.01, -2.0 * (1.0 - 0.001) + 0.01];
        for (g, w) in got.iter().zip(want) {
            assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert_eq!(opt.state_tensors().len(), 2);
    }

    #[test]
    fn loaded_moments_take_the_parameter_dtype_and_ints_are_refused() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]).set_requires_grad(true);
        let mut opt = AdamW::new(config(0.0), vec![("w".into(), p.shallow_clone())], &|_| {
            false
        });
        let moments = |t: Tensor| {
            vec![
                ("exp_avg.w".to_string(), t.shallow_clone()),
                ("exp_avg_sq.w".to_string(), t),
            ]
        };
        opt.load_state_tensors(3, moments(Tensor::from_slice(&[0.1f64, 0.2])))
            .unwrap();
        assert!(opt
            .state_tensors()
            .iter()
            .all(|(_, t)| t.kind() == tch::Kind::Float));
        (&p * &p).sum(tch::Kind::Float).backward();
        opt.step(0.01); // in-place updates in float32: no dtype panic
        let err = opt
            .load_state_tensors(3, moments(Tensor::from_slice(&[1i64, 2])))
            .unwrap_err();
        assert!(err.to_string().contains("not floating point"), "{err}");
    }

    #[test]
    fn clipping_scales_to_the_max_norm_and_reports_the_norm_before() {
        let p = Tensor::from_slice(&[3.0f32, 4.0]).set_requires_grad(true);
        (&p * Tensor::from_slice(&[3.0f32, 4.0]))
            .sum(tch::Kind::Float)
            .backward();
        let opt = AdamW::new(config(0.0), vec![("w".into(), p.shallow_clone())], &|_| {
            false
        });
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        let after = opt.gradients()[0].norm().double_value(&[]);
        assert!((after - 1.0).abs() < 1e-5, "{after}");
    }
}
