//! Runtime switches tch does not wrap: torch's deterministic algorithms
//! (HF's `enable_full_determinism`) and emptying the accelerator's memory
//! cache (`torch.cuda.empty_cache()`).

use crate::{checked, ffi, Error};

/// `torch.use_deterministic_algorithms(enabled)`, with cuDNN's
/// `deterministic = enabled` and `benchmark = !enabled`, as HF's
/// `enable_full_determinism` sets them. An op without a deterministic
/// implementation then fails when it runs.
pub fn set_deterministic(enabled: bool) -> Result<(), Error> {
    checked(|err| unsafe { ffi::tbx_set_deterministic(i32::from(enabled), err) }).map(|_| ())
}

/// `torch.are_deterministic_algorithms_enabled()`.
pub fn deterministic_enabled() -> Result<bool, Error> {
    checked(|err| unsafe { ffi::tbx_deterministic_enabled(err) }).map(|v| v == 1)
}

/// `torch.accelerator.empty_cache()`: releases the cached, unused memory of
/// the accelerator's allocator (CUDA's); nothing without an accelerator.
pub fn empty_cache() -> Result<(), Error> {
    checked(|err| unsafe { ffi::tbx_empty_cache(err) }).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_algorithms_are_set_and_read_back() {
        let before = deterministic_enabled().unwrap();
        set_deterministic(true).unwrap();
        assert!(deterministic_enabled().unwrap());
        set_deterministic(false).unwrap();
        assert!(!deterministic_enabled().unwrap());
        set_deterministic(before).unwrap();
    }

    #[test]
    fn emptying_the_cache_without_an_accelerator_does_nothing() {
        empty_cache().unwrap();
    }
}
