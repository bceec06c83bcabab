// `--repeat N`: N runs of one test in as few boots as the guest allows. One
// VM gets a repeat job (JOB version 2) and runs the repetitions back to
// back; a kernel panic, a hung guest or a sched_ext state that does not
// return to "disabled" ends that VM, and the next VM runs what is left.
// Each repetition gets its own RunResult (verdict, later its own run and
// crash record). Used by `ktstr test --repeat` and `ktstr pin --verify`.
#pragma once

#include "run/pipeline.hpp"
#include "run/repeat_collector.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ktstr::runner {

struct RepeatRun {
  std::vector<RunResult> runs;  // the repetitions that ran, in order
  unsigned vms = 0;             // VMs booted
  unsigned skipped = 0;         // repetitions that never ran (QEMU could not start, interrupted)
};

// Which part of a `--repeat R` run a call runs: `count` repetitions
// numbered from `first`, and the numbers of the VMs it boots: its k-th VM
// (1-based) is vm_first + (k - 1) * vm_stride. `--jobs` splits a run into
// parts (run/units.hpp); the default is the whole run, VMs 1, 2, 3, ...
struct RepeatSlice {
  unsigned first = 1;
  unsigned vm_first = 1;
  unsigned vm_stride = 1;
  unsigned vm_number(unsigned k) const { return vm_first + (k - 1) * vm_stride; }
};

// Called once per repetition, in order, as soon as it is known: a
// repetition that ended in a VM still up is handed over when its REPEAT_END
// arrives (the VM runs on; the VM fields of its RunResult are those of the
// VM so far: no QEMU status, the console up to then), the others when their
// VM ends. The callback may fill the result (a run id); that copy is what
// RepeatRun::runs holds. An error stops the VM and the run with that error.
// `ktstr bisect` stores each run's step from here, so a kill loses at most
// the run in flight.
using RepeatRunSink = std::function<Status(RunResult&)>;

// Boots VMs until `repeat` repetitions ran (or QEMU cannot start). Errors:
// the first VM could not be prepared or run at all (host-side problems), or
// `on_run` failed. `total` (0: `repeat`) is the whole run's count, for the
// progress line.
Result<RepeatRun> run_test_repeated(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                    const PipelineOptions& opts, unsigned repeat, const RepeatSlice& slice = {},
                                    unsigned total = 0, const RepeatRunSink& on_run = {});

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

// What the tally and distinct_failures need of a run: `--jobs` gets it from
// a worker process (cmd/jobs.hpp) instead of a RunResult.
struct RunOutline {
  bool passed = false;
  std::string signature_key;      // a scheduler crash's signature; empty for any other failure
  std::string signature_summary;
  std::string other_key;          // any other failure: its kind and reason
};
RunOutline outline_of(const RunResult& r);
RepeatTally tally_repeat(const std::vector<RunOutline>& runs, unsigned skipped);

// The index of each distinct failure's first run: one per crash signature,
// one per other failure reason (its report is printed once).
std::vector<size_t> distinct_failures(const std::vector<RunResult>& runs);
std::vector<size_t> distinct_failures(const std::vector<RunOutline>& runs);

}  // namespace ktstr::runner
