// Runtime switches that tch does not wrap: torch's deterministic
// algorithms (HF's enable_full_determinism) and emptying the accelerator's
// caching allocator (torch.<device>.empty_cache()).
#include "shim.h"
#include "error.h"

#include <ATen/Context.h>
#include <ATen/DeviceAccelerator.h>

extern "C" int32_t tbx_set_deterministic(int32_t enabled, char** err) {
  TBX_PROTECT(-1, {
    // torch.use_deterministic_algorithms(enabled, warn_only=False), then
    // torch.backends.cudnn.deterministic = enabled, .benchmark = !enabled.
    at::globalContext().setDeterministicAlgorithms(enabled != 0, false);
    at::globalContext().setDeterministicCuDNN(enabled != 0);
    at::globalContext().setBenchmarkCuDNN(enabled == 0);
    return 0;
  })
}

extern "C" int32_t tbx_deterministic_enabled(char** err) {
  TBX_PROTECT(-1, { return at::globalContext().deterministicAlgorithms() ? 1 : 0; })
}

extern "C" int32_t tbx_empty_cache(char** err) {
  TBX_PROTECT(-1, {
    // As torch.accelerator.empty_cache(): nothing without an accelerator.
    if (at::accelerator::getAccelerator(false).has_value() &&
        at::accelerator::deviceCount() > 0) {
      at::accelerator::emptyCache();
    }
    return 0;
  })
}
