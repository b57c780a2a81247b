//! The run as callbacks may see it ([`RunView`], from the sandbox crate),
//! and the part of it that needs libtorch: the statistics and histograms of
//! the model's tensors, behind the sandbox crate's [`Parameters`].

use tch::Tensor;
pub use trainbox_sandbox::view::*;

/// The trainable parameters by name (shallow copies: same storage), as the
/// plugins' views read them.
pub struct TensorParameters(pub Vec<(String, Tensor)>);

impl TensorParameters {
    /// The parameter `name`, or its gradient when `grad` (none when it has
    /// none yet).
    fn tensor(&self, name: &str, grad: bool) -> Option<Tensor> {
        let (_, p) = self.0.iter().find(|(n, _)| n == name)?;
        if !grad {
            return Some(p.shallow_clone());
        }
        let g = p.grad();
        g.defined().then_some(g)
    }
}

impl Parameters for TensorParameters {
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|(_, p)| p.numel() as u64).sum()
    }

    fn stats(&self, name: &str, grad: bool) -> Option<TensorStats> {
        tensor_stats(&self.tensor(name, grad)?)
    }

    fn histogram(&self, name: &str, grad: bool, bins: u32) -> Option<Histogram> {
        histogram(&self.tensor(name, grad)?, bins)
    }
}

/// Computes the statistics of `t` in its own dtype, without copying it
/// and without recording gradients; `None` if libtorch refuses.
pub fn tensor_stats(t: &Tensor) -> Option<TensorStats> {
    tch::no_grad(|| compute_stats(t).ok())
}

fn compute_stats(t: &Tensor) -> Result<TensorStats, tch::TchError> {
    let t = if t.is_floating_point() {
        t.shallow_clone()
    } else {
        t.f_to_kind(tch::Kind::Float)?
    };
    let numel = t.numel() as u64;
    if numel == 0 {
        return Ok(TensorStats {
            numel,
            norm: 0.0,
            mean: 0.0,
            std: 0.0,
            min: 0.0,
            max: 0.0,
            nonfinite: 0,
        });
    }
    let scalar = |r: Result<Tensor, tch::TchError>| r?.f_double_value(&[]);
    let finite = t
        .f_isfinite()?
        .f_sum(tch::Kind::Int64)?
        .f_int64_value(&[])?;
    Ok(TensorStats {
        numel,
        norm: scalar(t.f_norm())?,
        mean: scalar(t.f_mean(None))?,
        std: if numel > 1 {
            scalar(t.f_std(true))?
        } else {
            0.0
        },
        min: scalar(t.f_min())?,
        max: scalar(t.f_max())?,
        nonfinite: numel - finite as u64,
    })
}

/// The histogram of `t` with `bins` bins (at least 1), without recording
/// gradients; `None` when `t` has no finite value or libtorch refuses.
pub fn histogram(t: &Tensor, bins: u32) -> Option<Histogram> {
    tch::no_grad(|| compute_histogram(t, bins.max(1)).ok().flatten())
}

fn compute_histogram(t: &Tensor, bins: u32) -> Result<Option<Histogram>, tch::TchError> {
    use tch::Kind;
    let flat = t.f_detach()?.f_reshape([-1])?;
    // histc runs on float32 and float64 only: wandb casts the rest to float32.
    let flat = match flat.kind() {
        Kind::Float | Kind::Double => flat,
        _ => flat.f_to_kind(Kind::Float)?,
    };
    let numel = flat.numel() as i64;
    if numel == 0 {
        return Ok(None);
    }
    let finite = flat.f_isfinite()?;
    let kept = finite.f_sum(Kind::Int64)?.f_int64_value(&[])?;
    if kept == 0 {
        return Ok(None);
    }
    let flat = if kept < numel {
        flat.f_masked_select(&finite)?
    } else {
        flat
    };
    let min = flat.f_min()?.f_double_value(&[])?;
    let max = flat.f_max()?.f_double_value(&[])?;
    let counts = if min == max {
        vec![kept as u64]
    } else {
        // histc's default range (0, 0) is the data's own min and max: the
        // same as wandb's explicit `min=tmin, max=tmax`.
        let h = flat
            .f_histc(i64::from(bins))?
            .f_to_kind(Kind::Double)?
            .f_to_device(tch::Device::Cpu)?;
        Vec::<f64>::try_from(&h)?
            .into_iter()
            .map(|c| c as u64)
            .collect()
    };
    Ok(Some(Histogram { min, max, counts }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values: &[f32], bins: u32) -> Option<Histogram> {
        histogram(&Tensor::from_slice(values), bins)
    }

    #[test]
    fn histograms_count_finite_values_in_equal_bins() {
        // Range -1..3 in 4 bins of width 1: [-1,0) [0,1) [1,2) [2,3]; NaN
        // and infinities are dropped, the maximum falls in the last bin.
        let h = hist(&[-1.0, 0.0, 0.5, 1.0, 2.9, 3.0, f32::NAN, f32::INFINITY], 4).unwrap();
        assert_eq!((h.min, h.max), (-1.0, 3.0));
        assert_eq!(h.counts, vec![1, 2, 1, 2]);
        // Every finite value equal: one bin of them all, whatever `bins` says.
        let h = hist(&[0.25, 0.25, f32::NEG_INFINITY, 0.25], 64).unwrap();
        assert_eq!((h.min, h.max, h.counts), (0.25, 0.25, vec![3]));
        // Nothing finite, or nothing at all: none.
        assert_eq!(hist(&[f32::NAN, f32::INFINITY], 8), None);
        assert_eq!(hist(&[], 8), None);
        // Integers are counted as float32, as wandb casts them.
        let h = histogram(&Tensor::from_slice(&[1i64, 2, 3, 4]), 3).unwrap();
        assert_eq!((h.min, h.max, h.counts), (1.0, 4.0, vec![1, 1, 2]));
        // A 2-D tensor is flattened.
        let h = histogram(
            &Tensor::from_slice(&[0.0f64, 1.0, 2.0, 3.0]).view([2, 2]),
            2,
        );
        assert_eq!(h.unwrap().counts, vec![2, 2]);
    }

    /// The same histogram as the procedure of wandb 0.31's
    /// `log_tensor_stats`, run by the real torch (`$TRAINBOX_PYTHON`), on
    /// 10,001 values with NaNs and infinities, at several bin counts.
    #[test]
    fn histograms_match_torch_histc_as_wandb_calls_it() {
        let python = std::env::var_os("TRAINBOX_PYTHON")
            .expect("TRAINBOX_PYTHON (the torch environment's python3, set by the Makefile) is needed: run through `make test`");
        tch::manual_seed(7);
        let t = Tensor::randn([10_001], (tch::Kind::Float, tch::Device::Cpu)) * 3.0;
        let _ = t.get(5).fill_(f64::NAN);
        let _ = t.get(77).fill_(f64::INFINITY);
        let values: Vec<f32> = Vec::try_from(&t).unwrap();
        let text: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        let script = r#"
import sys, torch
flat = torch.tensor([float(x) for x in sys.stdin.read().split()], dtype=torch.float32)
flat = flat[torch.isfinite(flat)]
tmin, tmax = flat.min().item(), flat.max().item()
for bins in (1, 7, 64, 4096):
    h = flat.histc(bins=bins, min=tmin, max=tmax)
    print(repr(tmin), repr(tmax), " ".join(str(int(c)) for c in h.tolist()))
"#;
        let mut child = std::process::Command::new(python)
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.join(" ").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let out = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.lines().count(), 4, "{out}");
        for (line, bins) in out.lines().zip([1, 7, 64, 4096]) {
            let mut words = line.split(' ');
            let min: f64 = words.next().unwrap().parse().unwrap();
            let max: f64 = words.next().unwrap().parse().unwrap();
            let counts: Vec<u64> = words.map(|w| w.parse().unwrap()).collect();
            let ours = histogram(&t, bins).unwrap();
            assert_eq!((ours.min, ours.max), (min, max), "{bins} bins");
            assert_eq!(ours.counts, counts, "{bins} bins");
            assert_eq!(ours.counts.iter().sum::<u64>(), 9_999);
        }
    }
}
