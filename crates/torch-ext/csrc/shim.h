// The C interface of the shim (src/ffi.rs declares the same functions).
// Every function that can fail takes `char** err`: on failure it returns
// null or -1 and sets *err to a malloc'd message, freed by tbx_free_error.
#pragma once
#include <stdint.h>

#ifdef __cplusplus
namespace at { class Tensor; }
typedef at::Tensor tbx_tensor;
extern "C" {
#else
typedef void tbx_tensor;
#endif

typedef struct tbx_group tbx_group;
typedef struct tbx_work tbx_work;

void tbx_free_error(char* err);

// c10d.cpp: a TCPStore (served here when is_server) under `prefix`, and a
// process group on it: backend 0 = Gloo, 1 = NCCL (nccl.cpp).
tbx_group* tbx_group_new(const char* host, uint16_t port, int32_t rank, int32_t world_size,
                         int32_t is_server, const char* prefix, int64_t timeout_ms,
                         int32_t backend, int32_t device_index, char** err);
void tbx_group_free(tbx_group* group);
// op: 0 = sum, 1 = max, 2 = min.
tbx_work* tbx_all_reduce(tbx_group* group, tbx_tensor** tensors, int32_t n, int32_t op, char** err);
tbx_work* tbx_broadcast(tbx_group* group, tbx_tensor* tensor, int32_t root, char** err);
tbx_work* tbx_all_gather(tbx_group* group, tbx_tensor* input, tbx_tensor** outputs, char** err);
tbx_work* tbx_barrier(tbx_group* group, char** err);
// Waits for a collective and frees it; 0 on success.
int32_t tbx_work_wait(tbx_work* work, char** err);

// amp.cpp: autocast for a device type (0 = CPU, 1 = CUDA) with a dtype
// (torch's ScalarType number); the previous state is returned to restore it.
int32_t tbx_autocast_enter(int32_t device_type, int32_t dtype, int32_t* old_dtype, char** err);
int32_t tbx_autocast_exit(int32_t device_type, int32_t was_enabled, int32_t old_dtype, char** err);
// torch._amp_foreach_non_finite_check_and_unscale_ over `grads`.
int32_t tbx_unscale(tbx_tensor** grads, int32_t n, tbx_tensor* found_inf, tbx_tensor* inv_scale, char** err);
// TF32 for CUDA matmuls and cuDNN convolutions.
int32_t tbx_set_tf32(int32_t enabled, char** err);
// Whether this build can make NCCL process groups.
int32_t tbx_has_nccl(void);

#ifdef __cplusplus
}
#endif
