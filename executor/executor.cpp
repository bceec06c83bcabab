// The executor names, the job directory, and `--executor slurm` behind the
// Executor interface: SlurmExecutor (slurm.hpp) with outcomes handed over as
// they arrive and SIGINT/SIGTERM cancelling the job.
#include "executor/executor.hpp"

#include "core/fs.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace ktstr::executor {

Result<ExecutorKind> parse_executor_name(const std::string& text) {
  if (text == "local") return ExecutorKind::kLocal;
  if (text == "slurm") return ExecutorKind::kSlurm;
  return fail("--executor '" + text + "' is not an executor", "use 'local' (this machine) or 'slurm' (a job array)");
}

Result<std::string> new_job_dir(const std::string& parent) {
  if (auto st = make_dirs(parent); !st) return tl::unexpected(st.error());
  std::string tmpl = parent + "/job-XXXXXX";
  if (!::mkdtemp(tmpl.data()))
    return fail("cannot create a job directory in '" + parent + "': " + std::strerror(errno));
  return tmpl;
}

namespace {

std::atomic<int> g_signal{0};

void on_stop_signal(int sig) { g_signal.store(sig); }

// SIGINT and SIGTERM noted (not fatal) while a job runs; the old handlers
// back on destruction.
class StopSignals {
 public:
  StopSignals() {
    g_signal.store(0);
    struct sigaction sa = {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  struct sigaction old_int_ = {}, old_term_ = {};
};

class SlurmAdapter : public Executor {
 public:
  SlurmAdapter(SlurmOptions opts, OnProgress progress) : opts_(std::move(opts)), progress_(std::move(progress)) {}

  Status run(const std::vector<WorkUnit>& units, const OnFinished& on_finished) override {
    bool unwanted = false;  // on_finished said stop
    SlurmOptions opts = opts_;
    opts.stop = [&] { return unwanted || g_signal.load() != 0; };
    int sig = 0;
    Status result;
    {
      StopSignals signals;
      SlurmExecutor slurm(opts);
      auto id = slurm.submit(units);
      if (!id) return tl::unexpected(id.error());
      size_t done = 0;
      if (progress_) progress_(fmt::format("Slurm job {}: {} units submitted", *id, units.size()));
      auto outcomes = slurm.wait([&](const UnitOutcome& o) {
        if (unwanted) return;
        UnitOutcome copy = o;
        if (auto log = read_file(o.log_path, 1 << 20)) copy.log = std::move(*log);
        ++done;
        if (progress_) progress_("");
        if (!on_finished(copy)) unwanted = true;
        if (progress_ && !unwanted)
          progress_(fmt::format("Slurm job {}: {} of {} units done", *id, done, units.size()));
      });
      if (progress_) progress_("");
      sig = g_signal.load();
      if (!outcomes && !(unwanted && !sig)) result = tl::unexpected(outcomes.error());
    }  // the job is cancelled here if it still runs; the handlers are restored
    if (sig) ::raise(sig);  // die of the signal, as without a job
    return result;
  }

 private:
  SlurmOptions opts_;
  OnProgress progress_;
};

}  // namespace

std::unique_ptr<Executor> slurm_executor(SlurmOptions opts, OnProgress progress) {
  return std::make_unique<SlurmAdapter>(std::move(opts), std::move(progress));
}

}  // namespace ktstr::executor
