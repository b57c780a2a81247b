// torch.optim.AdamW(fused=True)'s update, the kernel HF's default optimizer
// (adamw_torch_fused) runs: torch's _fused_adam path for decoupled weight
// decay, one call per parameter group (same device and dtype).
#include "shim.h"
#include "error.h"

#include <ATen/ATen.h>

static std::vector<at::Tensor> list_of(tbx_tensor** tensors, int32_t n) {
  std::vector<at::Tensor> list;
  list.reserve(n);
  for (int32_t i = 0; i < n; i++) list.push_back(*tensors[i]);
  return list;
}

extern "C" int32_t tbx_fused_adamw(tbx_tensor** params, tbx_tensor** grads, tbx_tensor** exp_avgs,
                                   tbx_tensor** exp_avg_sqs, tbx_tensor** steps, int32_t n,
                                   double lr, double beta1, double beta2, double weight_decay,
                                   double eps, char** err) {
  TBX_PROTECT(-1, {
    if (n == 0) return 0;
    auto step_list = list_of(steps, n);
    // As torch's _fused_adam: the steps first, then the kernel.
    at::_foreach_add_(step_list, 1);
    at::_fused_adamw_(list_of(params, n), list_of(grads, n), list_of(exp_avgs, n),
                      list_of(exp_avg_sqs, n), {}, step_list, lr, beta1, beta2, weight_decay, eps,
                      /*amsgrad=*/false, /*maximize=*/false);
    return 0;
  })
}

// optimizer.zero_grad(set_to_none=True), torch's default: the gradients
// are dropped, so the next backward writes them instead of adding to zeros.
extern "C" int32_t tbx_grads_to_none(tbx_tensor** tensors, int32_t n, char** err) {
  TBX_PROTECT(-1, {
    for (int32_t i = 0; i < n; i++) tensors[i]->mutable_grad().reset();
    return 0;
  })
}
