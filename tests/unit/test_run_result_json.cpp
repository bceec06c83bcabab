// core/run_result_json: a run's JSON read back (what the submitting ktstr
// does with a worker's runs) gives the same JSON again, and input that is
// not a run result is an error naming the field, never a throw.
#include "core/report.hpp"
#include "core/run_result_json.hpp"

#include <gtest/gtest.h>

using namespace ktstr;
using nlohmann::json;

namespace {

ReproResult rich_repro() {
  ReproResult r;
  r.crash_id = "c-0123456789ab";
  r.kernel_id = "k1";
  r.kernel_version = "6.12.3";
  r.seed = 18446744073709551615ull;  // the largest seed survives as a JSON unsigned
  r.targets.extracted = {"ktstr_dispatch", "do_pick_task_scx", "schedule"};
  r.targets.kernel_functions = {"do_pick_task_scx"};
  r.targets.bridges = {"do_pick_task_scx"};
  r.targets.ops = {"dispatch"};
  r.targets.bpf_programs = {"ktstr_dispatch"};
  r.targets.dropped = {{"schedule", "scheduler core entry"}};
  r.targets.fallback_trigger = "scx_kf_exit";
  r.plan.kernel_functions = {{"do_pick_task_scx", {"rq", "task"}, {"rq", "prev"}}, {"balance_one", {}, {}}};
  r.plan.bpf_programs = {"ktstr_dispatch"};
  r.plan.fallback_kprobe = "scx_kf_exit";
  r.plan.history_per_task = 32;
  r.plan.max_events = 1000;
  r.plan.kernel_probes_parallel = true;
  r.plan.probes_during_workload = true;
  r.plan.ops_args = {{"dispatch", {"scalar", "task"}, {}}, {"exit", {"exit_info"}, {}}};
  ProbeSetupInfo s;
  s.t_ms = 120;
  s.traceable = {"do_pick_task_scx"};
  s.untraceable = {{"inlined_fn", "not in available_filter_functions"}};
  s.kprobes_attached = {"do_pick_task_scx"};
  s.kprobe_failures = {{"x", "EINVAL"}};
  s.bpf_discovered = {"ktstr_dispatch", "ktstr_enqueue"};
  s.fentry_attached = {"ktstr_dispatch"};
  s.fentry_failures = {{"ktstr_enqueue", "EBUSY"}};
  s.trigger = {"sched_ext_exit", "tp_btf", "attached", "", "", ""};
  r.setup = s;
  ProbeEventsInfo ev;
  ev.trigger_fired = true;
  ev.trigger_t_ns = 99;
  ev.trigger_pid = 7;
  ev.trigger_cpu = 2;
  ev.exit_kind = 1025;
  ev.exit_reason = "scx_bpf_error";
  r.events = ev;
  ProbeEvent e;
  e.t_ns = 5;
  e.cpu = 1;
  e.pid = 7;
  e.comm = "stress";
  e.func = "do_pick_task_scx";
  e.kind = "fexit";
  e.ip = 0xffffffff81000000ull;
  e.source = "bpf/scx_ktstr.bpf.c:98";
  e.ret = -22;
  ProbeArg task;
  task.kind = "task";
  task.raw = 0xffff888003a1c000ull;
  task.task = ProbeTaskInfo{7, "stress", "0-3", 0x6b74, 20000000, 3, 100, 5};
  ProbeArg rq;
  rq.kind = "rq";
  rq.cpu = 3;
  rq.dsq_id = 0;
  ProbeArg ex;
  ex.kind = "exit_info";
  ex.exit_kind = 1025;
  ex.exit_reason = "scx_bpf_error";
  e.args = {task, rq, ex};
  r.stitched = {e};
  r.accounting.extracted = 3;
  r.accounting.traceable_passed = 1;
  r.accounting.traceable_dropped = {"inlined_fn"};
  r.accounting.bpf_discovered = 2;
  r.accounting.after_expand = 4;
  r.accounting.kprobes_attached = 1;
  r.accounting.kprobe_failures = {{"x", "EINVAL"}};
  r.accounting.fentry_attached = 1;
  r.accounting.fentry_failures = {{"ktstr_enqueue", "EBUSY"}};
  r.accounting.trigger = "fired (tp_btf/sched_ext_exit)";
  r.accounting.probe_keys = 2;
  r.accounting.unmatched_ips = 1;
  r.accounting.events_captured = 10;
  r.accounting.events_after_stitch = 1;
  r.duration_s = 6.5;
  r.timing = {0.01, 0.002, 0.3, 0.4, 4.5, 2048, {{"kprobes", 12}, {"programs", 30}}, 0.62};
  r.outcome = "different";
  r.different_summary = "runnable task stall";
  r.repro_reason = "scheduler died";
  r.sched_log_tail = "log tail\n";
  r.dump_tail = "dump tail\n";
  r.dmesg_tail = "dmesg tail\n";
  r.notes = {"guest: something"};
  return r;
}

RunResult rich_run() {
  RunResult r;
  r.test_name = "crash_demo";
  r.scheduler = "scx-ktstr";
  r.topology = "1n1l2c1t";
  r.scenario = "custom";
  r.kernel_id = "k1";
  r.kernel_version = "6.12.3";
  r.accel = "tcg";
  r.memory_mb = 512;
  r.passed = false;
  r.reason = "scheduler died";
  r.fail_at_s = 1.25;
  r.stage = "workers_started";
  r.vm_end = "powered_off";
  r.vm_exit_code = 0;
  r.wall_s = 7.5;
  r.boot_s = 4.25;
  r.restored = true;
  r.repetition = 3;
  r.repeat_vm = 2;
  r.vm_repetition = 1;
  r.seed = 42;
  r.stage_t_s = {{"job_received", -0.5}, {"workers_started", 0}};
  WorkerStats w;
  w.cgroup = "cg0";
  w.index = 1;
  w.work = "wake_chain";
  w.iterations = 1000;
  w.cpu_time_ns = 5;
  w.wall_ns = 6;
  w.migrations = 7;
  w.max_gap_ns = 8;
  w.cpus_used = {0, 1};
  w.counters = {{"wakeups", 10}, {"wake_latency_p99_ns", 2000}};
  w.moved_to = "cg1";
  w.cpus_changed = true;
  w.cpus_since_change = {1};
  WorkerStats plain;
  plain.cgroup = "cg1";
  plain.work = "spin";
  r.workers = {w, plain};
  StepEvent st;
  st.t_s = 1;
  st.index = 0;
  st.after_ms = 1000;
  st.action = "move_workers";
  st.cgroup = "cg0";
  st.to = "cg1";
  st.count = 1;
  st.ok = true;
  st.detail = "moved 1";
  StepEvent off;
  off.action = "cpu_offline";
  off.cpu = 1;
  off.error = "EBUSY";
  StepEvent cpus;
  cpus.action = "set_cpus";
  cpus.cgroup = "cg0";
  cpus.cpus = "0";
  r.steps = {st, off, cpus};
  r.guest_topology = GuestTopology{2, {"0-1"}, {"0-1"}, {"0", "1"}};
  r.console_tail = "console\n";
  r.diagnostics = {"a diagnostic"};
  r.run_id = 17;
  SchedulerRun s;
  s.name = "scx-ktstr";
  s.args = {"--crash-after", "1"};
  s.started = true;
  s.attached = true;
  s.attach_s = 0.3;
  s.started_t_s = -0.4;
  s.attached_t_s = -0.1;
  s.workload_started = true;
  s.exited = true;
  s.exit_code = 1;
  s.signal = 9;
  s.exit_t_s = 1.3;
  s.stopped_by_ktstr = false;
  s.log = "EXIT: scx_bpf_error\n";
  s.log_truncated = true;
  s.states = {{-0.1, "enabled"}, {1.3, "disabled"}};
  s.map_writes = {{0.5, ".bss", "crash", 1, true, "scx_ktst.bss", ""}, {0.6, ".bss", "x", -3, false, "", "no such var"}};
  r.sched = s;
  r.sched_ext_dump = "dump\n";
  r.dmesg = "dmesg\n";
  MonitorSample m;
  m.t_s = 0.5;
  m.nr_running = {1, 2};
  m.nr_switches = {100, 200};
  m.events = {{"SCX_EV_DISPATCH_KEEP_LAST", 3}, {"SCX_EV_ENQ_SKIP_EXITING", -1}};
  m.dsq_depth = 4;
  m.sched_state = "enabled";
  MonitorSample bare;
  bare.t_s = 1;
  r.monitor = {m, bare};
  SchedExit e;
  e.kind = 1025;
  e.reason = "scx_bpf_error";
  e.msg = "bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash";
  e.trigger = "swapper/3[0] triggered exit kind 1025 on CPU 3:";
  e.exit_cpu = 3;
  e.backtrace = {{"bpf_prog_1fed99378f3a8055_ktstr_dispatch", "+0x5/0x10", "1fed99378f3a8055", "ktstr_dispatch"},
                 {"do_pick_task_scx", "+0x379/0x770", "", ""}};
  e.scheduler_state = "ktstr scheduler state: ok";
  e.source_location = "bpf/scx_ktstr.bpf.c:115";
  e.failing_prog = "ktstr_dispatch";
  r.exit = e;
  r.verifier_log = "verifier\n";
  r.crash_id = "c-0123456789ab";
  r.expected_failure = true;
  r.failure_kind = "check";
  r.failed_check = "max_gap_ms";
  r.check_failures = {{"max_gap_ms", "cg0 worker 1: 300 ms", 1.5}, {"not_starved", "cg1 starved", -1}};
  r.probe_setup = json{{"t_ms", 3}, {"timing_ms", {{"kprobes", 1}}}};
  r.probe_events = json{{"trigger_fired", true}, {"events", json::array()}};
  r.repro = rich_repro();
  return r;
}

}  // namespace

TEST(RunResultJson, RichRunRoundTrips) {
  json first = to_json(rich_run());
  // Through text, as a worker's document travels.
  auto back = run_result_from_json(json::parse(first.dump()));
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(to_json(*back), first);
  // Spot checks that the fields went where they belong, not only back out.
  EXPECT_EQ(back->test_name, "crash_demo");
  EXPECT_FALSE(back->passed);
  EXPECT_EQ(back->seed, 42u);
  ASSERT_TRUE(back->exit);
  EXPECT_EQ(back->exit->summary(), rich_run().exit->summary());
  ASSERT_EQ(back->workers.size(), 2u);
  EXPECT_TRUE(back->workers[0].cpus_changed);
  EXPECT_FALSE(back->workers[1].cpus_changed);
  ASSERT_TRUE(back->repro);
  EXPECT_EQ(back->repro->seed, 18446744073709551615ull);
  ASSERT_EQ(back->repro->plan.kernel_functions.size(), 2u);
  EXPECT_EQ(back->repro->plan.kernel_functions[0].arg_names, (std::vector<std::string>{"rq", "prev"}));
  EXPECT_EQ(render_repro(*back->repro), render_repro(rich_repro()));
  EXPECT_EQ(back->sched->started_t_s, -0.4);
  EXPECT_EQ(back->monitor[0].events.size(), 2u);
}

TEST(RunResultJson, PassedMinimalRunRoundTrips) {
  RunResult r;
  r.test_name = "smoke";
  r.passed = true;
  json first = to_json(r);
  auto back = run_result_from_json(first);
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(to_json(*back), first);
  EXPECT_TRUE(back->passed);
  EXPECT_FALSE(back->seed);
  EXPECT_FALSE(back->sched);
  EXPECT_FALSE(back->repro);
}

TEST(RunResultJson, ReproRoundTrips) {
  json first = to_json(rich_repro());
  auto back = repro_result_from_json(json::parse(first.dump()));
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(to_json(*back), first);
}

TEST(RunResultJson, MalformedInputIsAnErrorNamingTheField) {
  json good = to_json(rich_run());
  struct Case {
    const char* what;
    json doc;
    const char* names;  // in the message
  };
  auto with = [&](const json::json_pointer& p, json v) {
    json d = good;
    d[p] = std::move(v);
    return d;
  };
  json no_name = good;
  no_name.erase("name");
  const Case cases[] = {
      {"not an object", json::array({1, 2}), "not an object"},
      {"a string", json("run"), "not an object"},
      {"no name", no_name, "'name' is missing"},
      {"bad status", with("/status"_json_pointer, "maybe"), "'status'"},
      {"name a number", with("/name"_json_pointer, 3), "'name' is not a string"},
      {"seed negative", with("/seed"_json_pointer, -1), "'seed' is not an integer in range"},
      {"seed a float", with("/seed"_json_pointer, 1.5), "'seed' is not an integer"},
      {"memory too large", with("/memory_mb"_json_pointer, 1ull << 40), "'memory_mb'"},
      {"workers an object", with("/workers"_json_pointer, json::object()), "'workers' is not an array"},
      {"worker not an object", with("/workers/0"_json_pointer, 5), "'workers[0]' is not an object"},
      {"cpu a string", with("/workers/0/cpus_used/1"_json_pointer, "1"), "'workers[0].cpus_used[1]'"},
      {"counter a string", with("/workers/0/counters/wakeups"_json_pointer, "x"), "'workers[0].counters.wakeups'"},
      {"state time", with("/sched/states/1/t_s"_json_pointer, "late"), "'sched.states[1].t_s' is not a number"},
      {"exit kind", with("/exit/kind"_json_pointer, true), "'exit.kind'"},
      {"frame", with("/exit/backtrace/0"_json_pointer, "f"), "'exit.backtrace[0]'"},
      {"monitor event", with("/monitor/0/events/SCX_EV_DISPATCH_KEEP_LAST"_json_pointer, 1.5),
       "'monitor[0].events.SCX_EV_DISPATCH_KEEP_LAST'"},
      {"repro an array", with("/repro"_json_pointer, json::array()), "'repro' is not an object"},
      {"repro event arg", with("/repro/events/0/args/0/task/pid"_json_pointer, "7"),
       "'repro.events[0].args[0].task.pid'"},
      {"repro timing", with("/repro/timing/guest_ms/kprobes"_json_pointer, -5), "'repro.timing.guest_ms.kprobes'"},
      {"check failure", with("/check_failures/0/t_s"_json_pointer, json::object()), "'check_failures[0].t_s'"},
  };
  for (const Case& c : cases) {
    Result<RunResult> r;
    EXPECT_NO_THROW(r = run_result_from_json(c.doc)) << c.what;
    ASSERT_FALSE(r) << c.what;
    EXPECT_NE(r.error().msg.find(c.names), std::string::npos) << c.what << ": " << r.error().msg;
    EXPECT_EQ(r.error().msg.rfind("run result: ", 0), 0u) << r.error().msg;
  }
  // Nulls read as absent; unknown keys (a newer worker) are ignored.
  json lenient = with("/seed"_json_pointer, nullptr);
  lenient["from_the_future"] = {1, 2, 3};
  auto r = run_result_from_json(lenient);
  ASSERT_TRUE(r) << r.error().msg;
  EXPECT_FALSE(r->seed);
}
