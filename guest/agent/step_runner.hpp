// The scenario's steps (JOB version 5) against the running workers: which
// step is due, and doing it (workers.hpp run_workers says what each does).
#pragma once

#include "guest/agent/util.hpp"
#include "guest/agent/worker_slot.hpp"
#include "guest/agent/workers.hpp"

#include <functional>
#include <map>
#include <set>
#include <vector>

namespace ktstr::agent::detail {

// The scenario's steps against the live slots. Slots of added workers are
// appended; a slot's `now_in` follows moves.
class StepRunner {
 public:
  StepRunner(const proto::JobMsg& job, const WorkerOptions& options, const WorkerCallbacks& cb,
             std::vector<Slot>& slots)
      : job_(job), options_(options), cb_(cb), slots_(slots) {
    for (const proto::CgroupPlan& cg : job.scenario.cgroups) cpus_[cg.name] = cg.cpus;
  }

  bool pending() const { return next_ < job_.scenario.steps.size(); }
  // Whether a later step forks workers (the result pipe's write end stays open).
  bool adds_pending() const {
    for (size_t i = next_; i < job_.scenario.steps.size(); ++i)
      if (job_.scenario.steps[i].action == "add_workers") return true;
    return false;
  }
  // ms until the next step is due (0: now), or -1 when none is left.
  int wait_ms(uint64_t start_ns) const {
    if (!pending()) return -1;
    uint64_t due = start_ns + job_.scenario.steps[next_].after_ms * 1000000ull, now = monotonic_ns();
    return now >= due ? 0 : static_cast<int>((due - now) / 1000000 + 1);
  }

  // Starts the added slot `n` for `duration_ms`; empty, or why not.
  using ForkFn = std::function<std::string(size_t n, uint64_t duration_ms)>;

  // Does every step that is due, reporting each through the callbacks.
  void run_due(uint64_t start_ns, const ForkFn& fork_worker);

  // CPUs a cpu_offline step took down and no step brought back.
  void restore_cpus();

 private:
  std::string online_path(int cpu) const { return options_.cpu_sysfs + "/cpu" + std::to_string(cpu) + "/online"; }
  std::vector<size_t> live_in(const std::string& cgroup) const;
  // Does one step; empty, or why it could not be done. `detail` says what was done.
  std::string run_one(const proto::StepPlan& step, uint64_t elapsed_ms, std::string& detail, const ForkFn& fork_worker);
  // One per action (run_one dispatches).
  std::string hotplug(const proto::StepPlan& step, std::string& detail);
  std::string add_workers(const proto::StepPlan& step, uint64_t elapsed_ms, std::string& detail,
                          const ForkFn& fork_worker);
  std::string remove_workers(const proto::StepPlan& step, std::string& detail);
  std::string move_workers(const proto::StepPlan& step, std::string& detail);
  std::string set_cpus(const proto::StepPlan& step, std::string& detail);

  const proto::JobMsg& job_;
  const WorkerOptions& options_;
  const WorkerCallbacks& cb_;
  std::vector<Slot>& slots_;
  std::map<std::string, std::string> cpus_;  // each cgroup's cpuset now
  std::set<int> offline_;
  size_t next_ = 0;
};

}  // namespace ktstr::agent::detail
