// The parent side of `ktstr test --jobs N`: one worker process (ktstr
// itself) per unit of work, at most N at once; the parent reads each
// worker's result document, prints a line per run as its unit finishes and,
// once all are done, the failure reports, repeat tallies and summary (or the
// --json document) in spec order. Workers never open the store: the parent
// records each unit's runs as it comes back (ParallelTests::record).
// The pool itself (run_workers) also runs `ktstr gauntlet`'s cells.
#pragma once

#include "run/units.hpp"
#include "run/progress.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {


// One worker process: its argv (ktstr itself with the hidden --worker-*
// options) and what the progress line and errors call it ("test 'x'").
struct WorkerUnit {
  std::vector<std::string> argv;
  std::string label;
  unsigned cpus = 1, memory_mb = 512;  // what its VM needs (a Slurm task asks for it)
};
struct WorkerPoolOptions {
  unsigned jobs = 2;  // local: at most this many at once
  // `--executor`: "local" (worker processes here) or "slurm" (one job
  // array; its job directory under slurm_dir, else under the cache).
  std::string executor = "local";
  std::string slurm_dir, slurm_partition;
  // true (test --jobs): a worker that printed no result document stops new
  // units from starting and run_workers returns its error. false (gauntlet):
  // its error goes to the callback and the other units go on.
  bool stop_on_error = true;
};
// Called in the parent, one unit at a time, as each worker ends: its
// document, or (without stop_on_error) why it gave none.
using UnitEnded = std::function<void(size_t unit, Result<WorkerOutput> output)>;

// Runs every unit's worker, at most `jobs` at once, showing the running
// ones on `progress`; relays each distinct stderr line of a worker that
// gave its document. Returns the error that stopped the pool, if any
// (a worker that could not start, or with stop_on_error a failed one), once
// the running workers ended.
std::optional<Error> run_workers(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
                                 const UnitEnded& on_end);

struct ParallelTests {
  std::vector<std::string> names;                    // the selected tests, spec order
  std::vector<std::vector<std::string>> worker_argv;  // per test: the worker's argv without --worker-runs
  unsigned repeat = 1;
  unsigned jobs = 2;
  bool json = false;
  // Records a unit's runs of test `test` as it comes back and fills each
  // WorkerRun's line, failure and outline (cmd/unit_record.hpp); may throw.
  std::function<void(size_t test, WorkerOutput& out)> record;
  WorkerPoolOptions pool;  // the executor (its jobs are `jobs`)
  std::vector<unsigned> cpus, memory_mb;  // per test: what its VM needs
};

// Runs every unit, prints, returns the exit status (0 all passed, 1 a test
// failed). A worker that ended without a result document (a host-side
// error) stops new units from starting; once the running ones end, its
// error is thrown as Fatal, as the sequential run would have.
int run_tests_in_parallel(const ParallelTests& p);

}  // namespace ktstr::runner
