//! `--optim adamw_torch_fused` (HF's default) is `torch.optim.AdamW(fused=True)`
//! bit for bit, and `adamw_torch` the single-tensor `AdamW(fused=False,
//! foreach=False)`: the same parameters, gradients, learning rates and
//! weight-decay groups on both sides, every parameter equal after each
//! update. The two torch paths round differently (in the last bits), so each
//! name must run its own.

use std::path::Path;
use tch::{Device, Kind, Tensor};
use trainbox::trainer::optim::{AdamWConfig, Optimizer, Settings};

const STEPS: usize = 6;

/// torch's AdamW over the tensors of `dir/inputs.safetensors` (parameters
/// `p0..`, gradients `g{step}_{i}`): two groups, `p0` and `p1` decayed,
/// `p2` not; the parameters after each step written to `dir/torch.safetensors`.
const TORCH_SIDE: &str = r#"
import sys, torch
from safetensors.torch import load_file, save_file
d, fused = sys.argv[1], sys.argv[2] == "fused"
t = load_file(d + "/inputs.safetensors")
ps = [torch.nn.Parameter(t[f"p{i}"].clone()) for i in range(3)]
opt = torch.optim.AdamW([{"params": ps[:2], "weight_decay": 0.05}, {"params": ps[2:], "weight_decay": 0.0}],
                        lr=1e-2, betas=(0.9, 0.98), eps=1e-7, fused=fused, foreach=False)
out = {}
for s in range(STEPS):
    for g in opt.param_groups:
        g["lr"] = 1e-2 * (s + 1) / STEPS
    for i, p in enumerate(ps):
        p.grad = t[f"g{s}_{i}"].clone()
    opt.step()
    for i, p in enumerate(ps):
        out[f"s{s}_{i}"] = p.detach().clone()
save_file(out, d + "/torch.safetensors")
"#;

fn check(fused: bool) {
    let dir = crate::util::fresh_dir(if fused { "fused-adamw" } else { "single-adamw" });
    tch::manual_seed(7);
    let shapes: [&[i64]; 3] = [&[16, 8], &[8], &[33]];
    let mut inputs: Vec<(String, Tensor)> = Vec::new();
    for (i, shape) in shapes.iter().enumerate() {
        inputs.push((
            format!("p{i}"),
            Tensor::randn(*shape, (Kind::Float, Device::Cpu)),
        ));
        for s in 0..STEPS {
            let g = Tensor::randn(*shape, (Kind::Float, Device::Cpu)) * (0.1 * (s + 1) as f64);
            inputs.push((format!("g{s}_{i}"), g));
        }
    }
    Tensor::write_safetensors(&inputs, dir.join("inputs.safetensors")).unwrap();
    let script = TORCH_SIDE.replace("STEPS", &STEPS.to_string());
    let mode = Path::new(if fused { "fused" } else { "single" });
    crate::util::run_torch_python(&script, &[&dir, mode]);
    let want: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(dir.join("torch.safetensors"))
            .unwrap()
            .into_iter()
            .collect();

    let get = |name: &str| {
        inputs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap()
            .1
            .shallow_clone()
    };
    // Names put p2 in the no-decay group, as HF groups a bias.
    let names = ["a.weight", "b.weight", "c.bias"];
    let params: Vec<(String, Tensor)> = (0..3)
        .map(|i| {
            (
                names[i].to_string(),
                get(&format!("p{i}")).copy().set_requires_grad(true),
            )
        })
        .collect();
    let settings = Settings::AdamW(AdamWConfig {
        beta1: 0.9,
        beta2: 0.98,
        eps: 1e-7,
        fused,
    });
    let shared = params
        .iter()
        .map(|(n, p)| (n.clone(), p.shallow_clone()))
        .collect();
    let mut opt = Optimizer::new(settings, 0.05, shared, &|_| false);
    for s in 0..STEPS {
        opt.zero_grad();
        // d/dp sum(p * g) = g exactly.
        let loss = (0..3)
            .map(|i| (&params[i].1 * get(&format!("g{s}_{i}"))).sum(Kind::Float))
            .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |a, b| a + b);
        loss.backward();
        opt.step(1e-2 * (s + 1) as f64 / STEPS as f64);
        for (i, (name, p)) in params.iter().enumerate() {
            let expected = &want[&format!("s{s}_{i}")];
            assert!(
                p.detach().equal(expected),
                "{} AdamW: {name} after step {} differs from torch's by up to {:e}",
                if fused { "fused" } else { "single-tensor" },
                s + 1,
                (p.detach() - expected).abs().max().double_value(&[])
            );
        }
    }
}

#[test]
fn adamw_torch_fused_is_torchs_fused_kernel_bit_for_bit() {
    check(true);
}

#[test]
fn adamw_torch_is_torchs_single_tensor_path_bit_for_bit() {
    check(false);
}
