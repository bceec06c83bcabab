// The host's view of a run: frames from the guest in any chunking and with
// garbage, turned into a RunResult and judged by evaluate().
#include "run/collector.hpp"
#include "run/pipeline.hpp"
#include "core/report.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

namespace ktstr::runner {
namespace {

TestSpec spec_for(const std::string& topo) {
  TestSpec s;
  s.name = "t";
  s.topology = *Topology::parse(topo);
  s.scenario = "steady";
  s.duration_s = 2;
  return s;
}

// A complete, healthy stream for `spec` as the agent would send it.
std::string healthy_stream(const TestSpec& spec) {
  std::string out;
  proto::HelloMsg hello;
  hello.agent_version = "0.1.0";
  out += proto::encode_message(hello);
  proto::TopologyMsg topo;
  topo.cpus = spec.topology.cpus();
  topo.llc_groups = spec.topology.expected_llc_groups();
  topo.numa_nodes = spec.topology.expected_node_cpus();
  topo.smt_groups = spec.topology.expected_smt_groups();
  out += proto::encode_message(topo);
  proto::StageMsg st;
  st.stage = proto::stage::kWorkersStarted;
  st.t_ms = 1000;
  out += proto::encode_message(st);
  for (unsigned i = 0; i < spec.topology.cpus(); ++i) {
    proto::WorkerMsg w;
    w.cgroup = "steady";
    w.index = i;
    w.iterations = 1000 + i;
    w.cpu_time_ns = 1'900'000'000;
    w.wall_ns = 2'000'000'000;
    w.max_gap_ns = 4'000'000;
    w.cpus_used = {i};
    out += proto::encode_message(w);
  }
  st.stage = proto::stage::kWorkersDone;
  st.t_ms = 3000;
  out += proto::encode_message(st);
  proto::DoneMsg done;
  done.ok = true;
  out += proto::encode_message(done);
  return out;
}

VmOutcome powered_off() {
  VmOutcome vm;
  vm.end = VmEnd::kPoweredOff;
  vm.qemu_status = 0;
  vm.wall_time = std::chrono::milliseconds(6000);
  vm.boot_time = std::chrono::milliseconds(3000);
  return vm;
}

TEST(Collector, HealthyStreamPassesInAnyChunking) {
  auto spec = spec_for("1n2l2c1t");
  std::string stream = healthy_stream(spec);
  for (size_t chunk : {1ul, 3ul, 17ul, stream.size()}) {
    ResultCollector c;
    for (size_t i = 0; i < stream.size(); i += chunk) c.feed(stream.data() + i, std::min(chunk, stream.size() - i));
    c.finish();
    EXPECT_TRUE(c.done());
    ASSERT_EQ(c.workers().size(), 4u);
    RunResult r;
    evaluate(r, spec, c, powered_off());
    EXPECT_TRUE(r.passed) << r.reason;
    EXPECT_TRUE(r.failed_check.empty()) << r.failed_check;
    EXPECT_FALSE(to_json(r).contains("failed_check"));
    EXPECT_TRUE(c.diagnostics().empty());
  }
}

TEST(Collector, GarbageBecomesDiagnosticsNotFailure) {
  auto spec = spec_for("1n1l2c1t");
  std::string stream = "\x01garbage" + healthy_stream(spec) + "KTSRtrunc";
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  c.finish();
  RunResult r;
  evaluate(r, spec, c, powered_off());
  EXPECT_TRUE(r.passed) << r.reason;
  EXPECT_FALSE(c.diagnostics().empty());
}

TEST(Collector, TopologyMismatchFails) {
  auto spec = spec_for("1n2l2c1t");
  auto other = spec_for("1n1l4c1t");  // same CPU count, one LLC
  std::string stream = healthy_stream(other);
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  RunResult r;
  evaluate(r, spec, c, powered_off());
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.reason.find("LLC groups [0-3], expected [0-1 2-3]"), std::string::npos) << r.reason;
  EXPECT_EQ(r.failure_kind, "check");
  EXPECT_EQ(r.failed_check, "topology");
  EXPECT_EQ(to_json(r)["failed_check"], "topology");
}

TEST(Collector, StarvedWorkerAndMissingWorkersFail) {
  auto spec = spec_for("1n1l2c1t");
  ResultCollector c;
  proto::WorkerMsg w;
  w.cgroup = "steady";
  w.index = 1;
  w.iterations = 0;
  std::string s2;
  proto::HelloMsg hello;
  s2 += proto::encode_message(hello);
  proto::TopologyMsg topo;
  topo.cpus = 2;
  topo.llc_groups = {"0-1"};
  topo.numa_nodes = {"0-1"};
  topo.smt_groups = {"0", "1"};
  s2 += proto::encode_message(topo);
  proto::WorkerMsg ok = w;
  ok.index = 0;
  ok.iterations = 5;
  s2 += proto::encode_message(ok);
  s2 += proto::encode_message(w);
  proto::DoneMsg done;
  done.ok = true;
  s2 += proto::encode_message(done);
  c.feed(s2.data(), s2.size());
  RunResult r;
  evaluate(r, spec, c, powered_off());
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.reason.find("worker steady/1 never ran"), std::string::npos) << r.reason;
  EXPECT_EQ(r.failed_check, "not_starved");
}

TEST(Collector, VmEndsExplainFailure) {
  auto spec = spec_for("1n1l2c1t");
  proto::HelloMsg hello;
  proto::StageMsg st;
  st.stage = proto::stage::kWorkersStarted;
  std::string s = proto::encode_message(hello) + proto::encode_message(st);
  ResultCollector c;
  c.feed(s.data(), s.size());
  auto vm = powered_off();
  vm.end = VmEnd::kWatchdogNoOutput;
  RunResult r;
  evaluate(r, spec, c, vm);
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.reason.find("watchdog"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find("last stage: workers_started"), std::string::npos) << r.reason;
  EXPECT_TRUE(r.failed_check.empty()) << r.failed_check;

  ResultCollector silent;
  vm.end = VmEnd::kPanicked;
  RunResult r2;
  evaluate(r2, spec, silent, vm);
  EXPECT_NE(r2.reason.find("panicked"), std::string::npos);
  EXPECT_NE(r2.reason.find("never started"), std::string::npos);
}

TEST(Collector, MaxGapCheck) {
  auto spec = spec_for("1n1l2c1t");
  spec.checks.max_gap_ms = 3;  // the healthy stream has 4 ms gaps
  std::string stream = healthy_stream(spec);
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  RunResult r;
  evaluate(r, spec, c, powered_off());
  EXPECT_FALSE(r.passed);
  EXPECT_NE(r.reason.find("max_gap_ms = 3"), std::string::npos) << r.reason;
  EXPECT_EQ(r.failed_check, "max_gap_ms");  // the gauntlet's grid names it
}

TEST(Collector, EveryFailedCheckIsInTheReasonAndTheJson) {
  auto spec = spec_for("1n1l2c1t");
  spec.checks.max_gap_ms = 3;             // the healthy stream has 4 ms gaps
  spec.checks.max_wakeup_latency_us = 1;  // and no sleeper: not judged
  std::string stream = healthy_stream(spec);
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  RunResult r;
  evaluate(r, spec, c, powered_off());
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.failed_check, "max_gap_ms");
  EXPECT_EQ(r.reason.rfind("2 checks failed; max_gap_ms: worker ", 0), 0u) << r.reason;
  EXPECT_NE(r.reason.find("; max_wakeup_latency_us: max_wakeup_latency_us cannot be judged"), std::string::npos)
      << r.reason;
  auto j = to_json(r);
  ASSERT_TRUE(j.contains("check_failures")) << j.dump();
  ASSERT_EQ(j["check_failures"].size(), 2u);
  EXPECT_EQ(j["check_failures"][0]["check"], "max_gap_ms");
  EXPECT_EQ(j["check_failures"][1]["check"], "max_wakeup_latency_us");
  EXPECT_NE(j["check_failures"][0]["message"].get<std::string>().find("more than max_gap_ms = 3"), std::string::npos);
}

TEST(Collector, StepsAreKeptWithTheirTimesAndAFailedOneIsNoted) {
  auto spec = spec_for("1n1l2c1t");
  std::string stream = healthy_stream(spec);
  proto::StepMsg done_step;
  done_step.index = 0;
  done_step.step = {500, "set_cpus", "steady", 0, "", "1", -1};
  done_step.ok = true;
  done_step.detail = "cgroup 'steady' now runs on CPUs 1";
  done_step.t_ms = 1500;  // workers started at 1000
  proto::StepMsg refused;
  refused.index = 1;
  refused.step = {800, "cpu_offline", "", 0, "", "", 1};
  refused.error = "CPU 1 cannot be hot-plugged in this guest";
  refused.t_ms = 1800;
  // Before DONE, as the agent sends them.
  std::string tail = stream.substr(stream.size() - proto::encode_message(proto::DoneMsg{true, ""}).size());
  stream = stream.substr(0, stream.size() - tail.size()) + proto::encode_message(done_step) +
           proto::encode_message(refused) + tail;
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  auto steps = c.steps();
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_DOUBLE_EQ(steps[0].t_s, 0.5);
  EXPECT_EQ(steps[0].cpus, "1");
  EXPECT_TRUE(steps[0].ok);
  EXPECT_FALSE(steps[1].ok);
  EXPECT_EQ(steps[1].cpu, 1);
  RunResult r;
  r.steps = steps;
  auto j = to_json(r);
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][1]["error"], "CPU 1 cannot be hot-plugged in this guest");
  EXPECT_FALSE(j["steps"][1].contains("cgroup"));
}

// A scheduler run as the agent streams it (CLOCK_BOOTTIME ms): the
// scheduler process starts at `start_ms`, sched_ext reads "enabling" then
// "enabled" 1.04 s later, and the agent reports workers_started at
// `workload_ms`. The scheduler is then ejected (a stall of the agent) and
// the run ends.
std::string sched_stream(const TestSpec& spec, uint64_t start_ms, uint64_t workload_ms) {
  std::string out;
  proto::HelloMsg hello;
  hello.agent_version = "0.1.0";
  out += proto::encode_message(hello);
  proto::TopologyMsg topo;
  topo.cpus = spec.topology.cpus();
  topo.llc_groups = spec.topology.expected_llc_groups();
  topo.numa_nodes = spec.topology.expected_node_cpus();
  topo.smt_groups = spec.topology.expected_smt_groups();
  out += proto::encode_message(topo);
  out += proto::encode_message(proto::StageMsg{proto::stage::kJobReceived, start_ms - 20});
  out += proto::encode_message(proto::SchedStartedMsg{212, start_ms});
  out += proto::encode_message(proto::SchedStateMsg{"enabling", "hog", start_ms + 1010});
  out += proto::encode_message(proto::SchedStateMsg{"enabled", "hog", start_ms + 1040});
  out += proto::encode_message(proto::SchedOutputMsg{"stdout", "hog: attached\n", false, start_ms + 1045});
  out += proto::encode_message(proto::StageMsg{proto::stage::kWorkersStarted, workload_ms});
  out += proto::encode_message(proto::SchedStateMsg{"disabling", "", workload_ms + 10});
  out += proto::encode_message(proto::SchedStateMsg{"disabled", "", workload_ms + 30});
  out += proto::encode_message(proto::SchedOutputMsg{
      "stderr", "EXIT: runnable task stall (ktstr-agent[1] failed to run for 30.120s)\n", false, workload_ms + 35});
  out += proto::encode_message(proto::SchedExitedMsg{212, 1, 0, false, workload_ms + 40});
  for (unsigned i = 0; i < spec.topology.cpus(); ++i) {
    proto::WorkerMsg w;
    w.cgroup = "steady";
    w.index = i;
    w.iterations = 100;
    w.cpus_used = {i};
    out += proto::encode_message(w);
  }
  out += proto::encode_message(proto::StageMsg{proto::stage::kWorkersDone, workload_ms + 600});
  proto::DoneMsg done;
  done.ok = true;
  out += proto::encode_message(done);
  return out;
}

// What run_test does with a finished stream, up to the rendered timeline.
RunResult judge(const TestSpec& spec, const std::string& stream) {
  ResultCollector c;
  c.feed(stream.data(), stream.size());
  c.finish();
  RunResult r;
  if (auto sched = c.sched_run()) r.sched = std::move(*sched);
  evaluate(r, spec, c, powered_off());
  return r;
}

TEST(Collector, TimelineSaysTheWorkloadCouldNotStartWhileTheAgentWasStarved) {
  // The run: "enabling" at -30.29s, attached 1.04 s after the
  // process started, and the workload only 30.26 s after that.
  TestSpec spec = spec_for("1n1l2c1t");
  spec.scheduler = "/sched/hog";
  RunResult r = judge(spec, sched_stream(spec, 10000, 41300));
  ASSERT_TRUE(r.sched);
  EXPECT_NEAR(r.sched->attach_s, 1.04, 1e-9);
  ASSERT_TRUE(r.sched->attached_t_s);
  EXPECT_NEAR(*r.sched->attached_t_s, -30.26, 1e-9);
  std::string t = render_timeline(r);
  EXPECT_NE(t.find(" -31.30s  scheduler process started\n"), std::string::npos) << t;
  EXPECT_NE(t.find(" -30.29s  sched_ext state: enabling\n"), std::string::npos) << t;
  EXPECT_NE(t.find(" -30.26s  sched_ext state: enabled (scheduler attached 1.04s after it started)\n"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("  +0.00s  workload started; it could not start for 30.26s after the scheduler attached (the "
                   "guest agent that starts it did not get to run)\n"),
            std::string::npos)
      << t;
  // In time order: the 30 s wait is visible between attach and workload.
  EXPECT_LT(t.find("state: enabled"), t.find("workload started"));
  EXPECT_LT(t.find("workload started"), t.find("state: disabling"));
  EXPECT_EQ(t.find("scheduler attached after"), std::string::npos) << t;  // the old, misleading line
}

TEST(Collector, TimelineOfAPromptStart) {
  TestSpec spec = spec_for("1n1l2c1t");
  spec.scheduler = "/sched/hog";
  RunResult r = judge(spec, sched_stream(spec, 10000, 11090));
  std::string t = render_timeline(r);
  EXPECT_NE(t.find("  +0.00s  workload started (0.05s after the scheduler attached)\n"), std::string::npos) << t;
  EXPECT_EQ(t.find("could not start"), std::string::npos) << t;
}

TEST(Collector, NeverAttachedShowsLibbpfsReason) {
  TestSpec spec = spec_for("1n1l2c1t");
  spec.scheduler = "/sched/scx_hz";
  std::string out;
  out += proto::encode_message(proto::HelloMsg{});
  out += proto::encode_message(proto::SchedStartedMsg{99, 5000});
  out += proto::encode_message(proto::SchedOutputMsg{
      "stderr",
      "libbpf: failed to open system Kconfig\nlibbpf: failed to load object 'scx_hz'\n"
      "libbpf: failed to load BPF skeleton 'scx_hz': -EINVAL\nscx_hz: failed to load BPF skeleton: Invalid argument\n",
      false, 5400});
  out += proto::encode_message(proto::SchedExitedMsg{99, 2, 0, false, 5410});
  proto::DoneMsg done;
  done.ok = true;
  out += proto::encode_message(done);
  RunResult r = judge(spec, out);
  EXPECT_FALSE(r.passed);
  EXPECT_EQ(r.failure_kind, "attach_failed");
  EXPECT_EQ(r.reason, "scheduler never attached: libbpf: failed to open system Kconfig (it exited with status 2)");
  EXPECT_NE(render_monitor(r).find("verdict: " + r.reason), std::string::npos) << render_monitor(r);
}

}  // namespace
}  // namespace ktstr::runner
