// Declarations only: see ../../README.md. `c10d::ProcessGroupGloo::GlooStore`
// (defined inline in ProcessGroupGloo.hpp) derives from this class; the shim
// never constructs a GlooStore, so only the names must exist.
#pragma once
#include <chrono>
#include <string>
#include <vector>
#include "../algorithm.h"
namespace gloo {
namespace rendezvous {
class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::vector<char>& data) = 0;
  virtual std::vector<char> get(const std::string& key) = 0;
  virtual void wait(const std::vector<std::string>& keys) = 0;
  virtual void wait(
      const std::vector<std::string>& keys,
      const std::chrono::milliseconds& timeout) = 0;
};
} // namespace rendezvous
} // namespace gloo
