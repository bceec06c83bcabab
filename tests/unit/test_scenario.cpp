// Scenario plans: canned scenarios scale with the topology they run on,
// explicit cgroups pass through, steps and map writes are ordered and checked.
#include "core/scenario.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

using namespace ktstr;

namespace {

Topology topo(const char* s) {
  auto t = Topology::parse(s);
  EXPECT_TRUE(t.has_value()) << s;
  return t ? *t : Topology{};
}

TestSpec spec_from(const std::string& body) {
  auto specs = parse_spec_text("[[test]]\nname = \"s\"\n" + body, "s.toml");
  EXPECT_TRUE(specs.has_value()) << (specs ? "" : specs.error().msg);
  return specs ? specs->front() : TestSpec{};
}

ScenarioPlan plan_ok(const TestSpec& spec, const Topology& t) {
  auto plan = plan_scenario(spec, t);
  EXPECT_TRUE(plan.has_value()) << (plan ? "" : plan.error().msg);
  return plan ? *plan : ScenarioPlan{};
}

unsigned total_workers(const ScenarioPlan& p) {
  unsigned n = 0;
  for (auto& cg : p.cgroups) n += cg.workers;
  return n;
}

const char* kTopologies[] = {"1n1l1c1t", "1n1l2c1t", "1n1l3c1t", "1n1l4c1t", "1n2l4c2t", "2n4l2c2t"};

}  // namespace

TEST(Scenario, SteadyIsOneSpinWorkerPerCpu) {
  for (const char* s : kTopologies) {
    Topology t = topo(s);
    TestSpec spec;
    spec.name = "s";
    ScenarioPlan p = plan_ok(spec, t);
    EXPECT_EQ(p.scenario, "steady");
    ASSERT_EQ(p.cgroups.size(), 1u) << s;
    EXPECT_EQ(p.cgroups[0], (CgroupPlan{"steady", t.cpus(), "spin", ""})) << s;
    EXPECT_EQ(p.duration_ms, 3000u);
  }
}

TEST(Scenario, YieldHeavyIsTwoYieldWorkersPerCpu) {
  for (const char* s : kTopologies) {
    Topology t = topo(s);
    ScenarioPlan p = plan_ok(spec_from("scenario = \"yield_heavy\"\n"), t);
    ASSERT_EQ(p.cgroups.size(), 1u);
    EXPECT_EQ(p.cgroups[0].work, "yield");
    EXPECT_EQ(p.cgroups[0].workers, 2 * t.cpus()) << s;
  }
}

TEST(Scenario, CustomCrashLightIsHalfTheCpusAtLeastOne) {
  const std::pair<const char*, unsigned> cases[] = {
      {"1n1l1c1t", 1}, {"1n1l2c1t", 1}, {"1n1l3c1t", 1}, {"1n1l4c1t", 2}, {"1n2l4c2t", 8}};
  for (auto& [s, workers] : cases) {
    ScenarioPlan p = plan_ok(spec_from("scenario = \"custom_crash_light\"\n"), topo(s));
    ASSERT_EQ(p.cgroups.size(), 1u);
    EXPECT_EQ(p.cgroups[0], (CgroupPlan{"light", workers, "spin", ""})) << s;
  }
}

TEST(Scenario, MixedHasASpinAndAYieldCgroup) {
  Topology t = topo("1n2l4c2t");
  ScenarioPlan p = plan_ok(spec_from("scenario = \"mixed\"\n"), t);
  ASSERT_EQ(p.cgroups.size(), 2u);
  EXPECT_EQ(p.cgroups[0].work, "spin");
  EXPECT_EQ(p.cgroups[1].work, "yield");
  EXPECT_NE(p.cgroups[0].name, p.cgroups[1].name);
  EXPECT_EQ(total_workers(p), 2 * t.cpus());
}

TEST(Scenario, CannedCgroupNamesMatchThePlans) {
  for (auto& name : canned_scenarios()) {
    TestSpec spec;
    spec.name = "s";
    spec.scenario = name;
    ScenarioPlan p = plan_ok(spec, topo("1n1l4c1t"));
    std::vector<std::string> planned;
    for (auto& cg : p.cgroups) planned.push_back(cg.name);
    EXPECT_EQ(planned, canned_cgroup_names(name)) << name;
    EXPECT_TRUE(is_canned_scenario(name));
  }
  EXPECT_FALSE(is_canned_scenario("nope"));
  EXPECT_TRUE(canned_cgroup_names("nope").empty());
}

TEST(Scenario, TheTableHasTwentyDescribedScenariosOfKnownParts) {
  auto& table = canned_scenario_table();
  EXPECT_GE(table.size(), 20u);
  std::vector<std::string> names;
  for (auto& sc : table) {
    SCOPED_TRACE(sc.name);
    names.push_back(sc.name);
    EXPECT_TRUE(is_valid_test_name(sc.name));
    EXPECT_FALSE(sc.description.empty());
    EXPECT_EQ(sc.description.find('\n'), std::string::npos);
    EXPECT_FALSE(sc.cgroups.empty());
    for (auto& cg : sc.cgroups) {
      EXPECT_TRUE(is_work_kind(cg.work)) << cg.work;
      EXPECT_TRUE(resolve_work_params(cg.work, cg.params).has_value()) << cg.name;
    }
    EXPECT_EQ(find_canned_scenario(sc.name), &sc);
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());  // unique
  // Every work kind is used by at least one scenario.
  for (auto& kind : work_kinds()) {
    bool used = false;
    for (auto& sc : table)
      for (auto& cg : sc.cgroups) used = used || cg.work == kind;
    EXPECT_TRUE(used) << kind;
  }
  EXPECT_EQ(find_canned_scenario("nope"), nullptr);
}

TEST(Scenario, CannedWorkerCountsScaleWithTheCpus) {
  CannedCgroup per_cpu{"a", "spin", 1, 1, 1, {}}, twice{"b", "spin", 2, 1, 1, {}}, half{"c", "spin", 1, 2, 1, {}},
      one{"d", "spin", 0, 1, 1, {}};
  EXPECT_EQ(per_cpu.workers(4), 4u);
  EXPECT_EQ(twice.workers(3), 6u);
  EXPECT_EQ(half.workers(1), 1u);
  EXPECT_EQ(half.workers(5), 2u);
  EXPECT_EQ(one.workers(64), 1u);
  EXPECT_EQ(workers_formula(per_cpu), "N");
  EXPECT_EQ(workers_formula(twice), "2*N");
  EXPECT_EQ(workers_formula(half), "max(1,N/2)");
  EXPECT_EQ(workers_formula(one), "1");
}

TEST(Scenario, CannedScenariosResolveTheirSettings) {
  Topology t = topo("1n1l4c1t");
  ScenarioPlan p = plan_ok(spec_from("scenario = \"periodic_under_load\"\n"), t);
  ASSERT_EQ(p.cgroups.size(), 2u);
  EXPECT_EQ(p.cgroups[1].work, "periodic");
  EXPECT_EQ(p.cgroups[1].params.period_us, 10000u);
  EXPECT_EQ(p.cgroups[1].params.runtime_us, 2000u);
  p = plan_ok(spec_from("scenario = \"affinity_churn\"\n"), t);
  EXPECT_EQ(p.cgroups[0].params.interval_us, 1000u);  // the default, filled in
  p = plan_ok(spec_from("scenario = \"nice_mix\"\n"), t);
  ASSERT_EQ(p.cgroups.size(), 3u);
  EXPECT_EQ(p.cgroups[0].params.nice, -5);
  EXPECT_EQ(p.cgroups[2].params.nice, 10);
  EXPECT_EQ(total_workers(p), 12u);
  nlohmann::json j = canned_scenario_json(*find_canned_scenario("batch_vs_sleepers"));
  EXPECT_EQ(j["cgroups"][0]["policy"], "batch");
  EXPECT_EQ(j["cgroups"][1]["rate_hz"], 1000);
  EXPECT_EQ(j["cgroups"][1]["workers"], "N");
  EXPECT_FALSE(j["cgroups"][1].contains("nice"));
}

TEST(Scenario, ExplicitCgroupsGetTheirWorkDefaults) {
  ScenarioPlan p = plan_ok(spec_from("cgroups = [{ name = \"s\", workers = 1, work = \"sleep\" },\n"
                                     "  { name = \"p\", workers = 1, work = \"periodic\", period_us = 1000 }]\n"),
                           topo("1n1l2c1t"));
  EXPECT_EQ(p.cgroups[0].params.rate_hz, 1000u);
  EXPECT_EQ(p.cgroups[1].params.period_us, 1000u);
  EXPECT_EQ(p.cgroups[1].params.runtime_us, 500u);  // half the period when the default does not fit
  // Built in code with a setting of another kind: refused with the cgroup named.
  TestSpec spec;
  spec.name = "s";
  spec.scenario.clear();
  spec.cgroups = {CgroupSpec{"x", 1, "spin", "", {}}};
  spec.cgroups[0].params.rate_hz = 5;
  auto bad = plan_scenario(spec, topo("1n1l2c1t"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("'rate_hz' applies only to work 'sleep', not 'spin' (cgroup 'x')"), std::string::npos)
      << bad.error().msg;
}

TEST(Scenario, TheWorkTypeExamplesLoadAndPlan) {
  auto specs = load_spec_file(std::string(KTSTR_SOURCE_DIR) + "/tests/ktstr/work_types.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  std::set<std::string> kinds;
  for (auto& spec : *specs) {
    ScenarioPlan p = plan_ok(spec, spec.topology);
    for (auto& cg : p.cgroups) kinds.insert(cg.work);
  }
  // An example for every work type.
  for (auto& kind : work_kinds()) EXPECT_TRUE(kinds.count(kind)) << kind;
}

TEST(Scenario, PlansOnTheGivenTopologyNotTheSpecs) {
  TestSpec spec = spec_from("topology = \"1n1l2c1t\"\n");
  EXPECT_EQ(plan_ok(spec, topo("1n2l4c2t")).cgroups[0].workers, 16u);
}

TEST(Scenario, TheDesignExamplePlansALightLoadWithTheCrashWrite) {
  auto specs = load_spec_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/specs/crash_regression.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  const TestSpec& spec = specs->front();
  ScenarioPlan p = plan_ok(spec, spec.topology);
  EXPECT_EQ(p.scenario, "custom_crash_light");
  EXPECT_EQ(p.duration_ms, 5000u);
  ASSERT_EQ(p.cgroups.size(), 1u);
  EXPECT_EQ(p.cgroups[0], (CgroupPlan{"light", 2, "spin", ""}));
  ASSERT_EQ(p.map_writes.size(), 1u);
  EXPECT_EQ(p.map_writes[0], (MapWrite{".bss", "crash", 1, 2000}));
}

TEST(Scenario, ExplicitCgroupsPassThrough) {
  TestSpec spec = spec_from(
      "topology = \"1n1l4c1t\"\n"
      "cgroups = [{ name = \"a\", workers = 3, work = \"mixed\", cpus = \"0,2-3\" }, "
      "{ name = \"b\", workers = 1, work = \"yield\" }]\n");
  ScenarioPlan p = plan_ok(spec, spec.topology);
  EXPECT_EQ(p.scenario, "custom");
  ASSERT_EQ(p.cgroups.size(), 2u);
  EXPECT_EQ(p.cgroups[0], (CgroupPlan{"a", 3, "mixed", "0,2-3"}));
  EXPECT_EQ(p.cgroups[1], (CgroupPlan{"b", 1, "yield", ""}));
  // The cpulist is checked against the topology the plan is for.
  auto small = plan_scenario(spec, topo("1n1l2c1t"));
  ASSERT_FALSE(small.has_value());
  EXPECT_NE(small.error().msg.find("CPU 3 does not exist"), std::string::npos) << small.error().msg;
  EXPECT_EQ(small.error().msg.rfind("s.toml:1: ", 0), 0u) << small.error().msg;
}

TEST(Scenario, StepsAndMapWritesAreOrderedByTime) {
  TestSpec spec = spec_from(
      "scheduler = \"scx-ktstr\"\n"
      "steps = [\n"
      "  { after_ms = 900, action = \"remove_workers\", cgroup = \"steady\", count = 3 },\n"
      "  { after_ms = 100, action = \"add_workers\", cgroup = \"steady\", count = 2 },\n"
      "  { after_ms = 900, action = \"add_workers\", cgroup = \"steady\", count = 1 },\n"
      "]\n"
      "bpf_map_write = [{ map = \".bss\", var = \"b\", value = 2, after_ms = 50 }, "
      "{ map = \".bss\", var = \"a\", value = 1, after_ms = 10 }]\n");
  // 2 workers + 2 at 100 ms = 4, then 3 removed at 900 ms: allowed in time order.
  ScenarioPlan p = plan_ok(spec, spec.topology);
  ASSERT_EQ(p.steps.size(), 3u);
  EXPECT_EQ(p.steps[0], (StepPlan{100, "add_workers", "steady", 2}));
  EXPECT_EQ(p.steps[1], (StepPlan{900, "remove_workers", "steady", 3}));  // stable: file order on ties
  EXPECT_EQ(p.steps[2], (StepPlan{900, "add_workers", "steady", 1}));
  ASSERT_EQ(p.map_writes.size(), 2u);
  EXPECT_EQ(p.map_writes[0].var, "a");
  EXPECT_EQ(p.map_writes[1].var, "b");
}

TEST(Scenario, CannotRemoveMoreWorkersThanACgroupHas) {
  TestSpec spec = spec_from(
      "steps = [\n"
      "  { after_ms = 900, action = \"add_workers\", cgroup = \"steady\", count = 5 },\n"
      "  { after_ms = 100, action = \"remove_workers\", cgroup = \"steady\", count = 3 },\n"
      "]\n");
  auto p = plan_scenario(spec, spec.topology);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().msg,
            "s.toml:1: step at 100 ms removes 3 workers from cgroup 'steady', which has 2 in test 's'");
}

TEST(Scenario, RejectsSpecsBuiltInCodeWithBadParts) {
  TestSpec spec;
  spec.name = "code";
  spec.scenario = "nope";
  auto p = plan_scenario(spec, topo("1n1l2c1t"));
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().msg, "test 'code': unknown scenario 'nope' in test 'code'");
  spec.scenario = "steady";
  spec.steps = {StepSpec{10, "add_workers", "elsewhere", 1}};
  EXPECT_NE(plan_scenario(spec, topo("1n1l2c1t")).error().msg.find("unknown cgroup 'elsewhere'"), std::string::npos);
  spec.steps = {StepSpec{3000, "add_workers", "steady", 1}};
  EXPECT_NE(plan_scenario(spec, topo("1n1l2c1t")).error().msg.find("after the end of the run"), std::string::npos);
  spec.steps.clear();
  spec.bpf_map_writes = {MapWrite{".bss", "crash", 1, 5000}};
  EXPECT_NE(plan_scenario(spec, topo("1n1l2c1t")).error().msg.find("after the end of the run"), std::string::npos);
}

TEST(Scenario, ParsesCpulists) {
  EXPECT_EQ(*parse_cpulist("0-3,6", 8), (std::vector<unsigned>{0, 1, 2, 3, 6}));
  EXPECT_EQ(*parse_cpulist("3,1,1-2", 4), (std::vector<unsigned>{1, 2, 3}));
  EXPECT_EQ(*parse_cpulist("7", 8), (std::vector<unsigned>{7}));
  for (const char* bad : {"", ",", "0,", "0-", "-1", "a", "1-0", "8", "0--1", " 1", "0-3 ", "99999999"}) {
    auto r = parse_cpulist(bad, 8);
    ASSERT_FALSE(r.has_value()) << "'" << bad << "' parsed";
    EXPECT_EQ(r.error().msg.rfind("invalid cpulist '" + std::string(bad) + "': ", 0), 0u) << r.error().msg;
    EXPECT_EQ(r.error().hint, "a cpulist reads like 0-3,6");
  }
}

TEST(Scenario, JsonCarriesThePlan) {
  TestSpec spec = spec_from("scenario = \"mixed\"\nduration_s = 1.5\n");
  nlohmann::json j = plan_to_json(plan_ok(spec, topo("1n1l4c1t")));
  EXPECT_EQ(j["scenario"], "mixed");
  EXPECT_EQ(j["duration_ms"], 1500);
  ASSERT_EQ(j["cgroups"].size(), 2u);
  EXPECT_EQ(j["cgroups"][1]["work"], "yield");
  EXPECT_EQ(j["cgroups"][1]["workers"], 4);
  EXPECT_TRUE(j["steps"].empty());
}

TEST(Scenario, MovesCountForBothCgroupsAndHotplugIsReplayed) {
  TestSpec spec = spec_from(
      "topology = \"1n1l4c1t\"\n"
      "cgroups = [{ name = \"a\", workers = 2, work = \"spin\" }, { name = \"b\", workers = 1, work = \"spin\", weight = 50 }]\n"
      "steps = [\n"
      "  { after_ms = 100, action = \"move_workers\", cgroup = \"a\", count = 2, to = \"b\" },\n"
      "  { after_ms = 200, action = \"remove_workers\", cgroup = \"b\", count = 3 },\n"
      "  { after_ms = 300, action = \"cpu_offline\", cpu = 2 },\n"
      "  { after_ms = 400, action = \"set_cpus\", cgroup = \"a\", cpus = \"0-1\" },\n"
      "]\n");
  ScenarioPlan p = plan_ok(spec, spec.topology);
  ASSERT_EQ(p.steps.size(), 4u);
  EXPECT_EQ(p.steps[0].to, "b");
  EXPECT_EQ(p.steps[2].cpu, 2);
  EXPECT_EQ(p.cgroups[1].weight, 50u);
  EXPECT_EQ(plan_to_json(p)["steps"][2], nlohmann::json::parse(R"({"after_ms":300,"action":"cpu_offline","cpu":2})"));

  // a has none left after the move: a second move out of it cannot happen.
  spec.steps.push_back(StepSpec{500, "move_workers", "a", 1, "b"});
  auto bad = plan_scenario(spec, spec.topology);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("step at 500 ms moves 1 workers from cgroup 'a', which has 0"), std::string::npos)
      << bad.error().msg;
  spec.steps.pop_back();
  spec.steps.push_back(StepSpec{500, "cpu_offline", "", 1, "", "", 2});
  bad = plan_scenario(spec, spec.topology);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("sets CPU 2 offline, which it already is"), std::string::npos) << bad.error().msg;
  spec.steps.back().cpu = 4;  // a spec built in code, past the topology
  bad = plan_scenario(spec, spec.topology);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("cpu_offline takes CPU 1-3"), std::string::npos) << bad.error().msg;
}

TEST(Scenario, TheStepExamplesLoadAndPlanOnePerAction) {
  auto specs = load_spec_file(std::string(KTSTR_SOURCE_DIR) + "/tests/ktstr/steps.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  std::set<std::string> actions;
  bool weighted = false;
  for (auto& spec : *specs) {
    ScenarioPlan p = plan_ok(spec, spec.topology);
    for (auto& s : p.steps) actions.insert(s.action);
    for (auto& cg : p.cgroups) weighted = weighted || cg.weight != 100;
  }
  for (auto& action : step_actions()) EXPECT_TRUE(actions.count(action)) << action;
  EXPECT_TRUE(weighted);
}
