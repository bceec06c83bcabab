#include "run/unit_record.hpp"

#include "run/pipeline.hpp"
#include "run/repeat_run.hpp"
#include "run/repro.hpp"
#include "core/report.hpp"
#include "core/run_result_json.hpp"

#include <optional>

namespace ktstr::runner {

Status record_unit_run(db::Store& store, RunResult& r, const TestSpec& spec, const KernelRecord& kernel,
                       int64_t started, const std::string& replayed_crash_id) {
  // The run row holds the run as it ended, before its crash and repro.
  std::optional<ReproResult> repro = std::move(r.repro);
  r.repro.reset();
  if (auto st = record_run(store, r, started); !st) return st;
  // An unexpected scheduler crash is recorded (an expected one is the
  // test passing, not news).
  if (r.passed || !r.exit) return {};
  if (auto st = record_crash(store, r, spec, kernel); !st) {
    r.diagnostics.push_back("could not record the crash: " + st.error().msg);
    return {};  // a repro of a crash not recorded has nothing to belong to
  }
  if (!replayed_crash_id.empty())
    r.diagnostics.push_back("auto-repro: not replayed again, same signature as crash " + replayed_crash_id);
  if (!repro) return {};
  r.repro = std::move(repro);
  if (auto st = record_repro(store, r); !st) r.diagnostics.push_back("auto-repro failed: " + st.error().msg);
  return {};
}

Status record_worker_output(db::Store& store, WorkerOutput& out, const TestSpec& spec, const KernelRecord& kernel,
                            int64_t started, bool verbose, std::vector<RunResult>* runs) {
  ReportOptions ropt;
  ropt.verbose = verbose;
  std::vector<std::string> crash_ids;
  for (WorkerRun& w : out.runs) {
    auto run = run_result_from_json(w.result);
    if (!run) return fail(run.error());  // parse_worker_output checked it already
    RunResult& r = *run;
    std::string replayed;
    if (w.replayed_with >= 0 && static_cast<size_t>(w.replayed_with) < crash_ids.size())
      replayed = crash_ids[w.replayed_with];
    if (auto st = record_unit_run(store, r, spec, kernel, started, replayed); !st) return st;
    crash_ids.push_back(r.crash_id);
    w.result = to_json(r);
    w.line = render_summary_line(r);
    w.failure = r.passed ? "" : render_failure(r, ropt);
    w.outline = outline_of(r);
    if (runs) runs->push_back(std::move(r));
  }
  return {};
}

}  // namespace ktstr::runner
