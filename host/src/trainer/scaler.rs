//! Dynamic loss scaling for `--fp16`: `torch.amp.GradScaler` with its
//! defaults (init_scale 2^16, growth_factor 2, backoff_factor 0.5,
//! growth_interval 2000) and its kernels: the loss is multiplied by the
//! scale before backward; before clipping, the gradients are divided by it
//! (`_amp_foreach_non_finite_check_and_unscale_`), which also tells whether
//! any is inf or NaN; the optimizer step is then skipped, and
//! `_amp_update_scale_` halves the scale, or doubles it after
//! `growth_interval` steps in a row without one.
//!
//! Its state (the scale and the growth tracker) is saved in checkpoints as
//! `scaler.safetensors` (HF saves `scaler.pt`, a pickled `state_dict`):
//! float32 `scale` and int32 `growth_tracker`, each of one element.

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The file of a checkpoint holding the scaler's state.
pub(crate) const SCALER_FILE: &str = "scaler.safetensors";

/// torch.amp.GradScaler's defaults.
pub const INIT_SCALE: f64 = 65536.0;
pub const GROWTH_FACTOR: f64 = 2.0;
pub const BACKOFF_FACTOR: f64 = 0.5;
pub const GROWTH_INTERVAL: i64 = 2000;

/// A GradScaler on one device.
pub struct GradScaler {
    scale: Tensor,
    growth_tracker: Tensor,
    /// Set by [`GradScaler::unscale`], read by `step`, cleared by `update`.
    found_inf: Option<Tensor>,
    growth_interval: i64,
}

impl GradScaler {
    /// A scaler with torch's defaults, its state on `device`.
    pub fn new(device: Device) -> GradScaler {
        Self::with_interval(device, GROWTH_INTERVAL)
    }

    /// A scaler with another growth interval (for tests).
    pub fn with_interval(device: Device, growth_interval: i64) -> GradScaler {
        GradScaler {
            scale: Tensor::full([1], INIT_SCALE, (Kind::Float, device)),
            growth_tracker: Tensor::zeros([1], (Kind::Int, device)),
            found_inf: None,
            growth_interval,
        }
    }

    /// The current scale.
    pub fn scale_value(&self) -> f64 {
        self.scale.double_value(&[0])
    }

    /// Good steps in a row since the scale last changed.
    pub fn growth_tracker(&self) -> i64 {
        self.growth_tracker.int64_value(&[0])
    }

    /// `loss * scale` (GradScaler.scale), in the loss's dtype.
    pub fn scale_loss(&self, loss: &Tensor) -> Tensor {
        loss * self
            .scale
            .to_device(loss.device())
            .to_kind(loss.kind())
            .view([])
    }

    /// Divides `grads` by the scale in place and records whether any holds
    /// an inf or a NaN (GradScaler.unscale_). Twice per step is an error,
    /// as in torch.
    pub fn unscale(&mut self, grads: &[Tensor]) -> Result<()> {
        if self.found_inf.is_some() {
            bail!("unscale() has already been called since the last update()");
        }
        let found_inf = Tensor::zeros([1], (Kind::Float, self.scale.device()));
        // As torch: the reciprocal in double, then float32.
        let inv_scale = self
            .scale
            .to_kind(Kind::Double)
            .reciprocal()
            .to_kind(Kind::Float);
        tch::no_grad(|| {
            // The kernel takes the tensors of one device; grads share the model's.
            let by_device =
                grads
                    .iter()
                    .fold(Vec::<(Device, Vec<Tensor>)>::new(), |mut groups, g| {
                        match groups.iter_mut().find(|(d, _)| *d == g.device()) {
                            Some((_, list)) => list.push(g.shallow_clone()),
                            None => groups.push((g.device(), vec![g.shallow_clone()])),
                        }
                        groups
                    });
            for (device, list) in by_device {
                let found = found_inf.to_device(device);
                trainbox_torch_ext::amp::unscale_(&list, &found, &inv_scale.to_device(device))
                    .map_err(|e| anyhow!("unscaling the gradients: {e}"))?;
                if device != found_inf.device() {
                    let _ = found_inf
                        .shallow_clone()
                        .g_add_(&found.to_device(found_inf.device()));
                }
            }
            Ok::<(), anyhow::Error>(())
        })?;
        self.found_inf = Some(found_inf);
        Ok(())
    }

    /// Whether the gradients unscaled since the last update held an inf or
    /// a NaN: the optimizer step is then skipped.
    pub fn found_inf(&self) -> bool {
        self.found_inf
            .as_ref()
            .is_some_and(|f| f.double_value(&[0]) != 0.0)
    }

    /// GradScaler.update: backs the scale off after an overflow, grows it
    /// after `growth_interval` good steps in a row.
    pub fn update(&mut self) -> Result<()> {
        let found_inf = self
            .found_inf
            .take()
            .ok_or_else(|| anyhow!("update() before unscale() in this step"))?;
        let _ = tch::no_grad(|| {
            self.scale.f_internal_amp_update_scale_(
                &self.growth_tracker,
                &found_inf,
                GROWTH_FACTOR,
                BACKOFF_FACTOR,
                self.growth_interval,
            )
        })
        .map_err(|e| anyhow!("updating the loss scale: {e}"))?;
        Ok(())
    }

    /// Writes the state to `path` (safetensors, on the CPU).
    pub fn save(&self, path: &Path) -> Result<()> {
        let cpu = |t: &Tensor| t.to_device(Device::Cpu).contiguous();
        Tensor::write_safetensors(
            &[
                ("scale", cpu(&self.scale)),
                ("growth_tracker", cpu(&self.growth_tracker)),
            ],
            path,
        )
        .with_context(|| format!("writing {}", path.display()))
    }

    /// Restores a state written by [`GradScaler::save`], onto this
    /// scaler's device.
    pub fn load(&mut self, path: &Path) -> Result<()> {
        let tensors = Tensor::read_safetensors(path).with_context(|| {
            format!(
                "reading {}: not a readable safetensors file",
                path.display()
            )
        })?;
        let get = |name: &str, kind: Kind| -> Result<Tensor> {
            let (_, t) = tensors
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| anyhow!("{}: has no {name:?}", path.display()))?;
            if t.numel() != 1 {
                bail!("{}: {name:?} must hold one number", path.display());
            }
            Ok(t.reshape([1]).to_kind(kind).to_device(self.scale.device()))
        };
        let scale = get("scale", Kind::Float)?;
        let tracker = get("growth_tracker", Kind::Int)?;
        let value = scale.double_value(&[0]);
        if !(value.is_finite() && value > 0.0) {
            bail!(
                "{}: the scale {value} is not a positive number",
                path.display()
            );
        }
        self.scale = scale;
        self.growth_tracker = tracker;
        self.found_inf = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grads(values: &[f32]) -> Vec<Tensor> {
        vec![Tensor::from_slice(values)]
    }

    #[test]
    fn defaults_are_torchs_and_the_loss_is_scaled() {
        let s = GradScaler::new(Device::Cpu);
        assert_eq!(s.scale_value(), 65536.0);
        assert_eq!(s.growth_tracker(), 0);
        let loss = Tensor::from(0.5f32);
        assert_eq!(s.scale_loss(&loss).double_value(&[]), 32768.0);
        assert_eq!(s.scale_loss(&loss).size(), Vec::<i64>::new());
    }

    #[test]
    fn an_overflow_is_found_and_halves_the_scale() {
        let mut s = GradScaler::new(Device::Cpu);
        let g = grads(&[65536.0, 131072.0]);
        s.unscale(&g).unwrap();
        assert!(!s.found_inf());
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), [1.0, 2.0]);
        s.update().unwrap();
        assert_eq!((s.scale_value(), s.growth_tracker()), (65536.0, 1));
        for bad in [f32::INFINITY, f32::NAN] {
            let mut s2 = GradScaler::new(Device::Cpu);
            s2.unscale(&grads(&[1.0, bad])).unwrap();
            assert!(s2.found_inf(), "{bad}");
            s2.update().unwrap();
            assert_eq!((s2.scale_value(), s2.growth_tracker()), (32768.0, 0));
        }
        // Twice per step, or update without unscale: torch's errors.
        s.unscale(&g).unwrap();
        assert!(s.unscale(&g).is_err());
        s.update().unwrap();
        assert!(s.update().is_err());
    }

    #[test]
    fn the_scale_grows_after_growth_interval_good_steps() {
        let mut s = GradScaler::with_interval(Device::Cpu, 3);
        for step in 1..=2 {
            s.unscale(&grads(&[1.0])).unwrap();
            s.update().unwrap();
            assert_eq!((s.scale_value(), s.growth_tracker()), (65536.0, step));
        }
        s.unscale(&grads(&[1.0])).unwrap();
        s.update().unwrap();
        assert_eq!((s.scale_value(), s.growth_tracker()), (131072.0, 0));
        // An overflow resets the count.
        s.unscale(&grads(&[1.0])).unwrap();
        s.update().unwrap();
        s.unscale(&grads(&[f32::INFINITY])).unwrap();
        s.update().unwrap();
        assert_eq!((s.scale_value(), s.growth_tracker()), (65536.0, 0));
    }

    #[test]
    fn the_state_round_trips_through_its_file() {
        let dir = std::env::temp_dir().join(format!("trainbox-scaler-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(SCALER_FILE);
        let mut s = GradScaler::new(Device::Cpu);
        s.unscale(&grads(&[f32::NAN])).unwrap();
        s.update().unwrap();
        s.unscale(&grads(&[1.0])).unwrap();
        s.update().unwrap();
        s.save(&file).unwrap();
        let mut back = GradScaler::new(Device::Cpu);
        back.load(&file).unwrap();
        assert_eq!((back.scale_value(), back.growth_tracker()), (32768.0, 1));
        Tensor::write_safetensors(&[("scale", Tensor::from_slice(&[-1.0f32]))], &file).unwrap();
        assert!(back.load(&file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
