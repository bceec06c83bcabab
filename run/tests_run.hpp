// `ktstr test`'s run: every selected test as units of work, in this process
// (one unit: a worker would add nothing) or in worker processes through an
// executor (`--jobs N`, `--executor slurm`). Each unit's runs are recorded
// here, the only writer of the store, as the unit comes back (run/
// unit_record.hpp); the text ktstr prints goes to a Printer in its order: a
// line per run as it ends, the reports, repeat tallies and the summary (or
// the --json document); with --junit the runs also go to a JUnit file at
// the end (run/junit.hpp).
#pragma once

#include "run/junit.hpp"
#include "run/progress.hpp"
#include "run/unit_run.hpp"
#include "run/units.hpp"
#include "run/workers.hpp"
#include "core/records.hpp"
#include "core/spec.hpp"
#include "db/store.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

// Where the text goes (stdout, flushed, in ktstr).
using Printer = std::function<void(const std::string& text)>;

struct TestsRun {
  std::vector<TestSpec> specs;  // checked (scheduler, plan), in spec order
  bool adhoc = false;           // specs[0] came from --scenario: a worker gets it as TOML
  std::string kernel_ref;       // --kernel; "" each test's own
  UnitOptions unit;             // unit.seed: --seed, else a fresh one per test
  std::optional<unsigned> jobs; // --jobs; absent: the host's default
  WorkerPoolOptions pool;       // the executor (its jobs come from `jobs`)
  bool json = false;
  std::string junit;            // --junit FILE, written at the end; "" none
};

// jobs_or_default for the largest selected VM.
unsigned jobs_for(const std::vector<TestSpec>& specs, unsigned memory_mb, unsigned repeat,
                  std::optional<unsigned> jobs);

// The tests' runs, summed up as ktstr test prints them.
class TestsSummary {
 public:
  TestsSummary(bool json, unsigned repeat);
  // One test's recorded runs; returns the text printed after their lines:
  // with `reports`, a failed single run's report; for --repeat, the tally
  // and each distinct failure's report once.
  std::string add(const TestSpec& spec, const std::vector<WorkerRun>& runs, unsigned vms, unsigned skipped,
                  bool reports);
  // From now on add() also collects the runs as JUnit test cases.
  void keep_junit(int64_t started) { junit_ = JunitReport{started, {}}; }
  const std::optional<JunitReport>& junit() const { return junit_; }
  // The summary line, or the whole --json document.
  std::string finish(long peak_rss_kb);
  int exit_status() const { return failed_ ? kExitTestFailed : kExitOk; }

 private:
  bool json_;
  unsigned repeat_;
  int passed_ = 0, failed_ = 0;
  nlohmann::json doc_;
  std::optional<JunitReport> junit_;
};

// Runs every test (resolving each one's kernel first), records its runs and
// prints, then writes t.junit; returns the exit status (0 all passed, 1 a
// test failed). Host-side errors throw Fatal, as does a worker that ended
// without a result document (once the running ones ended).
int run_tests(db::Store& store, const TestsRun& t, Progress& progress, const Printer& print);

}  // namespace ktstr::runner
