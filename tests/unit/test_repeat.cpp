// `--repeat N` on the host: a repeat job's stream (JOB version 2) cut into
// repetitions, each judged like a single run; what a boot that died or
// settled badly leaves for the next VM; the tally and the reports printed
// once per distinct failure.
#include "run/repeat_collector.hpp"
#include "run/repeat_run.hpp"
#include "core/report.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

namespace ktstr::runner {
namespace {

TestSpec hog_spec() {
  TestSpec s;
  s.name = "rep";
  s.topology = *Topology::parse("1n1l2c1t");
  s.scenario = "steady";
  s.duration_s = 2;
  s.scheduler = "/sched/hog";
  return s;
}

std::string boot_preamble(const TestSpec& spec) {
  std::string out;
  proto::HelloMsg hello;
  hello.agent_version = "0.1.0";
  out += proto::encode_message(hello);
  out += proto::encode_message(proto::StageMsg{proto::stage::kInit, 900});
  proto::TopologyMsg topo;
  topo.cpus = spec.topology.cpus();
  topo.llc_groups = spec.topology.expected_llc_groups();
  topo.numa_nodes = spec.topology.expected_node_cpus();
  topo.smt_groups = spec.topology.expected_smt_groups();
  out += proto::encode_message(topo);
  out += proto::encode_message(proto::StageMsg{proto::stage::kJobReceived, 1000});
  return out;
}

// One repetition's frames, from REPEAT_BEGIN; `crash`: the kernel ejects
// the scheduler (a stall) during the workload. `end`: send REPEAT_END.
std::string repetition(const TestSpec& spec, uint32_t index, uint64_t t0, bool crash, bool end = true,
                       bool next = true, const std::string& settled_state = "disabled") {
  std::string out = proto::encode_message(proto::RepeatBeginMsg{index, t0});
  out += proto::encode_message(proto::SchedStartedMsg{int32_t(200 + index), t0 + 10});
  out += proto::encode_message(proto::SchedStateMsg{"enabled", "hog", t0 + 500});
  out += proto::encode_message(proto::StageMsg{proto::stage::kWorkersStarted, t0 + 520});
  if (crash) {
    out += proto::encode_message(proto::SchedStateMsg{"disabling", "", t0 + 900});
    out += proto::encode_message(proto::SchedStateMsg{"disabled", "", t0 + 920});
    out += proto::encode_message(proto::SchedOutputMsg{
        "stderr", "EXIT: runnable task stall (ktstr-agent[1] failed to run for 30.120s)\n", false, t0 + 930});
    out += proto::encode_message(proto::SchedExitedMsg{int32_t(200 + index), 1, 0, false, t0 + 940});
  }
  for (unsigned i = 0; i < spec.topology.cpus(); ++i) {
    proto::WorkerMsg w;
    w.cgroup = "steady";
    w.index = i;
    w.iterations = 100;
    w.cpus_used = {i};
    out += proto::encode_message(w);
  }
  out += proto::encode_message(proto::StageMsg{proto::stage::kWorkersDone, t0 + 2600});
  if (!crash) out += proto::encode_message(proto::SchedExitedMsg{int32_t(200 + index), 0, 0, true, t0 + 2700});
  if (end) out += proto::encode_message(proto::RepeatEndMsg{index, true, "", settled_state, next, t0 + 2800});
  return out;
}

std::string agent_done() {
  return proto::encode_message(proto::StageMsg{proto::stage::kPoweroff, 99000}) +
         proto::encode_message(proto::DoneMsg{true, ""});
}

VmOutcome vm_ended(VmEnd end, int64_t wall_ms = 20000) {
  VmOutcome vm;
  vm.end = end;
  vm.qemu_status = 0;
  vm.wall_time = std::chrono::milliseconds(wall_ms);
  vm.boot_time = std::chrono::milliseconds(4000);
  return vm;
}

RepeatSplitter split(const std::string& stream, size_t chunk = 0) {
  RepeatSplitter s;
  if (chunk == 0) {
    s.feed(stream.data(), stream.size());
  } else {
    for (size_t at = 0; at < stream.size(); at += chunk)
      s.feed(stream.data() + at, std::min(chunk, stream.size() - at));
  }
  s.finish();
  return s;
}

std::vector<RunResult> results_of(const TestSpec& spec, const RepeatSplitter& s, const VmOutcome& vm,
                                  unsigned vm_number = 1, unsigned first = 1, unsigned wanted = 3) {
  RunResult base;
  base.test_name = spec.name;
  base.scheduler = spec.scheduler;
  return boot_results(base, spec, s, vm, {}, vm_number, first, wanted);
}

TEST(RepeatSplitter, EachRepetitionIsJudgedLikeASingleRun) {
  TestSpec spec = hog_spec();
  std::string stream = boot_preamble(spec) + repetition(spec, 1, 2000, true) + repetition(spec, 2, 6000, false) +
                       repetition(spec, 3, 10000, true, true, false) + agent_done();
  for (size_t chunk : {size_t(0), size_t(1), size_t(7)}) {
    RepeatSplitter s = split(stream, chunk);
    ASSERT_EQ(s.repetitions().size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(s.finished(), 3u);
    EXPECT_TRUE(s.no_more());
    auto runs = results_of(spec, s, vm_ended(VmEnd::kPoweredOff));
    ASSERT_EQ(runs.size(), 3u);
    EXPECT_FALSE(runs[0].passed);
    ASSERT_TRUE(runs[0].exit);
    EXPECT_EQ(runs[0].failure_kind, "stall");
    EXPECT_TRUE(runs[1].passed) << runs[1].reason;
    EXPECT_FALSE(runs[2].passed);
    ASSERT_TRUE(runs[2].exit);
    for (unsigned i = 0; i < 3; ++i) {
      EXPECT_EQ(runs[i].repetition, i + 1);
      EXPECT_EQ(runs[i].repeat_vm, 1u);
      EXPECT_EQ(runs[i].vm_repetition, i + 1);
      // The boot's topology reached every repetition (no topology mismatch).
      ASSERT_TRUE(runs[i].guest_topology);
      // Each one's own workers only.
      EXPECT_EQ(runs[i].workers.size(), spec.topology.cpus());
      EXPECT_NEAR(runs[i].wall_s, 2.8, 1e-9);
    }
    // Only the VM's first repetition carries the boot.
    EXPECT_NEAR(runs[0].boot_s, 4.0, 1e-9);
    EXPECT_EQ(runs[1].boot_s, 0);
    // Its own scheduler exit: repetition 1's times are its own, not repetition 3's.
    ASSERT_TRUE(runs[0].sched);
    EXPECT_NEAR(runs[0].sched->exit_t_s, 0.42, 1e-9);
  }
}

TEST(RepeatSplitter, EachRepetitionHasTheSeedTheAgentGaveIt) {
  // The run's seed S is its first repetition's; repetition i ran with
  // seed_at(S, i - 1), whichever VM it ran in (a second VM's job starts at
  // the seed of its first repetition, and the agent counts from there).
  TestSpec spec = hog_spec();
  std::string stream = boot_preamble(spec) + repetition(spec, 1, 2000, false) + repetition(spec, 2, 6000, true) +
                       agent_done();
  RepeatSplitter s = split(stream);
  RunResult base;
  base.test_name = spec.name;
  base.seed = 1000;
  auto first_vm = boot_results(base, spec, s, vm_ended(VmEnd::kPoweredOff), {}, 1, 1, 5);
  ASSERT_EQ(first_vm.size(), 2u);
  EXPECT_EQ(first_vm[0].seed, 1000u);
  EXPECT_EQ(first_vm[1].seed, 1001u);
  // The same stream as the second VM of the run, from repetition 4.
  auto second_vm = boot_results(base, spec, s, vm_ended(VmEnd::kPoweredOff), {}, 2, 4, 5);
  ASSERT_EQ(second_vm.size(), 2u);
  EXPECT_EQ(second_vm[0].seed, 1003u);
  EXPECT_EQ(second_vm[1].seed, 1004u);
  EXPECT_EQ(to_json(second_vm[1])["seed"], 1004u);
  // A boot that never began a repetition is repetition `first` too.
  auto never = boot_results(base, spec, split(boot_preamble(spec)), vm_ended(VmEnd::kWatchdogNoOutput), {}, 3, 6, 5);
  ASSERT_EQ(never.size(), 1u);
  EXPECT_EQ(never[0].seed, 1005u);
  // No seed for the run: none for its repetitions, none in their JSON.
  base.seed.reset();
  auto unseeded = boot_results(base, spec, s, vm_ended(VmEnd::kPoweredOff), {}, 1, 1, 5);
  EXPECT_FALSE(unseeded[1].seed.has_value());
  EXPECT_FALSE(to_json(unseeded[1]).contains("seed"));
}

TEST(RepeatSplitter, APanicEndsTheRepetitionRunningAndLeavesTheRestForANewVm) {
  TestSpec spec = hog_spec();
  std::string stream = boot_preamble(spec) + repetition(spec, 1, 2000, false) +
                       repetition(spec, 2, 6000, true, /*end=*/false);
  RepeatSplitter s = split(stream);
  EXPECT_EQ(s.repetitions().size(), 2u);
  EXPECT_EQ(s.finished(), 1u);
  EXPECT_FALSE(s.no_more());
  VmOutcome vm = vm_ended(VmEnd::kPanicked, 12000);
  auto runs = results_of(spec, s, vm, 1, 1, 5);
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_TRUE(runs[0].passed) << runs[0].reason;
  EXPECT_FALSE(runs[1].passed);
  EXPECT_NE(runs[1].reason.find("guest kernel panicked"), std::string::npos) << runs[1].reason;
  EXPECT_EQ(runs[1].vm_end, "panicked");
  // 12 s of VM: 4 s boot, 2.8 s for the first repetition, the rest was the second.
  EXPECT_NEAR(runs[1].wall_s, 5.2, 1e-3);
  // Three of five are left: a new VM runs them.
  EXPECT_EQ(repetitions_for_next_vm(vm, 2, 3), 3u);
}

TEST(RepeatSplitter, AStateThatDoesNotSettleEndsTheVmAndSaysSo) {
  TestSpec spec = hog_spec();
  std::string stream = boot_preamble(spec) + repetition(spec, 1, 2000, true, true, false, "disabling") + agent_done();
  RepeatSplitter s = split(stream);
  EXPECT_TRUE(s.no_more());
  auto runs = results_of(spec, s, vm_ended(VmEnd::kPoweredOff), 1, 1, 3);
  ASSERT_EQ(runs.size(), 1u);
  bool said = false;
  for (auto& d : runs[0].diagnostics) said = said || d.find("read 'disabling'") != std::string::npos;
  EXPECT_TRUE(said);
  EXPECT_EQ(repetitions_for_next_vm(vm_ended(VmEnd::kPoweredOff), 1, 2), 2u);
}

TEST(RepeatSplitter, ABootThatNeverBeganARepetitionIsOneRunAndQemuFailingStops) {
  TestSpec spec = hog_spec();
  RepeatSplitter s = split("");
  VmOutcome vm = vm_ended(VmEnd::kQemuFailedToStart, 100);
  vm.boot_time.reset();
  auto runs = results_of(spec, s, vm, 2, 4, 3);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].passed);
  EXPECT_EQ(runs[0].repetition, 4u);
  EXPECT_EQ(runs[0].repeat_vm, 2u);
  EXPECT_NE(runs[0].reason.find("QEMU failed to start"), std::string::npos) << runs[0].reason;
  EXPECT_EQ(repetitions_for_next_vm(vm, 1, 2), 0u);
  EXPECT_EQ(repetitions_for_next_vm(vm_ended(VmEnd::kInterrupted), 1, 2), 0u);
  EXPECT_EQ(repetitions_for_next_vm(vm_ended(VmEnd::kWatchdogNoOutput), 1, 2), 2u);
}

TEST(RepeatSplitter, MisplacedFramesAndExtraRepetitionsAreBounded) {
  TestSpec spec = hog_spec();
  std::string stream = boot_preamble(spec) +
                       proto::encode_message(proto::RepeatEndMsg{7, true, "", "disabled", true, 1500}) +
                       repetition(spec, 1, 2000, false) + repetition(spec, 2, 6000, false) + agent_done();
  RepeatSplitter s = split(stream);
  ASSERT_EQ(s.problems().size(), 1u);
  EXPECT_NE(s.problems()[0].find("repetition 7, which is not running"), std::string::npos);
  // The guest sent two; one was asked for.
  auto runs = results_of(spec, s, vm_ended(VmEnd::kPoweredOff), 1, 1, 1);
  EXPECT_EQ(runs.size(), 1u);
}

RunResult crashed(const std::string& msg) {
  RunResult r;
  r.passed = false;
  r.failure_kind = "scheduler_died";
  SchedExit e;
  e.kind = 1025;
  e.reason = "scx_bpf_error";
  e.msg = msg;
  r.exit = e;
  return r;
}

TEST(RepeatTally, CountsBySignatureAndPrintsEachDistinctFailureOnce) {
  std::vector<RunResult> runs;
  runs.push_back(crashed("scx_ktstr.bpf.c:115: ktstr: host-triggered crash"));
  RunResult pass;
  pass.passed = true;
  runs.push_back(pass);
  runs.push_back(crashed("scx_ktstr.bpf.c:115: ktstr: host-triggered crash"));
  RunResult vm;
  vm.failure_kind = "vm";
  vm.reason = "guest kernel panicked";
  runs.push_back(vm);
  runs.push_back(crashed("scx_ktstr.bpf.c:200: ktstr: other crash"));
  RepeatTally t = tally_repeat(runs, 2);
  EXPECT_EQ(t.runs, 7u);
  EXPECT_EQ(t.failed, 3u);
  EXPECT_EQ(t.other, 1u);
  EXPECT_EQ(t.passed, 1u);
  EXPECT_EQ(t.skipped, 2u);
  ASSERT_EQ(t.signatures.size(), 2u);
  EXPECT_EQ(t.signatures[0].second, 2u);
  EXPECT_EQ(t.line(),
            "7 runs: 3 failed (signature 2 x scx_bpf_error (scx_ktstr.bpf.c:115: ktstr: host-triggered crash); "
            "1 x scx_bpf_error (scx_ktstr.bpf.c:200: ktstr: other crash)), 1 other, 1 passed, 2 skipped");
  EXPECT_EQ(distinct_failures(runs), (std::vector<size_t>{0, 3, 4}));

  std::vector<RunResult> one = {crashed("x.bpf.c:1: boom"), crashed("x.bpf.c:1: boom")};
  EXPECT_EQ(tally_repeat(one, 0).line(), "2 runs: 2 failed (signature scx_bpf_error (x.bpf.c:1: boom)), 0 other, "
                                         "0 passed, 0 skipped");
}

}  // namespace
}  // namespace ktstr::runner
