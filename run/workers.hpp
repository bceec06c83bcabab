// The worker pool: one worker process (`ktstr worker`, run/worker.hpp) per
// unit of work through an executor (local processes, at most N at once, or
// one Slurm job array); the submitter reads each worker's result document as
// it ends. `ktstr test --jobs` (run/tests_run.hpp) and `ktstr gauntlet`
// (run/gauntlet_run.hpp) run their units here. Workers never open the
// store: the submitter records each unit's runs as it comes back.
#pragma once

#include "run/units.hpp"
#include "executor/executor.hpp"
#include "run/progress.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {


// One worker process: its argv (`ktstr worker REQUEST`, run/worker.hpp)
// and what the progress line and errors call it ("test 'x'").
struct WorkerUnit {
  std::vector<std::string> argv;
  std::string label;
  unsigned cpus = 1, memory_mb = 512;  // what its VM needs (a Slurm task asks for it)
};
struct WorkerPoolOptions {
  unsigned jobs = 2;  // local: at most this many at once
  // `--executor`: local (worker processes here) or slurm (one job array;
  // its job directory under slurm_dir, else under the cache).
  executor::ExecutorKind executor = executor::ExecutorKind::kLocal;
  std::string slurm_dir, slurm_partition;
  // true (test --jobs): a worker that printed no result document stops new
  // units from starting and run_workers returns its error. false (gauntlet):
  // its error goes to the callback and the other units go on.
  bool stop_on_error = true;
};
// Called in the parent, one unit at a time, as each worker ends: its
// document, or (without stop_on_error) why it gave none.
using UnitEnded = std::function<void(size_t unit, Result<WorkerOutput> output)>;

// The executor's work units for these workers (what a Slurm task asks for
// comes from their CPUs and memory).
std::vector<executor::WorkUnit> work_units(const std::vector<WorkerUnit>& units);

// Runs every unit's worker, at most `jobs` at once, showing the running
// ones on `progress`; relays each distinct stderr line of a worker that
// gave its document. Returns the error that stopped the pool, if any
// (a worker that could not start, or with stop_on_error a failed one), once
// the running workers ended.
std::optional<Error> run_workers(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
                                 const UnitEnded& on_end);

}  // namespace ktstr::runner
