// splitmix64 (Steele, Lea, Flood 2014): a tiny generator whose output is the
// same on every platform and libc, for everything that must replay exactly:
// simulated bisect histories (bench, unit tests) and per-run seeds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ktstr {

// One splitmix64 step of x: a well-mixed 64-bit value (x and x + 1 give
// unrelated results), e.g. a run's seed from a session seed plus a step number.
inline constexpr uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

struct SplitMix64 {
  uint64_t state;
  uint64_t next() {
    uint64_t x = state;
    state += 0x9e3779b97f4a7c15ULL;
    return splitmix64(x);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

}  // namespace ktstr
