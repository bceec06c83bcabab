// `ktstr gauntlet`'s run: the matrix's cells become units (a worker each,
// run/worker.hpp) through the worker pool, each cell's run recorded as it
// comes back; cells that cannot run (no kernel, no sched_ext, a test that
// does not fit the topology) are skipped with their reason. The grid and
// the verdicts themselves are run/gauntlet.hpp.
#pragma once

#include "run/gauntlet.hpp"
#include "run/progress.hpp"
#include "run/units.hpp"
#include "run/workers.hpp"
#include "core/records.hpp"
#include "core/spec.hpp"
#include "core/topology.hpp"
#include "db/store.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

// The matrix's axes, read and resolved.
struct GauntletAxes {
  std::vector<TestSpec> specs;
  std::optional<std::vector<Topology>> topologies;  // absent: each test's own
  // One entry per kernel column: the --kernel entry and its kernel, or (the
  // axis left out) one entry with ref "" and no kernel: each test's own.
  struct KernelColumn {
    std::string ref;
    std::optional<KernelRecord> kernel;
  };
  std::vector<KernelColumn> kernels;
  // The tests' own kernels by their spec's ref (the axis left out); one that
  // cannot be had skips that test's cells.
  std::map<std::string, Result<KernelRecord>> spec_kernels;
  // Scheduler argument sets; nullopt: the spec's own.
  std::vector<std::optional<std::vector<std::string>>> arg_sets;
};

// The cells and, for those that can run, their units.
struct GauntletPlan {
  std::vector<CellResult> cells;   // expand_matrix order
  std::vector<WorkerUnit> units;
  std::vector<size_t> unit_cell;   // unit -> its cell
  std::vector<TestSpec> unit_specs;  // unit -> its test with the cell's overrides, as the worker runs it
  std::vector<KernelRecord> unit_kernels;
  VmNeed need;                     // the largest unit's VM
};

// Pure: every cell of the matrix, a unit per cell that can run (its
// request: the test, the cell's overrides, the kernel, no --repeat; its VM:
// the topology's CPUs and the test's memory + kQemuOverheadMb).
GauntletPlan plan_gauntlet(const GauntletAxes& axes, const std::string& artifacts_dir, bool verbose, bool auto_repro);

// Runs the plan's units (`jobs` at once, or a Slurm array), records each
// cell's run and judges it; `on_cell` gets each cell as it ends. Host-side
// errors throw Fatal; a unit's error is its cell's.
void run_gauntlet(db::Store& store, GauntletPlan& plan, WorkerPoolOptions pool, bool verbose, Progress& progress,
                  const std::function<void(const CellResult&)>& on_cell);

// The grid's labels for these axes.
GridLabels gauntlet_labels(const GauntletAxes& axes, bool show_sched_args);

}  // namespace ktstr::runner
