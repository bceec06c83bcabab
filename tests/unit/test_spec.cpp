// Test spec loading: every field, defaults, strict errors with file:line,
// and spec_to_toml writing what the parser reads back.
#include "core/spec.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <string>

using namespace ktstr;

namespace {

const std::string kSpecDir = std::string(KTSTR_SOURCE_DIR) + "/tests/data/specs/";

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TestSpec one(const std::string& toml) {
  auto specs = parse_spec_text(toml, "t.toml");
  EXPECT_TRUE(specs.has_value()) << (specs ? "" : specs.error().msg);
  if (!specs) return {};
  EXPECT_EQ(specs->size(), 1u);
  return specs->front();
}

Error error_of(const std::string& toml, const std::string& source = "t.toml") {
  auto specs = parse_spec_text(toml, source);
  EXPECT_FALSE(specs.has_value()) << "parsed: " << toml;
  return specs ? Error() : specs.error();
}

// The same test with its location forgotten, to compare parsed copies.
TestSpec unsourced(TestSpec s) {
  s.source_file.clear();
  s.source_line = 0;
  return s;
}

}  // namespace

TEST(Spec, LoadsTheDesignExample) {
  auto specs = load_spec_file(kSpecDir + "crash_regression.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  ASSERT_EQ(specs->size(), 1u);
  const TestSpec& s = specs->front();
  EXPECT_EQ(s.name, "crash_regression");
  EXPECT_EQ(s.scheduler, "scx-ktstr");
  EXPECT_TRUE(s.uses_bpf_scheduler());
  EXPECT_EQ(s.topology.to_string(), "1n1l4c1t");
  EXPECT_EQ(s.scenario, "custom_crash_light");
  EXPECT_EQ(s.duration_s, 5);
  EXPECT_EQ(s.duration_ms(), 5000u);
  ASSERT_EQ(s.bpf_map_writes.size(), 1u);
  EXPECT_EQ(s.bpf_map_writes[0], (MapWrite{".bss", "crash", 1, 2000}));
  EXPECT_TRUE(s.expect_err);
  EXPECT_EQ(s.expect_scx_bpf_error_contains, "host-triggered crash");
  EXPECT_EQ(s.expect_scx_bpf_error_matches, R"(\.bpf\.c:\d+: ktstr: host-triggered crash)");
  EXPECT_TRUE(s.auto_repro);
  EXPECT_EQ(s.source_file, kSpecDir + "crash_regression.toml");
  EXPECT_EQ(s.source_line, 1u);
  EXPECT_EQ(s.where(), kSpecDir + "crash_regression.toml:1");
}

TEST(Spec, WritesTheDesignExampleBackByteForByte) {
  std::string text = slurp(kSpecDir + "crash_regression.toml");
  auto specs = parse_spec_text(text, "crash_regression.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  EXPECT_EQ(spec_to_toml(specs->front()), text);
}

TEST(Spec, ReadsEveryField) {
  auto specs = load_spec_file(kSpecDir + "all_fields.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  ASSERT_EQ(specs->size(), 2u);
  const TestSpec& s = (*specs)[0];
  EXPECT_EQ(s.source_line, 2u);
  EXPECT_EQ(s.name, "everything");
  EXPECT_EQ(s.scheduler, "./build/scx_simple");
  EXPECT_EQ(s.sched_args, (std::vector<std::string>{"--slice-us", "5000", ""}));
  EXPECT_EQ(s.topology, (Topology{2, 4, 2, 2}));
  EXPECT_EQ(s.memory_mb, 1024u);
  EXPECT_EQ(s.duration_s, 2.5);
  EXPECT_EQ(s.duration_ms(), 2500u);
  EXPECT_EQ(s.scenario, "");
  ASSERT_EQ(s.cgroups.size(), 3u);
  EXPECT_EQ(s.cgroups[0], (CgroupSpec{"hogs", 4, "spin", "0-3,8"}));
  EXPECT_EQ(s.cgroups[1], (CgroupSpec{"nice.ones", 2, "yield", ""}));
  EXPECT_EQ(s.cgroups[2], (CgroupSpec{"both", 1, "mixed", ""}));
  ASSERT_EQ(s.steps.size(), 2u);  // file order, not time order
  EXPECT_EQ(s.steps[0], (StepSpec{1500, "remove_workers", "hogs", 2}));
  EXPECT_EQ(s.steps[1], (StepSpec{500, "add_workers", "both", 1}));
  ASSERT_EQ(s.bpf_map_writes.size(), 2u);
  EXPECT_EQ(s.bpf_map_writes[0], (MapWrite{".bss", "stall", -1, 100}));
  EXPECT_EQ(s.bpf_map_writes[1], (MapWrite{".data", "slow", 9007199254740993, 0}));
  EXPECT_TRUE(s.expect_err);
  EXPECT_EQ(s.expect_scx_bpf_error_contains, "it's \"quoted\"");
  EXPECT_EQ(s.expect_scx_bpf_error_matches, R"(^runnable task stall \(\w+\[\d+\])");
  EXPECT_FALSE(s.auto_repro);
  EXPECT_EQ(s.watchdog_timeout_s, 10u);
  EXPECT_TRUE(s.checks.not_starved);
  EXPECT_EQ(s.checks.max_gap_ms, 250u);
  EXPECT_EQ(s.kernel, "7.3.4+deb13-cloud-amd64");
  EXPECT_EQ((*specs)[1].name, "defaults");
  EXPECT_EQ((*specs)[1].source_line, 33u);
}

TEST(Spec, FillsDefaults) {
  TestSpec s = one("[[test]]\nname = \"d\"\n");
  EXPECT_EQ(s.scheduler, "eevdf");
  EXPECT_FALSE(s.uses_bpf_scheduler());
  EXPECT_TRUE(s.sched_args.empty());
  EXPECT_EQ(s.topology.to_string(), "1n1l2c1t");
  EXPECT_EQ(s.memory_mb, 256u);
  EXPECT_EQ(s.duration_ms(), 3000u);
  EXPECT_EQ(s.scenario, "steady");
  EXPECT_TRUE(s.cgroups.empty());
  EXPECT_TRUE(s.steps.empty());
  EXPECT_TRUE(s.bpf_map_writes.empty());
  EXPECT_FALSE(s.expect_err);
  EXPECT_FALSE(s.expect_scx_bpf_error_contains.has_value());
  EXPECT_FALSE(s.expect_scx_bpf_error_matches.has_value());
  EXPECT_TRUE(s.auto_repro);
  EXPECT_FALSE(s.watchdog_timeout_s.has_value());
  EXPECT_FALSE(s.checks.not_starved);
  EXPECT_FALSE(s.checks.max_gap_ms.has_value());
  EXPECT_EQ(s.kernel, "");
  // Equal to a default-constructed spec of the same name.
  TestSpec expected;
  expected.name = "d";
  EXPECT_EQ(unsourced(s), expected);
}

TEST(Spec, ChecksMayBeAnInlineTable) {
  TestSpec s = one("[[test]]\nname = \"c\"\nchecks = { max_gap_ms = 40 }\n");
  EXPECT_FALSE(s.checks.not_starved);
  EXPECT_EQ(s.checks.max_gap_ms, 40u);
}

TEST(Spec, UnknownKeyNamesFileLineAndSuggests) {
  const std::string path = kSpecDir + "unknown_key.toml";
  auto specs = load_spec_file(path);
  ASSERT_FALSE(specs.has_value());
  EXPECT_EQ(specs.error().msg, path + ":8: unknown key 'duraton_s' in test 'foo'");
  EXPECT_EQ(specs.error().hint, "did you mean 'duration_s'?");
}

TEST(Spec, UnknownKeyWithoutCloseMatchHasNoHint) {
  Error e = error_of("[[test]]\nname = \"x\"\nfrobnicate_everything = 1\n");
  EXPECT_EQ(e.msg, "t.toml:3: unknown key 'frobnicate_everything' in test 'x'");
  EXPECT_EQ(e.hint, "");
}

TEST(Spec, UnknownKeysInNestedTables) {
  Error e = error_of("[[test]]\nname = \"x\"\ncgroups = [{ name = \"a\", wrkers = 1, work = \"spin\" }]\n");
  EXPECT_EQ(e.msg, "t.toml:3: unknown key 'wrkers' in cgroups[0] of test 'x'");
  EXPECT_EQ(e.hint, "did you mean 'workers'?");
  e = error_of("[[test]]\nname = \"x\"\nscheduler = \"scx-ktstr\"\n"
               "bpf_map_write = [\n  { map = \".bss\", var = \"a\", value = 1 },\n"
               "  { map = \".bss\", variable = \"b\", value = 1 },\n]\n");
  EXPECT_EQ(e.msg, "t.toml:6: unknown key 'variable' in bpf_map_write[1] of test 'x'");
  e = error_of("[[test]]\nname = \"x\"\n[test.checks]\nnot_starving = true\n");
  EXPECT_EQ(e.msg, "t.toml:4: unknown key 'not_starving' in 'checks' of test 'x'");
  EXPECT_EQ(e.hint, "did you mean 'not_starved'?");
  e = error_of("title = \"x\"\n[[test]]\nname = \"x\"\n");
  EXPECT_EQ(e.msg, "t.toml:1: unknown top-level key 'title'");
}

TEST(Spec, WrongTypesNameTheKeyAndLine) {
  struct Case {
    std::string line;
    std::string msg;
  } cases[] = {
      {"memory_mb = \"512\"", "t.toml:3: 'memory_mb' in test 'x' must be an integer, not a string"},
      {"expect_err = 1", "t.toml:3: 'expect_err' in test 'x' must be true or false, not an integer"},
      {"topology = 4", "t.toml:3: 'topology' in test 'x' must be a string, not an integer"},
      {"duration_s = \"3\"", "t.toml:3: 'duration_s' in test 'x' must be a number of seconds, not a string"},
      {"sched_args = \"-v\"", "t.toml:3: 'sched_args' in test 'x' must be an array, not a string"},
      {"checks = 3", "t.toml:3: 'checks' in test 'x' must be a table, not an integer"},
      {"auto_repro = 1979-05-27", "t.toml:3: 'auto_repro' in test 'x' must be true or false, not a date or time"},
      {"scenario = [\"steady\"]", "t.toml:3: 'scenario' in test 'x' must be a string, not an array"},
      {"cgroups = [{ name = \"a\", workers = 1.5, work = \"spin\" }]",
       "t.toml:3: 'cgroups[0].workers' in test 'x' must be an integer, not a float"},
      {"cgroups = [\"a\"]", "t.toml:3: 'cgroups[0]' in test 'x' must be a table, not a string"},
  };
  for (auto& c : cases) EXPECT_EQ(error_of("[[test]]\nname = \"x\"\n" + c.line + "\n").msg, c.msg) << c.line;
  // An element of an array, on its own line.
  EXPECT_EQ(error_of("[[test]]\nname = \"x\"\nscheduler = \"scx-ktstr\"\nsched_args = [\n  \"-v\",\n  2,\n]\n").msg,
            "t.toml:6: 'sched_args[1]' in test 'x' must be a string, not an integer");
}

TEST(Spec, BadValuesAreRejected) {
  struct Case {
    std::string lines;
    std::string fragment;
  } cases[] = {
      {"memory_mb = 63", "'memory_mb' in test 'x' must be between 64 and 65536, not 63"},
      {"memory_mb = 65537", "must be between 64 and 65536, not 65537"},
      {"duration_s = 0", "'duration_s' in test 'x' must be more than 0 and at most 3600, not 0"},
      {"duration_s = -1.5", "not -1.5"},
      {"duration_s = 3601", "not 3601"},
      {"duration_s = 0.0001", "not 1e-04"},
      {"duration_s = nan", "must be more than 0"},
      {"topology = \"3n2l1c1t\"", "invalid topology '3n2l1c1t' in test 'x': the LLC count (2) must be a multiple"},
      {"topology = \"1n1l2c1t \"", "invalid topology"},
      {"scheduler = \"scx_ktstr\"", "unknown scheduler 'scx_ktstr' in test 'x'"},
      {"scheduler = \"\"", "'scheduler' in test 'x' must not be empty"},
      {"sched_args = [\"-v\"]", "'sched_args' in test 'x' needs a sched_ext scheduler"},
      {"bpf_map_write = [{ map = \".bss\", var = \"crash\", value = 1 }]", "'bpf_map_write' in test 'x' needs a sched_ext"},
      {"scenario = \"stedy\"", "unknown scenario 'stedy' in test 'x'"},
      {"scenario = \"steady\"\ncgroups = [{ name = \"a\", workers = 1, work = \"spin\" }]",
       "t.toml:4: 'scenario' and 'cgroups' in test 'x' are mutually exclusive"},
      {"cgroups = []", "'cgroups' in test 'x' must list at least one cgroup"},
      {"cgroups = [{ name = \"a\", workers = 0, work = \"spin\" }]", "must be between 1 and 1024, not 0"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"slep\" }]", "unknown work 'slep' in cgroups[0] of test 'x'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", rate_hz = 100 }]",
       "t.toml:3: 'cgroups[0].rate_hz' in test 'x' applies only to work 'sleep', not 'spin'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"sleep\", period_us = 100 }]",
       "'cgroups[0].period_us' in test 'x' applies only to work 'periodic', not 'sleep'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"sleep\", rate_hz = 0 }]",
       "'cgroups[0].rate_hz' in test 'x' must be between 1 and"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"sleep\", rate_hz = 200000 }]",
       "rate_hz 200000 is above 100000 in cgroups[0] of test 'x'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"periodic\", period_us = 1000, runtime_us = 1000 }]",
       "runtime_us 1000 must be below period_us 1000 in cgroups[0] of test 'x'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"periodic\", period_us = 50 }]",
       "period_us 50 is outside 100..10000000"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"affinity\", interval_us = 10 }]",
       "interval_us 10 is outside 100..10000000"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", nice = 20 }]",
       "'cgroups[0].nice' in test 'x' must be between -20 and 19, not 20"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", policy = \"fifo\" }]",
       "unknown policy 'fifo' in cgroups[0] of test 'x'"},
      {"checks = { max_wakeup_latency_us = 0 }", "'checks.max_wakeup_latency_us' in test 'x' must be between"},
      {"cgroups = [{ name = \"a\", workers = 1 }]", "cgroups[0] of test 'x' has no 'work'"},
      {"cgroups = [{ workers = 1, work = \"spin\" }]", "cgroups[0] of test 'x' has no 'name'"},
      {"cgroups = [{ name = \"a/b\", workers = 1, work = \"spin\" }]", "invalid cgroup name 'a/b'"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", cpus = \"0-2\" }]",
       "invalid cpulist '0-2' in cgroups[0] of test 'x': CPU 2 does not exist (the topology has 2 CPUs, 0-1)"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", cpus = \"1-0\" }]", "goes backwards"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\" }, { name = \"a\", workers = 2, work = \"yield\" }]",
       "duplicate cgroup name 'a' in test 'x'"},
      {"steps = [{ after_ms = 10, action = \"add_workers\", cgroup = \"light\" }]",
       "unknown cgroup 'light' in steps[0] of test 'x'"},
      {"steps = [{ after_ms = 3000, action = \"add_workers\", cgroup = \"steady\" }]",
       "'steps[0].after_ms' in test 'x' must be between 0 and 2999, not 3000"},
      {"steps = [{ after_ms = 1, action = \"add_worker\", cgroup = \"steady\" }]", "unknown action 'add_worker'"},
      {"steps = [{ action = \"add_workers\", cgroup = \"steady\" }]", "steps[0] of test 'x' has no 'after_ms'"},
      {"steps = [{ after_ms = 1, action = \"add_workers\", cgroup = \"steady\", count = 0 }]", "not 0"},
      {"cgroups = [{ name = \"a\", workers = 1, work = \"spin\", weight = 0 }]",
       "'cgroups[0].weight' in test 'x' must be between 1 and 10000, not 0"},
      {"checks = { max_weight_error_pct = 101 }", "'checks.max_weight_error_pct' in test 'x' must be between 0 and 100"},
      {"steps = [{ after_ms = 1, action = \"cpu_offline\", cpu = 0 }]",
       "'steps[0].cpu' in test 'x' is CPU 0, which cannot go offline"},
      {"steps = [{ after_ms = 1, action = \"cpu_offline\", cpu = 2 }]",
       "CPU 2 in steps[0] of test 'x' does not exist (the topology has 2 CPUs)"},
      {"steps = [{ after_ms = 1, action = \"cpu_online\" }]", "steps[0] of test 'x' has no 'cpu'"},
      {"steps = [{ after_ms = 1, action = \"cpu_offline\", cpu = 1, cgroup = \"steady\" }]",
       "'steps[0].cgroup' in test 'x' does not apply to action 'cpu_offline'"},
      {"steps = [{ after_ms = 1, action = \"set_cpus\", cgroup = \"steady\", cpus = \"0-2\" }]",
       "invalid cpulist '0-2' in steps[0] of test 'x': CPU 2 does not exist"},
      {"steps = [{ after_ms = 1, action = \"set_cpus\", cgroup = \"steady\", count = 1, cpus = \"0\" }]",
       "'steps[0].count' in test 'x' does not apply to action 'set_cpus'"},
      {"steps = [{ after_ms = 1, action = \"set_cpus\", cgroup = \"nope\", cpus = \"0\" }]",
       "unknown cgroup 'nope' in steps[0] of test 'x'"},
      {"steps = [{ after_ms = 1, action = \"move_workers\", cgroup = \"steady\" }]",
       "steps[0] of test 'x' has no 'to'"},
      {"steps = [{ after_ms = 1, action = \"move_workers\", cgroup = \"steady\", to = \"steady\" }]",
       "'steps[0].to' in test 'x' is its own cgroup 'steady'"},
      {"scheduler = \"scx-ktstr\"\nbpf_map_write = [{ map = \".bss\", var = \"crash\" }]",
       "bpf_map_write[0] of test 'x' has no 'value'"},
      {"scheduler = \"scx-ktstr\"\nbpf_map_write = [{ map = \".bss\", var = \"crash\", value = 1, after_ms = -1 }]",
       "'bpf_map_write[0].after_ms' in test 'x' must be between 0 and 2999, not -1"},
      {"scheduler = \"scx-ktstr\"\nbpf_map_write = [{ map = \"\", var = \"crash\", value = 1 }]",
       "'bpf_map_write[0].map' in test 'x' must not be empty"},
      {"watchdog_timeout_s = 0", "'watchdog_timeout_s' in test 'x' must be between 1 and 3600, not 0"},
      {"checks = { max_gap_ms = 0 }", "'checks.max_gap_ms' in test 'x' must be between"},
      {"kernel = \"\"", "'kernel' in test 'x' must not be empty"},
  };
  for (auto& c : cases) {
    Error e = error_of("[[test]]\nname = \"x\"\n" + c.lines + "\n");
    EXPECT_EQ(e.msg.rfind("t.toml:", 0), 0u) << e.msg;
    EXPECT_NE(e.msg.find(c.fragment), std::string::npos) << c.lines << "\n  gave: " << e.msg;
  }
}

TEST(Spec, ReadsWorkTypeSettings) {
  TestSpec s = one(
      "[[test]]\nname = \"w\"\ntopology = \"1n1l4c1t\"\ncgroups = [\n"
      "  { name = \"s\", workers = 2, work = \"sleep\", rate_hz = 250, nice = -5 },\n"
      "  { name = \"p\", workers = 1, work = \"periodic\", period_us = 5000, runtime_us = 500, policy = \"batch\" },\n"
      "  { name = \"a\", workers = 1, work = \"affinity\", interval_us = 2000, policy = \"idle\" },\n"
      "  { name = \"f\", workers = 1, work = \"futex\" },\n"
      "]\nchecks = { max_wakeup_latency_us = 5000 }\n");
  ASSERT_EQ(s.cgroups.size(), 4u);
  EXPECT_EQ(s.cgroups[0].params.rate_hz, 250u);
  EXPECT_EQ(s.cgroups[0].params.nice, -5);
  EXPECT_EQ(s.cgroups[1].params.period_us, 5000u);
  EXPECT_EQ(s.cgroups[1].params.runtime_us, 500u);
  EXPECT_EQ(s.cgroups[1].params.policy, "batch");
  EXPECT_EQ(s.cgroups[2].params.interval_us, 2000u);
  EXPECT_EQ(s.cgroups[2].params.policy, "idle");
  EXPECT_EQ(s.cgroups[3].params, WorkParams{});
  EXPECT_EQ(s.checks.max_wakeup_latency_us, 5000u);
  // Written back and read again, unchanged; defaults stay unwritten.
  std::string text = spec_to_toml(s);
  EXPECT_NE(text.find("rate_hz = 250, nice = -5"), std::string::npos) << text;
  EXPECT_EQ(text.find("interval_us = 0"), std::string::npos) << text;
  auto back = parse_spec_text(text, "w.toml");
  ASSERT_TRUE(back.has_value()) << back.error().msg << "\n" << text;
  EXPECT_EQ(unsourced(back->front()), unsourced(s));
  nlohmann::json j = spec_to_json(s);
  EXPECT_EQ(j["cgroups"][1]["period_us"], 5000);
  EXPECT_EQ(j["checks"]["max_wakeup_latency_us"], 5000);
}

TEST(Spec, WorkTypeSettingHints) {
  Error e = error_of("[[test]]\nname = \"x\"\ncgroups = [{ name = \"a\", workers = 1, work = \"spin\", rate_hz = 9 }]\n");
  EXPECT_EQ(e.hint, "remove it, or set work = \"sleep\"");
  e = error_of("[[test]]\nname = \"x\"\ncgroups = [{ name = \"a\", workers = 1, work = \"spin\", policy = \"batc\" }]\n");
  EXPECT_EQ(e.hint, "did you mean 'batch'?");
  e = error_of("[[test]]\nname = \"x\"\ncgroups = [{ name = \"a\", workers = 1, work = \"slep\" }]\n");
  EXPECT_EQ(e.hint, "did you mean 'sleep'?");
}

TEST(Spec, ValueHintsSuggestCloseNames) {
  EXPECT_EQ(error_of("[[test]]\nname = \"x\"\nscheduler = \"scx_ktstr\"\n").hint, "did you mean 'scx-ktstr'?");
  EXPECT_EQ(error_of("[[test]]\nname = \"x\"\nscenario = \"stedy\"\n").hint, "did you mean 'steady'?");
  Error e = error_of("[[test]]\nname = \"x\"\nscenario = \"zzz\"\n");
  EXPECT_EQ(e.hint, "'ktstr test --list-scenarios' lists the canned scenarios");
  e = error_of("[[test]]\nname = \"x\"\nscheduler = \"scx_lavd\"\n");
  EXPECT_NE(e.hint.find("a path to a scheduler binary, e.g. './scx_lavd'"), std::string::npos) << e.hint;
}

TEST(Spec, StepsMayTargetACannedScenariosCgroup) {
  TestSpec s = one("[[test]]\nname = \"x\"\nscenario = \"custom_crash_light\"\n"
                   "steps = [{ after_ms = 10, action = \"add_workers\", cgroup = \"light\", count = 3 }]\n");
  ASSERT_EQ(s.steps.size(), 1u);
  EXPECT_EQ(s.steps[0], (StepSpec{10, "add_workers", "light", 3}));
  Error e = error_of("[[test]]\nname = \"x\"\nscenario = \"custom_crash_light\"\n"
                     "steps = [{ after_ms = 10, action = \"add_workers\", cgroup = \"ligth\" }]\n");
  EXPECT_EQ(e.hint, "did you mean 'light'?");
}

TEST(Spec, NameIsRequiredAndChecked) {
  Error e = error_of("[[test]]\nscenario = \"steady\"\n");
  EXPECT_EQ(e.msg, "t.toml:1: test #1 has no 'name'");
  e = error_of("[[test]]\nname = \"a\"\n\n[[test]]\nname = \"has space\"\n");
  EXPECT_EQ(e.msg, "t.toml:5: invalid test name 'has space'");
  e = error_of("[[test]]\nname = \"\"\n");
  EXPECT_EQ(e.msg, "t.toml:2: 'name' in test #1 must not be empty");
}

TEST(Spec, DuplicateNamesAreRejected) {
  Error e = error_of("[[test]]\nname = \"a\"\n\n[[test]]\nname = \"b\"\n\n[[test]]\nname = \"a\"\n");
  EXPECT_EQ(e.msg, "t.toml:7: duplicate test name 'a' (first defined at line 1)");
}

TEST(Spec, FileShapeErrors) {
  EXPECT_EQ(error_of("").msg, "no tests in spec 't.toml'");
  EXPECT_EQ(error_of("# only a comment\n").msg, "no tests in spec 't.toml'");
  EXPECT_EQ(error_of("[test]\nname = \"x\"\n").msg, "t.toml:1: 'test' must be an array of tables");
}

TEST(Spec, InvalidTomlGivesFileLineColumn) {
  const std::string path = kSpecDir + "invalid.toml";
  auto specs = load_spec_file(path);
  ASSERT_FALSE(specs.has_value());
  const std::string& msg = specs.error().msg;
  const std::string prefix = path + ":3:";
  ASSERT_EQ(msg.rfind(prefix, 0), 0u) << msg;
  // then a column number and toml++'s description
  size_t col_end = msg.find(':', prefix.size());
  ASSERT_NE(col_end, std::string::npos) << msg;
  EXPECT_GT(std::stoul(msg.substr(prefix.size(), col_end - prefix.size())), 10u) << msg;
  EXPECT_NE(msg.find(": invalid TOML: "), std::string::npos) << msg;
  EXPECT_GT(msg.size(), msg.find("invalid TOML: ") + 14) << "toml++'s description is missing: " << msg;
}

TEST(Spec, MissingFile) {
  auto specs = load_spec_file("/nonexistent-ktstr/x.toml");
  ASSERT_FALSE(specs.has_value());
  EXPECT_EQ(specs.error().msg, "cannot read spec '/nonexistent-ktstr/x.toml': No such file or directory");
}

TEST(Spec, MatchersRequireExpectErr) {
  Error e = error_of("[[test]]\nname = \"m\"\nscheduler = \"scx-ktstr\"\n"
                     "expect_scx_bpf_error_contains = \"crash\"\n", "pins/m.toml");
  EXPECT_EQ(e.msg, "pins/m.toml:4: 'expect_scx_bpf_error_contains' in test 'm' requires expect_err = true");
  EXPECT_NE(e.hint.find("expect_err = true"), std::string::npos);
  e = error_of("[[test]]\nname = \"m\"\nexpect_err = false\nexpect_scx_bpf_error_matches = 'a+'\n");
  EXPECT_EQ(e.msg, "t.toml:4: 'expect_scx_bpf_error_matches' in test 'm' requires expect_err = true");
  // With expect_err both are fine, and an empty matcher never is.
  TestSpec s = one("[[test]]\nname = \"m\"\nexpect_err = true\nexpect_scx_bpf_error_matches = 'a+'\n");
  EXPECT_EQ(s.expect_scx_bpf_error_matches, "a+");
  e = error_of("[[test]]\nname = \"m\"\nexpect_err = true\n\nexpect_scx_bpf_error_contains = \"\"\n");
  EXPECT_EQ(e.msg, "t.toml:5: 'expect_scx_bpf_error_contains' in test 'm' must not be empty");
}

TEST(Spec, ValidateMatchersOnSpecsBuiltInCode) {
  TestSpec s;
  s.name = "pinned";
  EXPECT_TRUE(validate_matchers(s).has_value());
  s.expect_scx_bpf_error_matches = "x";
  auto st = validate_matchers(s);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().msg, "'expect_scx_bpf_error_matches' in test 'pinned' requires expect_err = true");
  s.source_file = "a.toml";
  s.source_line = 12;
  EXPECT_EQ(validate_matchers(s).error().msg,
            "a.toml:12: 'expect_scx_bpf_error_matches' in test 'pinned' requires expect_err = true");
  s.expect_err = true;
  EXPECT_TRUE(validate_matchers(s).has_value());
  s.expect_scx_bpf_error_contains = "";
  EXPECT_NE(validate_matchers(s).error().msg.find("must not be empty"), std::string::npos);
}

TEST(Spec, EveryFieldRoundTripsThroughToml) {
  auto specs = load_spec_file(kSpecDir + "all_fields.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  std::string text = specs_to_toml(*specs);
  auto again = parse_spec_text(text, "written.toml");
  ASSERT_TRUE(again.has_value()) << again.error().msg << "\n" << text;
  ASSERT_EQ(again->size(), specs->size());
  for (size_t i = 0; i < specs->size(); ++i) EXPECT_EQ(unsourced((*again)[i]), unsourced((*specs)[i])) << text;
  EXPECT_EQ(specs_to_toml(*again), text);  // a fixed point
  // The regex was written as a literal string, as typed in the file.
  EXPECT_NE(text.find(R"(expect_scx_bpf_error_matches = '^runnable task stall \(\w+\[\d+\]')"), std::string::npos)
      << text;
}

TEST(Spec, AwkwardStringsAndNumbersRoundTrip) {
  TestSpec s;
  s.name = "awkward";
  s.scheduler = "/opt/sched \"quoted\"/scx_x";
  s.sched_args = {"it's", "back\\slash", "new\nline", "tab\there", "ünïcode"};
  s.expect_err = true;
  s.expect_scx_bpf_error_matches = R"(can't \d+)";        // a quote: no literal string
  s.expect_scx_bpf_error_contains = "line1\nline2\\";   // newline and backslash
  s.kernel = "v7.3";
  for (double d : {0.001, 2.5, 1.0 / 3.0, 3600.0, 7.0, 0.1 + 0.2}) {
    s.duration_s = d;
    auto back = parse_spec_text(spec_to_toml(s), "rt.toml");
    ASSERT_TRUE(back.has_value()) << back.error().msg << "\n" << spec_to_toml(s);
    EXPECT_EQ(unsourced(back->front()), s) << spec_to_toml(s);
  }
}

TEST(Spec, WritesOnlyNonDefaultOptionalKeys) {
  TestSpec s;
  s.name = "plain";
  EXPECT_EQ(spec_to_toml(s),
            "[[test]]\nname = \"plain\"\nscheduler = \"eevdf\"\ntopology = \"1n1l2c1t\"\n"
            "scenario = \"steady\"\nduration_s = 3\n");
}

TEST(Spec, JsonHasEveryField) {
  auto specs = load_spec_file(kSpecDir + "all_fields.toml");
  ASSERT_TRUE(specs.has_value()) << specs.error().msg;
  nlohmann::json j = spec_to_json(specs->front());
  EXPECT_EQ(j["name"], "everything");
  EXPECT_EQ(j["topology"], "2n4l2c2t");
  EXPECT_EQ(j["cpus"], 16);
  EXPECT_EQ(j["duration_s"], 2.5);
  EXPECT_TRUE(j["scenario"].is_null());
  EXPECT_EQ(j["cgroups"].size(), 3u);
  EXPECT_EQ(j["cgroups"][0]["cpus"], "0-3,8");
  EXPECT_EQ(j["steps"][0]["action"], "remove_workers");
  EXPECT_EQ(j["bpf_map_write"][1]["value"], 9007199254740993);
  EXPECT_EQ(j["expect_scx_bpf_error_contains"], "it's \"quoted\"");
  EXPECT_EQ(j["auto_repro"], false);
  EXPECT_EQ(j["watchdog_timeout_s"], 10);
  EXPECT_EQ(j["checks"]["max_gap_ms"], 250);
  EXPECT_EQ(j["source"]["line"], 2);
  nlohmann::json d = spec_to_json((*specs)[1]);
  EXPECT_EQ(d["scenario"], "steady");
  EXPECT_TRUE(d["expect_scx_bpf_error_matches"].is_null());
  EXPECT_TRUE(d["kernel"].is_null());
  EXPECT_TRUE(d["watchdog_timeout_s"].is_null());
}

TEST(Spec, SuggestCloseListsTies) {
  std::vector<std::string> words = {"steady", "stead", "mixed"};
  EXPECT_EQ(suggest_close("steadx", words), "did you mean one of 'steady', 'stead'?");
  EXPECT_EQ(suggest_close("mixde", words), "did you mean 'mixed'?");
  EXPECT_EQ(suggest_close("completely-different", words), "");
}

TEST(Spec, ReadsEveryStepActionAndWritesThemBack) {
  TestSpec s = one(
      "[[test]]\nname = \"st\"\ntopology = \"1n1l4c1t\"\ncgroups = [\n"
      "  { name = \"a\", workers = 2, work = \"spin\", cpus = \"0-1\", weight = 300 },\n"
      "  { name = \"b\", workers = 1, work = \"spin\" },\n"
      "]\nsteps = [\n"
      "  { after_ms = 100, action = \"move_workers\", cgroup = \"a\", count = 1, to = \"b\" },\n"
      "  { after_ms = 200, action = \"set_cpus\", cgroup = \"b\", cpus = \"2-3\" },\n"
      "  { after_ms = 300, action = \"cpu_offline\", cpu = 3 },\n"
      "  { after_ms = 400, action = \"cpu_online\", cpu = 3 },\n"
      "]\nchecks = { max_weight_error_pct = 15, fail_on_stall = true }\n");
  ASSERT_EQ(s.steps.size(), 4u);
  EXPECT_EQ(s.cgroups[0].weight, 300u);
  EXPECT_EQ(s.cgroups[1].weight, 100u);
  EXPECT_EQ(s.steps[0].to, "b");
  EXPECT_EQ(s.steps[1].cpus, "2-3");
  EXPECT_EQ(s.steps[2].cpu, 3);
  EXPECT_TRUE(s.steps[3].cgroup.empty());
  EXPECT_EQ(s.checks.max_weight_error_pct, 15u);
  EXPECT_TRUE(s.checks.fail_on_stall);
  std::string text = spec_to_toml(s);
  EXPECT_NE(text.find("{ after_ms = 300, action = \"cpu_offline\", cpu = 3 }"), std::string::npos) << text;
  EXPECT_NE(text.find("weight = 300"), std::string::npos) << text;
  auto back = parse_spec_text(text, "st.toml");
  ASSERT_TRUE(back.has_value()) << back.error().msg << "\n" << text;
  EXPECT_EQ(unsourced(back->front()), unsourced(s));
  nlohmann::json j = spec_to_json(s);
  EXPECT_EQ(j["steps"][1], nlohmann::json::parse(R"({"after_ms":200,"action":"set_cpus","cgroup":"b","cpus":"2-3"})"));
  EXPECT_EQ(j["cgroups"][0]["weight"], 300);
  EXPECT_EQ(j["checks"]["fail_on_stall"], true);
}

TEST(Spec, AStepErrorNamesTheLineAndHints) {
  Error e = error_of("[[test]]\nname = \"x\"\nsteps = [\n  { after_ms = 1, action = \"set_cpus\", cgroup = \"steady\" },\n]\n");
  EXPECT_EQ(e.msg, "t.toml:4: steps[0] of test 'x' has no 'cpus'") << e.msg;
  Error k = error_of("[[test]]\nname = \"x\"\nsteps = [\n  { after_ms = 2, action = \"cpu_online\", cpu = 1, cpus = \"1\" },\n]\n");
  EXPECT_EQ(k.msg.rfind("t.toml:4: ", 0), 0u) << k.msg;
  EXPECT_NE(k.hint.find("'cpus' goes with action 'set_cpus'; this action takes 'cpu'"), std::string::npos) << k.hint;
}
