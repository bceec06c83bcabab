// `ktstr test --jobs 2` through the real binary (tests/vm/specs/jobs.toml):
// two short EEVDF tests in two worker processes, one VM each. Both pass,
// both runs are in the store, the JSON lists them in spec order although
// the first finishes last, and the stored runs overlap in time (their start
// and duration in the store, not this test's wall clock). KTSTR_VM_LOCK is
// cleared: it would make the VMs take turns.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace ktstr::testing {
namespace {

TEST(JobsVm, TwoTestsRunAtOnceAreStoredAndPrintedInSpecOrder) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"test", "--json", "--jobs", "2", kVmSpecs + "/jobs.toml"}, {"KTSTR_VM_LOCK="});
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "status " << r.status << ": " << r.err;
  ASSERT_EQ(doc["tests"].size(), 2u) << r.out.substr(0, 2000);
  EXPECT_EQ(doc["tests"][0]["name"], "jobs_long");
  EXPECT_EQ(doc["tests"][1]["name"], "jobs_short");
  std::map<int64_t, std::string> printed;  // run id -> test
  for (auto& t : doc["tests"]) {
    EXPECT_EQ(t["status"], "pass") << t.value("reason", "") << "\n" << t.dump(1).substr(0, 2000);
    ASSERT_TRUE(t.contains("run_id")) << t.dump(1).substr(0, 2000);
    printed[t["run_id"].get<int64_t>()] = t["name"].get<std::string>();
  }
  EXPECT_EQ(printed.size(), 2u);
  EXPECT_EQ(doc["summary"]["passed"], 2);
  EXPECT_EQ(doc["summary"]["failed"], 0);

  // Both runs are stored, under the ids the JSON gave.
  auto list = store.ktstr({"runs", "list", "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  auto runs = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(runs.is_array()) << list.out;
  ASSERT_EQ(runs.size(), 2u) << list.out;
  double latest_start = 0, earliest_end = 1e18, shortest = 1e18;
  for (auto& run : runs) {
    auto id = run["id"].get<int64_t>();
    ASSERT_TRUE(printed.count(id)) << list.out;
    EXPECT_EQ(run["test"], printed[id]);
    EXPECT_EQ(run["status"], "pass");
    double start = run["started_at"].get<double>();
    double seconds = run["duration_ms"].get<double>() / 1000;
    latest_start = std::max(latest_start, start);
    earliest_end = std::min(earliest_end, start + seconds);
    shortest = std::min(shortest, seconds);
  }
  // The stored start is taken before the VM is prepared and is in whole
  // seconds (at most 1 s early); the duration is the VM's. Run one after
  // the other, the second would start after the first ended and the
  // overlap computed here would stay under 1 s. Two VMs at once overlap by
  // most of the shorter run.
  EXPECT_GE(shortest, 2.0) << list.out;
  EXPECT_GE(earliest_end - latest_start, 2.0) << "the runs did not overlap:\n" << list.out;
}

}  // namespace
}  // namespace ktstr::testing
