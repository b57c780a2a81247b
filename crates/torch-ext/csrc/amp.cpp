// Mixed precision: autocast per device type (tch only wraps CUDA's, with
// the deprecated API), torch's fused unscale-and-check of GradScaler, TF32.
#include "shim.h"
#include "error.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

static at::DeviceType device_type_of(int32_t device_type) {
  return device_type == 1 ? at::kCUDA : at::kCPU;
}

extern "C" int32_t tbx_autocast_enter(int32_t device_type, int32_t dtype, int32_t* old_dtype, char** err) {
  TBX_PROTECT(-1, {
    auto type = device_type_of(device_type);
    bool was = at::autocast::is_autocast_enabled(type);
    *old_dtype = static_cast<int32_t>(at::autocast::get_autocast_dtype(type));
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(dtype));
    at::autocast::set_autocast_enabled(type, true);
    at::autocast::increment_nesting();
    return was ? 1 : 0;
  })
}

extern "C" int32_t tbx_autocast_exit(int32_t device_type, int32_t was_enabled, int32_t old_dtype,
                                     char** err) {
  TBX_PROTECT(-1, {
    auto type = device_type_of(device_type);
    // As torch.autocast's __exit__: the cast weights are dropped when the
    // outermost region ends.
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(type, was_enabled != 0);
    at::autocast::set_autocast_dtype(type, static_cast<at::ScalarType>(old_dtype));
    return 0;
  })
}

extern "C" int32_t tbx_unscale(tbx_tensor** grads, int32_t n, tbx_tensor* found_inf,
                               tbx_tensor* inv_scale, char** err) {
  TBX_PROTECT(-1, {
    std::vector<at::Tensor> list;
    for (int32_t i = 0; i < n; i++) list.push_back(*grads[i]);
    at::_amp_foreach_non_finite_check_and_unscale_(list, *found_inf, *inv_scale);
    return 0;
  })
}

extern "C" int32_t tbx_set_tf32(int32_t enabled, char** err) {
  TBX_PROTECT(-1, {
    // As HF's enable_tf32 on torch >= 2.9: torch.backends.fp32_precision
    // ("generic", "all") = "tf32" or "ieee", which cuBLAS and cuDNN follow.
    at::globalContext().setFloat32Precision(at::Float32Backend::GENERIC, at::Float32Op::ALL,
                                            enabled != 0 ? at::Float32Precision::TF32
                                                         : at::Float32Precision::IEEE);
    return 0;
  })
}

extern "C" int32_t tbx_tf32_enabled(char** err) {
  // torch.backends.fp32_precision (reading the legacy allow_tf32 flags
  // after setting it is an error in torch 2.13).
  TBX_PROTECT(-1, {
    auto p = at::globalContext().float32Precision(at::Float32Backend::GENERIC, at::Float32Op::ALL);
    return p == at::Float32Precision::TF32 ? 1 : 0;
  })
}
