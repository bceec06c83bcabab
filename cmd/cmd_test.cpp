// `ktstr test [SPEC...] | --scenario NAME ...`: run tests in VMs, print one
// line per test (plus the report of each failure), record every run.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/units.hpp"
#include "run/pipeline.hpp"
#include "run/progress.hpp"
#include "run/repeat_run.hpp"
#include "run/repro.hpp"
#include "run/workers.hpp"
#include "run/unit_record.hpp"
#include "core/crash_parse.hpp"
#include "core/filterset.hpp"
#include "core/fs.hpp"
#include "core/file_lock.hpp"
#include "core/report.hpp"
#include "core/scenario.hpp"
#include "core/seed.hpp"
#include "executor/executor.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

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
  std::optional<uint64_t> seed;     // parsed; absent: a fresh one per test
  std::string jobs;         // --jobs N; empty: the host's default
  std::string worker_test;  // hidden: run this one test as a --jobs worker
  std::string worker_runs;  // hidden: FIRST:COUNT:BATCH:BATCHES of its --repeat runs
  std::string worker_topo;        // hidden: a gauntlet cell's topology for that test
  std::string worker_sched_args;  // hidden: its scheduler arguments, a JSON array
  std::string executor = "local";  // --executor local|slurm
  std::string slurm_dir, slurm_partition;
  std::string worker_kernel;      // hidden: the resolved kernel's record, JSON
  std::string worker_artifacts;   // hidden: the store's artifact directory (the initramfs cache)
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

// One unit's runs: test `spec`'s repetitions `slice.first`.. (when `count`
// > 1 or --repeat was given), each crash's auto-repro run right after on
// the same machine; nothing recorded (the store is not needed: this is what
// a worker runs on its node). A repeat run replays each distinct signature
// once (its first occurrence), since the same crash replayed again says
// nothing new: the later ones name it in `replayed_with`. Host-side errors
// throw.
struct UnitRuns {
  std::vector<RunResult> runs;
  std::vector<int> replayed_with;  // per run, as WorkerRun::replayed_with
  unsigned skipped = 0, vms = 1;
};
UnitRuns run_unit(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                  const TestArgs& a, bool verbose, const RepeatSlice& slice, unsigned count, Progress& progress) {
  auto progress_fn = [&](const std::string& s) { progress.update(s); };
  PipelineOptions popt;
  popt.verbose = verbose;
  popt.seed = a.seed ? *a.seed : random_seed();
  if (a.memory) popt.memory_mb = a.memory;
  popt.progress = progress_fn;
  UnitRuns out;
  if (a.repeat > 1) {
    auto rr = value_or_die(run_test_repeated(artifacts_dir, spec, kernel, popt, count, slice, a.repeat));
    out.runs = std::move(rr.runs);
    out.skipped = rr.skipped;
    out.vms = rr.vms;
  } else {
    out.runs.push_back(value_or_die(run_test(artifacts_dir, spec, kernel, popt)));
  }
  progress.clear();
  // Auto-repro: a second VM replays the crash with probes (not for an
  // expected failure, a spec with auto_repro = false, or --no-auto-repro).
  std::map<std::string, int> replayed;  // signature key -> the run that replayed it
  out.replayed_with.assign(out.runs.size(), -1);
  for (size_t i = 0; i < out.runs.size(); ++i) {
    RunResult& result = out.runs[i];
    if (result.passed || !result.exit || a.no_auto_repro || !spec.auto_repro || spec.expect_err) continue;
    std::string key = signature_of(*result.exit).key();
    if (auto seen = replayed.find(key); seen != replayed.end()) {
      out.replayed_with[i] = seen->second;
      continue;
    }
    replayed.emplace(key, static_cast<int>(i));
    progress_fn("auto-repro of the crash of " + spec.name);
    auto rr = replay_crash(artifacts_dir, spec, kernel, *result.exit, result.seed,
                           result.sched, key, popt);
    if (rr) result.repro = std::move(*rr);
    else result.diagnostics.push_back("auto-repro failed: replaying the crash: " + rr.error().msg);
    progress.clear();
  }
  return out;
}

// A unit's runs as the document a worker prints (and the submitter reads).
WorkerOutput unit_output(const UnitRuns& done) {
  WorkerOutput w;
  w.vms = done.vms;
  w.skipped = done.skipped;
  for (size_t i = 0; i < done.runs.size(); ++i) {
    WorkerRun run;
    run.result = to_json(done.runs[i]);
    run.replayed_with = done.replayed_with[i];
    w.runs.push_back(std::move(run));
  }
  return w;
}

// `--worker-test NAME`: one unit of a `--jobs` run (cmd/jobs.hpp); `specs`
// holds that one test. Runs it on the kernel of --worker-kernel with the
// artifact directory of --worker-artifacts, never opening the store, and
// prints the worker document for the parent on stdout (which records it).
int run_worker(const std::vector<TestSpec>& specs, const TestArgs& a, bool verbose) {
  const TestSpec& spec = specs.front();  // the one test named by --worker-test
  JobUnit unit = value_or_die(parse_worker_runs(a.worker_runs.empty() ? "1:1:1:1" : a.worker_runs));
  if (a.worker_kernel.empty() || a.worker_artifacts.empty())
    throw Fatal(Error("--worker-test needs --worker-kernel and --worker-artifacts"));
  KernelRecord kernel = value_or_die(kernel_record_from_json(a.worker_kernel));
  Progress silent(false);
  int64_t started = std::time(nullptr);
  UnitRuns done = run_unit(a.worker_artifacts, spec, kernel, a, verbose, unit.slice(), unit.count, silent);
  WorkerOutput w = unit_output(done);
  w.started_at = started;
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  w.peak_rss_kb = ru.ru_maxrss;
  std::printf("%s\n", worker_output_json(w).dump().c_str());
  return kExitOk;
}

// A worker's argv for one test: this binary, the options that shape the
// run, the resolved kernel's record (its content-addressed paths), the
// artifact directory (initramfs cache), and where the test comes from.
std::vector<std::string> worker_argv(const TestArgs& a, const TestSpec& spec, const KernelRecord& kernel,
                                     const std::string& artifacts_dir, bool verbose, uint64_t seed) {
  // The test's seed is chosen here, once: every batch of its --repeat runs
  // numbers its repetitions from it.
  std::vector<std::string> argv = {exe_dir() + "/ktstr", "test", "--worker-kernel", kernel_record_json(kernel).dump(),
                                   "--worker-artifacts", artifacts_dir, "--repeat", std::to_string(a.repeat),
                                   "--seed", std::to_string(seed)};
  if (verbose) argv.push_back("-v");
  if (a.no_auto_repro) argv.push_back("--no-auto-repro");
  if (a.memory) argv.insert(argv.end(), {"--memory", std::to_string(a.memory)});
  if (!a.scenario.empty()) {
    argv.insert(argv.end(), {"--scenario", a.scenario, "--topo", a.topo, "--duration", fmt::format("{}", a.duration)});
    if (!a.name.empty()) argv.insert(argv.end(), {"--name", a.name});
  } else {
    argv.push_back(spec.source_file);
  }
  argv.insert(argv.end(), {"--worker-test", spec.name});
  return argv;
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

}  // namespace

int cmd_test(Context& ctx, const std::vector<std::string>& argv) {
  TestArgs a;
  CLI::App app{"run scheduler tests in VMs", "ktstr test"};
  app.add_option("specs", a.specs, "test spec files (TOML) or directories of them");
  app.add_option("--kernel", a.kernel, "kernel id, id prefix, version, name or bzImage path");
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
  // A --jobs worker: one unit of the parent's run (hidden: not for users).
  app.add_option("--worker-test", a.worker_test)->group("");
  app.add_option("--worker-runs", a.worker_runs)->group("");
  app.add_option("--worker-topo", a.worker_topo)->group("");
  app.add_option("--worker-sched-args", a.worker_sched_args)->group("");
  app.add_option("--worker-kernel", a.worker_kernel)->group("");
  app.add_option("--worker-artifacts", a.worker_artifacts)->group("");
  app.add_flag("--no-auto-repro", a.no_auto_repro, "do not replay crashes in a second VM with probes");
  app.add_flag("--list", a.list, "print the selected tests' names and exit");
  app.add_flag("--list-scenarios", a.list_scenarios,
               "print the canned scenarios (name and description; with -v their cgroups) and exit");
  app.add_option("-E,--filter", a.filters,
                 "select tests by name, nextest style: test(name), test(=exact), test(/regex/), not, and, or")
      ->allow_extra_args(false);  // one filter per -E, so spec paths after it stay positional
  if (!parse_command_line(app, argv, "test")) return kExitOk;
  bool verbose = a.verbose || ctx.verbosity > 0;
  if (seed_option->count() > 0) a.seed = value_or_die(parse_seed(a.seed_text));
  if (a.list_scenarios) {
    if (!a.specs.empty() || !a.scenario.empty())
      throw Fatal(Error("--list-scenarios takes no spec files and no --scenario",
                        "run 'ktstr test --list-scenarios' alone"));
    a.verbose = verbose;
    return list_scenarios(a);
  }

  std::vector<TestSpec> specs;
  if (!a.scenario.empty()) {
    if (!a.specs.empty()) throw Fatal(Error("give spec files or --scenario, not both"));
    specs.push_back(value_or_die(adhoc_spec(a)));
  } else {
    if (a.specs.empty()) {
      const char* dir = std::getenv("KTSTR_TEST_DIR");
      a.specs.push_back(dir && *dir ? dir : "tests/ktstr");
      if (!path_exists(a.specs.back()))
        throw Fatal(Error("no test specs given and '" + a.specs.back() + "' does not exist",
                          "name spec files, use --scenario, or set KTSTR_TEST_DIR"));
    }
    specs = value_or_die(load_spec_paths(a.specs));
  }
  if (!a.filters.empty()) {
    // Several -E filters select the union, as in nextest.
    std::vector<Filterset> sets;
    for (auto& f : a.filters) sets.push_back(value_or_die(Filterset::parse(f)));
    std::vector<TestSpec> kept;
    for (auto& s : specs)
      for (auto& f : sets)
        if (f.matches(s.name)) {
          kept.push_back(s);
          break;
        }
    specs = std::move(kept);
    if (specs.empty()) throw Fatal(Error("no test matches the filter", "list the names with 'ktstr test --list'"));
  }
  if (!a.worker_test.empty()) {
    // A worker checks and runs its own test only.
    std::erase_if(specs, [&](const TestSpec& s) { return s.name != a.worker_test; });
    if (specs.size() != 1) throw Fatal(Error("--worker-test: no test named '" + a.worker_test + "'"));
    // A gauntlet cell: its topology and scheduler arguments replace the
    // spec's before anything is checked, run or recorded.
    if (auto st = apply_worker_overrides(specs.front(), a.worker_topo, a.worker_sched_args); !st)
      throw Fatal(st.error());
  } else if (!a.worker_topo.empty() || !a.worker_sched_args.empty()) {
    throw Fatal(Error("--worker-topo and --worker-sched-args need --worker-test"));
  }
  if (a.list) {
    for (auto& s : specs) std::printf("%s\n", s.name.c_str());
    return kExitOk;
  }
  if (a.repeat < 1 || a.repeat > proto::kMaxRepeat)
    throw Fatal(Error("--repeat " + std::to_string(a.repeat) + " is out of range",
                      "use 1 to " + std::to_string(proto::kMaxRepeat)));
  if (a.memory && (a.memory < 64 || a.memory > 65536))
    throw Fatal(Error("--memory " + std::to_string(a.memory) + " is out of range", "use 64 to 65536 MB"));

  std::optional<unsigned> jobs;
  if (jobs_option->count() > 0) jobs = value_or_die(parse_jobs(a.jobs));
  a.executor = value_or_die(executor::parse_executor_name(a.executor));
  const bool slurm = a.executor == "slurm";
  if (!slurm && (!a.slurm_dir.empty() || !a.slurm_partition.empty()))
    throw Fatal(Error("--slurm-dir and --slurm-partition need --executor slurm", "add '--executor slurm'"));

  // Bad scheduler paths fail now, before a kernel is fetched or a VM boots.
  for (auto& spec : specs) value_or_die(check_scheduler(spec));
  // So do plans whose steps cannot happen (removing more workers than are
  // left, a CPU set offline twice): the spec's file:line, before any boot.
  for (auto& spec : specs) value_or_die(plan_scenario(spec, spec.topology));

  Progress progress(!a.json);
  auto progress_fn = [&](const std::string& s) { progress.update(s); };
  // A worker never opens the store: the parent records what it ran.
  if (!a.worker_test.empty()) return run_worker(specs, a, verbose);
  db::Store& store = ctx.open_store();

  auto resolve = [&](const TestSpec& spec) {
    std::string ref = !a.kernel.empty() ? a.kernel : spec.kernel;
    auto kernel = value_or_die(kbuild::resolve_kernel(store, ref, progress_fn));
    if (!kernel.sched_ext && spec.uses_bpf_scheduler())
      throw Fatal(Error("kernel '" + kernel.version + "' (" + kernel.id + ") has no sched_ext",
                        "use a kernel with CONFIG_SCHED_CLASS_EXT=y, e.g. 'ktstr kernel fetch'"));
    return kernel;
  };
  if (const char* lock = std::getenv(kVmLockEnv); !jobs && lock && *lock) {
    jobs = 1;  // the VMs would only take turns for the lock
  } else if (!jobs) {
    VmNeed need;
    for (auto& spec : specs) {
      need.cpus = std::max(need.cpus, spec.topology.cpus());
      need.memory_mb = std::max(need.memory_mb, a.memory ? a.memory : spec.memory_mb);
    }
    jobs = default_jobs(host_resources(), need, specs.size() * a.repeat);
  }
  // One unit of work (a single test, no --repeat) runs here as without
  // --jobs: a worker process would add nothing. With Slurm every unit is
  // an array task (--jobs splits --repeat runs into that many batches).
  if (slurm || (*jobs > 1 && plan_units(specs.size(), a.repeat, *jobs).size() > 1)) {
    // Every kernel is resolved (and fetched) here, once, so the workers
    // only look up an id.
    ParallelTests p;
    p.repeat = a.repeat;
    p.jobs = *jobs;
    p.json = a.json;
    p.pool.executor = a.executor;
    p.pool.slurm_dir = a.slurm_dir;
    p.pool.slurm_partition = a.slurm_partition;
    std::vector<KernelRecord> kernels;
    for (auto& spec : specs) {
      p.cpus.push_back(spec.topology.cpus());
      p.memory_mb.push_back(a.memory ? a.memory : spec.memory_mb);
      kernels.push_back(resolve(spec));
      p.names.push_back(spec.name);
      p.worker_argv.push_back(
          worker_argv(a, spec, kernels.back(), store.artifacts_dir(), verbose, a.seed ? *a.seed : random_seed()));
    }
    // Each unit's runs are recorded here, the only writer of the store, as
    // the unit comes back.
    p.record = [&](size_t test, WorkerOutput& out) {
      value_or_die(record_worker_output(store, out, specs[test], kernels[test], out.started_at, verbose));
    };
    progress.clear();
    return run_tests_in_parallel(p);
  }

  nlohmann::json doc;
  doc["tests"] = nlohmann::json::array();
  int passed = 0, failed = 0;
  ReportOptions ropt;
  ropt.verbose = verbose;
  for (auto& spec : specs) {
    auto kernel = resolve(spec);
    // The same unit a worker runs, here, recorded as a worker's would be.
    int64_t started = std::time(nullptr);
    UnitRuns done = run_unit(store.artifacts_dir(), spec, kernel, a, verbose, RepeatSlice{}, a.repeat, progress);
    WorkerOutput out = unit_output(done);
    std::vector<RunResult> results;
    value_or_die(record_worker_output(store, out, spec, kernel, started, verbose, &results));
    for (RunResult& result : results) {
      (result.passed ? passed : failed)++;
      if (a.json) {
        doc["tests"].push_back(to_json(result));
      } else {
        std::printf("%s\n", render_summary_line(result).c_str());
        // A repeat run prints each distinct failure's report once, below.
        if (!result.passed && a.repeat == 1) std::printf("%s", render_failure(result, ropt).c_str());
        std::fflush(stdout);
      }
    }
    if (a.repeat > 1) {
      RepeatTally tally = tally_repeat(results, done.skipped);
      failed += static_cast<int>(done.skipped);  // a run that never ran did not pass
      if (a.json) {
        nlohmann::json sigs = nlohmann::json::array();
        for (auto& [summary, n] : tally.signatures) sigs.push_back({{"summary", summary}, {"runs", n}});
        doc["repeat"].push_back({{"name", spec.name}, {"runs", tally.runs}, {"failed", tally.failed},
                                 {"other", tally.other}, {"passed", tally.passed}, {"skipped", tally.skipped},
                                 {"vms", done.vms}, {"signatures", sigs}});
      } else {
        std::printf("%s: %s (%u VM%s)\n", spec.name.c_str(), tally.line().c_str(), done.vms, done.vms == 1 ? "" : "s");
        for (size_t i : distinct_failures(results)) std::printf("%s", render_failure(results[i], ropt).c_str());
        std::fflush(stdout);
      }
    }
  }
  if (a.json) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    doc["summary"] = {{"passed", passed}, {"failed", failed}};
    doc["host"] = {{"peak_rss_kb", ru.ru_maxrss}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%d passed, %d failed\n", passed, failed);
  }
  return failed ? kExitTestFailed : kExitOk;
}

}  // namespace ktstr::cmd
