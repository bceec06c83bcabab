#include "run/tests_run.hpp"

#include "run/repeat_run.hpp"
#include "run/unit_record.hpp"
#include "run/worker.hpp"
#include "core/file_lock.hpp"
#include "core/seed.hpp"
#include "kbuild/kernel_cache.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace ktstr::runner {

unsigned jobs_for(const std::vector<TestSpec>& specs, unsigned memory_mb, unsigned repeat,
                  std::optional<unsigned> jobs) {
  VmNeed need;
  for (auto& spec : specs) {
    need.cpus = std::max(need.cpus, spec.topology.cpus());
    need.memory_mb = std::max(need.memory_mb, memory_mb ? memory_mb : spec.memory_mb);
  }
  return jobs_or_default(jobs, need, specs.size() * repeat);
}

TestsSummary::TestsSummary(bool json, unsigned repeat) : json_(json), repeat_(repeat) {
  doc_["tests"] = nlohmann::json::array();
}

std::string TestsSummary::add(const TestSpec& spec, const std::vector<WorkerRun>& runs, unsigned vms,
                              unsigned skipped, bool reports) {
  const std::string& name = spec.name;
  if (junit_) add_test_runs(*junit_, spec, runs, repeat_);
  std::string text;
  std::vector<RunOutline> outlines;
  for (const WorkerRun& r : runs) {
    (r.outline.passed ? passed_ : failed_)++;
    outlines.push_back(r.outline);
    if (json_) doc_["tests"].push_back(r.result);
    else if (reports && !r.outline.passed && repeat_ == 1) text += r.failure;
  }
  if (repeat_ == 1) return text;
  RepeatTally tally = tally_repeat(outlines, skipped);
  failed_ += static_cast<int>(skipped);  // a run that never ran did not pass
  if (json_) {
    nlohmann::json sigs = nlohmann::json::array();
    for (auto& [summary, n] : tally.signatures) sigs.push_back({{"summary", summary}, {"runs", n}});
    doc_["repeat"].push_back({{"name", name}, {"runs", tally.runs}, {"failed", tally.failed},
                              {"other", tally.other}, {"passed", tally.passed}, {"skipped", tally.skipped},
                              {"vms", vms}, {"signatures", sigs}});
    return text;
  }
  text += fmt::format("{}: {} ({} VM{})\n", name, tally.line(), vms, vms == 1 ? "" : "s");
  for (size_t i : distinct_failures(outlines)) text += runs[i].failure;
  return text;
}

std::string TestsSummary::finish(long peak_rss_kb) {
  if (!json_) return fmt::format("{} passed, {} failed\n", passed_, failed_);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  doc_["summary"] = {{"passed", passed_}, {"failed", failed_}};
  doc_["host"] = {{"peak_rss_kb", std::max(peak_rss_kb, static_cast<long>(ru.ru_maxrss))}};
  return doc_.dump(2) + "\n";
}

namespace {

KernelRecord resolve_test_kernel(db::Store& store, const TestsRun& t, const TestSpec& spec, Progress& progress) {
  std::string ref = !t.kernel_ref.empty() ? t.kernel_ref : spec.kernel;
  auto kernel = value_or_die(kbuild::resolve_kernel(store, ref, [&](const std::string& s) { progress.update(s); }));
  if (!kernel.sched_ext && spec.uses_bpf_scheduler())
    throw Fatal(Error("kernel '" + kernel.version + "' (" + kernel.id + ") has no sched_ext",
                      "use a kernel with CONFIG_SCHED_CLASS_EXT=y, e.g. 'ktstr kernel fetch'"));
  return kernel;
}

// The tests one after another in this process: each unit is the one a
// worker would run, recorded as a worker's would be.
int run_in_process(db::Store& store, const TestsRun& t, TestsSummary& summary, Progress& progress,
                   const Printer& print) {
  for (auto& spec : t.specs) {
    KernelRecord kernel = resolve_test_kernel(store, t, spec, progress);
    int64_t started = std::time(nullptr);
    UnitRuns done = run_unit(store.artifacts_dir(), spec, kernel, t.unit, RepeatSlice{}, t.unit.repeat, progress);
    WorkerOutput out = unit_output(done);
    value_or_die(record_worker_output(store, out, spec, kernel, started, t.unit.verbose));
    if (!t.json)
      for (const WorkerRun& run : out.runs)
        print(run.line + "\n" + (!run.outline.passed && t.unit.repeat == 1 ? run.failure : ""));
    print(summary.add(spec, out.runs, done.vms, done.skipped, false));
  }
  print(summary.finish(0));
  return summary.exit_status();
}

// Every unit in a worker process, `jobs` at once (or a Slurm job array).
// Every kernel is resolved (and fetched) first, once, so the workers only
// boot it.
int run_in_workers(db::Store& store, const TestsRun& t, unsigned jobs, TestsSummary& summary, Progress& progress,
                   const Printer& print) {
  std::vector<KernelRecord> kernels;
  std::vector<WorkerRequest> requests;
  for (auto& spec : t.specs) {
    kernels.push_back(resolve_test_kernel(store, t, spec, progress));
    WorkerRequest r;
    if (t.adhoc) r.spec_toml = spec_to_toml(spec);
    else r.spec_file = spec.source_file;
    r.test = spec.name;
    r.kernel = kernels.back();
    r.artifacts_dir = store.artifacts_dir();
    r.options = t.unit;
    // The test's seed is chosen here, once: every part of its --repeat
    // runs numbers its repetitions from it.
    if (!r.options.seed) r.options.seed = random_seed();
    requests.push_back(std::move(r));
  }
  progress.clear();
  std::vector<TestUnit> units = plan_units(t.specs.size(), t.unit.repeat, jobs);
  std::vector<WorkerUnit> workers;
  for (const TestUnit& u : units) {
    WorkerRequest r = requests[u.test];
    r.unit = u;
    WorkerUnit w{worker_argv(r), "test '" + r.test + "'"};
    const TestSpec& spec = t.specs[u.test];
    w.cpus = spec.topology.cpus();
    w.memory_mb = (t.unit.memory_mb ? t.unit.memory_mb : spec.memory_mb) + kQemuOverheadMb;
    if (u.parts > 1) w.label += fmt::format(" #{}-{}", u.first, u.first + u.count - 1);
    workers.push_back(std::move(w));
  }
  std::vector<WorkerOutput> outputs(units.size());
  WorkerPoolOptions opt = t.pool;
  opt.jobs = jobs;
  UnitEnded on_end = [&](size_t unit, Result<WorkerOutput> doc) {
    if (!doc) return;  // stop_on_error: never called without a document
    const size_t test = units[unit].test;
    // Recorded here, the only writer of the store, as the unit comes back.
    value_or_die(record_worker_output(store, *doc, t.specs[test], kernels[test], doc->started_at, t.unit.verbose));
    if (!t.json)
      for (const WorkerRun& run : doc->runs) print(run.line + "\n");
    outputs[unit] = std::move(*doc);
  };
  if (auto failure = run_workers(workers, opt, progress, on_end)) throw Fatal(*failure);
  std::vector<TestRuns> tests = merge_units(t.specs.size(), units, outputs);
  long peak_rss_kb = 0;
  for (const WorkerOutput& w : outputs) peak_rss_kb = std::max(peak_rss_kb, w.peak_rss_kb);
  for (size_t i = 0; i < tests.size(); ++i)
    print(summary.add(t.specs[i], tests[i].runs, tests[i].vms, tests[i].skipped, true));
  print(summary.finish(peak_rss_kb));
  return summary.exit_status();
}

}  // namespace

int run_tests(db::Store& store, const TestsRun& t, Progress& progress, const Printer& print) {
  const unsigned jobs = jobs_for(t.specs, t.unit.memory_mb, t.unit.repeat, t.jobs);
  // One unit of work (a single test, no --repeat) runs here: a worker
  // process would add nothing. With Slurm every unit is an array task
  // (--jobs splits --repeat runs into that many parts).
  const bool slurm = t.pool.executor == executor::ExecutorKind::kSlurm;
  TestsSummary summary(t.json, t.unit.repeat);
  if (!t.junit.empty()) summary.keep_junit(std::time(nullptr));
  const int status = slurm || (jobs > 1 && plan_units(t.specs.size(), t.unit.repeat, jobs).size() > 1)
                         ? run_in_workers(store, t, jobs, summary, progress, print)
                         : run_in_process(store, t, summary, progress, print);
  if (summary.junit()) value_or_die(write_junit(t.junit, *summary.junit()));
  return status;
}

}  // namespace ktstr::runner
