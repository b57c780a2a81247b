// Declarations only: see ../README.md.
#pragma once
#include <chrono>
namespace gloo {
// ProcessGroupGloo.hpp's inline setTimeout names this member; it is only
// ever called inside libtorch.
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
namespace transport {
class Device;
class UnboundBuffer;
} // namespace transport
} // namespace gloo
