// Process groups of torch's distributed engine (c10d): a TCPStore for the
// rendezvous and a Gloo (or NCCL) backend on it, used through the
// `c10d::Backend` interface. The collectives are torch's own.
#include "shim.h"
#include "error.h"
#include "group.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdlib>

extern "C" void tbx_free_error(char* err) { free(err); }

static c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store,
                                                   int rank, int size,
                                                   std::chrono::milliseconds timeout) {
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  // As torch's Python side: GLOO_SOCKET_IFNAME names the interfaces to use.
  if (const char* names = std::getenv("GLOO_SOCKET_IFNAME")) {
    options->devices.clear();
    std::string list(names);
    size_t start = 0;
    while (start <= list.size()) {
      size_t end = list.find(',', start);
      if (end == std::string::npos) end = list.size();
      if (end > start) {
        options->devices.push_back(
            c10d::ProcessGroupGloo::createDeviceForInterface(list.substr(start, end - start)));
      }
      start = end + 1;
    }
  }
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

extern "C" tbx_group* tbx_group_new(const char* host, uint16_t port, int32_t rank,
                                    int32_t world_size, int32_t is_server, const char* prefix,
                                    int64_t timeout_ms, int32_t backend, int32_t device_index,
                                    char** err) {
  TBX_PROTECT(nullptr, {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = is_server != 0;
    opts.numWorkers = static_cast<size_t>(world_size);
    opts.waitWorkers = false;
    opts.timeout = timeout;
    opts.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    auto group = new tbx_group();
    group->store = store;
    try {
      if (backend == 1) {
        group->backend = tbx_make_nccl(store, rank, world_size, timeout, device_index);
      } else {
        group->backend = make_gloo(store, rank, world_size, timeout);
      }
    } catch (...) {
      delete group;
      throw;
    }
    return group;
  })
}

extern "C" void tbx_group_free(tbx_group* group) { delete group; }

static tbx_work* wrap(c10::intrusive_ptr<c10d::Work> work, std::vector<at::Tensor> keep) {
  auto w = new tbx_work();
  w->work = std::move(work);
  w->keep = std::move(keep);
  return w;
}

extern "C" tbx_work* tbx_all_reduce(tbx_group* group, tbx_tensor** tensors, int32_t n,
                                    int32_t op, char** err) {
  TBX_PROTECT(nullptr, {
    std::vector<at::Tensor> list;
    for (int32_t i = 0; i < n; i++) list.push_back(*tensors[i]);
    c10d::AllreduceOptions opts;
    opts.reduceOp = op == 1 ? c10d::ReduceOp::MAX
                   : op == 2 ? c10d::ReduceOp::MIN
                             : c10d::ReduceOp::SUM;
    auto work = group->backend->allreduce(list, opts);
    return wrap(work, list);
  })
}

extern "C" tbx_work* tbx_broadcast(tbx_group* group, tbx_tensor* tensor, int32_t root,
                                   char** err) {
  TBX_PROTECT(nullptr, {
    std::vector<at::Tensor> list{*tensor};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    auto work = group->backend->broadcast(list, opts);
    return wrap(work, list);
  })
}

extern "C" tbx_work* tbx_all_gather(tbx_group* group, tbx_tensor* input, tbx_tensor** outputs,
                                    char** err) {
  TBX_PROTECT(nullptr, {
    std::vector<at::Tensor> inputs{*input};
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int i = 0; i < group->backend->getSize(); i++) outs[0].push_back(*outputs[i]);
    auto work = group->backend->allgather(outs, inputs);
    std::vector<at::Tensor> keep = outs[0];
    keep.push_back(*input);
    return wrap(work, keep);
  })
}

extern "C" tbx_work* tbx_barrier(tbx_group* group, char** err) {
  TBX_PROTECT(nullptr, {
    c10d::BarrierOptions opts;
    return wrap(group->backend->barrier(opts), {});
  })
}

extern "C" int32_t tbx_work_wait(tbx_work* work, char** err) {
  std::unique_ptr<tbx_work> owned(work);
  TBX_PROTECT(-1, {
    owned->work->wait();
    return 0;
  })
}
