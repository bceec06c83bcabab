// The agent's bookkeeping of one worker (workers.cpp), shared with the step
// runner (step_runner.cpp) that changes the workload while it runs.
#pragma once

#include "guest/proto/messages.hpp"

#include <cstdint>
#include <string>
#include <sys/types.h>

namespace ktstr::agent::detail {

struct Slot {
  const proto::CgroupPlan* plan;
  uint32_t index;
  std::string cgroup_dir;   // empty: no cgroup
  bool use_affinity;        // cpuset unavailable: pin with sched_setaffinity
  pid_t pid = -1;
  bool reported = false;
  std::string cpus;         // the cpuset to pin to with use_affinity (the cgroup's at fork time)
  std::string now_in;       // the cgroup it is in now (a move changes it)
  std::string moved_to;     // set by move_workers
  bool stopping = false;    // remove_workers sent it the stop signal
};

constexpr size_t kMaxSlots = proto::kMaxWorkersPerJob;

// Cpuset epochs shared with the workers (work_cpuset_epoch), one per slot:
// shared memory (MAP_SHARED, made on first use and kept for the agent's
// life) that workers forked afterwards see; null when it could not be made
// or no job with steps ran yet.
uint32_t* cpuset_epochs();
// Makes the epochs (if needed) and sets them all to 0 for a new run.
void reset_cpuset_epochs();
// One more cpuset change of `slot` (a set_cpus or move took effect).
void bump_cpuset_epoch(size_t slot);

// CPU affinity of `pid` (0: the caller) to a cpulist; empty on success.
std::string pin(pid_t pid, const std::string& cpulist);

}  // namespace ktstr::agent::detail
