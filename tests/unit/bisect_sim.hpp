// Shared by the bisect engine's unit tests: a chain of candidates and a
// small deterministic generator for simulated verdicts.
#pragma once

#include "bisect/graph.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

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

struct Rng {  // splitmix64
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

}  // namespace ktstr::bisect::sim
