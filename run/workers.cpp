#include "run/workers.hpp"

#include "run/progress.hpp"
#include "core/fs.hpp"
#include "executor/executor.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>

namespace ktstr::runner {
namespace {

// A worker that printed no document: the error it printed (git style, as
// main prints a Fatal), or what is known about how it ended.
Error worker_error(const std::string& label, const executor::UnitOutcome& o, const std::string& why) {
  std::string msg, hint;
  const std::string& err = o.log;
  size_t at = 0;
  while (at < err.size()) {
    size_t nl = err.find('\n', at);
    std::string line = err.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? err.size() : nl + 1;
    if (msg.empty() && line.rfind("ktstr: error: ", 0) == 0) msg = line.substr(14);
    else if (!msg.empty() && hint.empty() && line.rfind("hint: ", 0) == 0) hint = line.substr(6);
  }
  if (!msg.empty()) return Error(msg, hint);
  if (!o.error.empty()) return Error("the worker running " + label + " ended without a result: " + o.error);
  std::string tail = err.size() > 2000 ? err.substr(err.size() - 2000) : err;
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  std::string where = o.host.empty() || o.host == "localhost" ? "" : " on " + o.host;
  return Error(fmt::format("the worker running {}{} ended with status {}: {}", label, where, o.status, why),
               tail.empty() ? "" : "its last output: " + tail);
}

std::unique_ptr<executor::Executor> make_executor(const WorkerPoolOptions& opt, Progress& progress) {
  auto show = [&progress](const std::string& line) {
    if (line.empty()) progress.clear();
    else progress.update(line);
  };
  if (opt.executor != "slurm") return executor::local_executor({opt.jobs, show});
  // The job directory: under --slurm-dir (a path the nodes see), else under
  // the cache (which then must be shared, as the kernels and initramfs are).
  std::string parent = opt.slurm_dir.empty() ? cache_dir() + "/slurm" : opt.slurm_dir;
  auto dir = executor::new_job_dir(parent);
  if (!dir) throw Fatal(Error(dir.error().msg, "give --slurm-dir a directory every node sees at the same path"));
  executor::SlurmOptions so;
  so.job_dir = *dir;
  so.runner = exe_dir() + "/ktstr";
  so.partition = opt.slurm_partition;
  return executor::slurm_executor(so, show);
}

}  // namespace

std::optional<Error> run_workers(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
                                 const UnitEnded& on_end) {
  std::vector<executor::WorkUnit> work;
  for (const WorkerUnit& u : units)
    work.push_back(executor::WorkUnit{u.label, u.argv, std::max(1u, u.cpus), std::max(64u, u.memory_mb)});
  std::optional<Error> failure;
  std::set<std::string> relayed;
  auto on_finished = [&](executor::UnitOutcome& o) {
    const std::string& label = units[o.index].label;
    auto doc = o.error.empty() ? parse_worker_output(o.result) : Result<WorkerOutput>(fail(o.error));
    if (!doc) {
      Error e = worker_error(label, o, doc.error().msg);
      if (opt.stop_on_error) {
        if (!failure) failure = e;
        return false;
      }
      on_end(o.index, tl::unexpected(std::move(e)));
      return true;
    }
    // A worker's warnings (the accelerator, ...) still reach the user, each
    // once however many workers gave it.
    for (size_t at = 0; at < o.log.size();) {
      size_t nl = o.log.find('\n', at);
      std::string line = o.log.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? o.log.size() : nl + 1;
      if (!line.empty() && relayed.insert(line).second) std::fprintf(stderr, "%s\n", line.c_str());
    }
    on_end(o.index, std::move(*doc));
    return true;
  };
  auto ex = make_executor(opt, progress);
  if (auto st = ex->run(work, on_finished); !st && !failure) failure = st.error();
  progress.clear();
  return failure;
}

int run_tests_in_parallel(const ParallelTests& p) {
  std::vector<JobUnit> units = plan_units(p.names.size(), p.repeat, p.jobs);
  std::vector<WorkerUnit> workers;
  for (const JobUnit& u : units) {
    WorkerUnit w;
    w.argv = p.worker_argv[u.test];
    w.argv.insert(w.argv.end(), {"--worker-runs", format_worker_runs(u)});
    w.label = "test '" + p.names[u.test] + "'";
    if (u.test < p.cpus.size()) w.cpus = p.cpus[u.test];
    if (u.test < p.memory_mb.size()) w.memory_mb = p.memory_mb[u.test] + kQemuOverheadMb;
    if (u.batches > 1) w.label += fmt::format(" #{}-{}", u.first, u.first + u.count - 1);
    workers.push_back(std::move(w));
  }
  Progress progress(!p.json);
  std::vector<WorkerOutput> outputs(units.size());
  WorkerPoolOptions opt = p.pool;
  opt.jobs = p.jobs;
  UnitEnded on_end = [&](size_t unit, Result<WorkerOutput> doc) {
    if (!doc) return;  // stop_on_error: never called without a document
    p.record(units[unit].test, *doc);
    if (!p.json)
      for (const WorkerRun& run : doc->runs) std::printf("%s\n", run.line.c_str());
    std::fflush(stdout);
    outputs[unit] = std::move(*doc);
  };
  if (auto failure = run_workers(workers, opt, progress, on_end)) throw Fatal(*failure);
  std::vector<TestRuns> tests = merge_units(p.names.size(), units, outputs);

  nlohmann::json doc;
  doc["tests"] = nlohmann::json::array();
  int passed = 0, failed = 0;
  long peak_rss_kb = 0;
  for (const WorkerOutput& w : outputs) peak_rss_kb = std::max(peak_rss_kb, w.peak_rss_kb);
  for (size_t t = 0; t < tests.size(); ++t) {
    const TestRuns& runs = tests[t];
    std::vector<RunOutline> outlines;
    for (const WorkerRun& r : runs.runs) {
      (r.outline.passed ? passed : failed)++;
      outlines.push_back(r.outline);
      if (p.json) doc["tests"].push_back(r.result);
      else if (!r.outline.passed && p.repeat == 1) std::printf("%s", r.failure.c_str());
    }
    if (p.repeat == 1) continue;
    RepeatTally tally = tally_repeat(outlines, runs.skipped);
    failed += static_cast<int>(runs.skipped);  // a run that never ran did not pass
    if (p.json) {
      nlohmann::json sigs = nlohmann::json::array();
      for (auto& [summary, n] : tally.signatures) sigs.push_back({{"summary", summary}, {"runs", n}});
      doc["repeat"].push_back({{"name", p.names[t]}, {"runs", tally.runs}, {"failed", tally.failed},
                               {"other", tally.other}, {"passed", tally.passed}, {"skipped", tally.skipped},
                               {"vms", runs.vms}, {"signatures", sigs}});
    } else {
      std::printf("%s: %s (%u VM%s)\n", p.names[t].c_str(), tally.line().c_str(), runs.vms,
                  runs.vms == 1 ? "" : "s");
      for (size_t i : distinct_failures(outlines)) std::printf("%s", runs.runs[i].failure.c_str());
    }
  }
  if (p.json) {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    doc["summary"] = {{"passed", passed}, {"failed", failed}};
    doc["host"] = {{"peak_rss_kb", std::max(peak_rss_kb, static_cast<long>(ru.ru_maxrss))}};
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%d passed, %d failed\n", passed, failed);
  }
  std::fflush(stdout);
  return failed ? kExitTestFailed : kExitOk;
}

}  // namespace ktstr::runner
