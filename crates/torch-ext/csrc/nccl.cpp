// The NCCL backend, for CUDA tensors. Compiled with USE_C10D_NCCL when the
// torch environment has NCCL's and CUDA's headers (the CUDA wheel's nvidia
// packages); otherwise asking for NCCL is an error that says so.
#include "shim.h"
#include "group.h"

#ifdef TBX_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

c10::intrusive_ptr<c10d::Backend> tbx_make_nccl(const c10::intrusive_ptr<c10d::Store>& store,
                                                int rank, int size,
                                                std::chrono::milliseconds timeout,
                                                int device_index) {
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device_index));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  auto backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
  // The rank's device, as init_process_group(device_id=...) binds it (the
  // communicator itself is made at the first collective).
  backend->setBoundDeviceId(
      at::Device(at::DeviceType::CUDA, static_cast<c10::DeviceIndex>(device_index)));
  return backend;
}

extern "C" int32_t tbx_has_nccl(void) { return 1; }
#else
#include <stdexcept>

c10::intrusive_ptr<c10d::Backend> tbx_make_nccl(const c10::intrusive_ptr<c10d::Store>&, int,
                                                int, std::chrono::milliseconds, int) {
  throw std::runtime_error(
      "this trainbox was built without NCCL (the torch environment had no nccl.h and CUDA "
      "headers); use --ddp_backend gloo");
}

extern "C" int32_t tbx_has_nccl(void) { return 0; }
#endif
