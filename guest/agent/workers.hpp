// The scenario's workload: one cgroup per plan entry, N forked workers each,
// all released at once, each measuring itself and reporting over a pipe.
#pragma once

#include "core/result.hpp"
#include "guest/agent/work.hpp"
#include "guest/proto/messages.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace ktstr::agent {

struct WorkerOptions {
  // Parent of the per-plan cgroups, e.g. "/sys/fs/cgroup/ktstr"; its parent
  // must be a cgroup2 directory. Empty: workers stay in the agent's cgroup
  // (unit tests on the host) and "cpus" is applied as CPU affinity.
  std::string cgroup_root;
  // How long past duration_ms to wait for reports before killing workers.
  unsigned slack_ms = 30000;
};

struct WorkerCallbacks {
  std::function<void(const std::string& level, const std::string& text)> log;
  std::function<void()> started;                           // all workers released
  std::function<void(const proto::WorkerMsg&)> report;     // one per worker, as they finish
  // Called about every tick_ms while the workers run; returning true stops
  // them early (SIGUSR1: each ends its loop and still reports what it did).
  std::function<bool()> tick;
  unsigned tick_ms = 20;
};

// The signal that ends a worker's loop early.
inline constexpr int kWorkerStopSignal = 10;  // SIGUSR1

// Runs the job's workers to completion and reaps them. Fails if a cgroup
// cannot be set up or a worker did not report.
Status run_workers(const proto::JobMsg& job, const WorkerOptions& options,
                   const WorkerCallbacks& callbacks);

}  // namespace ktstr::agent
