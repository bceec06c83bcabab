// One unit's runs: a test (or a slice of its `--repeat` runs) in a VM, each
// crash's auto-repro right after on the same machine. Nothing is recorded:
// this is what a worker runs on its node (run/worker.hpp) and what `ktstr
// test` runs in-process when a worker would add nothing; the submitter
// records either the same way (run/unit_record.hpp).
#pragma once

#include "run/progress.hpp"
#include "run/repeat_run.hpp"
#include "run/units.hpp"
#include "core/records.hpp"
#include "core/run_result.hpp"
#include "core/spec.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

// What shapes a unit's runs, from `ktstr test`'s or `gauntlet`'s options.
struct UnitOptions {
  bool verbose = false;
  std::optional<uint64_t> seed;  // absent: a fresh random one
  unsigned memory_mb = 0;        // 0: the spec's
  unsigned repeat = 1;           // the test's --repeat (all units together)
  bool auto_repro = true;        // false: --no-auto-repro (gauntlet's default)
};

struct UnitRuns {
  std::vector<RunResult> runs;
  std::vector<int> replayed_with;  // per run, as WorkerRun::replayed_with
  unsigned skipped = 0, vms = 1;
};

// Test `spec`'s repetitions `slice.first`.. (`count` of them, when --repeat
// was given), each crash's auto-repro run right after (not for an expected
// failure, a spec with auto_repro = false, or !opt.auto_repro). A repeat
// run replays each distinct signature once (its first occurrence), since
// the same crash replayed again says nothing new: the later ones name it in
// `replayed_with`. Host-side errors throw Fatal.
UnitRuns run_unit(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                  const UnitOptions& opt, const RepeatSlice& slice, unsigned count, Progress& progress);

// A unit's runs as the document a worker prints (and the submitter reads).
WorkerOutput unit_output(const UnitRuns& done);

}  // namespace ktstr::runner
