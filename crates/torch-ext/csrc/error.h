// Turning C++ exceptions into the shim's error strings.
#pragma once
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

inline void tbx_set_error(char** err, const std::string& message) {
  if (err) {
    *err = strdup(message.c_str());
  }
}

// Runs BODY; on an exception sets *err and returns FAIL.
#define TBX_PROTECT(FAIL, BODY)                 \
  try {                                         \
    BODY                                        \
  } catch (const std::exception& e) {           \
    tbx_set_error(err, e.what());               \
    return FAIL;                                \
  } catch (...) {                               \
    tbx_set_error(err, "unknown C++ exception"); \
    return FAIL;                                \
  }
