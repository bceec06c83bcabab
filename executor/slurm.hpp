// Units of work as one Slurm job array (`--executor slurm`). Each array task
// runs `<runner> run-unit <job_dir> $SLURM_ARRAY_TASK_ID` (work_unit.hpp); the
// submitter only reads the job directory and asks squeue which tasks are still
// queued, so a task that dies without a status file (node lost, cancelled,
// killed at its time limit) is noticed rather than waited on forever.
#pragma once

#include "executor/work_unit.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::executor {

struct SlurmOptions {
  std::string job_dir;     // created; visible at the same path on the nodes
  std::string runner;      // the ktstr binary the tasks run (same path on the nodes)
  std::string partition;   // empty: the cluster's default partition
  std::string job_name = "ktstr";
  unsigned max_parallel = 0;  // at most this many tasks at once (--array=...%M); 0: no limit
  std::vector<std::string> extra_sbatch_args;
  std::chrono::milliseconds poll{200};          // status files
  std::chrono::milliseconds queue_every{2000};  // squeue
  std::vector<std::string> env_extra;           // for sbatch, squeue, scancel (SLURM_CONF=...)
  // Asked between polls: true cancels the job and wait() returns the error
  // "cancelled" (a signal, or the caller wants no more outcomes).
  std::function<bool()> stop;
};

// What squeue says of a job's array tasks (`--array --format=%K|%T|%r`):
// the indices still queued or running, and a pending task's reason when it
// is one Slurm gives for a job that can never start (PartitionConfig: it
// asks for more CPUs or memory than any node of the partition has;
// BadConstraints), so the submitter does not wait forever.
struct SlurmQueue {
  std::vector<size_t> indices;
  std::string never_starts;  // the reason, else empty
};
Result<SlurmQueue> parse_squeue_tasks(const std::string& out, size_t units);

class SlurmExecutor {
 public:
  explicit SlurmExecutor(SlurmOptions opts) : opts_(std::move(opts)) {}
  SlurmExecutor(const SlurmExecutor&) = delete;
  SlurmExecutor& operator=(const SlurmExecutor&) = delete;
  // A job still queued or running is cancelled.
  ~SlurmExecutor();

  // Write the units and submit them as one job array; returns the job id.
  Result<std::string> submit(const std::vector<WorkUnit>& units);
  // Until every unit has finished or left the queue without a status. Each
  // outcome goes to `on_finished` as it arrives; all are returned in unit
  // order. Past `timeout` the job is cancelled and unfinished units say so.
  Result<std::vector<UnitOutcome>> wait(const std::function<void(const UnitOutcome&)>& on_finished = {},
                                        std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  Status cancel();
  const std::string& job_id() const { return job_id_; }

 private:
  // What squeue still lists for the job.
  Result<SlurmQueue> queued() const;

  SlurmOptions opts_;
  std::string job_id_;
  size_t units_ = 0;
  bool done_ = false;
};

// sbatch's argv for `units` as one job array running `script`: every task
// asks for the largest unit's CPUs and memory (MB), since an array has one
// request for all its tasks.
std::vector<std::string> sbatch_argv(const SlurmOptions& opts, const std::vector<WorkUnit>& units,
                                     const std::string& script);

// The array task's script: fixed text, no user data (paths come as sbatch's
// script arguments, never spliced into shell code).
std::string slurm_task_script();

// The job id from `sbatch --parsable` output ("123" or "123;cluster").
Result<std::string> parse_sbatch_job_id(const std::string& out);

}  // namespace ktstr::executor
