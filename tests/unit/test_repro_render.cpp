// core/repro (guest payload parsing, stitching, accounting, the
// `--- auto-repro ---` section and its JSON) and cmd/repro's accounting of a
// repro run. Guest payloads are built with the wire structs of
// guest/proto/messages.hpp, so both sides agree on the JSON.
#include "run/repro.hpp"
#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "db/repros.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

using namespace ktstr;

namespace {

std::string data(const std::string& rel) {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/" + rel);
  EXPECT_TRUE(text) << rel;
  return text ? *text : std::string();
}

SchedExit exit73() {
  auto e = parse_sched_log(data("7.3/crash/sched.log"));
  EXPECT_TRUE(e);
  return e ? *e : SchedExit{};
}

proto::ProbeArg task_arg(int pid, const std::string& comm) {
  proto::ProbeArg a;
  a.kind = "task";
  a.raw = 0xffff888003a1c000ull;
  proto::ProbeTask t;
  t.pid = pid;
  t.comm = comm;
  t.cpus = "0-3";
  t.dsq_id = 0x6b74;
  t.slice = 20000000;
  t.vtime = 0;
  t.weight = 100;
  t.flags = 0x5;
  a.task = t;
  return a;
}

proto::ProbeEvent event(uint64_t t_ns, uint32_t cpu, int pid, const std::string& comm, const std::string& func,
                        const std::string& kind, std::vector<proto::ProbeArg> args = {}) {
  proto::ProbeEvent e;
  e.t_ns = t_ns;
  e.cpu = cpu;
  e.pid = pid;
  e.comm = comm;
  e.func = func;
  e.kind = kind;
  e.ip = 0xffffffff81000000ull + t_ns % 4096;
  e.args = std::move(args);
  if (kind == "fentry") e.source = "bpf/scx_ktstr.bpf.c:98";
  return e;
}

proto::ProbeSetupMsg setup_tp_btf() {
  proto::ProbeSetupMsg s;
  s.t_ms = 1234;
  s.traceable = {"do_pick_task_scx"};
  s.kprobes_attached = {"do_pick_task_scx"};
  s.bpf_discovered = {"ktstr_select_cpu", "ktstr_enqueue", "ktstr_dispatch", "ktstr_init"};
  s.fentry_attached = {"ktstr_dispatch"};
  s.trigger = {"sched_ext_exit", "tp_btf", "attached", "", "", ""};
  return s;
}

proto::ProbeEventsMsg events_fired() {
  proto::ProbeEventsMsg m;
  m.trigger_fired = true;
  m.trigger_pid = 169;
  m.trigger_cpu = 1;
  m.exit_kind = 1025;
  m.exit_reason = "scx_bpf_error";
  proto::ProbeArg rq;
  rq.kind = "rq";
  rq.raw = 0xffff88807dc2c000ull;
  rq.cpu = 1;
  m.events = {
      event(1000000000, 2, 50, "kworker/2:1", "do_pick_task_scx", "kprobe", {rq}),
      event(1000123000, 1, 169, "init", "ktstr_dispatch", "fentry", {task_arg(169, "init")}),
      event(1000123000, 1, 169, "init", "ktstr_dispatch", "fentry", {task_arg(169, "init")}),  // duplicate
      event(1000100000, 1, 169, "init", "do_pick_task_scx", "kprobe", {rq}),
      event(1000200000, 1, 169, "init", "sched_ext_exit", "trigger"),
  };
  m.events_total = 7;
  m.unmatched_ips = 2;
  m.per_task_history = {{"169", 4}, {"50", 1}};
  return m;
}

ReproResult repro_of(const nlohmann::json& setup, const nlohmann::json& events, const std::optional<SchedExit>& exit) {
  ReproResult rr;
  rr.crash_id = "abcdef012345";
  rr.targets = probe_targets_from_exit(exit73());
  KernelRecord k;  // no vmlinux: args undecoded, noted
  rr.plan = runner::build_probe_plan(rr.targets, k, rr.notes);
  RunResult run;
  run.wall_s = 16.94;
  run.probe_setup = setup;
  run.probe_events = events;
  run.exit = exit;
  run.passed = !exit;
  if (exit) run.reason = "scheduler process died unexpectedly during workload";
  run.sched_ext_dump = "line1\nline2\n";
  run.dmesg = "sched_ext: BPF scheduler \"ktstr\" disabled (runtime error)\n";
  runner::account_repro_run(rr, run, signature_of(exit73()).key());
  return rr;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

}  // namespace

TEST(ReproRender, AccountingLinesFollowTheRecipe) {
  auto rr = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(events_fired()), exit73());
  auto l = lines(render_repro(rr));
  if (std::getenv("KTSTR_SHOW_RENDER")) std::printf("%s", render_repro(rr).c_str());
  ASSERT_GE(l.size(), 12u);
  EXPECT_EQ(l[0], "--- auto-repro ---");
  EXPECT_EQ(l[1], "--- probe pipeline ---");
  EXPECT_EQ(l[2], "extracted: 9 functions from crash backtrace");
  EXPECT_EQ(l[3],
            "traceable: 1 passed, 8 dropped: scx_exit_bstr, scx_bpf_error_bstr, "
            "bpf_prog_d7950aacb84e72d7_ktstr_dispatch, bpf__sched_ext_ops_dispatch, __schedule, schedule, "
            "irqentry_exit, asm_sysvec_apic_timer_interrupt");
  EXPECT_EQ(l[4], "bpf_discover: 4 programs found");
  EXPECT_EQ(l[5], "after_expand: 2 total probe targets");
  EXPECT_EQ(l[6], "kprobes: 1 attached");
  EXPECT_EQ(l[7], "fentry: 1 attached");
  EXPECT_EQ(l[8], "trigger: fired (tp_btf/sched_ext_exit)");
  EXPECT_EQ(l[9], "probe_data: 3 keys, 2 unmatched IPs");
  EXPECT_EQ(l[10], "events: 7 captured, 4 after stitch");
  EXPECT_EQ(l[11], "repro VM duration: 16.9s");
  EXPECT_EQ(l.back(), "reproduced: yes (same signature)");
}

TEST(ReproRender, EventsAreGroupedByTaskTriggeringTaskFirst) {
  auto rr = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(events_fired()), exit73());
  ASSERT_EQ(rr.stitched.size(), 4u);
  EXPECT_EQ(rr.stitched[0].pid, 169);
  EXPECT_EQ(rr.stitched[0].func, "do_pick_task_scx");  // time order within the task
  EXPECT_EQ(rr.stitched[1].func, "ktstr_dispatch");
  EXPECT_EQ(rr.stitched[2].kind, "trigger");
  EXPECT_EQ(rr.stitched[3].pid, 50);
  std::string text = render_repro(rr);
  EXPECT_NE(text.find("task init[169]: 3 events (triggered the exit)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("  +0.000123s cpu1 fentry ktstr_dispatch (bpf/scx_ktstr.bpf.c:98) p: pid=169 comm=init "
                      "cpus=0-3 dsq=0x6b74 slice=20000000 vtime=0 weight=100 flags=0x5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  +0.000100s cpu1 kprobe do_pick_task_scx rq: cpu=1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("task kworker/2:1[50]: 1 events\n"), std::string::npos) << text;
  EXPECT_LT(text.find("task init[169]"), text.find("task kworker/2:1[50]"));
}

TEST(ReproRender, SeveralFallbackKprobesNameTheOneThatFired) {
  auto s = setup_tp_btf();
  s.trigger = {"scx_exit,scx_vexit,scx_disable", "kprobe", "attached", "", "sched_ext_exit", "No such process"};
  auto ev = events_fired();
  ev.events.back().func = "scx_vexit";  // fired second in time
  ev.events.push_back(event(1000300000, 1, 169, "init", "scx_disable", "trigger"));
  auto rr = repro_of(nlohmann::json(s), nlohmann::json(ev), exit73());
  EXPECT_EQ(rr.accounting.trigger,
            "fired (fallback kprobe scx_vexit; tp_btf/sched_ext_exit: attach failed: No such process; "
            "also attached: scx_exit,scx_disable)");
  // Not fired: the first candidate stands for the set.
  proto::ProbeEventsMsg none;
  rr = repro_of(nlohmann::json(s), nlohmann::json(none), exit73());
  EXPECT_EQ(rr.accounting.trigger.rfind("not fired (fallback kprobe scx_exit; ", 0), 0u) << rr.accounting.trigger;
  EXPECT_NE(rr.accounting.trigger.find("also attached: scx_vexit,scx_disable)"), std::string::npos);
}

TEST(ReproRender, FallbackTriggerAndAttachFailures) {
  auto s = setup_tp_btf();
  s.trigger = {"scx_kf_exit", "kprobe", "attached", "", "sched_ext_exit", "No such file or directory"};
  s.kprobe_failures = {{"balance_scx", "Invalid argument"}};
  auto rr = repro_of(nlohmann::json(s), nlohmann::json(events_fired()), exit73());
  std::string text = render_repro(rr);
  EXPECT_NE(text.find("\ntrigger: fired (fallback kprobe scx_kf_exit; tp_btf/sched_ext_exit: attach failed: "
                      "No such file or directory)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("\nkprobes: 1 attached, 1 failed: balance_scx (Invalid argument)\n"), std::string::npos);

  s.trigger = {"sched_ext_exit", "none", "failed", "Invalid argument", "", ""};
  rr = repro_of(nlohmann::json(s), nlohmann::json(proto::ProbeEventsMsg{}), std::nullopt);
  text = render_repro(rr);
  EXPECT_NE(text.find("\ntrigger: attach failed (Invalid argument)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nreproduced: no — the scheduler did not crash\n"), std::string::npos) << text;

  s.trigger = {"sched_ext_exit", "tp_btf", "attached", "", "", ""};
  rr = repro_of(nlohmann::json(s), nlohmann::json(proto::ProbeEventsMsg{}), std::nullopt);
  EXPECT_EQ(rr.accounting.trigger, "not fired (tp_btf/sched_ext_exit)");
}

TEST(ReproRender, NoGuestProbeSupportIsReportedNotHidden) {
  auto rr = repro_of(nullptr, nullptr, exit73());
  std::string text = render_repro(rr);
  EXPECT_NE(text.find("\ntraceable: 0 passed, 9 dropped: "), std::string::npos) << text;
  EXPECT_NE(text.find("\ntrigger: not reported by the guest\n"), std::string::npos);
  EXPECT_NE(text.find("note: the guest reported no probe setup"), std::string::npos);
  EXPECT_NE(text.find("note: kernel  has no vmlinux"), std::string::npos);
}

TEST(ReproRender, DifferentCrashNamesIt) {
  SchedExit other = exit73();
  other.msg = "bpf/scx_ktstr.bpf.c:200: another bug";
  other.source_location = "bpf/scx_ktstr.bpf.c:200";
  auto rr = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(events_fired()), other);
  EXPECT_EQ(rr.outcome, "different");
  EXPECT_EQ(reproduced_text(rr), "no — a different crash: scx_bpf_error (bpf/scx_ktstr.bpf.c:200: another bug)");
  EXPECT_FALSE(rr.reproduced());
}

TEST(ReproRender, JsonCarriesCountsEventsAndOutcome) {
  auto rr = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(events_fired()), exit73());
  auto j = to_json(rr);
  EXPECT_EQ(j["pipeline"]["extracted"], 9);
  EXPECT_EQ(j["pipeline"]["traceable_passed"], 1);
  EXPECT_EQ(j["pipeline"]["events_after_stitch"], 4);
  EXPECT_EQ(j["pipeline"]["trigger"], "fired (tp_btf/sched_ext_exit)");
  EXPECT_EQ(j["trigger_fired"], true);
  EXPECT_EQ(j["reproduced"], true);
  EXPECT_EQ(j["events"][1]["func"], "ktstr_dispatch");
  EXPECT_EQ(j["events"][1]["args"][0]["task"]["pid"], 169);
  EXPECT_EQ(j["targets"]["bridges"][0], "do_pick_task_scx");
  EXPECT_EQ(j["plan"]["trigger"]["fallback_kprobe"], "scx_exit_bstr");
  // The plan converts to the wire struct the agent decodes.
  auto wire = j["plan"].get<proto::ProbePlan>();
  EXPECT_EQ(wire.trigger.fallback_kprobe, "scx_exit_bstr");
  EXPECT_TRUE(proto::validate_probe_plan(wire));
}

TEST(ReproRender, ReportPutsTheSectionBeforeTheCrashFooter) {
  RunResult r;
  r.test_name = "vm_crash";
  r.scheduler = "scx-ktstr";
  r.topology = "1n1l4c1t";
  r.reason = "scheduler process died unexpectedly during workload";
  r.exit = exit73();
  r.crash_id = "abcdef012345";
  r.repro = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(events_fired()), exit73());
  std::string text = render_failure(r, ReportOptions{});
  size_t at = text.find("--- auto-repro ---");
  ASSERT_NE(at, std::string::npos);
  std::string footer = render_crash_footer(r);
  if (!footer.empty()) {
    EXPECT_LT(at, text.rfind(footer));
  }
  EXPECT_TRUE(to_json(r).contains("repro"));
}

TEST(ProbePayloads, WrongTypesAreNotedNotThrown) {
  auto j = nlohmann::json::parse(R"({"trigger_fired": "yes", "events": [1, {"t_ns": "x", "pid": 5,
      "args": [{"kind": "task", "task": {"pid": "nope"}}]}], "per_task_history": {"abc": 1, "7": 2}})");
  std::vector<std::string> problems;
  auto e = parse_probe_events(j, &problems);
  EXPECT_FALSE(e.trigger_fired);
  ASSERT_EQ(e.events.size(), 1u);
  EXPECT_EQ(e.events[0].pid, 5);
  ASSERT_EQ(e.per_task_history.size(), 1u);
  EXPECT_EQ(e.per_task_history[0].first, 7);
  EXPECT_GE(problems.size(), 3u);
  auto s = parse_probe_setup(nlohmann::json::array(), &problems);
  EXPECT_TRUE(s.traceable.empty());
}

TEST(ProbePayloads, BoundsApply) {
  nlohmann::json j;
  j["events"] = nlohmann::json::array();
  for (size_t i = 0; i < kMaxProbeEvents + 10; ++i) j["events"].push_back({{"t_ns", i}, {"pid", 1}});
  j["traceable"] = std::vector<std::string>(kMaxProbeNames + 5, std::string(kMaxProbeString * 2, 'x'));
  EXPECT_EQ(parse_probe_events(j).events.size(), kMaxProbeEvents);
  auto s = parse_probe_setup(j);
  EXPECT_EQ(s.traceable.size(), kMaxProbeNames);
  EXPECT_EQ(s.traceable[0].size(), kMaxProbeString);
}

TEST(Stitch, DropsDuplicatesKeepsLatestPerTask) {
  std::vector<ProbeEvent> ev;
  for (int i = 0; i < 10; ++i) ev.push_back({static_cast<uint64_t>(100 - i), 0, 7, "a", "f", "kprobe", 1, "", {}, {}});
  ev.push_back(ev[0]);  // exact duplicate
  ev.push_back({500, 0, 8, "b", "g", "kprobe", 2, "", {}, {}});
  auto out = stitch_events(ev, 7, 4);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].t_ns, 97u);  // the latest 4 of task 7, oldest first
  EXPECT_EQ(out[3].t_ns, 100u);
  EXPECT_EQ(out[4].pid, 8);
  auto by_latest = stitch_events(ev, 0, 64);  // no trigger task: newest activity first
  EXPECT_EQ(by_latest[0].pid, 8);
  EXPECT_EQ(by_latest.size(), 11u);
}

TEST(ReproRender, OtherTasksAreCappedTriggeringTaskIsNot) {
  auto m = events_fired();
  for (int pid = 200; pid < 220; ++pid)
    for (int k = 0; k < 10; ++k)
      m.events.push_back(event(2000000000ull + pid * 1000 + k, 0, pid, "w", "do_pick_task_scx", "kprobe"));
  for (int k = 0; k < 30; ++k)
    m.events.push_back(event(900000000ull + k, 1, 169, "init", "ktstr_dispatch", "fentry", {task_arg(169, "init")}));
  auto rr = repro_of(nlohmann::json(setup_tp_btf()), nlohmann::json(m), exit73());
  std::string text = render_repro(rr);
  EXPECT_NE(text.find("task init[169]: 33 events (triggered the exit)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("task w[219]: 10 events\n  [... 4 earlier events omitted ...]\n"), std::string::npos) << text;
  // 21 other tasks (20 + the kworker), 6 shown.
  EXPECT_NE(text.find("[... 15 more tasks (141 events) omitted; 'ktstr repro --json' lists them ...]\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(to_json(rr)["events"].size(), rr.stitched.size());
}

TEST(RunRepro, CrashWhoseKernelIsGoneIsAnErrorWithAHint) {
  auto dir = TempDir::create("ktstr-repro-test");
  ASSERT_TRUE(dir);
  auto store = db::Store::open(dir->path());
  ASSERT_TRUE(store) << store.error().msg;
  CrashRecord c;
  c.id = "0123456789ab";
  c.kernel_id = "feedfeedfeedfeed";
  c.spec_toml = "[[test]]\nname = \"x\"\nscheduler = \"scx-ktstr\"\nscenario = \"custom_crash_light\"\n";
  auto r = runner::run_repro(**store, c, runner::PipelineOptions{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("kernel feedfeedfeedfeed is no longer in the kernel cache"), std::string::npos)
      << r.error().msg;
  EXPECT_NE(r.error().hint.find("ktstr kernel add"), std::string::npos);

  c.spec_toml = "[[test]]\nnam = 1\n";
  r = runner::run_repro(**store, c, runner::PipelineOptions{});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().msg.rfind("replaying crash '0123456789ab': ", 0), 0u) << r.error().msg;
}

TEST(ReproStore, ReprosAreKeptPerCrashNewestLast) {
  auto dir = TempDir::create("ktstr-repro-test");
  ASSERT_TRUE(dir);
  auto store = db::Store::open(dir->path());
  ASSERT_TRUE(store);
  EXPECT_GE(db::Store::schema_version(), 3);
  db::ReproRecord a{0, "aaaaaaaaaaaa", 100, false, 1500, "{}", "r1"};
  db::ReproRecord b{0, "aaaaaaaaaaaa", 200, true, 2500, "{\"x\":1}", "r2"};
  db::ReproRecord other{0, "bbbbbbbbbbbb", 300, true, 1, "{}", "r3"};
  for (auto* r : {&a, &b, &other}) ASSERT_TRUE(db::put_repro(**store, *r));
  auto all = db::list_repros(**store, "aaaaaaaaaaaa");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].report, "r1");
  auto latest = db::latest_repro(**store, "aaaaaaaaaaaa");
  ASSERT_TRUE(latest && *latest);
  EXPECT_TRUE((*latest)->reproduced);
  EXPECT_EQ((*latest)->duration_ms, 2500);
  EXPECT_EQ((*latest)->result_json, "{\"x\":1}");
  auto none = db::latest_repro(**store, "cccccccccccc");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
}

TEST(ReproTiming, TheBreakdownComesFromTheGuestsMilestonesAndAttachTimes) {
  proto::ProbeSetupMsg setup = setup_tp_btf();
  setup.timing_ms = {{"kprobes", 40}, {"kernel_total", 95}, {"programs", 610}};
  ReproResult rr;
  rr.targets = probe_targets_from_exit(exit73());
  RunResult run;
  run.probe_setup = nlohmann::json(setup);
  run.probe_events = nlohmann::json(events_fired());
  run.boot_s = 7.5;
  run.stage_t_s = {{"job_received", -2.5}, {"workers_started", 0}, {"probe_setup", -0.4}};
  SchedulerRun s;
  s.started = true;
  s.started_t_s = -2.0;
  run.sched = s;
  runner::account_repro_run(rr, run, signature_of(exit73()).key());
  EXPECT_NEAR(rr.timing.kernel_probes_s, 0.5, 1e-9);
  EXPECT_NEAR(rr.timing.program_probes_s, 1.6, 1e-9);
  EXPECT_EQ(rr.timing.boot_s, 7.5);
  EXPECT_GT(rr.timing.events_bytes, 0u);
  ASSERT_EQ(rr.timing.guest_ms.size(), 3u);
  auto j = to_json(rr);
  EXPECT_EQ(j["timing"]["guest_ms"]["programs"], 610);
  EXPECT_EQ(j["timing"]["guest_ms"].count("filter_scan"), 0u);  // not read: kprobe.multi took every name

  // An older guest sends no timing: nothing is made up.
  ReproResult old;
  RunResult bare;
  bare.probe_setup = nlohmann::json(setup_tp_btf());
  runner::account_repro_run(old, bare, "");
  EXPECT_TRUE(old.timing.guest_ms.empty());
  EXPECT_EQ(old.timing.kernel_probes_s, -1);
  EXPECT_FALSE(old.timing.probes_set_s);
}

TEST(ReproTiming, WhenTheProbesAttachFollowsHowFarIntoTheWorkloadTheCrashCame) {
  ProbePlan plan;
  runner::plan_probe_timing(plan, std::nullopt);  // no scheduler on record: probes first
  EXPECT_FALSE(plan.kernel_probes_parallel);
  EXPECT_FALSE(plan.probes_during_workload);

  SchedulerRun crashed;
  crashed.started = crashed.exited = true;
  crashed.attach_s = 0.4;
  crashed.exit_t_s = -0.2;  // died while attaching: probes first
  runner::plan_probe_timing(plan, crashed);
  EXPECT_FALSE(plan.kernel_probes_parallel);
  EXPECT_FALSE(plan.probes_during_workload);

  crashed.workload_started = true;
  // 0.5 + 2.5 x 0.4 s: the probes are expected about 1 s into the workload.
  EXPECT_DOUBLE_EQ(runner::probe_headroom_s(crashed), 1.5);
  crashed.exit_t_s = 1.4;  // early in the workload: it waits for the probes
  runner::plan_probe_timing(plan, crashed);
  EXPECT_TRUE(plan.kernel_probes_parallel);
  EXPECT_FALSE(plan.probes_during_workload);
  crashed.exit_t_s = 2.3;
  runner::plan_probe_timing(plan, crashed);
  EXPECT_TRUE(plan.kernel_probes_parallel);
  EXPECT_TRUE(plan.probes_during_workload);
  EXPECT_EQ(probe_plan_json(plan)["probes_during_workload"], true);

  // A slow (or loaded) host loaded the scheduler slowly: the same crash
  // time is too close for the probes to be set in time.
  crashed.attach_s = 1.0;
  runner::plan_probe_timing(plan, crashed);
  EXPECT_FALSE(plan.probes_during_workload);
  crashed.attach_s = 0.01;  // KVM: never less than the floor
  EXPECT_DOUBLE_EQ(runner::probe_headroom_s(crashed), runner::kMinProbeHeadroomS);
}

TEST(ReproTiming, ACrashBeforeTheProbesWereSetDuringTheWorkloadIsNoted) {
  auto account = [](double probes_set_at, double died_at) {
    ReproResult rr;
    rr.targets = probe_targets_from_exit(exit73());
    rr.plan.probes_during_workload = true;
    RunResult run;
    run.probe_setup = nlohmann::json(setup_tp_btf());
    run.probe_events = nlohmann::json(events_fired());
    run.stage_t_s = {{"job_received", -0.6}, {"workers_started", 0}, {"probe_setup", probes_set_at}};
    SchedulerRun s;
    s.started = s.workload_started = s.exited = true;
    s.started_t_s = -0.5;
    s.exit_t_s = died_at;
    run.sched = s;
    runner::account_repro_run(rr, run, signature_of(exit73()).key());
    return rr;
  };
  ReproResult in_time = account(0.9, 2.3);
  ASSERT_TRUE(in_time.timing.probes_set_s);
  EXPECT_NEAR(*in_time.timing.probes_set_s, 0.9, 1e-9);
  EXPECT_EQ(to_json(in_time)["timing"]["probes_set_s"], 0.9);
  for (const auto& n : in_time.notes) EXPECT_EQ(n.find("before the probes were all set"), std::string::npos) << n;

  ReproResult late = account(1.2, 0.8);
  bool noted = false;
  for (const auto& n : late.notes)
    noted |= n == "the scheduler died 0.80s into the workload, before the probes were all set (1.20s): events before "
                  "then are missing";
  EXPECT_TRUE(noted);
}
