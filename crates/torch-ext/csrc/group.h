// The shim's process group and collective handles (shared by c10d.cpp and nccl.cpp).
#pragma once
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <chrono>
#include <vector>

struct tbx_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};

struct tbx_work {
  c10::intrusive_ptr<c10d::Work> work;
  // The tensors the collective reads and writes, alive until it is waited for.
  std::vector<at::Tensor> keep;
};

// nccl.cpp (or its stand-in when this build has no NCCL headers).
c10::intrusive_ptr<c10d::Backend> tbx_make_nccl(const c10::intrusive_ptr<c10d::Store>& store,
                                                int rank, int size,
                                                std::chrono::milliseconds timeout,
                                                int device_index);
