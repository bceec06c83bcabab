// Shared by the bisect engine's unit tests: a chain of candidates and a
// small deterministic generator for simulated verdicts (core/splitmix64).
#pragma once

#include "bisect/graph.hpp"
#include "bisect/search.hpp"
#include "core/splitmix64.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ktstr::bisect {
// gtest prints a stop reason by its text.
inline void PrintTo(StopReason r, std::ostream* os) { *os << stop_reason_name(r); }
}  // namespace ktstr::bisect

namespace ktstr::bisect::sim {

// c0 .. c(n-1) on one line above "good"; the bad end is c(n-1).
inline CandidateGraph chain(size_t n) {
  std::vector<CommitNode> list;
  for (size_t i = n; i-- > 0;)
    list.push_back({"c" + std::to_string(i), {i ? "c" + std::to_string(i - 1) : "good"}});
  auto g = CandidateGraph::build(std::move(list), "c" + std::to_string(n - 1), false);
  EXPECT_TRUE(g.has_value());
  return *g;
}

using Rng = ktstr::SplitMix64;

}  // namespace ktstr::bisect::sim
