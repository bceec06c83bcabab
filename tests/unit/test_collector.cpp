// The host's view of a run: frames from the guest in any chunking and with
// garbage, turned into a RunResult and judged by evaluate().
#include "cmd/collector.hpp"
#include "cmd/pipeline.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

namespace ktstr::cmd {
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
}

}  // namespace
}  // namespace ktstr::cmd
