//! The shim's C functions (csrc/shim.h).

use std::os::raw::c_char;
use torch_sys::C_tensor;

#[repr(C)]
pub struct Group {
    _private: [u8; 0],
}

#[repr(C)]
pub struct Work {
    _private: [u8; 0],
}

type Err = *mut *mut c_char;

extern "C" {
    pub fn tbx_free_error(err: *mut c_char);
    #[allow(clippy::too_many_arguments)]
    pub fn tbx_group_new(
        host: *const c_char,
        port: u16,
        rank: i32,
        world_size: i32,
        is_server: i32,
        prefix: *const c_char,
        timeout_ms: i64,
        backend: i32,
        device_index: i32,
        err: Err,
    ) -> *mut Group;
    pub fn tbx_group_free(group: *mut Group);
    pub fn tbx_all_reduce(
        group: *mut Group,
        tensors: *const *mut C_tensor,
        n: i32,
        op: i32,
        err: Err,
    ) -> *mut Work;
    pub fn tbx_broadcast(
        group: *mut Group,
        tensor: *mut C_tensor,
        root: i32,
        err: Err,
    ) -> *mut Work;
    pub fn tbx_all_gather(
        group: *mut Group,
        input: *mut C_tensor,
        outputs: *const *mut C_tensor,
        err: Err,
    ) -> *mut Work;
    pub fn tbx_barrier(group: *mut Group, err: Err) -> *mut Work;
    pub fn tbx_work_wait(work: *mut Work, err: Err) -> i32;

    pub fn tbx_autocast_enter(device_type: i32, dtype: i32, old_dtype: *mut i32, err: Err) -> i32;
    pub fn tbx_autocast_exit(device_type: i32, was_enabled: i32, old_dtype: i32, err: Err) -> i32;
    pub fn tbx_unscale(
        grads: *const *mut C_tensor,
        n: i32,
        found_inf: *mut C_tensor,
        inv_scale: *mut C_tensor,
        err: Err,
    ) -> i32;
    pub fn tbx_set_tf32(enabled: i32, err: Err) -> i32;
    pub fn tbx_grads_to_none(tensors: *const *mut C_tensor, n: i32, err: Err) -> i32;
    #[allow(clippy::too_many_arguments)]
    pub fn tbx_fused_adamw(
        params: *const *mut C_tensor,
        grads: *const *mut C_tensor,
        exp_avgs: *const *mut C_tensor,
        exp_avg_sqs: *const *mut C_tensor,
        steps: *const *mut C_tensor,
        n: i32,
        lr: f64,
        beta1: f64,
        beta2: f64,
        weight_decay: f64,
        eps: f64,
        err: Err,
    ) -> i32;
    pub fn tbx_tf32_enabled(err: Err) -> i32;
    pub fn tbx_has_nccl() -> i32;
    pub fn tbx_set_deterministic(enabled: i32, err: Err) -> i32;
    pub fn tbx_deterministic_enabled(err: Err) -> i32;
    pub fn tbx_empty_cache(err: Err) -> i32;
}
