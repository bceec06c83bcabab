#include "run/unit_run.hpp"

#include "run/pipeline.hpp"
#include "run/repro.hpp"
#include "core/crash_parse.hpp"
#include "core/seed.hpp"

#include <map>

namespace ktstr::runner {
namespace {

// The auto-repro of each distinct crash among `out.runs`.
void replay_crashes(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                    const UnitOptions& opt, const PipelineOptions& popt, UnitRuns& out, Progress& progress) {
  std::map<std::string, int> replayed;  // signature key -> the run that replayed it
  out.replayed_with.assign(out.runs.size(), -1);
  for (size_t i = 0; i < out.runs.size(); ++i) {
    RunResult& result = out.runs[i];
    if (result.passed || !result.exit || !opt.auto_repro || !spec.auto_repro || spec.expect_err) continue;
    std::string key = signature_of(*result.exit).key();
    if (auto seen = replayed.find(key); seen != replayed.end()) {
      out.replayed_with[i] = seen->second;
      continue;
    }
    replayed.emplace(key, static_cast<int>(i));
    progress.update("auto-repro of the crash of " + spec.name);
    auto rr = replay_crash(artifacts_dir, spec, kernel, *result.exit, result.seed, result.sched, key, popt);
    if (rr) result.repro = std::move(*rr);
    else result.diagnostics.push_back("auto-repro failed: replaying the crash: " + rr.error().msg);
    progress.clear();
  }
}

}  // namespace

UnitRuns run_unit(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                  const UnitOptions& opt, const RepeatSlice& slice, unsigned count, Progress& progress) {
  PipelineOptions popt;
  popt.verbose = opt.verbose;
  popt.seed = opt.seed ? *opt.seed : random_seed();
  if (opt.memory_mb) popt.memory_mb = opt.memory_mb;
  popt.progress = [&](const std::string& s) { progress.update(s); };
  UnitRuns out;
  if (opt.repeat > 1) {
    auto rr = value_or_die(run_test_repeated(artifacts_dir, spec, kernel, popt, count, slice, opt.repeat));
    out.runs = std::move(rr.runs);
    out.skipped = rr.skipped;
    out.vms = rr.vms;
  } else {
    out.runs.push_back(value_or_die(run_test(artifacts_dir, spec, kernel, popt)));
  }
  progress.clear();
  replay_crashes(artifacts_dir, spec, kernel, opt, popt, out, progress);
  return out;
}

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

}  // namespace ktstr::runner
