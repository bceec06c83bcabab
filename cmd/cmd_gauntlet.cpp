// `ktstr gauntlet SPEC [--test NAME] [--topo T,..] [--kernel K,..]
// [--sched-args ARGS]... [--jobs N] [--json]`: every test of SPEC over
// every topology x kernel x scheduler-argument set, each cell one run in
// its own VM, run by `ktstr test` workers (cmd/test_jobs.hpp) that record
// runs and crashes as `ktstr test` does; then a grid of verdicts.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/gauntlet.hpp"
#include "run/units.hpp"
#include "run/pipeline.hpp"
#include "run/progress.hpp"
#include "run/workers.hpp"
#include "run/unit_record.hpp"
#include "core/fs.hpp"
#include "core/file_lock.hpp"
#include "core/scenario.hpp"
#include "executor/executor.hpp"
#include "core/spec.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

namespace ktstr::cmd {
using namespace ktstr::runner;
namespace {

struct GauntletArgs {
  std::string spec;
  std::string test;
  std::vector<std::string> topos, kernels, sched_args;
  std::string jobs;
  bool json = false;
  bool verbose = false;
  bool auto_repro = false;
  std::string executor = "local";
  std::string slurm_dir, slurm_partition;
};

// One entry of the kernel axis: a resolved kernel, or (the axis left out)
// each test's own kernel, resolved per test.
struct KernelColumn {
  std::string ref;                  // the --kernel entry; "" for the spec's
  std::optional<KernelRecord> kernel;
};

// A label per axis entry when the axis was left out: the value every test
// shares, else "(spec)".
std::string shared_or_spec(const std::vector<std::string>& values) {
  if (values.empty()) return "(spec)";
  for (auto& v : values)
    if (v != values.front()) return "(spec)";
  return values.front();
}

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

}  // namespace

int cmd_gauntlet(Context& ctx, const std::vector<std::string>& argv) {
  GauntletArgs a;
  CLI::App app{"run a spec's tests over topologies x kernels x scheduler arguments and print a grid of verdicts",
               "ktstr gauntlet"};
  app.add_option("spec", a.spec, "test spec file (TOML) or a directory of them")->required();
  app.add_option("--test", a.test, "only this test of SPEC (default: every test)");
  app.add_option("--topo", a.topos, "comma-separated topologies, e.g. 1n1l2c1t,1n2l4c2t (default: each test's own)")
      ->allow_extra_args(false);
  app.add_option("--kernel", a.kernels,
                 "comma-separated kernels: cache ids, versions (6.17: the newest cached 6.17.x; fetched when "
                 "none is), names or bzImage paths (default: each test's own)")
      ->allow_extra_args(false);
  app.add_option("--sched-args", a.sched_args,
                 "the scheduler's arguments for one column set, split like a shell (give it again for more; "
                 "'' runs without arguments; --sched-args=--flag for a single flag; default: the spec's)")
      ->allow_extra_args(false);
  CLI::Option* jobs_option =
      app.add_option("-j,--jobs", a.jobs, "run up to N cells in N VMs at once (default: as 'ktstr test --jobs')")
          ->type_name("N");
  app.add_option("--executor", a.executor, "where the cells' VMs run: local or slurm (as 'ktstr test --executor')")
      ->type_name("NAME")
      ->capture_default_str();
  app.add_option("--slurm-dir", a.slurm_dir, "with --executor slurm: where job directories go (shared with the nodes)")
      ->type_name("DIR");
  app.add_option("--slurm-partition", a.slurm_partition, "with --executor slurm: the partition to submit to")
      ->type_name("P");
  app.add_flag("--json", a.json, "print one JSON document instead of lines and the grid");
  app.add_flag("--auto-repro", a.auto_repro, "replay each crash in a second VM with probes (off: a matrix multiplies crashes)");
  app.add_flag("-v,--verbose", a.verbose, "verbose guest console, diagnostics on every failure");
  if (!parse_command_line(app, argv, "gauntlet")) return kExitOk;
  const bool verbose = a.verbose || ctx.verbosity > 0;

  // Every axis is checked before the store is touched or a VM boots.
  std::optional<std::vector<Topology>> topologies;
  if (!a.topos.empty()) topologies = value_or_die(parse_topology_axis(a.topos));
  std::optional<std::vector<std::string>> kernel_refs;
  if (!a.kernels.empty()) kernel_refs = value_or_die(parse_axis("--kernel", a.kernels));
  std::vector<std::optional<std::vector<std::string>>> arg_sets;
  for (auto& text : a.sched_args) {
    auto words = value_or_die(split_sched_args(text));
    bool repeat = std::any_of(arg_sets.begin(), arg_sets.end(), [&](auto& s) { return *s == words; });
    if (!repeat) arg_sets.emplace_back(std::move(words));
  }
  if (arg_sets.empty()) arg_sets.emplace_back(std::nullopt);  // the spec's own arguments
  std::optional<unsigned> jobs;
  if (jobs_option->count() > 0) jobs = value_or_die(parse_jobs(a.jobs));
  a.executor = value_or_die(executor::parse_executor_name(a.executor));
  if (a.executor != "slurm" && (!a.slurm_dir.empty() || !a.slurm_partition.empty()))
    throw Fatal(Error("--slurm-dir and --slurm-partition need --executor slurm", "add '--executor slurm'"));

  if (!path_exists(a.spec))
    throw Fatal(Error("spec '" + a.spec + "' does not exist", "give a spec file (TOML) or a directory of them"));
  std::vector<TestSpec> specs = value_or_die(load_spec_paths({a.spec}));
  if (specs.empty()) throw Fatal(Error("'" + a.spec + "' holds no test", "add a [[test]] table"));
  if (!a.test.empty()) {
    std::vector<std::string> names;
    for (auto& s : specs) names.push_back(s.name);
    std::erase_if(specs, [&](const TestSpec& s) { return s.name != a.test; });
    if (specs.empty()) {
      std::string hint = suggest_close(a.test, names);
      throw Fatal(Error("--test: '" + a.spec + "' has no test named '" + a.test + "'",
                        hint.empty() ? "its tests: " + join_quoted(names) : hint));
    }
  }
  if (!a.sched_args.empty())
    for (auto& s : specs)
      if (!s.uses_bpf_scheduler())
        throw Fatal(Error("--sched-args: test '" + s.name + "' runs eevdf, which takes no scheduler arguments",
                          "pick a sched_ext test with --test"));
  for (auto& s : specs) value_or_die(check_scheduler(s));

  Progress progress(!a.json);
  auto progress_fn = [&](const std::string& s) { progress.update(s); };
  db::Store& store = ctx.open_store();

  // Kernels resolve here, once (fetched like `ktstr test --kernel` when a
  // version is not cached); the workers get ids. A --kernel entry that
  // names no kernel is bad input; a test's own kernel that cannot be had
  // skips that test's cells.
  std::vector<KernelColumn> kernel_columns;
  if (kernel_refs) {
    std::vector<KernelRecord> seen;
    for (auto& ref : *kernel_refs) {
      KernelRecord k = value_or_die(kbuild::resolve_kernel(store, ref, progress_fn));
      if (std::any_of(seen.begin(), seen.end(), [&](auto& s) { return s.id == k.id; })) continue;
      seen.push_back(k);
      kernel_columns.push_back({ref, k});
    }
  } else {
    kernel_columns.push_back({"", std::nullopt});
  }
  std::map<std::string, Result<KernelRecord>> spec_kernels;  // by spec's kernel ref
  if (!kernel_refs)
    for (auto& s : specs)
      if (!spec_kernels.count(s.kernel)) spec_kernels.emplace(s.kernel, kbuild::resolve_kernel(store, s.kernel, progress_fn));
  progress.clear();

  const size_t topo_count = topologies ? topologies->size() : 1;
  std::vector<CellIndex> matrix = expand_matrix(specs.size(), arg_sets.size(), kernel_columns.size(), topo_count);
  std::vector<CellResult> cells;
  std::vector<WorkerUnit> units;
  std::vector<size_t> unit_cell;  // unit -> its cell
  std::vector<TestSpec> unit_specs;  // unit -> its test, for recording its run
  std::vector<KernelRecord> unit_kernels;
  VmNeed need;
  for (const CellIndex& at : matrix) {
    TestSpec spec = specs[at.test];
    const KernelColumn& kc = kernel_columns[at.kernel];
    CellOverrides over;
    if (topologies) over.topology = (*topologies)[at.topo];
    over.sched_args = arg_sets[at.args];
    if (over.topology) spec.topology = *over.topology;
    if (over.sched_args) spec.sched_args = *over.sched_args;

    CellResult c;
    c.at = at;
    c.test = spec.name;
    c.kernel_ref = kc.ref;
    c.topology = spec.topology.to_string();
    c.sched_args = spec.sched_args;
    c.sched_args_from_spec = !over.sched_args.has_value();
    std::optional<KernelRecord> kernel = kc.kernel;
    if (!kernel) {
      c.kernel_ref = spec.kernel;
      const auto& k = spec_kernels.at(spec.kernel);
      if (k) {
        kernel = *k;
      } else {
        c.detail = "kernel";
        c.reason = k.error().msg;
      }
    }
    if (kernel) {
      c.kernel_id = kernel->id;
      c.kernel_version = kernel->version;
      if (!kernel->sched_ext && spec.uses_bpf_scheduler()) {
        c.detail = "no sched_ext";
        c.reason = "kernel " + kernel->version + " (" + kernel->id + ") has no sched_ext";
      } else if (auto plan = plan_scenario(spec, spec.topology); !plan) {
        // The test does not fit this topology (a cpuset past its CPUs, ...).
        c.detail = "topology";
        c.reason = plan.error().msg;
      }
    }
    if (c.detail.empty()) {
      WorkerUnit u;
      u.argv = {exe_dir() + "/ktstr", "test", "--worker-kernel", kernel_record_json(*kernel).dump(),
                "--worker-artifacts", store.artifacts_dir(), "--repeat", "1"};
      if (verbose) u.argv.push_back("-v");
      if (!a.auto_repro) u.argv.push_back("--no-auto-repro");
      u.argv.insert(u.argv.end(), {spec.source_file, "--worker-test", spec.name});
      auto extra = worker_override_argv(over);
      u.argv.insert(u.argv.end(), extra.begin(), extra.end());
      u.label = fmt::format("{} {} {}", spec.name, kernel_label(*kernel), c.topology);
      units.push_back(std::move(u));
      unit_cell.push_back(cells.size());
      u.cpus = spec.topology.cpus();
      u.memory_mb = spec.memory_mb + kQemuOverheadMb;
      unit_specs.push_back(spec);  // with the cell's overrides, as the worker ran it
      unit_kernels.push_back(*kernel);
      need.cpus = std::max(need.cpus, spec.topology.cpus());
      need.memory_mb = std::max(need.memory_mb, spec.memory_mb);
    }
    cells.push_back(std::move(c));
  }

  for (auto& c : cells)
    if (c.verdict == Verdict::kSkip && !c.detail.empty() && !a.json) std::printf("%s\n", cell_line(c).c_str());
  if (!units.empty()) {
    if (const char* lock = std::getenv(kVmLockEnv); !jobs && lock && *lock) jobs = 1;  // VMs would take turns
    if (!jobs) jobs = default_jobs(host_resources(), need, units.size());
    WorkerPoolOptions opt;
    opt.jobs = *jobs;
    opt.stop_on_error = false;
    opt.executor = a.executor;
    opt.slurm_dir = a.slurm_dir;
    opt.slurm_partition = a.slurm_partition;
    UnitEnded on_end = [&](size_t unit, Result<WorkerOutput> doc) {
      CellResult& c = cells[unit_cell[unit]];
      if (!doc) {
        c.detail = "error";
        c.reason = doc.error().msg + (doc.error().hint.empty() ? "" : " (hint: " + doc.error().hint + ")");
      } else if (doc->runs.empty()) {
        c.detail = "no run";
        c.reason = "the worker ran nothing";
      } else if (auto st = record_worker_output(store, *doc, unit_specs[unit], unit_kernels[unit], doc->started_at,
                                                verbose);
                 !st) {
        // The worker's runs are recorded here, the only writer of the store.
        c.detail = "error";
        c.reason = st.error().msg;
      } else {
        judge_cell(c, doc->runs.front().result);
      }
      if (!a.json) std::printf("%s\n", cell_line(c).c_str());
      std::fflush(stdout);
    };
    if (auto failure = run_workers(units, opt, progress, on_end)) throw Fatal(*failure);
  }

  if (a.json) {
    std::printf("%s\n", gauntlet_json(cells).dump(2).c_str());
    return gauntlet_exit_status(tally_cells(cells));
  }
  GridLabels labels;
  labels.show_sched_args = !a.sched_args.empty();
  for (auto& s : specs) labels.tests.push_back(s.name);
  for (auto& args : arg_sets) labels.sched_args.push_back(args ? sched_args_text(*args) : "(spec)");
  if (kernel_refs) {
    std::vector<KernelRecord> ks;
    for (auto& kc : kernel_columns) ks.push_back(*kc.kernel);
    labels.kernels = kernel_labels(ks);
  } else {
    std::vector<std::string> versions;
    for (auto& s : specs) {
      const auto& k = spec_kernels.at(s.kernel);
      versions.push_back(k ? kernel_label(*k) : "(spec)");
    }
    labels.kernels = {shared_or_spec(versions)};
  }
  if (topologies) {
    for (auto& t : *topologies) labels.topologies.push_back(t.to_string());
  } else {
    std::vector<std::string> topos;
    for (auto& s : specs) topos.push_back(s.topology.to_string());
    labels.topologies = {shared_or_spec(topos)};
  }
  GauntletTally tally = tally_cells(cells);
  std::printf("\n%s", render_grid(labels, cells).c_str());
  if (tally.passed != tally.cells) {
    std::printf("\n");
    for (auto& c : cells)
      if (c.verdict != Verdict::kPass) std::printf("%s\n", cell_line(c).c_str());
  }
  std::printf("\n%s\n", summary_line(tally).c_str());
  return gauntlet_exit_status(tally);
}

}  // namespace ktstr::cmd
