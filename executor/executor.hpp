// The interface every `--executor` has: run units of work (work_unit.hpp),
// hand back each one's outcome as it finishes, stop early. `local` runs
// each unit as a child process of this ktstr, at most N at once; `slurm`
// submits them all as one job array (slurm.hpp). The caller does not know
// which: both give the unit's standard output (its result document), its
// exit status and its standard error.
#pragma once

#include "executor/slurm.hpp"
#include "executor/work_unit.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::executor {

// Called in the caller's thread as each unit ends (outcome.error set when
// it ended without a status: lost, cancelled, could not start). Returning
// false stops the run: no unit starts any more; local units already
// running end on their own and are still handed back, a Slurm job is
// cancelled and run() returns.
using OnFinished = std::function<bool(UnitOutcome& outcome)>;
// What is running, for a progress line; "" clears it.
using OnProgress = std::function<void(const std::string& line)>;

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs every unit. An error: the executor itself failed (a child could
  // not be started, sbatch refused the job, the job directory is
  // unreadable); outcomes that arrived before went to `on_finished`.
  virtual Status run(const std::vector<WorkUnit>& units, const OnFinished& on_finished) = 0;
};

// Where units run: `--executor local` (child processes here) or `slurm`.
enum class ExecutorKind { kLocal, kSlurm };
// `--executor`: "local" or "slurm"; anything else is an error with a hint.
Result<ExecutorKind> parse_executor_name(const std::string& text);

struct LocalOptions {
  unsigned jobs = 2;  // at most this many units at once
  OnProgress progress;
};
std::unique_ptr<Executor> local_executor(LocalOptions opts);

// `opts.job_dir` is created under it (a fresh directory per run, left for
// inspection; a unit's log and status stay there).
std::unique_ptr<Executor> slurm_executor(SlurmOptions opts, OnProgress progress = {});

// A fresh job directory under `parent` (mkdtemp "job-XXXXXX").
Result<std::string> new_job_dir(const std::string& parent);

// While a Slurm job runs, SIGINT and SIGTERM cancel it (scancel) before the
// process ends with that signal; the local executor's children die with
// their parent (PR_SET_PDEATHSIG) without help.

}  // namespace ktstr::executor
