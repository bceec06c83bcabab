// Per-run seeds: a 64-bit value the host picks for every run, records with
// it (the run's result JSON, its crash record) and hands to the scheduler in
// the guest as KTSTR_SEED (decimal), so a scheduler that draws random
// decisions from it can be replayed exactly (`ktstr test --seed`, `ktstr
// repro`, `ktstr bisect --seed`).
//
// Several runs under one base seed (`--repeat` repetitions, bisect steps)
// get consecutive seeds: run k runs with base + k (mod 2^64). The agent
// applies the same rule to a repeat job's repetitions, so the host knows
// each run's seed without being told. Consecutive seeds are correlated:
// a scheduler hashes the seed (e.g. splitmix64, core/splitmix64.hpp) before drawing from it.
//
// Header-only: the guest agent uses seed_at() too.
#pragma once

#include "core/result.hpp"
#include "core/splitmix64.hpp"  // splitmix64(): how a scheduler should mix its seed

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <sys/random.h>

namespace ktstr {

// The environment variable the scheduler reads.
inline constexpr const char* kSeedEnv = "KTSTR_SEED";

// The seed of run `k` (0-based) under `base`.
inline constexpr uint64_t seed_at(uint64_t base, uint64_t k) { return base + k; }

// A fresh seed from the host's RNG.
inline uint64_t random_seed() {
  uint64_t s = 0;
  if (::getrandom(&s, sizeof s, 0) != static_cast<ssize_t>(sizeof s)) {
    std::random_device rd;  // getrandom cannot fail for 8 bytes, but be safe
    s = (uint64_t(rd()) << 32) ^ rd();
  }
  return s;
}

// `--seed` text: a decimal (or 0x hex) integer 0..2^64-1. `option` names the
// option in the error.
inline Result<uint64_t> parse_seed(const std::string& text, const std::string& option = "--seed") {
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  bool digits = !text.empty();
  for (size_t i = hex ? 2 : 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= '0' && c <= '9') || (hex && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
    if (!ok) digits = false;
  }
  errno = 0;
  char* end = nullptr;
  unsigned long long v = digits ? std::strtoull(text.c_str(), &end, hex ? 16 : 10) : 0;
  if (!digits || errno == ERANGE || !end || *end != '\0')
    return fail(option + " '" + text + "' is not a seed",
                "give an integer from 0 to 18446744073709551615 (decimal, or hex with 0x), as a run's report prints it");
  return static_cast<uint64_t>(v);
}

}  // namespace ktstr
