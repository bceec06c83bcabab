// `ktstr test [SPEC...] | --scenario NAME ...`: run tests in VMs, print one
// line per test (plus the report of each failure), record every run.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "cmd/run_options.hpp"
#include "run/pipeline.hpp"
#include "run/progress.hpp"
#include "run/tests_run.hpp"
#include "run/units.hpp"
#include "core/filterset.hpp"
#include "core/fs.hpp"
#include "core/scenario.hpp"
#include "core/seed.hpp"
#include "guest/proto/messages.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace ktstr::cmd {
using namespace ktstr::runner;
namespace {

struct TestArgs {
  std::vector<std::string> specs;
  std::string kernel;
  bool json = false;
  bool verbose = false;
  std::string scenario;
  std::string topo = "1n1l2c1t";
  double duration = 3;
  unsigned memory = 0;
  std::string name;
  std::vector<std::string> filters;
  bool list = false;
  bool list_scenarios = false;
  bool no_auto_repro = false;
  unsigned repeat = 1;
  std::string seed_text;            // --seed N, as given
  std::string jobs;                 // --jobs N; empty: the host's default
  std::string executor = "local";   // --executor local|slurm
  std::string slurm_dir, slurm_partition;
  std::string junit;                // --junit FILE
};

Result<TestSpec> adhoc_spec(const TestArgs& a) {
  auto topo = Topology::parse(a.topo);
  if (!topo) return tl::unexpected(topo.error());
  TestSpec s;
  s.name = a.name.empty() ? a.scenario + "_" + a.topo : a.name;
  s.scenario = a.scenario;
  s.topology = *topo;
  s.duration_s = a.duration;
  if (a.memory) s.memory_mb = a.memory;
  // The same checks a spec file gets, by writing and reading it back.
  auto back = parse_spec_text(spec_to_toml(s), "command line");
  if (!back) return tl::unexpected(back.error());
  return back->front();
}

// `--list-scenarios`: name and description of each canned scenario; with
// --verbose also its cgroups, written as a spec would write them.
int list_scenarios(const TestArgs& a) {
  if (a.json) {
    nlohmann::json doc = nlohmann::json::array();
    for (auto& sc : canned_scenario_table()) doc.push_back(canned_scenario_json(sc));
    std::printf("%s\n", nlohmann::json{{"scenarios", doc}}.dump(2).c_str());
    return kExitOk;
  }
  size_t width = 0;
  for (auto& sc : canned_scenario_table()) width = std::max(width, sc.name.size());
  for (auto& sc : canned_scenario_table()) {
    std::printf("%-*s  %s\n", static_cast<int>(width), sc.name.c_str(), sc.description.c_str());
    if (!a.verbose) continue;
    const nlohmann::json described = canned_scenario_json(sc);  // outlives the loop below
    for (auto& j : described["cgroups"]) {
      std::string extra;
      for (auto& [key, value] : j.items())
        if (key != "name" && key != "work" && key != "workers") extra += ", " + key + " = " + value.dump();
      std::printf("%*s  cgroup %s: %s x %s%s\n", static_cast<int>(width), "", j["name"].get<std::string>().c_str(),
                  j["workers"].get<std::string>().c_str(), j["work"].get<std::string>().c_str(), extra.c_str());
    }
  }
  return kExitOk;
}

// The options, on `app`; returns --seed and --jobs (to tell "given").
std::pair<CLI::Option*, CLI::Option*> add_test_options(CLI::App& app, TestArgs& a) {
  app.add_option("specs", a.specs, "test spec files (TOML) or directories of them")->type_name("SPEC");
  app.add_option("--kernel", a.kernel, "kernel id, id prefix, version, name or bzImage path")->type_name("KERNEL");
  app.add_flag("--json", a.json, "print one JSON document instead of text");
  app.add_flag("-v,--verbose", a.verbose, "diagnostics on every failure, verbose guest console");
  app.add_option("--scenario", a.scenario, "run one ad-hoc scenario instead of spec files");
  app.add_option("--topo", a.topo, "topology for --scenario, e.g. 1n2l4c2t")->capture_default_str();
  app.add_option("--duration", a.duration, "seconds, for --scenario")->capture_default_str();
  app.add_option("--memory", a.memory, "guest memory in MB (overrides the spec)");
  app.add_option("--name", a.name, "test name for --scenario");
  app.add_option("--repeat", a.repeat,
                 "run each test N times, as many as possible in one boot (a crashed kernel boots a new VM)")
      ->capture_default_str();
  CLI::Option* seed_option = app.add_option("--seed", a.seed_text,
                 "the seed handed to the scheduler as KTSTR_SEED (repetition i of --repeat gets N + i - 1); "
                 "default: a fresh random one per test, printed in its report and stored with its runs")
      ->type_name("N");
  CLI::Option* jobs_option = app.add_option("-j,--jobs", a.jobs,
                 "run up to N tests (or batches of --repeat runs) in N VMs at once; default: as many VMs as "
                 "the host's CPUs (each its topology's CPUs) and available memory (each its memory + 256 MB) "
                 "hold (1 when KTSTR_VM_LOCK is set); 1 runs them one after another")
      ->type_name("N");
  app.add_option("--executor", a.executor,
                 "where the VMs run: local (worker processes on this machine, --jobs at once) or slurm (one Slurm "
                 "job array; its nodes must see the cache, or --slurm-dir, and the ktstr binary at the same paths)")
      ->type_name("NAME")
      ->capture_default_str();
  app.add_option("--slurm-dir", a.slurm_dir,
                 "with --executor slurm: where job directories go (shared with the nodes); default: the cache's slurm/")
      ->type_name("DIR");
  app.add_option("--slurm-partition", a.slurm_partition, "with --executor slurm: the partition to submit to")
      ->type_name("P");
  app.add_flag("--no-auto-repro", a.no_auto_repro, "do not replay crashes in a second VM with probes");
  add_junit_option(app, a.junit);
  app.add_flag("--list", a.list, "print the selected tests' names and exit");
  app.add_flag("--list-scenarios", a.list_scenarios,
               "print the canned scenarios (name and description; with -v their cgroups) and exit");
  app.add_option("-E,--filter", a.filters,
                 "select tests by name, nextest style: test(name), test(=exact), test(/regex/), not, and, or")
      ->allow_extra_args(false);  // one filter per -E, so spec paths after it stay positional
  return {seed_option, jobs_option};
}

// The command line, bound to `a`: what cmd_test parses and completion reads.
struct TestCli {
  TestArgs a;
  CLI::App app{"run scheduler tests in VMs", "ktstr test"};
  std::pair<CLI::Option*, CLI::Option*> seed_jobs = add_test_options(app, a);
};

// The selected tests: the ad-hoc one, or the spec files' (KTSTR_TEST_DIR
// or tests/ktstr when none are named) that the -E filters select.
std::vector<TestSpec> select_tests(TestArgs& a) {
  if (!a.scenario.empty()) {
    if (!a.specs.empty()) throw Fatal(Error("give spec files or --scenario, not both"));
    return {value_or_die(adhoc_spec(a))};
  }
  if (a.specs.empty()) {
    const char* dir = std::getenv("KTSTR_TEST_DIR");
    a.specs.push_back(dir && *dir ? dir : "tests/ktstr");
    if (!path_exists(a.specs.back()))
      throw Fatal(Error("no test specs given and '" + a.specs.back() + "' does not exist",
                        "name spec files, use --scenario, or set KTSTR_TEST_DIR"));
  }
  std::vector<TestSpec> specs = value_or_die(load_spec_paths(a.specs));
  if (a.filters.empty()) return specs;
  // Several -E filters select the union, as in nextest.
  std::vector<Filterset> sets;
  for (auto& f : a.filters) sets.push_back(value_or_die(Filterset::parse(f)));
  std::vector<TestSpec> kept;
  for (auto& s : specs)
    if (std::any_of(sets.begin(), sets.end(), [&](const Filterset& f) { return f.matches(s.name); }))
      kept.push_back(s);
  if (kept.empty()) throw Fatal(Error("no test matches the filter", "list the names with 'ktstr test --list'"));
  return kept;
}

}  // namespace

void describe_test(const AppUse& use) { TestCli cli; use("", cli.app); }

int cmd_test(Context& ctx, const std::vector<std::string>& argv) {
  TestCli cli;
  TestArgs& a = cli.a;
  auto [seed_option, jobs_option] = cli.seed_jobs;
  if (!parse_command_line(cli.app, argv, "test")) return kExitOk;
  TestsRun t;
  t.unit.verbose = a.verbose || ctx.verbosity > 0;
  if (seed_option->count() > 0) t.unit.seed = value_or_die(parse_seed(a.seed_text));
  if (a.list_scenarios) {
    if (!a.specs.empty() || !a.scenario.empty())
      throw Fatal(Error("--list-scenarios takes no spec files and no --scenario",
                        "run 'ktstr test --list-scenarios' alone"));
    a.verbose = t.unit.verbose;
    return list_scenarios(a);
  }
  t.specs = select_tests(a);
  t.adhoc = !a.scenario.empty();
  if (a.list) {
    for (auto& s : t.specs) std::printf("%s\n", s.name.c_str());
    return kExitOk;
  }
  if (a.repeat < 1 || a.repeat > proto::kMaxRepeat)
    throw Fatal(Error("--repeat " + std::to_string(a.repeat) + " is out of range",
                      "use 1 to " + std::to_string(proto::kMaxRepeat)));
  if (a.memory && (a.memory < 64 || a.memory > 65536))
    throw Fatal(Error("--memory " + std::to_string(a.memory) + " is out of range", "use 64 to 65536 MB"));
  if (jobs_option->count() > 0) t.jobs = value_or_die(parse_jobs(a.jobs));
  t.pool = pool_options(a.executor, a.slurm_dir, a.slurm_partition);
  t.junit = a.junit;

  // Bad scheduler paths fail now, before a kernel is fetched or a VM boots.
  for (auto& spec : t.specs) value_or_die(check_scheduler(spec));
  // So do plans whose steps cannot happen (removing more workers than are
  // left, a CPU set offline twice): the spec's file:line, before any boot.
  for (auto& spec : t.specs) value_or_die(plan_scenario(spec, spec.topology));

  t.kernel_ref = a.kernel;
  t.unit.memory_mb = a.memory;
  t.unit.repeat = a.repeat;
  t.unit.auto_repro = !a.no_auto_repro;
  t.json = a.json;
  Progress progress(!a.json);
  return run_tests(ctx.open_store(), t, progress, [](const std::string& text) {
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  });
}

}  // namespace ktstr::cmd
