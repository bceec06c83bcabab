// Steps and weights in a real VM (tests/vm/specs/steps.toml), judged from the
// runs' JSON, not only the exit status: max_weight_error_pct fails with the
// cgroup and both shares when the weights cannot hold and passes the same
// workload with a loose tolerance; the steps are executed and recorded (a
// hotplug either done or refused with its reason); isolation across a
// set_cpus narrowing and a cgroup move judges each worker by the cpuset in
// force at the time. Three 2 s EEVDF boots.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

namespace ktstr::testing {
namespace {

std::set<int> cpu_set(const nlohmann::json& a) {
  std::set<int> out;
  for (auto& c : a) out.insert(c.get<int>());
  return out;
}

TEST(StepsVm, WeightsFailAndPassStepsRunIsolationFollowsTheCpuset) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"test", "--json", "--no-auto-repro", kVmSpecs + "/steps.toml"});
  EXPECT_EQ(r.status, 1) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("tests")) << r.out << r.err;
  std::map<std::string, nlohmann::json> by_name;
  for (auto& t : j["tests"]) by_name[t.value("name", "")] = t;
  ASSERT_EQ(by_name.size(), 3u) << r.out;

  // The violated weights: the check's name, the cgroup and both numbers.
  const auto& bad = by_name["weights_violated"];
  EXPECT_EQ(bad.value("status", ""), "fail") << bad.dump();
  EXPECT_EQ(bad.value("failure_kind", ""), "check") << bad.dump();
  std::string reason = bad.value("reason", "");
  EXPECT_NE(reason.find("cgroup 'heavy' got "), std::string::npos) << reason;
  EXPECT_NE(reason.find("its weight 900 asks for 90.0% (of 1000)"), std::string::npos) << reason;
  EXPECT_NE(reason.find("more than max_weight_error_pct = 10"), std::string::npos) << reason;

  // The loose tolerance passes; both hotplug steps are recorded, done or
  // refused with a reason the run's notes repeat.
  const auto& loose = by_name["weights_loose"];
  EXPECT_EQ(loose.value("status", ""), "pass") << loose.value("reason", "");
  ASSERT_TRUE(loose.contains("steps")) << loose.dump();
  ASSERT_EQ(loose["steps"].size(), 2u) << loose["steps"].dump();
  for (auto& st : loose["steps"]) {
    EXPECT_EQ(st.value("cpu", -1), 1) << st.dump();
    EXPECT_GE(st.value("t_s", -1.0), 1.0) << st.dump();
    if (st.value("ok", false)) {
      EXPECT_NE(st.value("detail", "").find("CPU 1 is o"), std::string::npos) << st.dump();
    } else {
      EXPECT_FALSE(st.value("error", "").empty()) << st.dump();
      bool noted = false;
      for (auto& d : loose["diagnostics"]) noted = noted || d.get<std::string>().find("was not done") != std::string::npos;
      EXPECT_TRUE(noted) << loose["diagnostics"].dump();
    }
  }
  EXPECT_TRUE(loose["steps"][0].value("ok", false)) << "hotplug on the default kernel: " << loose["steps"][0].dump();

  // Narrowed to CPU 1 at 0.7 s, the mover moved in at 1 s: every worker ran
  // only on CPU 1 after its change, and the check passed.
  const auto& narrowed = by_name["narrowed"];
  EXPECT_EQ(narrowed.value("status", ""), "pass") << narrowed.value("reason", "");
  ASSERT_EQ(narrowed["steps"].size(), 2u) << narrowed.dump();
  EXPECT_EQ(narrowed["steps"][0].value("action", ""), "set_cpus");
  EXPECT_TRUE(narrowed["steps"][0].value("ok", false)) << narrowed["steps"][0].dump();
  EXPECT_TRUE(narrowed["steps"][1].value("ok", false)) << narrowed["steps"][1].dump();
  EXPECT_LT(narrowed["steps"][0].value("t_s", 9.0), narrowed["steps"][1].value("t_s", 0.0));
  ASSERT_EQ(narrowed["workers"].size(), 3u) << narrowed.dump();
  std::set<int> before;
  for (auto& w : narrowed["workers"]) {
    ASSERT_TRUE(w.contains("cpus_since_change")) << w.dump();
    EXPECT_EQ(cpu_set(w["cpus_since_change"]), std::set<int>{1}) << w.dump();
    for (int c : cpu_set(w["cpus_used"])) before.insert(c);
    if (w.value("cgroup", "") == "mover") {
      EXPECT_EQ(w.value("moved_to", ""), "load") << w.dump();
    }
  }
  EXPECT_EQ(before, (std::set<int>{0, 1}));  // CPU 0 was used, and allowed, before the change
}

}  // namespace
}  // namespace ktstr::testing
