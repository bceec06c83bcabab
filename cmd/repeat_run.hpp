// `--repeat N`: N runs of one test in as few boots as the guest allows. One
// VM gets a repeat job (JOB version 2) and runs the repetitions back to
// back; a kernel panic, a hung guest or a sched_ext state that does not
// return to "disabled" ends that VM, and the next VM runs what is left.
// Each repetition gets its own RunResult (verdict, later its own run and
// crash record). Used by `ktstr test --repeat` and `ktstr pin --verify`.
#pragma once

#include "cmd/pipeline.hpp"
#include "cmd/repeat_collector.hpp"

#include <map>
#include <string>
#include <vector>

namespace ktstr::cmd {

struct RepeatRun {
  std::vector<RunResult> runs;  // the repetitions that ran, in order
  unsigned vms = 0;             // VMs booted
  unsigned skipped = 0;         // repetitions that never ran (QEMU could not start, interrupted)
};

// Boots VMs until `repeat` repetitions ran (or QEMU cannot start). Errors:
// the first VM could not be prepared or run at all (host-side problems).
Result<RepeatRun> run_test_repeated(db::Store& store, const TestSpec& spec, const KernelRecord& kernel,
                                    const PipelineOptions& opts, unsigned repeat);

// One boot's repetitions as RunResults (pure; unit tested on crafted
// streams). `base` holds the test's fields, `first` is the run-wide number
// of this VM's first repetition, at most `wanted` come back. A VM that died
// during a repetition gives it the VM's verdict; one that never began any
// gives one result for the whole boot.
std::vector<RunResult> boot_results(const RunResult& base, const TestSpec& spec, const RepeatSplitter& splitter,
                                    const VmOutcome& vm, const std::vector<std::string>& notes, unsigned vm_number,
                                    unsigned first, unsigned wanted);

// After a boot that ran `ran` repetitions: how many of the `left` ones a new
// VM should run (0: stop; the rest are skipped). QEMU that could not start,
// or an interrupt, stops the run; anything else boots again.
unsigned repetitions_for_next_vm(const VmOutcome& vm, unsigned ran, unsigned left);

// The tally of a repeat run, in the shape
// `N runs: F failed (signature ...), O other, P passed, S skipped`:
// failed = scheduler crashes (grouped by signature), other = any other
// failure (VM, checks, attach), passed, skipped.
struct RepeatTally {
  unsigned runs = 0, failed = 0, other = 0, passed = 0, skipped = 0;
  std::vector<std::pair<std::string, unsigned>> signatures;  // summary -> count, first seen first
  std::string line() const;
};
RepeatTally tally_repeat(const std::vector<RunResult>& runs, unsigned skipped);

// The index of each distinct failure's first run: one per crash signature,
// one per other failure reason (its report is printed once).
std::vector<size_t> distinct_failures(const std::vector<RunResult>& runs);

}  // namespace ktstr::cmd
