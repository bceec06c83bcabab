// The `[test.checks]` of a spec judged on what a run measured: the workers'
// stats, the guest's topology and the in-guest monitor's samples. Each failure
// names the cgroup or worker and the measured number (CheckFailure,
// run_result.hpp). Pure logic: the pipeline (cmd/evaluate.cpp) calls it once
// the run itself succeeded, and reports every failing check.
#pragma once

#include "core/run_result.hpp"
#include "core/scenario.hpp"
#include "core/spec.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct CheckInputs {
  const std::vector<WorkerStats>* workers = nullptr;
  const ScenarioPlan* plan = nullptr;                 // cgroups and their cpusets
  const GuestTopology* topology = nullptr;            // NUMA nodes as the guest saw them
  const std::vector<MonitorSample>* monitor = nullptr;
  const std::vector<StepEvent>* steps = nullptr;      // executed steps (set_cpus changes cpusets)
  double duration_s = 0;                              // the workload's length
};

// fail_on_stall: a CPU stalled when, over consecutive monitor samples
// spanning more than this, its run queue held 2 or more tasks (one running,
// one waiting) and its nr_switches did not move: a runnable task waited
// while the CPU switched to nothing, the sched_ext watchdog's idea on a
// test's time scale. EEVDF and a working sched_ext scheduler switch within
// a few ms; 2 s leaves room for a TCG vCPU the host did not run for a while.
inline constexpr double kStallThresholdS = 2.0;

// Every failing check, one failure each (its first offending worker,
// cgroup or CPU), in a fixed order: not_starved (always judged: every worker
// did at least one iteration), max_gap_ms, max_spread_pct, isolation,
// numa_local, max_imbalance, max_wakeup_latency_us, max_weight_error_pct,
// fail_on_stall; empty when all hold.
//
// isolation across steps: a worker's CPUs over the whole run must lie in the
// union of every cpuset its cgroup (and the cgroup a move put it in) had
// during the run; and when a step changed its cpuset (set_cpus, or a move),
// the CPUs it used after the last change must lie in the cpuset in force at
// the end. A cpuset whose CPUs all went offline (cpu_offline steps) leaves
// the kernel running the cgroup on its parent's CPUs: that is a failure too
// (the isolation asked for is gone), and the message says which step did it.
std::vector<CheckFailure> run_checks(const Checks& checks, const CheckInputs& in);

// Iterations per second of wall time of one worker.
double worker_rate(const WorkerStats& w);

}  // namespace ktstr
