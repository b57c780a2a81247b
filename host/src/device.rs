//! The run's device and numeric precision, by HF's rules.
//!
//! - Device (accelerate's `PartialState`): `--use_cpu` → the CPU; else
//!   `cuda:$LOCAL_RANK` when libtorch sees a CUDA device (`LOCAL_RANK`
//!   unset: 0), else the CPU. Beyond HF, a `LOCAL_RANK` past the last GPU
//!   shares one (`LOCAL_RANK % GPUs`, with a warning) where HF fails, so that
//!   several processes can be tried out on a machine with one GPU.
//! - Precision (`TrainingArguments._validate_args` and accelerate's
//!   `Accelerator.__init__`): `--bf16` autocasts to bfloat16 on the CPU and
//!   on CUDA, and is an error unless `--use_cpu` or a GPU that supports
//!   bfloat16 (HF's wording); `--fp16` autocasts to float16 with a
//!   GradScaler on CUDA, and on the CPU trains in float32 (accelerate turns
//!   native AMP off there without a word; trainbox warns).
//! - TF32 (`__post_init__` step 9): `--tf32 true` needs a CUDA device of
//!   compute capability 8 or more (HF's error otherwise); `--tf32 false`
//!   turns it off where it exists; unset leaves torch's default.

use crate::args::TrainingArguments;
use anyhow::{bail, Result};
use tch::{Device, Kind};

/// What the device rule needs to know of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    /// CUDA devices libtorch can use (0 without CUDA).
    pub cuda_devices: usize,
}

impl Machine {
    /// This machine, as libtorch sees it.
    pub fn current() -> Machine {
        let cuda_devices = if tch::Cuda::is_available() {
            tch::Cuda::device_count().max(0) as usize
        } else {
            0
        };
        Machine { cuda_devices }
    }
}

/// HF's device rule for a run on `machine`; `local_rank` is the text of
/// `LOCAL_RANK` if set. Returns the device and, when processes must share
/// a GPU, a warning to print.
pub fn choose_on(
    use_cpu: bool,
    machine: Machine,
    local_rank: Option<&str>,
) -> Result<(Device, Option<String>)> {
    if use_cpu || machine.cuda_devices == 0 {
        return Ok((Device::Cpu, None));
    }
    let rank = match local_rank.map(str::trim) {
        None | Some("") => 0,
        Some(text) => match text.parse::<usize>() {
            Ok(r) => r,
            Err(_) => bail!("LOCAL_RANK={text:?} is not a process index (0, 1, …)"),
        },
    };
    let index = rank % machine.cuda_devices;
    let warning = (index != rank).then(|| {
        format!(
            "LOCAL_RANK {rank} but {} CUDA device(s): the process shares cuda:{index} \
             (HF would fail; NCCL refuses two ranks on one GPU, use --ddp_backend gloo)",
            machine.cuda_devices
        )
    });
    Ok((Device::Cuda(index), warning))
}

/// The run's device on this machine, from `--use_cpu` and `LOCAL_RANK`
/// (a sharing warning is printed).
pub fn choose(args: &TrainingArguments) -> Result<Device> {
    let local_rank = std::env::var("LOCAL_RANK").ok();
    let (device, warning) = choose_on(args.use_cpu, Machine::current(), local_rank.as_deref())?;
    if let Some(w) = warning {
        crate::ui::warn(&w);
    }
    Ok(device)
}

/// `cuda:N` or `cpu`, as torch prints a device.
pub fn name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Cpu => "cpu".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The warning of `--fp16` on the CPU, where it means float32.
pub const FP16_ON_CPU: &str = "--fp16 on the CPU: as HF (accelerate), no float16 autocast and no \
     loss scaling; the run trains in float32 (use --bf16 --use_cpu for mixed precision on the CPU)";

/// The numeric precision of a run's forward passes. The weights, the
/// gradients, the optimizer state and checkpoints stay float32 in all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Plain float32.
    #[default]
    Float32,
    /// Autocast to bfloat16 (`--bf16`).
    BFloat16,
    /// Autocast to float16 with dynamic loss scaling (`--fp16` on CUDA).
    Float16,
}

impl Precision {
    /// The precision of a run of `args` on `device`, with HF's checks;
    /// `machine` tells whether a GPU with bfloat16 exists.
    pub fn of(args: &TrainingArguments, device: Device, machine: Machine) -> Result<Precision> {
        if args.fp16 && args.bf16 {
            bail!("At most one of fp16 and bf16 can be True, but not both (--fp16, --bf16)");
        }
        if args.bf16 {
            if !args.use_cpu && !bf16_gpu_available(machine) {
                let mut message = "--bf16: Your setup doesn't support bf16/gpu. You need to assign use_cpu if you \
                     want to train the model on CPU."
                    .to_string();
                if machine.cuda_devices > 0 {
                    message += " You need Ampere+ GPU with cuda>=11.0.";
                } else {
                    message += " (no CUDA device here: add --use_cpu)";
                }
                bail!(message);
            }
            return Ok(Precision::BFloat16);
        }
        // On the CPU, as accelerate: no native AMP, float32 ([`FP16_ON_CPU`]).
        if args.fp16 && device.is_cuda() {
            return Ok(Precision::Float16);
        }
        Ok(Precision::Float32)
    }

    /// The kind autocast runs in, if any.
    pub fn autocast_kind(self) -> Option<Kind> {
        match self {
            Precision::Float32 => None,
            Precision::BFloat16 => Some(Kind::BFloat16),
            Precision::Float16 => Some(Kind::Half),
        }
    }

    /// Whether the loss is scaled (a GradScaler runs).
    pub fn scales_loss(self) -> bool {
        self == Precision::Float16
    }

    /// `fp32`, `bf16` or `fp16`, as accelerate's `mixed_precision` says
    /// (`no` for float32).
    pub fn mixed_precision(self) -> &'static str {
        match self {
            Precision::Float32 => "no",
            Precision::BFloat16 => "bf16",
            Precision::Float16 => "fp16",
        }
    }
}

/// `cudaDeviceGetAttribute` of the CUDA runtime that libtorch_cuda loaded
/// (the build links it, so it is there with or without a GPU).
type GetAttribute = unsafe extern "C" fn(*mut i32, i32, i32) -> i32;

fn cuda_get_attribute() -> Option<GetAttribute> {
    // SAFETY: dlsym with a NUL-terminated name, in the global scope, where
    // libcudart (a dependency of libtorch_cuda) is.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"cudaDeviceGetAttribute".as_ptr()) };
    // SAFETY: the symbol is `cudaError_t cudaDeviceGetAttribute(int*, cudaDeviceAttr, int)`.
    (!symbol.is_null())
        .then(|| unsafe { std::mem::transmute::<*mut libc::c_void, GetAttribute>(symbol) })
}

/// The compute capability of CUDA device `index`; `None` without one.
pub fn cuda_capability(index: usize) -> Option<(i32, i32)> {
    // cudaDevAttrComputeCapabilityMajor and ...Minor.
    const MAJOR: i32 = 75;
    const MINOR: i32 = 76;
    let get = cuda_get_attribute()?;
    let (mut major, mut minor) = (0, 0);
    let index = i32::try_from(index).ok()?;
    // SAFETY: valid out-pointers; an error code (no device) is returned, not raised.
    let ok = unsafe { get(&mut major, MAJOR, index) == 0 && get(&mut minor, MINOR, index) == 0 };
    ok.then_some((major, minor))
}

/// HF's `is_torch_bf16_gpu_available`: torch's `cuda.is_bf16_supported()`
/// (compute capability 8 or more, or a bfloat16 tensor can be made there).
fn bf16_gpu_available(machine: Machine) -> bool {
    if machine.cuda_devices == 0 {
        return false;
    }
    cuda_capability(0).is_some_and(|(major, _)| major >= 8)
        || tch::Tensor::f_ones([1], (Kind::BFloat16, Device::Cuda(0))).is_ok()
}

/// HF's `is_torch_tf32_available`: a CUDA device of compute capability 8+.
fn tf32_available(machine: Machine) -> bool {
    machine.cuda_devices > 0 && cuda_capability(0).is_some_and(|(major, _)| major >= 8)
}

/// Applies `--tf32` as HF's `__post_init__`: `true` turns TF32 on, or is
/// HF's error without an Ampere GPU; `false` turns it off where it exists.
pub fn apply_tf32(tf32: Option<bool>, machine: Machine) -> Result<()> {
    let available = tf32_available(machine);
    match tf32 {
        Some(true) if !available => {
            bail!("--tf32 requires Ampere or a newer GPU arch, cuda>=11 and torch>=1.7")
        }
        Some(enabled) if available => trainbox_torch_ext::amp::set_tf32(enabled)
            .map_err(|e| anyhow::anyhow!("--tf32 {enabled}: {e}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_GPU: Machine = Machine { cuda_devices: 0 };
    const ONE_GPU: Machine = Machine { cuda_devices: 1 };
    const TWO_GPUS: Machine = Machine { cuda_devices: 2 };

    #[test]
    fn the_device_rule_is_hfs() {
        let device = |use_cpu, m, rank| choose_on(use_cpu, m, rank).unwrap().0;
        assert_eq!(device(false, NO_GPU, None), Device::Cpu);
        assert_eq!(device(false, NO_GPU, Some("3")), Device::Cpu);
        assert_eq!(device(true, TWO_GPUS, Some("1")), Device::Cpu);
        assert_eq!(device(false, TWO_GPUS, None), Device::Cuda(0));
        assert_eq!(device(false, TWO_GPUS, Some("1")), Device::Cuda(1));
        let (shared, warning) = choose_on(false, ONE_GPU, Some("1")).unwrap();
        assert_eq!(shared, Device::Cuda(0));
        assert!(warning.unwrap().contains("shares cuda:0"));
        assert!(choose_on(false, TWO_GPUS, Some("1")).unwrap().1.is_none());
        let err = choose_on(false, ONE_GPU, Some("x")).unwrap_err();
        assert!(err.to_string().contains("LOCAL_RANK"), "{err}");
    }

    #[test]
    fn this_machine_is_seen_as_libtorch_sees_it() {
        // The same binary on the build machine (no GPU: the CPU, and no
        // capability to read) and on a GPU machine (cuda:0).
        let args = TrainingArguments::default();
        let cpu_only = TrainingArguments {
            use_cpu: true,
            ..Default::default()
        };
        assert_eq!(choose(&cpu_only).unwrap(), Device::Cpu);
        // The capability (for --tf32) is read from the CUDA runtime, which
        // the build links: a missing one would refuse --tf32 on any GPU.
        assert!(cuda_get_attribute().is_some(), "libcudart is not loaded");
        if tch::Cuda::is_available() {
            assert!(Machine::current().cuda_devices > 0);
            assert!(cuda_capability(0).is_some());
            assert_eq!(choose(&args).unwrap(), Device::Cuda(0));
        } else {
            assert_eq!(Machine::current(), NO_GPU);
            assert_eq!(cuda_capability(0), None);
            assert_eq!(choose(&args).unwrap(), Device::Cpu);
        }
    }

    #[test]
    fn precision_follows_hfs_checks() {
        let args = |f: &dyn Fn(&mut TrainingArguments)| {
            let mut a = TrainingArguments::default();
            f(&mut a);
            a
        };
        let p = |a: &TrainingArguments, d| Precision::of(a, d, NO_GPU);
        assert_eq!(p(&args(&|_| {}), Device::Cpu).unwrap(), Precision::Float32);
        let bf16 = args(&|a| a.bf16 = true);
        let err = p(&bf16, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("You need to assign use_cpu"), "{err}");
        let bf16_cpu = args(&|a| {
            a.bf16 = true;
            a.use_cpu = true;
        });
        assert_eq!(p(&bf16_cpu, Device::Cpu).unwrap(), Precision::BFloat16);
        // fp16 on the CPU: float32, as accelerate; on CUDA: float16 + scaler.
        let fp16 = args(&|a| a.fp16 = true);
        assert_eq!(p(&fp16, Device::Cpu).unwrap(), Precision::Float32);
        assert_eq!(
            Precision::of(&fp16, Device::Cuda(0), ONE_GPU).unwrap(),
            Precision::Float16
        );
        assert!(Precision::Float16.scales_loss());
        assert_eq!(Precision::Float16.autocast_kind(), Some(Kind::Half));
        assert_eq!(Precision::BFloat16.autocast_kind(), Some(Kind::BFloat16));
        let both = args(&|a| {
            a.fp16 = true;
            a.bf16 = true;
            a.use_cpu = true;
        });
        let err = p(&both, Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("At most one of fp16 and bf16"), "{err}");
    }

    #[test]
    fn tf32_without_an_ampere_gpu_is_hfs_error() {
        let err = apply_tf32(Some(true), NO_GPU).unwrap_err().to_string();
        assert_eq!(
            err,
            "--tf32 requires Ampere or a newer GPU arch, cuda>=11 and torch>=1.7"
        );
        apply_tf32(Some(false), NO_GPU).unwrap();
        apply_tf32(None, NO_GPU).unwrap();
    }
}
