// Every workload check seen failing in a real VM for a real reason
// (tests/vm/specs/check_failures.toml): a fixture scheduler that stops
// preempting on two CPUs, and a cgroup whose only CPU goes offline. Judged
// from `ktstr test --json` and the stored runs: each run failed, every
// failing check is listed, and each message names the worker, cgroup or CPU
// and the measured number, which must really be past the bound. Two boots.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>
#include <regex>
#include <string>

namespace ktstr::testing {
namespace {

// check -> message, from a test's (or a stored run's) check_failures.
std::map<std::string, std::string> failures_of(const nlohmann::json& t) {
  std::map<std::string, std::string> out;
  if (t.contains("check_failures"))
    for (auto& f : t["check_failures"]) out[f.value("check", "")] = f.value("message", "");
  return out;
}

// The first number the pattern captures in `text`, or -1.
double number(const std::string& text, const std::string& pattern) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex(pattern))) return -1;
  return std::stod(m[1].str());
}

TEST(CheckFailuresVm, EveryCheckFailsWithItsMessage) {
  KTSTR_VM_STORE(store);
  auto r = store.ktstr({"test", "--json", "--no-auto-repro", kVmSpecs + "/check_failures.toml"});
  EXPECT_EQ(r.status, 1) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("tests")) << r.out << r.err;
  std::map<std::string, nlohmann::json> by_name;
  for (auto& t : j["tests"]) by_name[t.value("name", "")] = t;
  ASSERT_EQ(by_name.size(), 2u) << r.out;

  // The hogs: five checks in one run, each over its bound.
  const auto& hog = by_name["checks_hogged"];
  EXPECT_EQ(hog.value("status", ""), "fail") << hog.dump();
  EXPECT_EQ(hog.value("failure_kind", ""), "check") << hog.value("reason", "");
  EXPECT_EQ(hog.value("failed_check", ""), "not_starved") << hog.value("reason", "");
  auto hf = failures_of(hog);
  ASSERT_EQ(hf.size(), 5u) << hog.value("reason", "");
  EXPECT_TRUE(std::regex_search(hf["not_starved"],
                                std::regex(R"(^worker starved/[01] never ran \(starved\): 0 iterations in the 4s test$)")))
      << hf["not_starved"];
  double gap_ms = number(hf["max_gap_ms"], R"(^worker hogged/[01] waited ([0-9.]+)ms off-CPU, more than max_gap_ms = 1000$)");
  EXPECT_GT(gap_ms, 1000) << hf["max_gap_ms"];
  double spread = number(hf["max_spread_pct"], R"(^cgroup '(?:hogged|starved)': workers progressed ([0-9.]+)% apart)");
  EXPECT_GT(spread, 50) << hf["max_spread_pct"];
  double p99_us = number(hf["max_wakeup_latency_us"],
                         R"(^worker sleepers/0 woke ([0-9]+)us late at p99 \(max [0-9]+us\), more than max_wakeup_latency_us = 2000$)");
  EXPECT_GT(p99_us, 2000) << hf["max_wakeup_latency_us"];
  double stuck_s = number(hf["fail_on_stall"], R"(^CPU [12] stalled: [0-9]+ runnable tasks and no context switch for ([0-9.]+)s)");
  EXPECT_GT(stuck_s, 2.0) << hf["fail_on_stall"];
  // The reason lists them all, and the workers' own numbers agree.
  std::string reason = hog.value("reason", "");
  EXPECT_EQ(reason.rfind("5 checks failed; not_starved: ", 0), 0u) << reason;
  for (auto& [check, message] : hf) EXPECT_NE(reason.find(check + ": " + message), std::string::npos) << check;
  bool starved = false;
  for (auto& w : hog["workers"])
    if (w.value("cgroup", "") == "starved" && w.value("iterations", 1) == 0) starved = true;
  EXPECT_TRUE(starved) << hog["workers"].dump();
  // Both map writes were done.
  ASSERT_TRUE(hog.contains("sched")) << hog.dump();
  for (auto& m : hog["sched"]["map_writes"]) EXPECT_TRUE(m.value("ok", false)) << m.dump();

  // The unplugged cgroup: isolation (saying why) and numa_local.
  const auto& unplugged = by_name["checks_unplugged"];
  EXPECT_EQ(unplugged.value("status", ""), "fail") << unplugged.dump();
  ASSERT_TRUE(unplugged.contains("steps") && unplugged["steps"].size() == 1u) << unplugged.dump();
  EXPECT_TRUE(unplugged["steps"][0].value("ok", false)) << unplugged["steps"][0].dump();
  auto uf = failures_of(unplugged);
  ASSERT_EQ(uf.size(), 2u) << unplugged.value("reason", "");
  EXPECT_TRUE(std::regex_search(
      uf["isolation"],
      std::regex(R"(^worker fenced/0 ran on CPU 0, outside cgroup 'fenced''s cpuset 1 \(it used CPUs 0,1\): )"
                 R"(cpu_offline took CPU 1 offline by \+[0-9.]+s, leaving cpuset 1 no online CPU, so the kernel ran )"
                 R"(the cgroup on its parent's CPUs$)")))
      << uf["isolation"];
  EXPECT_EQ(uf["numa_local"], "worker fenced/0 ran on CPUs 0,1, in NUMA nodes 0 and 1");

  // The stored runs carry the same verdicts and failures.
  for (const auto* t : {&hog, &unplugged}) {
    ASSERT_TRUE(t->contains("run_id")) << t->dump();
    auto shown = store.ktstr({"runs", "show", "--json", std::to_string((*t)["run_id"].get<int64_t>())});
    auto sj = nlohmann::json::parse(shown.out, nullptr, false);
    ASSERT_TRUE(sj.is_object()) << shown.out << shown.err;
    EXPECT_EQ(sj.value("status", ""), "fail");
    EXPECT_EQ(failures_of(sj), failures_of(*t));
  }
  // What the lead reports: the measured numbers.
  std::printf("measured: gap %.1f ms, spread %.1f %%, p99 wakeup %.0f us, stall %.2f s\n", gap_ms, spread, p99_us,
              stuck_s);
}

}  // namespace
}  // namespace ktstr::testing
