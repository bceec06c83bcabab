// Work types in a real VM (tests/vm/specs/work_types.toml): in one boot a
// worker of every new work type runs, and each one's counters say it did
// its behaviour (wakeups with ordered latency percentiles, round trips,
// forks, the kernel's page faults, periods with missed deadlines, affinity
// changes with migrations), in the printed result and in the stored run; a
// canned scenario runs by name with the cgroups its table entry names.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

namespace ktstr::testing {
namespace {

uint64_t counter(const nlohmann::json& w, const char* name) {
  if (!w.contains("counters") || !w["counters"].contains(name)) {
    ADD_FAILURE() << "no counter '" << name << "' in " << w.dump();
    return 0;
  }
  return w["counters"][name].get<uint64_t>();
}

// The assertions on one worker of work_types_mix, by its cgroup.
void check_worker(const nlohmann::json& w, double duration_s) {
  std::string cg = w.value("cgroup", "");
  SCOPED_TRACE(cg + ": " + w.dump());
  uint64_t iterations = w.value("iterations", uint64_t{0});
  EXPECT_GT(iterations, 0u);
  if (cg == "sleep") {
    uint64_t wakeups = counter(w, "wakeups");
    EXPECT_GT(wakeups, 0u);
    EXPECT_LE(wakeups, static_cast<uint64_t>(500 * duration_s) + 1);  // rate_hz = 500
    uint64_t p50 = counter(w, "wake_latency_p50_ns"), p99 = counter(w, "wake_latency_p99_ns"),
             max = counter(w, "wake_latency_max_ns");
    EXPECT_LE(p50, p99);
    EXPECT_LE(p99, max);
    EXPECT_GT(max, 0u);
  } else if (cg == "futex" || cg == "pipe") {
    EXPECT_GT(counter(w, "round_trips"), 0u);
    EXPECT_EQ(counter(w, "round_trips"), iterations);
  } else if (cg == "fork") {
    EXPECT_GT(counter(w, "forks"), 0u);
  } else if (cg == "fault") {
    // 1 MiB of 4 KiB pages per iteration, each a fresh fault.
    EXPECT_GE(counter(w, "page_faults"), iterations * 256 * 9 / 10);
  } else if (cg == "periodic") {
    uint64_t periods = counter(w, "periods"), missed = counter(w, "missed_deadlines");
    EXPECT_GT(periods, 0u);
    EXPECT_LE(periods, static_cast<uint64_t>(1000 * duration_s) + 1);  // period_us = 1000
    EXPECT_GT(missed, 0u);  // 90% of a CPU each period beside eight other workers
    EXPECT_LE(missed, periods);
  } else if (cg == "affinity") {
    EXPECT_GT(counter(w, "affinity_changes"), 0u);
    EXPECT_GT(w.value("migrations", uint64_t{0}), 0u);  // pinned to each of the two CPUs in turn
    EXPECT_EQ(w["cpus_used"], nlohmann::json::array({0, 1}));
  } else {
    EXPECT_TRUE(cg == "batch" || cg == "idle") << cg;
    EXPECT_FALSE(w.contains("counters"));
  }
}

TEST(WorkTypesVm, EveryWorkTypeCountsItsBehaviourAndACannedScenarioRuns) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"test", "--json", kVmSpecs + "/work_types.toml"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("tests")) << r.out << r.err;
  ASSERT_EQ(j["tests"].size(), 2u) << r.out;

  const auto& mix = j["tests"][0];
  EXPECT_EQ(mix.value("name", ""), "work_types_mix");
  EXPECT_EQ(mix.value("status", ""), "pass") << mix.value("reason", "");
  ASSERT_TRUE(mix.contains("workers")) << mix.dump();
  std::map<std::string, int> seen;
  for (auto& w : mix["workers"]) {
    ++seen[w.value("cgroup", "")];
    check_worker(w, 2.0);
  }
  for (const char* cg : {"sleep", "futex", "pipe", "fork", "fault", "periodic", "affinity", "batch", "idle"})
    EXPECT_EQ(seen[cg], 1) << cg;

  // The stored run keeps the counters as printed.
  ASSERT_TRUE(mix.contains("run_id")) << mix.dump();
  auto shown = store.ktstr({"runs", "show", std::to_string(mix["run_id"].get<int64_t>()), "--json"});
  auto sj = nlohmann::json::parse(shown.out, nullptr, false);
  ASSERT_TRUE(sj.is_object() && sj.contains("workers")) << shown.out << shown.err;
  EXPECT_EQ(sj["workers"], mix["workers"]);

  // The canned scenario by name: its table's cgroups, N = 2 workers each.
  const auto& canned = j["tests"][1];
  EXPECT_EQ(canned.value("name", ""), "work_types_canned");
  EXPECT_EQ(canned.value("status", ""), "pass") << canned.value("reason", "");
  std::map<std::string, int> cgroups;
  for (auto& w : canned["workers"]) {
    std::string cg = w.value("cgroup", "");
    ++cgroups[cg];
    EXPECT_GT(w.value("iterations", uint64_t{0}), 0u) << w.dump();
    if (cg == "sleepers") {
      EXPECT_GT(counter(w, "wakeups"), 0u) << w.dump();
    } else {
      EXPECT_EQ(w.value("work", ""), "spin") << w.dump();
    }
  }
  EXPECT_EQ(cgroups, (std::map<std::string, int>{{"hogs", 2}, {"sleepers", 2}}));
}

}  // namespace
}  // namespace ktstr::testing
