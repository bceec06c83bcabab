// `ktstr gauntlet SPEC [--test NAME] [--topo T,..] [--kernel K,..]
// [--sched-args ARGS]... [--jobs N] [--json] [--junit FILE]`: every test of
// SPEC over every topology x kernel x scheduler-argument set, each cell one
// run in its own VM (run/gauntlet_run.hpp: a worker per cell, recorded as
// `ktstr test` records its runs); then a grid of verdicts.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "cmd/run_options.hpp"
#include "run/gauntlet.hpp"
#include "run/gauntlet_run.hpp"
#include "run/pipeline.hpp"
#include "run/progress.hpp"
#include "run/units.hpp"
#include "core/fs.hpp"
#include "core/spec.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
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
  std::string junit;
};

// The axes from the options, checked, and the tests; kernels not yet resolved.
GauntletAxes read_axes(const GauntletArgs& a) {
  GauntletAxes axes;
  if (!a.topos.empty()) axes.topologies = value_or_die(parse_topology_axis(a.topos));
  for (auto& text : a.sched_args) {
    auto words = value_or_die(split_sched_args(text));
    bool repeat = std::any_of(axes.arg_sets.begin(), axes.arg_sets.end(), [&](auto& s) { return *s == words; });
    if (!repeat) axes.arg_sets.emplace_back(std::move(words));
  }
  if (axes.arg_sets.empty()) axes.arg_sets.emplace_back(std::nullopt);  // the spec's own arguments
  return axes;
}

// SPEC's tests (only --test's when given), checked before anything runs.
std::vector<TestSpec> read_tests(const GauntletArgs& a) {
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
  return specs;
}

// Kernels resolve here, once (fetched like `ktstr test --kernel` when a
// version is not cached); the workers get their records. A --kernel entry
// that names no kernel is bad input; a test's own kernel that cannot be had
// skips that test's cells.
void resolve_kernels(db::Store& store, const std::optional<std::vector<std::string>>& refs, GauntletAxes& axes,
                     Progress& progress) {
  auto progress_fn = [&](const std::string& s) { progress.update(s); };
  if (!refs) {
    axes.kernels.push_back({"", std::nullopt});
    for (auto& s : axes.specs)
      if (!axes.spec_kernels.count(s.kernel))
        axes.spec_kernels.emplace(s.kernel, kbuild::resolve_kernel(store, s.kernel, progress_fn));
  } else {
    for (auto& ref : *refs) {
      KernelRecord k = value_or_die(kbuild::resolve_kernel(store, ref, progress_fn));
      bool seen = std::any_of(axes.kernels.begin(), axes.kernels.end(), [&](auto& c) { return c.kernel->id == k.id; });
      if (!seen) axes.kernels.push_back({ref, k});
    }
  }
  progress.clear();
}

void print_line(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// The options, on `app`; returns --jobs (to tell "given").
CLI::Option* add_gauntlet_options(CLI::App& app, GauntletArgs& a) {
  app.add_option("spec", a.spec, "test spec file (TOML) or a directory of them")->required()->type_name("SPEC");
  app.add_option("--test", a.test, "only this test of SPEC (default: every test)");
  app.add_option("--topo", a.topos, "comma-separated topologies, e.g. 1n1l2c1t,1n2l4c2t (default: each test's own)")
      ->allow_extra_args(false);
  app.add_option("--kernel", a.kernels,
                 "comma-separated kernels: cache ids, versions (6.17: the newest cached 6.17.x; fetched when "
                 "none is), names or bzImage paths (default: each test's own)")
      ->allow_extra_args(false)
      ->type_name("KERNEL");
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
  add_junit_option(app, a.junit);
  return jobs_option;
}

// The command line, bound to `a`: what cmd_gauntlet parses and completion reads.
struct GauntletCli {
  GauntletArgs a;
  CLI::App app{"run a spec's tests over topologies x kernels x scheduler arguments and print a grid of verdicts",
               "ktstr gauntlet"};
  CLI::Option* jobs_option = add_gauntlet_options(app, a);
};

}  // namespace

void describe_gauntlet(const AppUse& use) { GauntletCli cli; use("", cli.app); }

int cmd_gauntlet(Context& ctx, const std::vector<std::string>& argv) {
  GauntletCli cli;
  const GauntletArgs& a = cli.a;
  if (!parse_command_line(cli.app, argv, "gauntlet")) return kExitOk;
  const bool verbose = a.verbose || ctx.verbosity > 0;

  // Every axis is checked before the store is touched or a VM boots.
  GauntletAxes axes = read_axes(a);
  std::optional<std::vector<std::string>> kernel_refs;
  if (!a.kernels.empty()) kernel_refs = value_or_die(parse_axis("--kernel", a.kernels));
  std::optional<unsigned> jobs;
  if (cli.jobs_option->count() > 0) jobs = value_or_die(parse_jobs(a.jobs));
  WorkerPoolOptions pool = pool_options(a.executor, a.slurm_dir, a.slurm_partition);
  axes.specs = read_tests(a);

  Progress progress(!a.json);
  db::Store& store = ctx.open_store();
  resolve_kernels(store, kernel_refs, axes, progress);
  GauntletPlan plan = plan_gauntlet(axes, store.artifacts_dir(), verbose, a.auto_repro);
  for (auto& c : plan.cells)
    if (c.verdict == Verdict::kSkip && !c.detail.empty() && !a.json) print_line(cell_line(c));
  pool.jobs = jobs_or_default(jobs, plan.need, plan.units.size());
  const int64_t started = std::time(nullptr);
  run_gauntlet(store, plan, pool, verbose, progress, [&](const CellResult& c) {
    if (!a.json) print_line(cell_line(c));
  });

  const std::vector<CellResult>& cells = plan.cells;
  if (!a.junit.empty()) value_or_die(write_junit(a.junit, gauntlet_junit(started, axes.specs, cells)));
  if (a.json) {
    std::printf("%s\n", gauntlet_json(cells).dump(2).c_str());
    return gauntlet_exit_status(tally_cells(cells));
  }
  GauntletTally tally = tally_cells(cells);
  std::printf("\n%s", render_grid(gauntlet_labels(axes, !a.sched_args.empty()), cells).c_str());
  if (tally.passed != tally.cells) {
    std::printf("\n");
    for (auto& c : cells)
      if (c.verdict != Verdict::kPass) std::printf("%s\n", cell_line(c).c_str());
  }
  std::printf("\n%s\n", summary_line(tally).c_str());
  return gauntlet_exit_status(tally);
}

}  // namespace ktstr::cmd
