// Workload checks in a real VM (tests/vm/specs/checks.toml): a workload that
// violates max_imbalance fails with the check's message and the measured
// numbers, and the same confined workload passes isolation, numa_local and
// max_spread_pct, judged from the stored runs, not only the exit status.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>

namespace ktstr::testing {
namespace {

TEST(ChecksVm, ImbalanceFailsConfinedWorkersStayInside) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"test", "--json", "--no-auto-repro", kVmSpecs + "/checks.toml"});
  EXPECT_EQ(r.status, 1) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("tests")) << r.out << r.err;
  ASSERT_EQ(j["tests"].size(), 2u) << r.out;
  for (auto& t : j["tests"]) {
    std::string name = t.value("name", "");
    ASSERT_TRUE(t.contains("workers")) << t.dump();
    EXPECT_EQ(t["workers"].size(), 4u) << name;
    for (auto& w : t["workers"]) {
      EXPECT_GT(w.value("iterations", 0), 0) << name;
      EXPECT_EQ(w["cpus_used"], nlohmann::json::array({0})) << name << ": " << w.dump();
    }
    if (name == "checks_crowded") {
      EXPECT_EQ(t.value("status", ""), "fail") << t.dump();
      std::string reason = t.value("reason", "");
      EXPECT_NE(reason.find("CPU run queues"), std::string::npos) << reason;
      EXPECT_NE(reason.find("more than max_imbalance = 1"), std::string::npos) << reason;
    } else {
      EXPECT_EQ(name, "checks_confined");
      EXPECT_EQ(t.value("status", ""), "pass") << t.value("reason", "");
    }
  }
  // Both runs are stored with their verdicts.
  auto runs = store.ktstr({"runs", "list", "--json"});
  auto rj = nlohmann::json::parse(runs.out, nullptr, false);
  ASSERT_TRUE(rj.is_array()) << runs.out << runs.err;
  std::map<std::string, std::string> status;
  for (auto& x : rj) status[x.value("test", "")] = x.value("status", "");
  EXPECT_EQ(status["checks_crowded"], "fail");
  EXPECT_EQ(status["checks_confined"], "pass");
}

}  // namespace
}  // namespace ktstr::testing
