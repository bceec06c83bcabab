// core/checks: each check judged on recorded worker stats, topologies and
// monitor samples -- it holds on a healthy run, fails on one that violates
// it, and its message names the cgroup or worker and the measured number.
#include "core/checks.hpp"
#include "core/spec.hpp"

#include <gtest/gtest.h>

namespace ktstr {
namespace {

WorkerStats worker(const std::string& cg, unsigned index, uint64_t iterations, std::vector<int> cpus = {0},
                   uint64_t max_gap_ns = 2'000'000) {
  WorkerStats w;
  w.cgroup = cg;
  w.index = index;
  w.work = "spin";
  w.iterations = iterations;
  w.wall_ns = 2'000'000'000;
  w.cpu_time_ns = 1'900'000'000;
  w.max_gap_ns = max_gap_ns;
  w.cpus_used = std::move(cpus);
  return w;
}

std::optional<CheckFailure> first(std::vector<CheckFailure> fs) {
  if (fs.empty()) return std::nullopt;
  return fs.front();
}

std::vector<CheckFailure> judge_all(const Checks& ch, const std::vector<WorkerStats>& ws,
                                    const ScenarioPlan* plan = nullptr, const GuestTopology* topo = nullptr,
                                    const std::vector<MonitorSample>* mon = nullptr) {
  CheckInputs in;
  in.workers = &ws;
  in.plan = plan;
  in.topology = topo;
  in.monitor = mon;
  in.duration_s = 3;
  return run_checks(ch, in);
}

// The first failure (each test below breaks one check at a time).
std::optional<CheckFailure> judge(const Checks& ch, const std::vector<WorkerStats>& ws, const ScenarioPlan* plan = nullptr,
                                  const GuestTopology* topo = nullptr, const std::vector<MonitorSample>* mon = nullptr) {
  return first(judge_all(ch, ws, plan, topo, mon));
}

TEST(Checks, NoneAskedNoneFail) {
  EXPECT_FALSE(judge(Checks{}, {worker("a", 0, 1), worker("a", 1, 1'000'000, {0, 1, 2, 3}, 900'000'000)}));
}

TEST(Checks, NotStarvedIsAlwaysJudgedAndNamesTheWorker) {
  // Asked or not: a worker with no iteration never ran in the test's window.
  EXPECT_FALSE(judge(Checks{}, {worker("a", 0, 1), worker("a", 1, 1)}));
  auto f = judge(Checks{}, {worker("a", 0, 5000), worker("hogged", 1, 0)});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "not_starved");
  EXPECT_EQ(f->message, "worker hogged/1 never ran (starved): 0 iterations in the 3s test");
  // Several: the first is named, the count says how many.
  f = judge(Checks{}, {worker("a", 0, 0), worker("a", 1, 10), worker("b", 0, 0)});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "worker a/0 never ran (starved): 0 iterations in the 3s test; 2 of 3 workers never ran");
}

TEST(Checks, EveryFailingCheckIsReportedInOrder) {
  Checks ch;
  ch.max_gap_ms = 1000;
  ch.max_spread_pct = 50;
  ch.numa_local = true;
  ch.max_wakeup_latency_us = 2000;
  GuestTopology topo;
  topo.cpus = 2;
  topo.numa_nodes = {"0", "1"};
  // hogged/0 kept CPU 1; hogged/1 waited 2.9 s; the sleeper woke 30 ms late.
  auto hog = worker("hogged", 0, 30000, {1});
  auto waiter = worker("hogged", 1, 3000, {1}, 2'900'000'000);
  auto sleeper = worker("sleepers", 0, 100, {0});
  sleeper.counters = {{"wake_latency_p99_ns", 30'000'000}, {"wake_latency_max_ns", 41'000'000}};
  auto fs = judge_all(ch, {hog, waiter, sleeper}, nullptr, &topo);
  ASSERT_EQ(fs.size(), 3u);
  EXPECT_EQ(fs[0].check, "max_gap_ms");
  EXPECT_EQ(fs[0].message, "worker hogged/1 waited 2900.0ms off-CPU, more than max_gap_ms = 1000");
  EXPECT_EQ(fs[1].check, "max_spread_pct");
  EXPECT_NE(fs[1].message.find("cgroup 'hogged': workers progressed 163.6% apart"), std::string::npos)
      << fs[1].message;
  EXPECT_EQ(fs[2].check, "max_wakeup_latency_us");
  EXPECT_EQ(fs[2].message,
            "worker sleepers/0 woke 30000us late at p99 (max 41000us), more than max_wakeup_latency_us = 2000");
  // numa_local held: each worker stayed on one node.
}

TEST(Checks, MaxGapNamesTheWorkerAndTheGap) {
  Checks ch;
  ch.max_gap_ms = 50;
  EXPECT_FALSE(judge(ch, {worker("a", 0, 100, {0}, 49'000'000)}));
  auto f = judge(ch, {worker("a", 0, 100), worker("a", 1, 100, {0}, 120'500'000)});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "max_gap_ms");
  EXPECT_EQ(f->message, "worker a/1 waited 120.5ms off-CPU, more than max_gap_ms = 50");
}

TEST(Checks, MaxSpreadIsPerCgroup) {
  Checks ch;
  ch.max_spread_pct = 20;
  // Cgroup a: 1000 and 1100 it/s (9.5 % apart); b alone; c: 1000 and 1600 (46.2 %).
  std::vector<WorkerStats> fair = {worker("a", 0, 2000), worker("a", 1, 2200), worker("b", 0, 10)};
  EXPECT_FALSE(judge(ch, fair));
  auto unfair = fair;
  unfair.push_back(worker("c", 0, 2000));
  unfair.push_back(worker("c", 1, 3200));
  auto f = judge(ch, unfair);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "max_spread_pct");
  EXPECT_NE(f->message.find("cgroup 'c'"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("46.2% apart"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("slowest c/0 at 1000 it/s"), std::string::npos) << f->message;
  EXPECT_NE(f->message.find("fastest c/1 at 1600 it/s"), std::string::npos) << f->message;
}

TEST(Checks, IsolationAgainstTheCgroupsCpuset) {
  Checks ch;
  ch.isolation = true;
  ScenarioPlan plan;
  plan.cgroups = {{"pinned", 2, "spin", "0-1"}, {"free", 1, "spin", ""}};
  GuestTopology topo;
  topo.cpus = 4;
  std::vector<WorkerStats> inside = {worker("pinned", 0, 10, {0, 1}), worker("pinned", 1, 10, {1}),
                                     worker("free", 0, 10, {0, 3})};
  EXPECT_FALSE(judge(ch, inside, &plan, &topo));
  auto escaped = inside;
  escaped[1].cpus_used = {1, 3};
  auto f = judge(ch, escaped, &plan, &topo);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "worker pinned/1 ran on CPU 3, outside cgroup 'pinned''s cpuset 0-1 (it used CPUs 1,3)");
}

TEST(Checks, NumaLocalUsesTheGuestsNodes) {
  Checks ch;
  ch.numa_local = true;
  GuestTopology topo;
  topo.cpus = 4;
  topo.numa_nodes = {"0-1", "2-3"};
  EXPECT_FALSE(judge(ch, {worker("a", 0, 10, {0, 1}), worker("a", 1, 10, {2, 3})}, nullptr, &topo));
  auto f = judge(ch, {worker("a", 0, 10, {0, 1}), worker("a", 1, 10, {1, 2})}, nullptr, &topo);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "worker a/1 ran on CPUs 1,2, in NUMA nodes 0 and 1");
}

TEST(Checks, MaxImbalanceFromMonitorSamplesWhileTheWorkloadRuns) {
  Checks ch;
  ch.max_imbalance = 2;
  auto sample = [](double t, std::vector<unsigned> nr) {
    MonitorSample s;
    s.t_s = t;
    s.nr_running = std::move(nr);
    return s;
  };
  // Before the workload (t < 0) and after it (t > duration) do not count.
  std::vector<MonitorSample> ok = {sample(-1, {6, 0, 0, 0}), sample(0.5, {2, 1, 1, 0}), sample(4, {0, 5, 0, 0})};
  EXPECT_FALSE(judge(ch, {worker("a", 0, 10)}, nullptr, nullptr, &ok));
  auto bad = ok;
  bad.push_back(sample(1.25, {1, 4, 0, 1}));
  auto f = judge(ch, {worker("a", 0, 10)}, nullptr, nullptr, &bad);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "CPU run queues 4 tasks apart at +1.25s (CPU 1 had 4, CPU 2 had 0), more than max_imbalance = 2");
  EXPECT_DOUBLE_EQ(f->t_s, 1.25);
  // No sample inside the workload: the check cannot hold by default.
  std::vector<MonitorSample> outside = {sample(-1, {0, 0}), sample(9, {0, 0})};
  auto none = judge(ch, {worker("a", 0, 10)}, nullptr, nullptr, &outside);
  ASSERT_TRUE(none);
  EXPECT_NE(none->message.find("cannot be judged"), std::string::npos) << none->message;
}

TEST(Checks, MaxWakeupLatencyJudgesTheP99OfEachSleeper) {
  Checks ch;
  ch.max_wakeup_latency_us = 500;
  WorkerStats calm = worker("sleepers", 0, 1000), late = worker("sleepers", 1, 1000), hog = worker("hogs", 0, 5);
  calm.counters = {{"wakeups", 1000}, {"wake_latency_p50_ns", 40'000}, {"wake_latency_p99_ns", 480'000},
                   {"wake_latency_max_ns", 9'000'000}};
  late.counters = {{"wakeups", 1000}, {"wake_latency_p50_ns", 60'000}, {"wake_latency_p99_ns", 2'300'000},
                   {"wake_latency_max_ns", 7'100'000}};
  // A maximum above the limit is fine while the p99 holds; spinners are not judged.
  EXPECT_FALSE(judge(ch, {calm, hog}));
  auto f = judge(ch, {calm, late, hog});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "max_wakeup_latency_us");
  EXPECT_EQ(f->message, "worker sleepers/1 woke 2300us late at p99 (max 7100us), more than max_wakeup_latency_us = 500");
  // Asked of a run where nobody measures wakeups: not judged silently.
  f = judge(ch, {hog});
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("cannot be judged"), std::string::npos) << f->message;
}

TEST(Checks, TheProjectSpecsShowEveryCheck) {
  // man ktstr-test points at tests/ktstr/ for an example of each check.
  auto specs = load_spec_paths({std::string(KTSTR_SOURCE_DIR) + "/tests/ktstr"});
  ASSERT_TRUE(specs) << specs.error().msg;
  Checks seen;
  for (auto& spec : *specs) {
    const Checks& c = spec.checks;
    seen.not_starved = seen.not_starved || c.not_starved;
    seen.isolation = seen.isolation || c.isolation;
    seen.numa_local = seen.numa_local || c.numa_local;
    seen.fail_on_stall = seen.fail_on_stall || c.fail_on_stall;
    for (auto field : {&Checks::max_gap_ms, &Checks::max_spread_pct, &Checks::max_imbalance,
                       &Checks::max_wakeup_latency_us, &Checks::max_weight_error_pct})
      if (c.*field) seen.*field = c.*field;
  }
  EXPECT_TRUE(seen.not_starved);
  EXPECT_TRUE(seen.isolation);
  EXPECT_TRUE(seen.numa_local);
  EXPECT_TRUE(seen.fail_on_stall);
  EXPECT_TRUE(seen.max_gap_ms);
  EXPECT_TRUE(seen.max_spread_pct);
  EXPECT_TRUE(seen.max_imbalance);
  EXPECT_TRUE(seen.max_wakeup_latency_us);
  EXPECT_TRUE(seen.max_weight_error_pct);
}

TEST(Checks, SpecParsesAndRejectsTheNewKeys) {
  auto specs = parse_spec_text(
      "[[test]]\nname = \"t\"\nchecks = { max_spread_pct = 30, isolation = true, numa_local = true, max_imbalance = 3 }\n",
      "t.toml");
  ASSERT_TRUE(specs) << specs.error().msg;
  const Checks& c = specs->front().checks;
  EXPECT_EQ(c.max_spread_pct, 30u);
  EXPECT_TRUE(c.isolation);
  EXPECT_TRUE(c.numa_local);
  EXPECT_EQ(c.max_imbalance, 3u);
  auto bad = parse_spec_text("[[test]]\nname = \"t\"\nchecks = { max_spread_pct = 0 }\n", "t.toml");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("max_spread_pct"), std::string::npos) << bad.error().msg;
  auto typo = parse_spec_text("[[test]]\nname = \"t\"\nchecks = { isolaton = true }\n", "t.toml");
  ASSERT_FALSE(typo);
  EXPECT_NE(typo.error().hint.find("isolation"), std::string::npos) << typo.error().hint;
}

ScenarioPlan two_cgroups(unsigned weight_a, unsigned weight_b, std::string cpus_a = "", std::string cpus_b = "") {
  ScenarioPlan plan;
  plan.cgroups = {CgroupPlan{"a", 1, "spin", cpus_a, {}, weight_a}, CgroupPlan{"b", 1, "spin", cpus_b, {}, weight_b}};
  return plan;
}

TEST(Checks, MaxWeightErrorComparesCpuSharesWithWeightShares) {
  ScenarioPlan plan = two_cgroups(300, 100);
  auto a = worker("a", 0, 100), b = worker("b", 0, 100);
  Checks ch;
  ch.max_weight_error_pct = 10;
  // 1.5 s against 0.5 s: 75% and 25%, exactly the weights.
  a.cpu_time_ns = 1'500'000'000;
  b.cpu_time_ns = 500'000'000;
  EXPECT_FALSE(judge(ch, {a, b}, &plan));
  // An even split: a got 50%, its weight asks for 75%.
  a.cpu_time_ns = b.cpu_time_ns = 1'000'000'000;
  auto f = judge(ch, {a, b}, &plan);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "max_weight_error_pct");
  EXPECT_EQ(f->message,
            "cgroup 'a' got 50.0% of the CPU time (1.00s of 2.00s), its weight 300 asks for 75.0% (of 400): "
            "25.0 points off, more than max_weight_error_pct = 10");
  ch.max_weight_error_pct = 30;  // loose enough
  EXPECT_FALSE(judge(ch, {a, b}, &plan));
  // Several workers of a cgroup add up.
  ch.max_weight_error_pct = 1;
  auto a2 = a;
  a2.index = 1;
  a.cpu_time_ns = a2.cpu_time_ns = 750'000'000;
  b.cpu_time_ns = 500'000'000;
  EXPECT_FALSE(judge(ch, {a, a2, b}, &plan));
  a.cpu_time_ns = a2.cpu_time_ns = b.cpu_time_ns = 0;
  f = judge(ch, {a, a2, b}, &plan);
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("cannot be judged"), std::string::npos) << f->message;
}

MonitorSample sample(double t, std::vector<unsigned> running, std::vector<uint64_t> switches) {
  MonitorSample s;
  s.t_s = t;
  s.nr_running = std::move(running);
  s.nr_switches = std::move(switches);
  return s;
}

TEST(Checks, FailOnStallNeedsWaitingTasksAndNoSwitchPastTheThreshold) {
  Checks ch;
  ch.fail_on_stall = true;
  // CPU 1 runs one spinning task and never switches: nothing waits, no stall.
  std::vector<MonitorSample> busy;
  for (unsigned i = 0; i <= 12; ++i) busy.push_back(sample(0.25 * i, {2, 1}, {100u + 10u * i, 50}));
  EXPECT_FALSE(judge(ch, {worker("a", 0, 1)}, nullptr, nullptr, &busy));
  // CPU 0 keeps 3 tasks queued with nr_switches stuck from +0.50 s on.
  std::vector<MonitorSample> stuck;
  for (unsigned i = 0; i <= 12; ++i)
    stuck.push_back(sample(0.25 * i, {i >= 2 ? 3u : 1u, 1}, {i >= 2 ? 500u : 100u + i, 50}));
  auto f = judge(ch, {worker("a", 0, 1)}, nullptr, nullptr, &stuck);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "fail_on_stall");
  EXPECT_EQ(f->message,
            "CPU 0 stalled: 3 runnable tasks and no context switch for 2.25s (+0.50s to +2.75s, nr_switches "
            "stayed 500), more than the 2s stall threshold");
  EXPECT_DOUBLE_EQ(f->t_s, 0.5);
  // A switch in between restarts the clock: 1.5 s and 1.0 s stretches pass.
  for (size_t i = 8; i < stuck.size(); ++i) stuck[i].nr_switches[0] = 501;
  EXPECT_FALSE(judge(ch, {worker("a", 0, 1)}, nullptr, nullptr, &stuck));
  // Samples without nr_switches (an older agent, or no monitor): cannot be judged.
  std::vector<MonitorSample> none = {sample(0.5, {1, 1}, {}), sample(1, {1, 1}, {})};
  f = judge(ch, {worker("a", 0, 1)}, nullptr, nullptr, &none);
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("cannot be judged"), std::string::npos) << f->message;
}

StepEvent set_cpus_step(const std::string& cg, const std::string& cpus, bool ok = true) {
  StepEvent e;
  e.action = "set_cpus";
  e.cgroup = cg;
  e.cpus = cpus;
  e.ok = ok;
  return e;
}

std::optional<CheckFailure> judge_steps(const Checks& ch, const std::vector<WorkerStats>& ws, const ScenarioPlan& plan,
                                        const std::vector<StepEvent>& steps) {
  CheckInputs in;
  in.workers = &ws;
  in.plan = &plan;
  in.steps = &steps;
  return first(run_checks(ch, in));
}

TEST(Checks, IsolationFollowsSetCpusAndMoves) {
  Checks ch;
  ch.isolation = true;
  ScenarioPlan plan = two_cgroups(100, 100, "0-1", "2-3");
  // a narrowed to CPU 1: before it may use 0-1, after only 1.
  auto w = worker("a", 0, 10, {0, 1});
  w.cpus_changed = true;
  w.cpus_since_change = {1};
  std::vector<StepEvent> steps = {set_cpus_step("a", "1")};
  EXPECT_FALSE(judge_steps(ch, {w}, plan, steps));
  w.cpus_since_change = {0, 1};
  auto f = judge_steps(ch, {w}, plan, steps);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message,
            "worker a/0 ran on CPU 0 after its cpuset changed to 1 (cgroup 'a'), outside it (CPUs since the change: 0,1)");
  // A set_cpus that failed does not count: the cpuset stayed 0-1.
  EXPECT_FALSE(judge_steps(ch, {w}, plan, {set_cpus_step("a", "1", false)}));
  // Widened to 0-2: CPU 2 is fine over the run, CPU 3 never was.
  auto wide = worker("a", 0, 10, {0, 2});
  wide.cpus_changed = true;
  wide.cpus_since_change = {2};
  EXPECT_FALSE(judge_steps(ch, {wide}, plan, {set_cpus_step("a", "0-2")}));
  wide.cpus_used = {0, 3};
  f = judge_steps(ch, {wide}, plan, {set_cpus_step("a", "0-2")});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "worker a/0 ran on CPU 3, outside every cpuset its cgroup had during the run (it used CPUs 0,3)");
  // Moved from a (0-1) into b (2-3): judged against b after the move.
  auto moved = worker("a", 0, 10, {0, 2, 3});
  moved.moved_to = "b";
  moved.cpus_changed = true;
  moved.cpus_since_change = {2, 3};
  EXPECT_FALSE(judge_steps(ch, {moved}, plan, {}));
  moved.cpus_since_change = {0, 2};
  f = judge_steps(ch, {moved}, plan, {});
  ASSERT_TRUE(f);
  EXPECT_NE(f->message.find("ran on CPU 0 after its cpuset changed to 2-3 (cgroup 'b')"), std::string::npos)
      << f->message;
}

TEST(Checks, IsolationSaysWhenHotplugEmptiedTheCpuset) {
  Checks ch;
  ch.isolation = true;
  ScenarioPlan plan = two_cgroups(100, 100, "1", "0");
  StepEvent off;
  off.action = "cpu_offline";
  off.cpu = 1;
  off.ok = true;
  off.t_s = 0.71;
  // Its only CPU went offline: the kernel ran it on CPU 0, outside its cpuset.
  auto fenced = worker("a", 0, 10, {0, 1});
  auto f = judge_steps(ch, {fenced}, plan, {off});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->check, "isolation");
  EXPECT_EQ(f->message,
            "worker a/0 ran on CPU 0, outside cgroup 'a''s cpuset 1 (it used CPUs 0,1): cpu_offline took CPU 1 "
            "offline by +0.71s, leaving cpuset 1 no online CPU, so the kernel ran the cgroup on its parent's CPUs");
  // A refused hotplug explains nothing: the plain message.
  off.ok = false;
  f = judge_steps(ch, {fenced}, plan, {off});
  ASSERT_TRUE(f);
  EXPECT_EQ(f->message, "worker a/0 ran on CPU 0, outside cgroup 'a''s cpuset 1 (it used CPUs 0,1)");
}

}  // namespace
}  // namespace ktstr
