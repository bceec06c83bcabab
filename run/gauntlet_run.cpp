#include "run/gauntlet_run.hpp"

#include "run/junit.hpp"
#include "run/unit_record.hpp"
#include "run/worker.hpp"
#include "core/scenario.hpp"
#include "kbuild/bzimage.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ktstr::runner {
namespace {

std::string kernel_label(const KernelRecord& k) { return kbuild::upstream_version(k.version); }

// Kernel labels that two kernels share (a built 7.3.4 and Debian's) get
// the id's first 8 digits.
std::vector<std::string> kernel_labels(const std::vector<KernelRecord>& kernels) {
  std::vector<std::string> out;
  for (auto& k : kernels) out.push_back(kernel_label(k));
  for (size_t i = 0; i < kernels.size(); ++i)
    if (std::count(out.begin(), out.end(), kernel_label(kernels[i])) > 1)
      out[i] = kernel_label(kernels[i]) + " (" + kernels[i].id.substr(0, 8) + ")";
  return out;
}

// A label per axis entry when the axis was left out: the value every test
// shares, else "(spec)".
std::string shared_or_spec(const std::vector<std::string>& values) {
  if (values.empty()) return "(spec)";
  for (auto& v : values)
    if (v != values.front()) return "(spec)";
  return values.front();
}

// The cell's kernel, or why it has none (c.detail and c.reason set).
std::optional<KernelRecord> cell_kernel(const GauntletAxes& axes, const CellIndex& at, const TestSpec& spec,
                                        CellResult& c) {
  const auto& column = axes.kernels[at.kernel];
  if (column.kernel) return column.kernel;
  c.kernel_ref = spec.kernel;
  const auto& k = axes.spec_kernels.at(spec.kernel);
  if (k) return *k;
  c.detail = "kernel";
  c.reason = k.error().msg;
  return std::nullopt;
}

// Why the cell cannot run on `kernel` ("" when it can).
void check_cell(const TestSpec& spec, const KernelRecord& kernel, CellResult& c) {
  c.kernel_id = kernel.id;
  c.kernel_version = kernel.version;
  if (!kernel.sched_ext && spec.uses_bpf_scheduler()) {
    c.detail = "no sched_ext";
    c.reason = "kernel " + kernel.version + " (" + kernel.id + ") has no sched_ext";
  } else if (auto plan = plan_scenario(spec, spec.topology); !plan) {
    // The test does not fit this topology (a cpuset past its CPUs, ...).
    c.detail = "topology";
    c.reason = plan.error().msg;
  }
}

}  // namespace

GauntletPlan plan_gauntlet(const GauntletAxes& axes, const std::string& artifacts_dir, bool verbose,
                           bool auto_repro) {
  GauntletPlan plan;
  const size_t topo_count = axes.topologies ? axes.topologies->size() : 1;
  for (const CellIndex& at : expand_matrix(axes.specs.size(), axes.arg_sets.size(), axes.kernels.size(), topo_count)) {
    TestSpec spec = axes.specs[at.test];
    CellOverrides over;
    if (axes.topologies) over.topology = (*axes.topologies)[at.topo];
    over.sched_args = axes.arg_sets[at.args];
    value_or_die(apply_cell_overrides(spec, over));  // the axes were checked against the tests

    CellResult c;
    c.at = at;
    c.test = spec.name;
    c.kernel_ref = axes.kernels[at.kernel].ref;
    c.topology = spec.topology.to_string();
    c.sched_args = spec.sched_args;
    c.sched_args_from_spec = !over.sched_args.has_value();
    std::optional<KernelRecord> kernel = cell_kernel(axes, at, spec, c);
    if (kernel) check_cell(spec, *kernel, c);
    if (c.detail.empty()) {
      WorkerRequest r;
      r.spec_file = spec.source_file;
      r.test = spec.name;
      r.overrides = over;
      r.kernel = *kernel;
      r.artifacts_dir = artifacts_dir;
      r.options.verbose = verbose;
      r.options.auto_repro = auto_repro;
      WorkerUnit u{worker_argv(r), fmt::format("{} {} {}", spec.name, kernel_label(*kernel), c.topology)};
      u.cpus = spec.topology.cpus();
      u.memory_mb = spec.memory_mb + kQemuOverheadMb;
      plan.units.push_back(std::move(u));
      plan.unit_cell.push_back(plan.cells.size());
      plan.need.cpus = std::max(plan.need.cpus, spec.topology.cpus());
      plan.need.memory_mb = std::max(plan.need.memory_mb, spec.memory_mb);
      plan.unit_specs.push_back(std::move(spec));
      plan.unit_kernels.push_back(*kernel);
    }
    plan.cells.push_back(std::move(c));
  }
  return plan;
}

void run_gauntlet(db::Store& store, GauntletPlan& plan, WorkerPoolOptions pool, bool verbose, Progress& progress,
                  const std::function<void(const CellResult&)>& on_cell) {
  if (plan.units.empty()) return;
  pool.stop_on_error = false;
  UnitEnded on_end = [&](size_t unit, Result<WorkerOutput> doc) {
    CellResult& c = plan.cells[plan.unit_cell[unit]];
    if (!doc) {
      c.detail = "error";
      c.reason = doc.error().msg + (doc.error().hint.empty() ? "" : " (hint: " + doc.error().hint + ")");
    } else if (doc->runs.empty()) {
      c.detail = "no run";
      c.reason = "the worker ran nothing";
    } else if (auto st = record_worker_output(store, *doc, plan.unit_specs[unit], plan.unit_kernels[unit],
                                              doc->started_at, verbose);
               !st) {
      // The worker's runs are recorded here, the only writer of the store.
      c.detail = "error";
      c.reason = st.error().msg;
    } else {
      judge_cell(c, doc->runs.front().result);
      c.report = doc->runs.front().failure;
      c.sched_log = scheduler_log_of(doc->runs.front().result);
    }
    on_cell(c);
  };
  if (auto failure = run_workers(plan.units, pool, progress, on_end)) throw Fatal(*failure);
}

GridLabels gauntlet_labels(const GauntletAxes& axes, bool show_sched_args) {
  GridLabels labels;
  labels.show_sched_args = show_sched_args;
  for (auto& s : axes.specs) labels.tests.push_back(s.name);
  for (auto& args : axes.arg_sets) labels.sched_args.push_back(args ? sched_args_text(*args) : "(spec)");
  if (!axes.kernels.empty() && axes.kernels.front().kernel) {
    std::vector<KernelRecord> ks;
    for (auto& kc : axes.kernels) ks.push_back(*kc.kernel);
    labels.kernels = kernel_labels(ks);
  } else {
    std::vector<std::string> versions;
    for (auto& s : axes.specs) {
      const auto& k = axes.spec_kernels.at(s.kernel);
      versions.push_back(k ? kernel_label(*k) : "(spec)");
    }
    labels.kernels = {shared_or_spec(versions)};
  }
  if (axes.topologies) {
    for (auto& t : *axes.topologies) labels.topologies.push_back(t.to_string());
  } else {
    std::vector<std::string> topos;
    for (auto& s : axes.specs) topos.push_back(s.topology.to_string());
    labels.topologies = {shared_or_spec(topos)};
  }
  return labels;
}

}  // namespace ktstr::runner
