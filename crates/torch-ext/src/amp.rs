//! Mixed precision through libtorch: autocast regions on any device type,
//! GradScaler's fused unscale-and-check, and TF32.

use crate::{checked, ffi, Error};
use tch::{Device, Kind, Tensor};

fn device_type(device: Device) -> i32 {
    match device {
        Device::Cuda(_) => 1,
        _ => 0,
    }
}

/// torch's ScalarType number of the kinds autocast takes.
fn scalar_type(kind: Kind) -> Result<i32, Error> {
    match kind {
        Kind::Half => Ok(5),
        Kind::BFloat16 => Ok(15),
        other => Err(Error(format!(
            "autocast runs in float16 or bfloat16, not {other:?}"
        ))),
    }
}

/// An autocast region: while it lives, the ops autocast covers run in
/// `kind` on `device`'s type (torch.autocast(device_type, dtype)). Dropping
/// it restores what was before.
pub struct Autocast {
    device_type: i32,
    was_enabled: i32,
    old_dtype: i32,
}

impl Autocast {
    /// Enters autocast for `device`'s type in `kind` (Half or BFloat16).
    pub fn enter(device: Device, kind: Kind) -> Result<Autocast, Error> {
        let dtype = scalar_type(kind)?;
        let device_type = device_type(device);
        let mut old_dtype = 0;
        let was_enabled = checked(|err| unsafe {
            ffi::tbx_autocast_enter(device_type, dtype, &mut old_dtype, err)
        })?;
        Ok(Autocast {
            device_type,
            was_enabled,
            old_dtype,
        })
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        let _ = checked(|err| unsafe {
            ffi::tbx_autocast_exit(self.device_type, self.was_enabled, self.old_dtype, err)
        });
    }
}

/// torch's `_amp_foreach_non_finite_check_and_unscale_`: multiplies every
/// gradient by `inv_scale` (a one-element float tensor) and sets
/// `found_inf` (likewise) to 1 when any holds an inf or a NaN.
pub fn unscale_(grads: &[Tensor], found_inf: &Tensor, inv_scale: &Tensor) -> Result<(), Error> {
    if grads.is_empty() {
        return Ok(());
    }
    let list: Vec<_> = grads.iter().map(|g| g.as_ptr() as *mut _).collect();
    checked(|err| unsafe {
        ffi::tbx_unscale(
            list.as_ptr(),
            list.len() as i32,
            found_inf.as_ptr() as *mut _,
            inv_scale.as_ptr() as *mut _,
            err,
        )
    })
    .map(|_| ())
}

/// Allows (or forbids) TF32 in CUDA matmuls and cuDNN convolutions, as
/// HF's `enable_tf32` on torch 2.9+ (`torch.backends.fp32_precision`).
pub fn set_tf32(enabled: bool) -> Result<(), Error> {
    checked(|err| unsafe { ffi::tbx_set_tf32(i32::from(enabled), err) }).map(|_| ())
}

/// Whether TF32 is allowed now (`torch.backends.fp32_precision == "tf32"`).
pub fn tf32_enabled() -> Result<bool, Error> {
    checked(|err| unsafe { ffi::tbx_tf32_enabled(err) }).map(|v| v == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_autocast_runs_matmuls_in_bfloat16_and_ends() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        {
            let _region = Autocast::enter(Device::Cpu, Kind::BFloat16).unwrap();
            assert_eq!(a.matmul(&a).kind(), Kind::BFloat16);
        }
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
    }

    #[test]
    fn tf32_is_set_and_read_back() {
        let before = tf32_enabled().unwrap();
        set_tf32(true).unwrap();
        assert!(tf32_enabled().unwrap());
        set_tf32(false).unwrap();
        assert!(!tf32_enabled().unwrap());
        set_tf32(before).unwrap();
    }

    #[test]
    fn unscale_divides_and_finds_infinities() {
        let g = [
            Tensor::from_slice(&[2.0f32, 4.0]),
            Tensor::from_slice(&[8.0f32]),
        ];
        let found = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let inv = Tensor::from_slice(&[0.5f32]);
        unscale_(&g, &found, &inv).unwrap();
        assert_eq!(Vec::<f32>::try_from(&g[0]).unwrap(), [1.0, 2.0]);
        assert_eq!(found.double_value(&[0]), 0.0);
        let bad = [Tensor::from_slice(&[f32::INFINITY])];
        unscale_(&bad, &found, &inv).unwrap();
        assert_eq!(found.double_value(&[0]), 1.0);
    }
}
