// core/probe_targets on the real captured crashes of the fixture scheduler
// (tests/data/sched_output/{7.3,6.17}/crash/) and kbuild/btf_args on a real
// vmlinux from the store.
#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/probe_targets.hpp"
#include "db/store.hpp"
#include "kbuild/btf_args.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>

using namespace ktstr;

namespace {

std::string data(const std::string& rel) {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/" + rel);
  EXPECT_TRUE(text) << rel << ": " << (text ? "" : text.error().msg);
  return text ? *text : std::string();
}

SchedExit crash_exit(const std::string& kernel) {
  auto e = parse_sched_log(data(kernel + "/crash/sched.log"));
  EXPECT_TRUE(e) << (e ? "" : e.error().msg);
  return e ? *e : SchedExit{};
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::string why_dropped(const ProbeTargets& t, const std::string& f) {
  for (auto& d : t.dropped)
    if (d.function == f) return d.why;
  return "";
}

// Every extracted name is either a kprobe candidate or dropped, never both.
void expect_partition(const ProbeTargets& t) {
  EXPECT_EQ(t.kernel_functions.size() + t.dropped.size(), t.extracted.size());
  for (auto& f : t.extracted) {
    bool kept = has(t.kernel_functions, f);
    bool dropped = !why_dropped(t, f).empty();
    EXPECT_NE(kept, dropped) << f;
  }
}

std::vector<BacktraceFrame> frames(const std::string& text) {
  std::vector<BacktraceFrame> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (auto f = parse_backtrace_frame(l)) out.push_back(*f);
  return out;
}

}  // namespace

TEST(ProbeTargets, Kernel73CrashChain) {
  SchedExit e = crash_exit("7.3");
  ASSERT_FALSE(e.backtrace.empty());
  ProbeTargets t = probe_targets_from_exit(e);
  EXPECT_EQ(t.extracted.size(), e.backtrace.size());  // no repeated frames in this chain
  EXPECT_EQ(t.extracted.front(), "scx_exit_bstr");
  EXPECT_EQ(t.bpf_programs, std::vector<std::string>{"ktstr_dispatch"});
  EXPECT_EQ(t.ops, std::vector<std::string>{"dispatch"});
  EXPECT_EQ(t.bridges, std::vector<std::string>{"do_pick_task_scx"});
  EXPECT_EQ(t.kernel_functions, std::vector<std::string>{"do_pick_task_scx"});
  EXPECT_EQ(t.fallback_trigger, "scx_exit_bstr");
  EXPECT_EQ(why_dropped(t, "__schedule"), "scheduler core entry");
  EXPECT_EQ(why_dropped(t, "schedule"), "scheduler core entry");
  EXPECT_EQ(why_dropped(t, "irqentry_exit"), "syscall/irq entry");
  EXPECT_EQ(why_dropped(t, "asm_sysvec_apic_timer_interrupt"), "syscall/irq entry");
  EXPECT_EQ(why_dropped(t, "scx_exit_bstr"), "sched_ext exit path (fallback trigger)");
  EXPECT_EQ(why_dropped(t, "scx_bpf_error_bstr"), "sched_ext exit path");
  EXPECT_NE(why_dropped(t, "bpf__sched_ext_ops_dispatch").find("trampoline"), std::string::npos);
  EXPECT_NE(why_dropped(t, "bpf_prog_d7950aacb84e72d7_ktstr_dispatch").find("fentry"), std::string::npos);
  expect_partition(t);
}

TEST(ProbeTargets, Kernel617CrashChainUsesBalanceScxAndKfExit) {
  SchedExit e = crash_exit("6.17");
  ProbeTargets t = probe_targets_from_exit(e);
  EXPECT_EQ(t.bridges, std::vector<std::string>{"balance_scx"});
  EXPECT_TRUE(has(t.kernel_functions, "balance_scx"));
  EXPECT_EQ(t.fallback_trigger, "scx_kf_exit");
  EXPECT_EQ(t.bpf_programs, std::vector<std::string>{"ktstr_dispatch"});
  EXPECT_EQ(why_dropped(t, "irqentry_exit_to_user_mode"), "syscall/irq entry");
  EXPECT_FALSE(has(t.kernel_functions, "scx_kf_exit"));
  expect_partition(t);
}

TEST(ProbeTargets, TraceDumpGivesTheSameTargetsAsTheSchedulerLog) {
  for (std::string k : {"7.3", "6.17"}) {
    auto from_trace = parse_trace_dump(data(k + "/crash/trace.txt"));
    ASSERT_TRUE(from_trace) << k;
    ProbeTargets a = probe_targets_from_exit(*from_trace);
    ProbeTargets b = probe_targets_from_exit(crash_exit(k));
    EXPECT_EQ(a.extracted, b.extracted) << k;
    EXPECT_EQ(a.kernel_functions, b.kernel_functions) << k;
    EXPECT_EQ(a.fallback_trigger, b.fallback_trigger) << k;
  }
}

TEST(ProbeTargets, FallsBackToTheDumpBacktraceWhenTheExitHasNone) {
  SchedExit e = crash_exit("7.3");
  ASSERT_FALSE(e.dump.empty());
  SchedExit dump_only;
  dump_only.dump = e.dump;
  ProbeTargets t = probe_targets_from_exit(dump_only);
  EXPECT_EQ(t.extracted, probe_targets_from_exit(e).extracted);
}

TEST(ProbeTargets, WorkqueueChainKeepsInterestingKernelFramesAndDedups) {
  // A chain from a kworker (the recipe's 7.0 crash) with one frame repeated.
  auto t = probe_targets_from_frames(frames(R"(
  scx_exit+0x50/0x70
  scx_bpf_error_bstr+0x78/0x90
  bpf_prog_1fed99378f3a8055_ktstr_enqueue+0x4d/0x1cb
  bpf__sched_ext_ops_enqueue+0x4b/0xa7
  do_enqueue_task+0x379/0x770
  enqueue_task_scx+0x10/0x20
  enqueue_task_scx+0x10/0x20
  ttwu_do_activate+0x5ca/0xfc0
  _raw_spin_unlock_irqrestore+0x20/0x40
  __schedule+0x5ca/0xfc0
  worker_thread+0xa2/0x2d0
  kthread+0xf3/0x130
  ret_from_fork+0x19b/0x260
  ret_from_fork_asm+0x1a/0x30
)"));
  EXPECT_EQ(t.extracted.size(), 13u);
  EXPECT_EQ(t.bpf_programs, std::vector<std::string>{"ktstr_enqueue"});
  EXPECT_EQ(t.bridges, std::vector<std::string>{"do_enqueue_task"});
  EXPECT_EQ(t.kernel_functions, (std::vector<std::string>{"do_enqueue_task", "enqueue_task_scx", "ttwu_do_activate"}));
  EXPECT_EQ(t.fallback_trigger, "scx_exit");
  EXPECT_EQ(why_dropped(t, "_raw_spin_unlock_irqrestore"), "locking/irq");
  EXPECT_EQ(why_dropped(t, "worker_thread"), "syscall/irq entry");
  EXPECT_EQ(why_dropped(t, "ret_from_fork_asm"), "syscall/irq entry");
  expect_partition(t);
}

TEST(ProbeTargets, GenericReasons) {
  EXPECT_EQ(generic_frame_reason("schedule_idle"), "scheduler core entry");
  EXPECT_EQ(generic_frame_reason("entry_SYSCALL_64_after_hwframe"), "syscall/irq entry");
  EXPECT_EQ(generic_frame_reason("do_syscall_64"), "syscall/irq entry");
  EXPECT_EQ(generic_frame_reason("scx_dump_state"), "sched_ext dump");
  EXPECT_EQ(generic_frame_reason("scx_disable_workfn"), "sched_ext exit path");
  EXPECT_EQ(generic_frame_reason("raw_spin_rq_lock_nested"), "locking/irq");
  EXPECT_EQ(generic_frame_reason("do_pick_task_scx"), "");
  EXPECT_EQ(generic_frame_reason("schedule_tail"), "");  // exact names are not prefixes
  EXPECT_EQ(generic_frame_reason("pick_next_task_scx"), "");
}

TEST(ProbeTargets, PlanJsonHasTheInterfaceShape) {
  ProbePlan p;
  p.kernel_functions.push_back({"do_pick_task_scx", {"rq", "task", "none", "scalar", "none", "none", "none"}, {}});
  p.bpf_programs = {"ktstr_dispatch"};
  p.fallback_kprobe = "scx_kf_exit";
  auto j = probe_plan_json(p);
  EXPECT_EQ(j["kernel_functions"][0]["name"], "do_pick_task_scx");
  EXPECT_EQ(j["kernel_functions"][0]["args"].size(), kMaxProbeArgs);  // capped at 6
  EXPECT_FALSE(j["kernel_functions"][0].contains("arg_names"));
  EXPECT_EQ(j["bpf_programs"][0], "ktstr_dispatch");
  EXPECT_EQ(j["trigger"]["tracepoint"], "sched_ext_exit");
  EXPECT_EQ(j["trigger"]["fallback_kprobe"], "scx_kf_exit");
  EXPECT_EQ(j["history_per_task"], 64);
  EXPECT_EQ(j["max_events"], 4096);
  EXPECT_FALSE(j.contains("kernel_probes_parallel"));
  p.kernel_probes_parallel = true;
  EXPECT_EQ(probe_plan_json(p)["kernel_probes_parallel"], true);
}

namespace {

// The vmlinux of a cached kernel: $KTSTR_TEST_VMLINUX, else the store's
// newest kernel with one.
std::string cached_vmlinux() {
  if (const char* v = std::getenv("KTSTR_TEST_VMLINUX"); v && *v) return v;
  auto store = db::Store::open(cache_dir());
  if (!store) return "";
  auto kernels = (*store)->list_kernels();
  if (!kernels) return "";
  for (auto& k : *kernels)
    if (!k.vmlinux_path.empty() && path_exists(k.vmlinux_path)) return k.vmlinux_path;
  return "";
}

}  // namespace

TEST(BtfArgs, KindsOfSchedExtFunctionsFromARealVmlinux) {
  std::string vmlinux = cached_vmlinux();
  if (vmlinux.empty()) {
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL() << "no cached vmlinux in CI";
    GTEST_SKIP() << "no cached kernel with a vmlinux (ktstr kernel fetch)";
  }
  auto args = kbuild::btf_function_args(vmlinux, {"do_pick_task_scx", "balance_scx", "scx_exit_task",
                                                 "dispatch_enqueue", "no_such_function_xyz"});
  ASSERT_TRUE(args) << args.error().msg;
  EXPECT_FALSE(args->count("no_such_function_xyz"));
  auto kinds = [&](const std::string& f) {
    std::vector<std::string> out;
    for (auto& a : args->at(f)) out.push_back(a.kind);
    return out;
  };
  // do_pick_task_scx(struct rq *rq, struct rq_flags *rf, bool force_scx) on 7.x;
  // balance_scx(struct rq *rq, struct task_struct *prev, struct rq_flags *rf) on 6.x.
  std::string caller = args->count("do_pick_task_scx") ? "do_pick_task_scx" : "balance_scx";
  ASSERT_TRUE(args->count(caller));
  EXPECT_EQ(kinds(caller).front(), "rq");
  EXPECT_EQ(args->at(caller).front().name, "rq");
  if (args->count("scx_exit_task")) {
    EXPECT_EQ(kinds("scx_exit_task").front(), "task");
  }
  if (args->count("dispatch_enqueue")) {
    auto k = kinds("dispatch_enqueue");
    EXPECT_TRUE(std::find(k.begin(), k.end(), "dsq") != k.end());
    EXPECT_TRUE(std::find(k.begin(), k.end(), "task") != k.end());
    EXPECT_TRUE(std::find(k.begin(), k.end(), "scalar") != k.end());
  }
}

TEST(BtfArgs, SchedExtOpsCallbacksFromARealVmlinux) {
  std::string vmlinux = cached_vmlinux();
  if (vmlinux.empty()) {
    if (const char* ci = std::getenv("CI"); ci && std::string(ci) == "true") FAIL() << "no cached vmlinux in CI";
    GTEST_SKIP() << "no cached kernel with a vmlinux (ktstr kernel fetch)";
  }
  auto args = kbuild::btf_probe_args(vmlinux, {"no_such_function_xyz"});
  ASSERT_TRUE(args) << args.error().msg;
  EXPECT_TRUE(args->functions.empty());
  auto kinds = [&](const std::string& member) {
    std::vector<std::string> out;
    for (auto& a : args->ops.at(member)) out.push_back(a.kind);
    return out;
  };
  // void (*dispatch)(s32 cpu, struct task_struct *prev); s32 (*init_task)(struct task_struct *p, ...);
  // void (*exit)(struct scx_exit_info *info).
  ASSERT_TRUE(args->ops.count("dispatch"));
  EXPECT_EQ(kinds("dispatch"), (std::vector<std::string>{"scalar", "task"}));
  ASSERT_TRUE(args->ops.count("exit"));
  EXPECT_EQ(kinds("exit"), std::vector<std::string>{"exit_info"});
  ASSERT_TRUE(args->ops.count("enqueue"));
  EXPECT_EQ(kinds("enqueue").front(), "task");
  EXPECT_FALSE(args->ops.count("name"));  // a char array, not a callback
}

TEST(BtfArgs, UnreadableFileIsAnError) {
  auto r = kbuild::btf_function_args("/nonexistent/vmlinux", {"schedule"});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("cannot read BTF from '/nonexistent/vmlinux'"), std::string::npos);
}

TEST(ProbeTargets, Kernel618ChainHasNoExitFrameSoTheGuestFindsTheExitPath) {
  // 6.18's chain as the kernel printed it: scx_exit is inlined away, the
  // innermost frame is the kfunc. The host names no fallback; the guest
  // attaches the exit path its BTF has (guest/agent/probes.cpp).
  auto t = probe_targets_from_frames(frames(R"(
  scx_bpf_error_bstr+0x7a/0xa0
  bpf_prog_a21df8816cf2e5ed_ktstr_dispatch+0x5e/0x18c
  bpf_trampoline_85899346297+0x9c/0x143
  bpf_prog_a21df8816cf2e5ed_ktstr_dispatch+0x9/0x18c
  balance_scx+0x23e/0x590
  __schedule+0x5ef/0xcf0
  schedule+0x27/0xd0
  do_nanosleep+0x5e/0x170
)"));
  EXPECT_EQ(t.fallback_trigger, "");
  EXPECT_EQ(why_dropped(t, "scx_bpf_error_bstr"), "sched_ext exit path");
  EXPECT_EQ(t.bpf_programs, std::vector<std::string>{"ktstr_dispatch"});
  expect_partition(t);
}
