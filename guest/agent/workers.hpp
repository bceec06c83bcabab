// The scenario's workload: one cgroup per plan entry, N forked workers each,
// all released at once when every one is in its cgroup (up to 10 s), each
// measuring itself and reporting over a pipe. A
// worker that first gets a CPU after the test's window (release +
// duration_ms) closed reports 0 iterations: it never ran in the test.
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
  // Where cpu_offline / cpu_online steps write: <cpu_sysfs>/cpuN/online.
  std::string cpu_sysfs = "/sys/devices/system/cpu";
};

struct WorkerCallbacks {
  std::function<void(const std::string& level, const std::string& text)> log;
  std::function<void()> started;                           // all workers released
  std::function<void(const proto::WorkerMsg&)> report;     // one per worker, as they finish
  std::function<void(const proto::StepMsg&)> step;         // one per scenario step, once done (or not)
  // Called about every tick_ms while the workers run; returning true stops
  // them early (SIGUSR1: each ends its loop and still reports what it did).
  std::function<bool()> tick;
  unsigned tick_ms = 20;
};

// The signal that ends a worker's loop early.
inline constexpr int kWorkerStopSignal = 10;  // SIGUSR1

// Runs the job's workers to completion and reaps them, doing the scenario's
// steps (JOB version 5) at their time: add_workers forks workers that run
// for the rest of the duration; remove_workers stops the newest workers of
// the cgroup (they still report); move_workers writes the first workers'
// pids into the other cgroup; set_cpus writes the cgroup's cpuset.cpus (CPU
// affinity where cpusets are unavailable); cpu_offline/cpu_online write
// <cpu_sysfs>/cpuN/online, and CPUs still offline at the end go back
// online. A step that cannot be done is reported with why, not skipped.
// Fails if a cgroup cannot be set up or a worker did not report.
Status run_workers(const proto::JobMsg& job, const WorkerOptions& options,
                   const WorkerCallbacks& callbacks);

}  // namespace ktstr::agent
