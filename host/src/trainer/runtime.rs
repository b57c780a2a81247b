//! Runtime switches of the loop: `--full_determinism` (HF's
//! `enable_full_determinism`: the seed, and torch's deterministic
//! algorithms), `--torch_empty_cache_steps` (the CUDA cache emptied every
//! N steps; nothing on the CPU, as HF's `clear_device_cache`), and the
//! allocator's settings for a loop of same-sized tensors.

use super::Trainer;
use anyhow::{anyhow, Result};

/// The environment HF's `enable_full_determinism` sets, when
/// `--full_determinism` is: called first thing by `trainbox train` and
/// `Run::start`, before the run's first CUDA kernel (cuBLAS reads its
/// workspace setting when its handle is made) and before any other thread
/// of the run exists (a variable set while another thread reads the
/// environment is a race).
pub fn determinism_env(args: &crate::args::TrainingArguments) {
    if !args.full_determinism {
        return;
    }
    for (name, value) in [
        ("CUDA_LAUNCH_BLOCKING", "1"),
        ("CUBLAS_WORKSPACE_CONFIG", ":16:8"),
        ("FLASH_ATTENTION_DETERMINISTIC", "1"),
    ] {
        std::env::set_var(name, value);
    }
}

/// Has glibc's allocator keep the memory a step frees for the next one: no
/// block under 64 MiB is its own mapping and no free memory is returned to
/// the system below 256 MiB, so the CPU's activations and gradients of each
/// step reuse the pages of the last instead of faulting in fresh ones
/// (+3-4% steps/s on the sort demo; the peak resident memory is the same).
/// Called by the `trainbox` binary at start; a program on the library
/// decides for itself.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's thresholds.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}

impl Trainer {
    /// HF's `enable_full_determinism` when `--full_determinism` is set (the
    /// seed itself is set by the loop, as HF's `set_seed`): the variables
    /// CUDA needs for deterministic kernels, then torch's deterministic
    /// algorithms, with cuDNN deterministic and not benchmarking.
    pub(super) fn apply_full_determinism(&self) -> Result<()> {
        if !self.args.full_determinism {
            return Ok(());
        }
        // The variables were set by `determinism_env` when the run began.
        trainbox_torch_ext::runtime::set_deterministic(true)
            .map_err(|e| anyhow!("--full_determinism: enabling deterministic algorithms: {e}"))
    }

    /// HF's `training_step`: the device cache emptied when `global_step` is
    /// a multiple of `--torch_empty_cache_steps` (on every micro-batch of
    /// such a step, as HF); nothing on the CPU.
    pub(super) fn maybe_empty_cache(&self) -> Result<()> {
        let Some(every) = self.args.torch_empty_cache_steps else {
            return Ok(());
        };
        if !self.device.is_cuda() || !self.state.global_step.is_multiple_of(u64::from(every)) {
            return Ok(());
        }
        trainbox_torch_ext::runtime::empty_cache()
            .map_err(|e| anyhow!("--torch_empty_cache_steps: emptying the CUDA cache: {e}"))
    }
}
