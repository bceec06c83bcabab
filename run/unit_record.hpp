// The submitting side of a unit of work (`ktstr test`, `--jobs`, a gauntlet
// cell, a Slurm array task): the unit ran its test and its auto-repro
// without a store and handed back the runs; only the submitting ktstr
// records them (run row, crash with its repro), so no worker ever writes
// the SQLite store and none needs it on its node.
#pragma once

#include "run/units.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/run_result.hpp"
#include "core/spec.hpp"
#include "db/store.hpp"

#include <cstdint>
#include <string>

namespace ktstr::runner {

// Records one run as `ktstr test` always has: the run row (without the
// repro, as run before it), then an unexpected scheduler crash with its
// artifacts, then the repro the unit ran (repros table, the crash's report
// refreshed). `replayed_crash_id`: the crash whose repro stands for this
// one (same signature earlier in the unit), noted in its diagnostics.
// Errors: the run row could not be written; a crash or repro that could
// not be is a diagnostic of the run.
Status record_unit_run(db::Store& store, RunResult& r, const TestSpec& spec, const KernelRecord& kernel,
                       int64_t started, const std::string& replayed_crash_id = "");

// A worker's runs, each read back, recorded (record_unit_run) and rendered
// into its WorkerRun: result (now with run_id and crash_id), line, failure,
// outline. `runs`, when given, receives the recorded RunResults.
Status record_worker_output(db::Store& store, WorkerOutput& out, const TestSpec& spec, const KernelRecord& kernel,
                            int64_t started, bool verbose, std::vector<RunResult>* runs = nullptr);

}  // namespace ktstr::runner
