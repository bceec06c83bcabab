// Pass or fail, and why, from what the guest sent and how the VM ended.
#include "cmd/pipeline.hpp"

#include "core/scenario.hpp"
#include "guest/proto/messages.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ktstr::cmd {
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

void evaluate(RunResult& r, const TestSpec& spec, const ResultCollector& c, const VmOutcome& vm) {
  auto failed = [&](std::string reason, double at_s) {
    r.passed = false;
    r.reason = std::move(reason);
    r.fail_at_s = at_s;
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

  if (!c.topology()) return failed("the guest did not report its topology", wall);
  if (auto m = topology_mismatch(spec.topology, *c.topology()); !m.empty())
    return failed("topology mismatch: " + m, 0);

  auto plan = plan_scenario(spec, spec.topology);
  size_t expected_workers = 0;
  if (plan)
    for (auto& cg : plan->cgroups) expected_workers += cg.workers;
  if (c.workers().size() != expected_workers)
    return failed(fmt::format("{} of {} workers reported results", c.workers().size(), expected_workers), into_test);

  for (auto& w : c.workers()) {
    if (w.iterations == 0)
      return failed(fmt::format("worker {}/{} never ran (starved)", w.cgroup, w.index), into_test);
  }
  if (spec.checks.max_gap_ms) {
    for (auto& w : c.workers()) {
      double gap_ms = w.max_gap_ns / 1e6;
      if (gap_ms > *spec.checks.max_gap_ms)
        return failed(fmt::format("worker {}/{} waited {:.1f}ms off-CPU, more than max_gap_ms = {}", w.cgroup,
                                  w.index, gap_ms, *spec.checks.max_gap_ms),
                      into_test);
    }
  }
  r.passed = true;
  r.reason.clear();
}

}  // namespace ktstr::cmd
