// Pass or fail, and why, from what the guest sent and how the VM ended.
#include "run/pipeline.hpp"

#include "core/checks.hpp"
#include "core/crash_parse.hpp"
#include "core/matcher.hpp"
#include "core/scenario.hpp"
#include "guest/proto/messages.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ktstr::runner {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : " ") + x;
  return "[" + s + "]";
}

// The first way the guest's view differs from the topology asked for.
std::string topology_mismatch(const Topology& t, const GuestTopology& g) {
  if (g.cpus != t.cpus())
    return fmt::format("guest sees {} CPUs, topology {} has {}", g.cpus, t.to_string(), t.cpus());
  if (g.llc_groups != t.expected_llc_groups())
    return "guest LLC groups " + join(g.llc_groups) + ", expected " + join(t.expected_llc_groups());
  if (g.numa_nodes != t.expected_node_cpus())
    return "guest NUMA nodes " + join(g.numa_nodes) + ", expected " + join(t.expected_node_cpus());
  if (g.smt_groups != t.expected_smt_groups())
    return "guest SMT siblings " + join(g.smt_groups) + ", expected " + join(t.expected_smt_groups());
  return "";
}

}  // namespace

// Sets the verdict and returns true when the scheduler failed: it never
// attached (verifier rejection or otherwise), or it died or was ejected.
bool judge_scheduler(RunResult& r) {
  const SchedulerRun& s = *r.sched;
  if (!s.attached) {
    r.passed = false;
    r.fail_at_s = -1;  // the test never started
    if (looks_like_verifier_failure(s.log)) {
      r.failure_kind = "verifier";
      r.verifier_log = collapse_verifier_log(s.log);
      std::string last = verifier_error_line(s.log);
      r.reason = "scheduler failed to load: the BPF verifier rejected it" + (last.empty() ? "" : " (" + last + ")");
    } else {
      r.failure_kind = "attach_failed";
      // libbpf's own words say why (a missing kernel config, a kfunc the
      // kernel lacks, ...); the full output is in the scheduler log section.
      std::string why = libbpf_error_line(s.log);
      r.reason = "scheduler never attached" + (why.empty() ? "" : ": " + why);
      if (s.exited) r.reason += fmt::format(" (it exited with status {})", s.exit_code);
    }
    return true;
  }
  bool left_enabled = false;
  double left_at = 0;
  for (auto& st : s.states)
    if (st.t_s >= 0 && st.state != "enabled" && !left_enabled) {
      left_enabled = true;
      left_at = st.t_s;
    }
  if (!s.exited && !left_enabled) return false;

  auto exit = exit_from_captures(s.log, r.sched_ext_dump, r.dmesg);
  // The agent stops the scheduler when the run ends (it unregisters, kind
  // SCX_EXIT_UNREG): that is the normal end, unless the kernel had already
  // ejected it with an error.
  bool error_exit = exit && exit->kind >= kScxExitError;
  if (s.stopped_by_ktstr && !error_exit) return false;
  if (exit) r.exit = std::move(*exit);
  r.passed = false;
  r.failure_kind = r.exit && r.exit->is_stall() ? "stall" : "scheduler_died";
  r.reason = "scheduler process died unexpectedly during workload";
  if (!s.exited) r.reason = "the kernel disabled the scheduler during workload";
  r.fail_at_s = left_enabled ? left_at : s.exit_t_s;
  return true;
}

// expect_err: a scheduler failure is the expected outcome; no failure is not.
void apply_expect_err(RunResult& r, const TestSpec& spec) {
  if (!spec.expect_err) return;
  static const std::vector<std::string> kSchedFailures = {"scheduler_died", "stall", "verifier", "attach_failed"};
  bool sched_failed = std::find(kSchedFailures.begin(), kSchedFailures.end(), r.failure_kind) != kSchedFailures.end();
  if (r.passed) {
    r.passed = false;
    r.failure_kind = "check";
    r.failed_check = "expect_err";
    r.reason = no_error_message();
    return;
  }
  if (!sched_failed) return;  // a VM or agent failure is not the expected error
  // The matchers pin which error: a different crash is never a pass.
  std::string corpus = matcher_corpus(r.sched ? r.sched->log : "", r.sched_ext_dump);
  MatchOutcome m = evaluate_matchers(spec, corpus);
  if (!m.ok) {
    r.diagnostics.push_back("the scheduler failed (" + r.reason + "), but not with the pinned error");
    r.failure_kind = "matcher";
    r.reason = m.message;
    return;
  }
  r.diagnostics.push_back("expected failure (expect_err = true): " + r.reason);
  r.passed = true;
  r.expected_failure = true;
}

void evaluate(RunResult& r, const TestSpec& spec, const ResultCollector& c, const VmOutcome& vm) {
  evaluate_run(r, spec, c, vm);
  apply_expect_err(r, spec);
}

void evaluate_run(RunResult& r, const TestSpec& spec, const ResultCollector& c, const VmOutcome& vm) {
  auto failed = [&](std::string reason, double at_s) {
    r.passed = false;
    r.reason = std::move(reason);
    r.fail_at_s = at_s;
    if (r.failure_kind.empty()) r.failure_kind = "vm";
  };
  double wall = vm.wall_time.count() / 1000.0;
  // Seconds into the test: from the moment workers started, when known.
  double into_test = wall - (vm.boot_time ? vm.boot_time->count() / 1000.0 : 0);
  if (auto s = c.stage_time_ms(proto::stage::kWorkersStarted)) {
    if (auto d = c.stage_time_ms(proto::stage::kWorkersDone)) into_test = (*d - *s) / 1000.0;
  }

  if (!c.done()) {
    std::string why;
    switch (vm.end) {
      case VmEnd::kWatchdogNoOutput:
        why = "VM watchdog: the guest stopped producing output";
        break;
      case VmEnd::kWatchdogTimeout: why = "VM watchdog: the run exceeded its time limit"; break;
      case VmEnd::kPanicked: why = "guest kernel panicked"; break;
      case VmEnd::kRebooted: why = "guest rebooted unexpectedly"; break;
      case VmEnd::kOutputLimit: why = "guest flooded the console past the host's limit"; break;
      case VmEnd::kQemuFailedToStart: why = "QEMU failed to start"; break;
      case VmEnd::kQemuFailed: why = fmt::format("QEMU exited with status {}", vm.qemu_status); break;
      case VmEnd::kInterrupted: why = "interrupted"; break;
      case VmEnd::kPoweredOff: why = "guest powered off before the run finished"; break;
    }
    if (!c.hello_seen() && vm.end != VmEnd::kQemuFailedToStart) why += " (the guest agent never started)";
    else if (!c.stage().empty()) why += " (last stage: " + c.stage() + ")";
    return failed(why, wall);
  }
  if (!c.done_ok()) return failed("guest agent failed: " + c.done_error(), wall);

  // A BPF scheduler's faults come before the workload checks: once it died,
  // the workers' numbers say little.
  if (r.sched && judge_scheduler(r)) return;
  if (r.sched) {
    for (auto& m : r.sched->map_writes)
      if (!m.ok) {
        r.failure_kind = "map_write";
        return failed(fmt::format("map write {}:{} = {} failed: {}", m.map, m.var, m.value, m.error), m.t_s);
      }
  }

  r.failure_kind = "check";
  r.failed_check = "topology";
  if (!c.topology()) return failed("the guest did not report its topology", wall);
  if (auto m = topology_mismatch(spec.topology, *c.topology()); !m.empty())
    return failed("topology mismatch: " + m, 0);

  auto plan = plan_scenario(spec, spec.topology);
  size_t expected_workers = 0;
  if (plan) {
    for (auto& cg : plan->cgroups) expected_workers += cg.workers;
    for (auto& st : plan->steps)
      if (st.action == "add_workers") expected_workers += st.count;  // added workers report too
  }
  r.failed_check = "workers";
  if (c.workers().size() != expected_workers)
    return failed(fmt::format("{} of {} workers reported results", c.workers().size(), expected_workers), into_test);

  auto monitor = c.monitor();
  CheckInputs in;
  in.workers = &c.workers();
  in.plan = plan ? &*plan : nullptr;
  in.topology = c.topology() ? &*c.topology() : nullptr;
  in.monitor = &monitor;
  in.steps = &r.steps;
  in.duration_s = spec.duration_s;
  if (auto fs = run_checks(spec.checks, in); !fs.empty()) {
    // Every failed check, so one run tells the user all that is wrong.
    r.failed_check = fs.front().check;
    std::string reason = fs.size() == 1 ? fs.front().message : fmt::format("{} checks failed", fs.size());
    double at = -1;
    for (auto& f : fs) {
      if (fs.size() > 1) reason += fmt::format("; {}: {}", f.check, f.message);
      if (f.t_s >= 0 && (at < 0 || f.t_s < at)) at = f.t_s;
    }
    r.check_failures = std::move(fs);
    return failed(std::move(reason), at >= 0 ? at : into_test);
  }
  r.passed = true;
  r.reason.clear();
  r.failure_kind.clear();
  r.failed_check.clear();
  r.check_failures.clear();
}

}  // namespace ktstr::runner
