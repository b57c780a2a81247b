//! torch's fused AdamW kernel (`torch._fused_adamw_`), which
//! `torch.optim.AdamW(fused=True)` runs and so HF's default `--optim
//! adamw_torch_fused`: one pass over every tensor of a parameter group.

use crate::{checked, ffi, Error};
use tch::Tensor;

/// The tensors of one parameter group: the same device and dtype
/// throughout, each parameter with its gradient, moments and step count
/// (a float32 scalar tensor on the parameter's device, as torch keeps it).
pub struct AdamWGroup<'a> {
    /// The parameters, updated in place.
    pub params: &'a [Tensor],
    /// Their gradients.
    pub grads: &'a [Tensor],
    /// The first moments, updated in place.
    pub exp_avgs: &'a [Tensor],
    /// The second moments, updated in place.
    pub exp_avg_sqs: &'a [Tensor],
    /// The step counts, incremented by one before the update.
    pub steps: &'a [Tensor],
}

/// AdamW's hyper-parameters for one call.
#[derive(Debug, Clone, Copy)]
pub struct AdamWHyper {
    /// The learning rate.
    pub lr: f64,
    /// `betas[0]`.
    pub beta1: f64,
    /// `betas[1]`.
    pub beta2: f64,
    /// The group's decoupled weight decay.
    pub weight_decay: f64,
    /// `eps`.
    pub eps: f64,
}

/// One AdamW update of a group, as torch's `_fused_adam` with decoupled
/// weight decay: `_foreach_add_(steps, 1)`, then `_fused_adamw_`.
pub fn fused_adamw_(group: &AdamWGroup<'_>, h: AdamWHyper) -> Result<(), Error> {
    let n = group.params.len();
    let lists = [
        group.grads.len(),
        group.exp_avgs.len(),
        group.exp_avg_sqs.len(),
        group.steps.len(),
    ];
    if lists.iter().any(|&len| len != n) {
        return Err(Error(format!(
            "fused AdamW: {n} parameters but {lists:?} gradients, moments and steps"
        )));
    }
    let ptrs = |ts: &[Tensor]| -> Vec<_> { ts.iter().map(|t| t.as_ptr() as *mut _).collect() };
    let (p, g, m, v, s) = (
        ptrs(group.params),
        ptrs(group.grads),
        ptrs(group.exp_avgs),
        ptrs(group.exp_avg_sqs),
        ptrs(group.steps),
    );
    checked(|err| unsafe {
        ffi::tbx_fused_adamw(
            p.as_ptr(),
            g.as_ptr(),
            m.as_ptr(),
            v.as_ptr(),
            s.as_ptr(),
            n as i32,
            h.lr,
            h.beta1,
            h.beta2,
            h.weight_decay,
            h.eps,
            err,
        )
    })
    .map(|_| ())
}

/// `optimizer.zero_grad(set_to_none=True)` (torch's default, which HF's
/// loop runs): every tensor's gradient becomes undefined, so the next
/// backward writes it instead of adding to a tensor of zeros.
pub fn grads_to_none(tensors: &[Tensor]) -> Result<(), Error> {
    let list: Vec<_> = tensors.iter().map(|t| t.as_ptr() as *mut _).collect();
    checked(|err| unsafe { ffi::tbx_grads_to_none(list.as_ptr(), list.len() as i32, err) })
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    /// torch's AdamW formula, one step from zero moments: the fused kernel
    /// agrees with it to rounding, and counts the step.
    #[test]
    fn one_fused_step_is_adamw() {
        let p = Tensor::from_slice(&[1.0f32, -2.0, 3.0]);
        let g = Tensor::from_slice(&[0.5f32, 0.25, -1.0]);
        let (m, v) = (p.zeros_like(), p.zeros_like());
        let step = Tensor::zeros([], (Kind::Float, tch::Device::Cpu));
        let h = AdamWHyper {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.01,
            eps: 1e-8,
        };
        let before = p.copy();
        let group = AdamWGroup {
            params: std::slice::from_ref(&p),
            grads: std::slice::from_ref(&g),
            exp_avgs: std::slice::from_ref(&m),
            exp_avg_sqs: std::slice::from_ref(&v),
            steps: std::slice::from_ref(&step),
        };
        fused_adamw_(&group, h).unwrap();
        assert_eq!(step.double_value(&[]), 1.0);
        // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g|+eps) after decay.
        let expected = &before * (1.0 - 0.1 * 0.01) - &g / (g.abs() + 1e-8) * 0.1;
        let diff = (&p - expected).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "{diff}");
        assert!((m - &g * 0.1).abs().max().double_value(&[]) < 1e-7);
    }

    #[test]
    fn gradients_set_to_none_are_undefined_and_backward_writes_them_anew() {
        let p = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
        (&p * 3.0).sum(Kind::Float).backward();
        assert!(p.grad().defined());
        grads_to_none(std::slice::from_ref(&p)).unwrap();
        assert!(!p.grad().defined());
        (&p * 2.0).sum(Kind::Float).backward();
        assert_eq!(Vec::<f32>::try_from(p.grad()).unwrap(), vec![2.0, 2.0]);
    }

    #[test]
    fn lists_of_different_lengths_are_an_error() {
        let p = Tensor::from_slice(&[1.0f32]);
        let group = AdamWGroup {
            params: std::slice::from_ref(&p),
            grads: &[],
            exp_avgs: &[],
            exp_avg_sqs: &[],
            steps: &[],
        };
        let h = AdamWHyper {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            weight_decay: 0.0,
            eps: 1e-8,
        };
        assert!(fused_adamw_(&group, h).is_err());
    }
}
