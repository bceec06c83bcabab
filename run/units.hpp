// `ktstr test --jobs N`: independent work in N VMs at once. The parent
// splits the selected tests into units (a test, or a part of a test's
// `--repeat` runs, one boot each), runs each unit in a worker process (ktstr
// itself, with the hidden --worker-* options) and stays the only one that
// prints. This file holds the parts that are pure logic (unit tested): the
// split, the default N from the host, the worker's argv and the document it
// prints, and the merge of finished units back into spec order.
#pragma once

#include "run/repeat_run.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"
#include "core/topology.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr::runner {

// More workers than this would outgrow the child registry of
// core/subprocess (each worker also owns a QEMU) and no host we run on has
// the CPUs for it.
inline constexpr unsigned kMaxJobs = 32;
// What one VM costs beyond its guest memory: QEMU itself, its TCG
// translation buffers or KVM structures, and the worker process.
inline constexpr unsigned kQemuOverheadMb = 256;

// One unit of work: `count` repetitions of test `test` (an index into the
// selected tests) numbered from `first`; part `part` (1-based) of the
// test's `parts`. Without --repeat a unit is the whole test (1 of 1).
struct TestUnit {
  size_t test = 0;
  unsigned part = 1, parts = 1;
  unsigned first = 1, count = 1;
  // The part's k-th VM is part + (k - 1) * parts: the parts' first VMs
  // are 1..parts, and numbers never collide when one reboots.
  RepeatSlice slice() const { return RepeatSlice{first, part, parts}; }
};

// How many parts each test's `repeat` runs are split into: one per
// test when there are at least `jobs` tests (each boot should run as many
// repetitions as it can), else about jobs / tests, never more than `repeat`.
unsigned parts_per_test(size_t tests, unsigned repeat, unsigned jobs);

// `repeat` runs in `parts` parts as even as possible, the first ones one
// larger: (first, count) pairs, e.g. 10 in 3 -> (1,4) (5,3) (8,3).
std::vector<std::pair<unsigned, unsigned>> split_repeat(unsigned repeat, unsigned parts);

// Every unit, in spec order (test, then part): the order they start in and
// the order their results are printed in.
std::vector<TestUnit> plan_units(size_t tests, unsigned repeat, unsigned jobs);

// The host's share for VMs: usable CPUs (the affinity mask) and available
// memory (MemAvailable).
struct HostResources {
  unsigned cpus = 1;
  uint64_t available_mb = 0;
};
HostResources host_resources();

// What the largest selected VM needs: its topology's CPUs and its memory.
struct VmNeed {
  unsigned cpus = 1;
  unsigned memory_mb = 0;
};

// --jobs left out: as many VMs as the host has CPUs for (each its
// topology's CPUs) and memory for (each its memory + kQemuOverheadMb), at
// least 1, at most the number of units and kMaxJobs.
unsigned default_jobs(const HostResources& host, const VmNeed& need, size_t units);

// --jobs as given, else 1 under KTSTR_VM_LOCK (the VMs would only take
// turns for the lock), else default_jobs on this host.
unsigned jobs_or_default(std::optional<unsigned> jobs, const VmNeed& need, size_t units);

// --jobs N / -j N: an integer 1..kMaxJobs; otherwise an error with a hint.
Result<unsigned> parse_jobs(const std::string& text);

// FIRST:COUNT:BATCH:BATCHES, the unit's slice of a repeat run, in the
// worker's request (run/worker.hpp).
std::string format_worker_runs(const TestUnit& unit);
Result<TestUnit> parse_worker_runs(const std::string& text);

// One gauntlet cell's overrides of its test (run/gauntlet.hpp): the
// topology and the scheduler arguments that replace the spec's (in the
// worker's request, run/worker.hpp).
struct CellOverrides {
  std::optional<Topology> topology;
  std::optional<std::vector<std::string>> sched_args;
};
// Applies them to `spec`. Scheduler arguments need a sched_ext scheduler,
// as in a spec.
Status apply_cell_overrides(TestSpec& spec, const CellOverrides& o);

// What a worker prints on stdout: each run it ran, with its auto-repro,
// not recorded (a worker never opens the store): the parent records it,
// then renders what it prints or tallies.
struct WorkerRun {
  // to_json(RunResult), as `ktstr test --json` prints it: from the worker
  // without run_id and crash_id; once the parent recorded it, with them.
  nlohmann::json result;
  // A crash the worker did not replay again: the index (in this unit's
  // runs) of the run whose auto-repro replayed its signature; -1 otherwise.
  int replayed_with = -1;
  // The parent's, once recorded (not in the worker's document).
  std::string line;       // render_summary_line
  std::string failure;    // render_failure; empty when it passed
  RunOutline outline;
};
struct WorkerOutput {
  std::vector<WorkerRun> runs;
  unsigned vms = 1, skipped = 0;
  long peak_rss_kb = 0;
  int64_t started_at = 0;  // unix seconds, when the unit began (its runs' started_at)
};
nlohmann::json worker_output_json(const WorkerOutput& w);
Result<WorkerOutput> parse_worker_output(std::string_view text);

// A test's runs over all its units, in repetition order, whatever order
// the units finished in. `outputs[i]` belongs to `units[i]`.
struct TestRuns {
  std::vector<WorkerRun> runs;
  unsigned vms = 0, skipped = 0;
};
std::vector<TestRuns> merge_units(size_t tests, const std::vector<TestUnit>& units,
                                  const std::vector<WorkerOutput>& outputs);

}  // namespace ktstr::runner
