// core/seed.hpp: the seed of run k under a base, the mix the fixture draws
// from, `--seed` parsing and the host's fresh seeds.
#include "core/seed.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <set>

namespace ktstr {
namespace {

TEST(Seed, RunKGetsBasePlusKAndWrapsAround) {
  EXPECT_EQ(seed_at(1000, 0), 1000u);  // a single run (and repro) sees the seed itself
  EXPECT_EQ(seed_at(1000, 7), 1007u);
  const uint64_t top = std::numeric_limits<uint64_t>::max();
  EXPECT_EQ(seed_at(top, 0), top);
  EXPECT_EQ(seed_at(top, 1), 0u);
  EXPECT_EQ(seed_at(top - 1, 3), 1u);
  // A batch that starts at step k numbers its repetitions as the steps:
  // repetition i of a job seeded seed_at(S, k) runs with seed_at(S, k + i).
  for (uint64_t k : {0u, 1u, 41u})
    for (uint64_t i : {0u, 1u, 2u}) EXPECT_EQ(seed_at(seed_at(99, k), i), seed_at(99, k + i));
}

TEST(Seed, Splitmix64IsTheReferenceMix) {
  // The first outputs of the reference splitmix64 generator seeded with 0
  // (state advances by the golden gamma before each mix).
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafull);
  EXPECT_EQ(splitmix64(0x9e3779b97f4a7c15ull), 0x6e789e6aa1b965f4ull);
  // Consecutive seeds give unrelated draws: the fixture's p = 0.5 crash
  // (mix % 100 < 50) fires on about half of 1000 consecutive seeds.
  int fired = 0;
  for (uint64_t s = 0; s < 1000; ++s) fired += splitmix64(s) % 100 < 50;
  EXPECT_GT(fired, 440);
  EXPECT_LT(fired, 560);
}

TEST(Seed, ParsesDecimalAndHexAcrossTheWholeRange) {
  EXPECT_EQ(parse_seed("0").value(), 0u);
  EXPECT_EQ(parse_seed("42").value(), 42u);
  EXPECT_EQ(parse_seed("18446744073709551615").value(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(parse_seed("0x10").value(), 16u);
  EXPECT_EQ(parse_seed("0XfFfF").value(), 0xffffu);
}

TEST(Seed, RejectsWhatIsNotASeedWithOneHint) {
  for (const char* bad : {"abc", "", "-1", "+1", " 1", "1 ", "1.5", "18446744073709551616", "0x", "0x1g", "1e3"}) {
    auto r = parse_seed(bad);
    ASSERT_FALSE(r) << "'" << bad << "'";
    EXPECT_EQ(r.error().msg, std::string("--seed '") + bad + "' is not a seed");
    EXPECT_NE(r.error().hint.find("0 to 18446744073709551615"), std::string::npos);
  }
  EXPECT_EQ(parse_seed("x", "--worker-seed").error().msg, "--worker-seed 'x' is not a seed");
}

TEST(Seed, FreshSeedsDiffer) {
  std::set<uint64_t> seen;
  for (int i = 0; i < 64; ++i) seen.insert(random_seed());
  EXPECT_EQ(seen.size(), 64u);  // 64 draws from 2^64: a collision would be a broken RNG
}

}  // namespace
}  // namespace ktstr
