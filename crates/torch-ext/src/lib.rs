//! What tch does not wrap, through a small C++ shim built against the same
//! libtorch (`csrc/`): process groups of torch's distributed engine (c10d:
//! a TCPStore rendezvous, Gloo on CPU, NCCL on CUDA) and mixed precision
//! (autocast on any device type, GradScaler's unscale kernel, TF32),
//! torch's fused AdamW kernel, and runtime switches (deterministic algorithms, emptying the CUDA cache).

pub mod amp;
pub mod c10d;
mod ffi;
pub mod optim;
pub mod runtime;

/// An error of the shim: the message of the C++ exception.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // libtorch's messages end in a C++ backtrace after the first line.
        let first = self.0.lines().next().unwrap_or(&self.0);
        f.write_str(first.trim())
    }
}

impl std::error::Error for Error {}

/// Calls a shim function with an error slot; its error, if it set one.
fn checked<T>(call: impl FnOnce(*mut *mut std::os::raw::c_char) -> T) -> Result<T, Error> {
    let mut err: *mut std::os::raw::c_char = std::ptr::null_mut();
    let out = call(&mut err);
    if err.is_null() {
        return Ok(out);
    }
    // SAFETY: the shim sets `err` to a NUL-terminated string from strdup.
    let message = unsafe { std::ffi::CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: freed once, by the shim's own allocator.
    unsafe { ffi::tbx_free_error(err) };
    Err(Error(message))
}
