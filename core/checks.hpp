// The `[test.checks]` of a spec judged on what a run measured: the workers'
// stats, the guest's topology and the in-guest monitor's samples. Each failure
// names the cgroup or worker and the measured number. Pure logic: the
// pipeline (cmd/evaluate.cpp) calls it once the run itself succeeded.
#pragma once

#include "core/run_result.hpp"
#include "core/scenario.hpp"
#include "core/spec.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct CheckFailure {
  std::string check;    // "max_gap_ms", "max_spread_pct", ...
  std::string message;  // names the cgroup or worker and the number
  double t_s = -1;      // seconds into the test when known, else < 0
};

struct CheckInputs {
  const std::vector<WorkerStats>* workers = nullptr;
  const ScenarioPlan* plan = nullptr;                 // cgroups and their cpusets
  const GuestTopology* topology = nullptr;            // NUMA nodes as the guest saw them
  const std::vector<MonitorSample>* monitor = nullptr;
  double duration_s = 0;                              // the workload's length
};

// The first failing check in a fixed order (max_gap_ms, max_spread_pct,
// isolation, numa_local, max_imbalance, max_wakeup_latency_us); nullopt when
// all hold.
std::optional<CheckFailure> run_checks(const Checks& checks, const CheckInputs& in);

// Iterations per second of wall time of one worker.
double worker_rate(const WorkerStats& w);

}  // namespace ktstr
