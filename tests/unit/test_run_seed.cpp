// A run's seed on the host (cmd/pipeline.hpp, cmd/crash_record.cpp,
// cmd/repro.hpp): the job carries it, the stored run and the crash record
// keep it, and a replay finds it again. Real SQLite store, no VM.
#include "run/pipeline.hpp"
#include "run/repro.hpp"
#include "core/fs.hpp"
#include "db/crashes.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ktstr::runner {
namespace {

TestSpec crash_spec() {
  TestSpec s;
  s.name = "seeded";
  s.topology = *Topology::parse("1n1l2c1t");
  s.scenario = "steady";
  s.duration_s = 1;
  s.scheduler = "/sched/scx_seeded";
  return s;
}

RunResult crashed_run(const TestSpec& spec, std::optional<uint64_t> seed) {
  KernelRecord k;
  k.id = "0123456789abcdef";
  k.version = "7.3.4";
  PipelineOptions opts;
  opts.seed = seed;
  RunResult r = new_run_result(spec, k, opts);
  r.passed = false;
  r.reason = "scheduler died";
  SchedExit e;
  e.kind = 1025;
  e.reason = "scx_bpf_error";
  e.msg = "scx_seeded.bpf.c:12: drew a crash";
  r.exit = e;
  return r;
}

struct StoreDir {
  StoreDir() {
    auto d = TempDir::create("ktstr-run-seed");
    EXPECT_TRUE(d);
    dir.emplace(std::move(*d));
    auto s = db::Store::open(dir->path());
    EXPECT_TRUE(s) << s.error().msg;
    store = std::move(*s);
  }
  std::optional<TempDir> dir;
  std::unique_ptr<db::Store> store;
};

TEST(RunSeed, TheRunAndItsCrashKeepTheSeedAndTheReplayUsesIt) {
  StoreDir s;
  TestSpec spec = crash_spec();
  KernelRecord k;
  k.id = "0123456789abcdef";
  const uint64_t seed = 0xfedcba9876543210ull;  // above INT64_MAX
  RunResult r = crashed_run(spec, seed);
  ASSERT_EQ(r.seed, seed);
  ASSERT_TRUE(record_run(*s.store, r, 1700000000));
  ASSERT_TRUE(record_crash(*s.store, r, spec, k));
  ASSERT_FALSE(r.crash_id.empty());

  auto runs = s.store->list_runs(10);
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->size(), 1u);
  auto stored = nlohmann::json::parse(runs->front().result_json);
  EXPECT_EQ(stored["seed"].get<uint64_t>(), seed);

  auto crash = db::find_crash(*s.store, r.crash_id);
  ASSERT_TRUE(crash && *crash);
  EXPECT_EQ((*crash)->seed, seed);
  EXPECT_EQ(recorded_seed(**crash), seed);
  // The crash's stored report says how to run it again.
  EXPECT_NE((*crash)->report.find("seed: " + std::to_string(seed) + " (KTSTR_SEED; 'ktstr test --seed " +
                                  std::to_string(seed) + "' runs it again)"),
            std::string::npos)
      << (*crash)->report;
}

TEST(RunSeed, SeedZeroIsASeedAndARunWithoutOneHasNone) {
  StoreDir s;
  TestSpec spec = crash_spec();
  KernelRecord k;
  k.id = "0123456789abcdef";
  // 0 is a seed like any other: recorded and replayed.
  RunResult zero = crashed_run(spec, 0);
  ASSERT_TRUE(record_run(*s.store, zero, 1700000000));
  ASSERT_TRUE(record_crash(*s.store, zero, spec, k));
  auto z = db::find_crash(*s.store, zero.crash_id);
  ASSERT_TRUE(z && *z);
  EXPECT_EQ(recorded_seed(**z), uint64_t{0});
  // A run without one (recorded before seeds existed): no "seed" key, the
  // column reads 0, and a replay sends none.
  RunResult none = crashed_run(spec, std::nullopt);
  ASSERT_TRUE(record_run(*s.store, none, 1700000001));
  ASSERT_TRUE(record_crash(*s.store, none, spec, k));
  auto n = db::find_crash(*s.store, none.crash_id);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ((*n)->seed, 0u);
  EXPECT_FALSE(recorded_seed(**n).has_value());
  EXPECT_FALSE(nlohmann::json::parse((*n)->result_json).contains("seed"));
}

}  // namespace
}  // namespace ktstr::runner
