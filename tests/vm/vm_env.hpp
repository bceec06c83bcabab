// Shared by VM tests: in CI (CI=true) a missing kernel or QEMU is a failure;
// elsewhere the test skips and says why.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace ktstr::testing {

inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && (std::string(ci) == "true" || std::string(ci) == "1");
}

// Use as: KTSTR_VM_REQUIRE(cond, "why it is missing");
#define KTSTR_VM_REQUIRE(cond, why)                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      if (::ktstr::testing::in_ci()) FAIL() << "CI=true and " << (why);      \
      GTEST_SKIP() << (why) << " (VM tests run when it is present; in CI they must)"; \
    }                                                                        \
  } while (0)

}  // namespace ktstr::testing
