#include "cmd/test_jobs.hpp"

#include "cmd/progress.hpp"
#include "core/subprocess.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <set>

namespace ktstr::cmd {
namespace {

using Clock = std::chrono::steady_clock;

struct RunningUnit {
  size_t unit = 0;
  Child child;
  std::string out, err;
};

// Reads what is there; false once the pipe is at its end (or broken).
bool drain(int fd, std::string& into) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) return true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return n < 0 && errno == EAGAIN;
  }
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// A worker that printed no document: the error it printed (git style, as
// main prints a Fatal), or what is known about how it ended.
Error worker_error(const std::string& label, const RunningUnit& r, int status, const std::string& why) {
  std::string msg, hint;
  size_t at = 0;
  while (at < r.err.size()) {
    size_t nl = r.err.find('\n', at);
    std::string line = r.err.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
    at = nl == std::string::npos ? r.err.size() : nl + 1;
    if (msg.empty() && line.rfind("ktstr: error: ", 0) == 0) msg = line.substr(14);
    else if (!msg.empty() && hint.empty() && line.rfind("hint: ", 0) == 0) hint = line.substr(6);
  }
  if (!msg.empty()) return Error(msg, hint);
  std::string tail = r.err.size() > 2000 ? r.err.substr(r.err.size() - 2000) : r.err;
  while (!tail.empty() && tail.back() == '\n') tail.pop_back();
  return Error(fmt::format("the worker running {} ended with status {}: {}", label, status, why),
               tail.empty() ? "" : "its last output: " + tail);
}

class WorkerPool {
 public:
  WorkerPool(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
             const UnitEnded& on_end)
      : units_(units), opt_(opt), progress_(progress), on_end_(on_end) {}

  // Runs every unit (none more once a worker failed, with stop_on_error);
  // the first failure that stops the pool.
  std::optional<Error> run() {
    size_t next = 0;
    auto last_progress = Clock::now() - std::chrono::seconds(10);
    while (true) {
      while (!failure_ && running_.size() < opt_.jobs && next < units_.size()) start(next++);
      if (running_.empty()) break;
      std::vector<pollfd> fds;
      for (auto& r : running_) {
        if (r.child.stdout_fd >= 0) fds.push_back({r.child.stdout_fd, POLLIN, 0});
        if (r.child.stderr_fd >= 0) fds.push_back({r.child.stderr_fd, POLLIN, 0});
      }
      if (Clock::now() - last_progress >= std::chrono::seconds(1)) {
        show_progress();
        last_progress = Clock::now();
      }
      int n = ::poll(fds.data(), fds.size(), 1000);
      if (n < 0 && errno != EINTR) {
        failure_ = Error(std::string("poll failed: ") + std::strerror(errno));
        for (auto& r : running_) kill_child(r.child.pid);
        break;
      }
      for (auto it = running_.begin(); it != running_.end();) {
        if (it->child.stdout_fd >= 0 && !drain(it->child.stdout_fd, it->out)) close_fd(it->child.stdout_fd);
        if (it->child.stderr_fd >= 0 && !drain(it->child.stderr_fd, it->err)) close_fd(it->child.stderr_fd);
        if (it->child.stdout_fd < 0 && it->child.stderr_fd < 0) {
          finish(*it);
          it = running_.erase(it);
          last_progress = Clock::now() - std::chrono::seconds(10);
        } else {
          ++it;
        }
      }
    }
    progress_.clear();
    return failure_;
  }

 private:
  void start(size_t unit) {
    SpawnOptions o;
    o.capture_stdout = true;
    o.capture_stderr = true;
    auto child = spawn(units_[unit].argv, o);
    if (!child) {
      failure_ = child.error().context("cannot start a worker for " + units_[unit].label);
      return;
    }
    for (int fd : {child->stdout_fd, child->stderr_fd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    RunningUnit r;
    r.unit = unit;
    r.child = *child;
    running_.push_back(std::move(r));
  }

  void finish(RunningUnit& r) {
    int status = wait_child(r.child.pid);
    ++done_;
    auto doc = parse_worker_output(r.out);
    if (!doc) {
      Error e = worker_error(units_[r.unit].label, r, status, doc.error().msg);
      if (opt_.stop_on_error) {
        if (!failure_) failure_ = e;
        return;
      }
      progress_.clear();
      on_end_(r.unit, tl::unexpected(std::move(e)));
      return;
    }
    progress_.clear();
    // A worker's warnings (the store, the accelerator) still reach the
    // user, each once however many workers gave it.
    for (size_t at = 0; at < r.err.size();) {
      size_t nl = r.err.find('\n', at);
      std::string line = r.err.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? r.err.size() : nl + 1;
      if (!line.empty() && relayed_.insert(line).second) std::fprintf(stderr, "%s\n", line.c_str());
    }
    on_end_(r.unit, std::move(*doc));
  }

  void show_progress() {
    std::string names;
    for (auto& r : running_) names += (names.empty() ? "" : ", ") + units_[r.unit].label;
    progress_.update(fmt::format("{} running ({} of {} done): {}", running_.size(), done_, units_.size(), names));
  }

  const std::vector<WorkerUnit>& units_;
  const WorkerPoolOptions& opt_;
  Progress& progress_;
  const UnitEnded& on_end_;
  std::vector<RunningUnit> running_;
  size_t done_ = 0;
  std::optional<Error> failure_;
  std::set<std::string> relayed_;
};

}  // namespace

std::optional<Error> run_workers(const std::vector<WorkerUnit>& units, const WorkerPoolOptions& opt, Progress& progress,
                                 const UnitEnded& on_end) {
  WorkerPool pool(units, opt, progress, on_end);
  return pool.run();
}

int run_tests_in_parallel(const ParallelTests& p) {
  std::vector<JobUnit> units = plan_units(p.names.size(), p.repeat, p.jobs);
  std::vector<WorkerUnit> workers;
  for (const JobUnit& u : units) {
    WorkerUnit w;
    w.argv = p.worker_argv[u.test];
    w.argv.insert(w.argv.end(), {"--worker-runs", format_worker_runs(u)});
    w.label = "test '" + p.names[u.test] + "'";
    if (u.batches > 1) w.label += fmt::format(" #{}-{}", u.first, u.first + u.count - 1);
    workers.push_back(std::move(w));
  }
  Progress progress(!p.json);
  std::vector<WorkerOutput> outputs(units.size());
  WorkerPoolOptions opt;
  opt.jobs = p.jobs;
  UnitEnded on_end = [&](size_t unit, Result<WorkerOutput> doc) {
    if (!doc) return;  // stop_on_error: never called without a document
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

}  // namespace ktstr::cmd
