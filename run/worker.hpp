// A worker: one unit of a `ktstr test --jobs N`, `--executor slurm` or
// `gauntlet` run, in its own process (`ktstr worker REQUEST`, plumbing like
// git's upload-pack: users do not type it). The submitter describes the unit
// in one WorkerRequest, passed as JSON on the worker's argv; the worker runs
// it without opening the store (the kernel's record carries its
// content-addressed paths, the artifact directory the initramfs cache) and
// prints its WorkerOutput document (run/units.hpp) on stdout for the
// submitter to record. This is the one definition of what a worker gets.
#pragma once

#include "run/unit_run.hpp"
#include "run/units.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace ktstr::runner {

struct WorkerRequest {
  // The test: its spec file and name, or (`ktstr test --scenario`) the
  // ad-hoc test itself as spec TOML, which it round-trips exactly.
  std::string spec_file;
  std::string spec_toml;
  std::string test;
  CellOverrides overrides;  // a gauntlet cell's topology and scheduler arguments
  KernelRecord kernel;
  std::string artifacts_dir;
  UnitOptions options;      // options.seed: set once per test by the submitter
  TestUnit unit;             // which of the test's --repeat runs (1 of 1 without)
};

nlohmann::json worker_request_json(const WorkerRequest& r);
// Strict: anything missing or of the wrong type is an error.
Result<WorkerRequest> parse_worker_request(std::string_view text);

// The worker's argv: this ktstr, `worker`, the request.
std::vector<std::string> worker_argv(const WorkerRequest& r);

// The request's test, loaded and selected, with the cell's overrides applied
// before anything is checked, run or recorded, then checked as `ktstr test`
// checks a test (scheduler path, a plan whose steps can happen).
Result<TestSpec> worker_test(const WorkerRequest& r);

// Runs the unit and returns the document to print (started_at, peak RSS set).
// Host-side errors throw Fatal, as in `ktstr test`.
WorkerOutput run_worker(const WorkerRequest& r, const TestSpec& spec);

}  // namespace ktstr::runner
