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
  if (opt.executor != executor::ExecutorKind::kSlurm) return executor::local_executor({opt.jobs, show});
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

std::vector<executor::WorkUnit> work_units(const std::vector<WorkerUnit>& units) {
  std::vector<executor::WorkUnit> work;
  for (const WorkerUnit& u : units)
    work.push_back(executor::WorkUnit{u.label, u.argv, std::max(1u, u.cpus), std::max(64u, u.memory_mb)});
  return work;
}

std::optional<Error> run_workers(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
                                 const UnitEnded& on_end) {
  std::vector<executor::WorkUnit> work = work_units(units);
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

}  // namespace ktstr::runner
