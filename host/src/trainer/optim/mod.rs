//! The optimizers of `--optim`, owned here rather than taken from tch: their
//! per-parameter state is plain named tensors, so checkpoints can store and
//! restore it, and the points between gradient clipping, the update and
//! zeroing stay visible to the loop (where HF's events sit).
//!
//! [`Optimizer`] holds the parameters in HF's two weight-decay groups and
//! what every rule shares (clipping, zeroing, the state file); each update
//! rule is its own module, the single-tensor path of the class HF's
//! `Trainer.get_optimizer_cls_and_kwargs` builds: `adamw` (`torch.optim.AdamW`,
//! for `adamw_torch` and `adamw_torch_fused`), `sgd`, `adagrad`, `rmsprop`
//! (torch's) and `adafactor` (transformers' own); `options` reads
//! `--optim_args` as HF does.

mod adafactor;
mod adagrad;
mod adamw;
mod options;
mod rmsprop;
mod sgd;

pub use adafactor::AdafactorConfig;
pub use adagrad::AdagradConfig;
pub use adamw::AdamWConfig;
pub use options::{parse_optim_args, Settings};
pub use rmsprop::RmsPropConfig;
pub use sgd::SgdConfig;

use crate::args::{Algorithm, TrainingArguments};
use anyhow::{bail, Result};
use std::collections::HashMap;
use tch::Tensor;

/// One parameter the optimizer updates.
pub(crate) struct Param {
    name: String,
    value: Tensor,
    /// In the weight-decay group (HF's `get_decay_parameter_names`).
    decay: bool,
}

impl Param {
    /// The weight decay of this parameter's group.
    fn weight_decay(&self, weight_decay: f64) -> f64 {
        if self.decay {
            weight_decay
        } else {
            0.0
        }
    }
}

/// The state of one update rule, per parameter (indexed as the parameters).
trait Rule: Send {
    /// One update at `lr` of every parameter that has a gradient; `step` is
    /// the optimizer's update count including this one.
    fn update(&mut self, params: &mut [Param], lr: f64, weight_decay: f64, step: u64);
    /// The state as named tensors (`<state>.<parameter>`).
    fn state_tensors(&self, params: &[Param]) -> Vec<(String, Tensor)>;
    /// Restores what `state_tensors` wrote, taking its entries out of `tensors`.
    fn load_state(
        &mut self,
        params: &[Param],
        step: u64,
        tensors: &mut HashMap<String, Tensor>,
    ) -> Result<()>;
    /// Whether the rule keeps any state (SGD without momentum keeps none).
    fn keeps_state(&self) -> bool;
    /// What the state is called in messages ("AdamW moments").
    fn state_name(&self) -> &'static str;
}

/// The optimizer over named parameters, in two groups: with weight decay
/// and without (biases and normalisation weights, as HF's default grouping).
pub struct Optimizer {
    algorithm: Algorithm,
    rule: Box<dyn Rule>,
    params: Vec<Param>,
    weight_decay: f64,
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

impl Optimizer {
    /// The optimizer `--optim` and `--optim_args` name, over `params`, with
    /// `--weight_decay` on every parameter but those `is_no_decay` names and
    /// those for which `in_layer_norm` holds (HF's exemption by module type).
    pub fn from_args(
        args: &TrainingArguments,
        params: Vec<(String, Tensor)>,
        in_layer_norm: &dyn Fn(&str) -> bool,
    ) -> Result<Optimizer> {
        let settings = Settings::from_args(args)?;
        Ok(Optimizer::new(
            settings,
            args.weight_decay,
            params,
            in_layer_norm,
        ))
    }

    /// The optimizer of `settings` over `params` (see [`Optimizer::from_args`]).
    pub fn new(
        settings: Settings,
        weight_decay: f64,
        params: Vec<(String, Tensor)>,
        in_layer_norm: &dyn Fn(&str) -> bool,
    ) -> Optimizer {
        let params: Vec<Param> = params
            .into_iter()
            .map(|(name, value)| Param {
                decay: !is_no_decay(&name) && !in_layer_norm(&name),
                name,
                value,
            })
            .collect();
        let n = params.len();
        let (algorithm, rule): (Algorithm, Box<dyn Rule>) = match settings {
            Settings::AdamW(c) => (Algorithm::AdamW, Box::new(adamw::AdamW::new(c, n))),
            Settings::Sgd(c) => (Algorithm::Sgd, Box::new(sgd::Sgd::new(c, n))),
            Settings::Adagrad(c) => (Algorithm::Adagrad, Box::new(adagrad::Adagrad::new(c, n))),
            Settings::RmsProp(c) => (Algorithm::RmsProp, Box::new(rmsprop::RmsProp::new(c, n))),
            Settings::Adafactor(c) => (
                Algorithm::Adafactor,
                Box::new(adafactor::Adafactor::new(c, n)),
            ),
        };
        Optimizer {
            algorithm,
            rule,
            params,
            weight_decay,
            step: 0,
        }
    }

    /// The update rule.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// What its state is called in messages ("AdamW moments").
    pub fn state_name(&self) -> &'static str {
        self.rule.state_name()
    }

    /// Whether it keeps any state between updates.
    pub fn keeps_state(&self) -> bool {
        self.rule.keeps_state()
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

    /// One update at learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        self.step += 1;
        let (step, wd) = (self.step, self.weight_decay);
        let rule = &mut self.rule;
        let params = &mut self.params;
        tch::no_grad(|| rule.update(params, lr, wd, step));
    }

    /// Drops every gradient, as torch's `zero_grad()` (`set_to_none=True`)
    /// in HF's loop: the next backward writes the gradients, with no pass
    /// filling zeros nor one adding to them.
    pub fn zero_grad(&mut self) {
        let params: Vec<Tensor> = self
            .params
            .iter()
            .map(|p| p.value.shallow_clone())
            .collect();
        if trainbox_torch_ext::optim::grads_to_none(&params).is_err() {
            for p in &mut self.params {
                p.value.zero_grad();
            }
        }
    }

    /// The state as named tensors (AdamW: `exp_avg.<param>`, `exp_avg_sq.<param>`).
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.rule.state_tensors(&self.params)
    }

    /// Restores the state saved by `state_tensors`, and the step count.
    pub fn load_state_tensors(&mut self, step: u64, tensors: Vec<(String, Tensor)>) -> Result<()> {
        let mut tensors: HashMap<String, Tensor> = tensors.into_iter().collect();
        self.rule.load_state(&self.params, step, &mut tensors)?;
        if let Some(name) = tensors.keys().next() {
            bail!(
                "optimizer state has an entry {name:?} for no parameter of this model (or of another optimizer than --optim {})",
                self.algorithm.name()
            );
        }
        self.step = step;
        Ok(())
    }
}

/// Takes the state entry `key` of parameter `p` out of `tensors`: checked
/// to have `shape` and a floating-point dtype, and put in the parameter's
/// dtype and device, which the in-place updates require.
fn take_state(
    tensors: &mut HashMap<String, Tensor>,
    key: &str,
    p: &Param,
    shape: &[i64],
) -> Result<Option<Tensor>> {
    let Some(t) = tensors.remove(&format!("{key}.{}", p.name)) else {
        return Ok(None);
    };
    if t.size() != shape {
        bail!(
            "optimizer state {key} of {:?} has shape {:?}, expected {:?}",
            p.name,
            t.size(),
            shape
        );
    }
    if !t.is_floating_point() {
        bail!("optimizer state of {:?} is not floating point", p.name);
    }
    Ok(Some(t.to_device(p.value.device()).to_kind(p.value.kind())))
}

/// The per-parameter step counts of Adagrad, RMSprop and Adafactor, as
/// torch keeps them (a float32 scalar per parameter, `step.<param>`).
#[derive(Default)]
struct Steps(Vec<u64>);

impl Steps {
    fn new(n: usize) -> Steps {
        Steps(vec![0; n])
    }
    fn tensors(&self, params: &[Param], out: &mut Vec<(String, Tensor)>) {
        for (p, s) in params.iter().zip(&self.0) {
            if *s > 0 {
                out.push((format!("step.{}", p.name), Tensor::from(*s as f32)));
            }
        }
    }
    fn load(&mut self, params: &[Param], tensors: &mut HashMap<String, Tensor>) -> Result<()> {
        for (p, s) in params.iter().zip(&mut self.0) {
            *s = match tensors.remove(&format!("step.{}", p.name)) {
                Some(t) if t.numel() == 1 => {
                    let v = t.to_kind(tch::Kind::Double).double_value(&[]);
                    if !(v >= 0.0 && v.fract() == 0.0) {
                        bail!(
                            "optimizer state step of {:?} is {v}, not a step count",
                            p.name
                        );
                    }
                    v as u64
                }
                Some(_) => bail!("optimizer state step of {:?} is not one number", p.name),
                None => 0,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adamw(weight_decay: f64, p: &Tensor) -> Optimizer {
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            fused: false,
        };
        Optimizer::new(
            Settings::AdamW(config),
            weight_decay,
            vec![("w".into(), p.shallow_clone())],
            &|_| false,
        )
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
        let mut opt = adamw(0.1, &p);
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
        let mut opt = adamw(0.0, &p);
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
        let opt = adamw(0.0, &p);
        let norm = opt.clip_grad_norm(1.0);
        assert!((norm - 5.0).abs() < 1e-6);
        let after = opt.gradients()[0].norm().double_value(&[]);
        assert!((after - 1.0).abs() < 1e-5, "{after}");
    }

    /// Every rule's state goes through `state_tensors` and back into a
    /// fresh optimizer, which then makes the same next update.
    #[test]
    fn every_rule_resumes_to_the_same_next_update() {
        let settings = [
            Settings::Sgd(SgdConfig {
                momentum: 0.9,
                dampening: 0.1,
                nesterov: false,
            }),
            Settings::Adagrad(AdagradConfig {
                lr_decay: 0.01,
                eps: 1e-10,
            }),
            Settings::RmsProp(RmsPropConfig {
                alpha: 0.9,
                eps: 1e-8,
                momentum: 0.5,
                centered: true,
            }),
            Settings::Adafactor(AdafactorConfig::default()),
        ];
        for s in settings {
            let run = |resume: bool| {
                let w = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 3.0, -1.0, 2.0])
                    .reshape([2, 3])
                    .set_requires_grad(true);
                let mut opt =
                    Optimizer::new(s, 0.1, vec![("w".into(), w.shallow_clone())], &|_| false);
                let grad = |o: &mut Optimizer| {
                    o.zero_grad();
                    (&w * &w * &w).sum(tch::Kind::Float).backward();
                };
                for _ in 0..3 {
                    grad(&mut opt);
                    opt.step(0.05);
                }
                if resume {
                    let state: Vec<(String, Tensor)> = opt
                        .state_tensors()
                        .into_iter()
                        .map(|(k, t)| (k, t.copy()))
                        .collect();
                    let mut fresh =
                        Optimizer::new(s, 0.1, vec![("w".into(), w.shallow_clone())], &|_| false);
                    fresh.load_state_tensors(opt.step, state).unwrap();
                    opt = fresh;
                }
                grad(&mut opt);
                opt.step(0.05);
                Vec::<f32>::try_from(&w.detach().flatten(0, -1)).unwrap()
            };
            assert_eq!(run(false), run(true), "{s:?}");
        }
    }
}
