// The parent side of `ktstr test --jobs N`: one worker process (ktstr
// itself) per unit of work, at most N at once; the parent reads each
// worker's result document, prints a line per run as its unit finishes and,
// once all are done, the failure reports, repeat tallies and summary (or the
// --json document) in spec order. Workers record their runs in the store.
#pragma once

#include "cmd/jobs.hpp"

#include <string>
#include <vector>

namespace ktstr::cmd {

struct ParallelTests {
  std::vector<std::string> names;                    // the selected tests, spec order
  std::vector<std::vector<std::string>> worker_argv;  // per test: the worker's argv without --worker-runs
  unsigned repeat = 1;
  unsigned jobs = 2;
  bool json = false;
};

// Runs every unit, prints, returns the exit status (0 all passed, 1 a test
// failed). A worker that ended without a result document (a host-side
// error) stops new units from starting; once the running ones end, its
// error is thrown as Fatal, as the sequential run would have.
int run_tests_in_parallel(const ParallelTests& p);

}  // namespace ktstr::cmd
