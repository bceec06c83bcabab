// `--executor local`: each unit a child process of this ktstr (dying with it,
// PR_SET_PDEATHSIG), at most `jobs` at once; its stdout and stderr read
// through pipes while it runs.
#include "executor/executor.hpp"

#include "core/subprocess.hpp"

#include <fcntl.h>
#include <signal.h>
#include <fmt/format.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace ktstr::executor {
namespace {

using Clock = std::chrono::steady_clock;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct RunningUnit {
  size_t unit = 0;
  Child child;
  std::string out, err;
  int64_t started_ms = 0;
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

class LocalExecutor : public Executor {
 public:
  explicit LocalExecutor(LocalOptions opts) : opts_(std::move(opts)) {
    if (opts_.jobs == 0) opts_.jobs = 1;
  }

  Status run(const std::vector<WorkUnit>& units, const OnFinished& on_finished) override {
    size_t next = 0, done = 0;
    bool stopped = false;
    std::optional<Error> failure;
    auto last_progress = Clock::now() - std::chrono::seconds(10);
    auto stop_all = [&] {
      stopped = true;
      for (auto& r : running_) ::kill(r.child.pid, SIGKILL);  // their pipes close; they are reaped below
    };
    while (true) {
      while (!stopped && !failure && running_.size() < opts_.jobs && next < units.size()) {
        if (auto st = start(units[next], next); !st) failure = st.error();
        ++next;
      }
      if (running_.empty()) break;
      std::vector<pollfd> fds;
      for (auto& r : running_) {
        if (r.child.stdout_fd >= 0) fds.push_back({r.child.stdout_fd, POLLIN, 0});
        if (r.child.stderr_fd >= 0) fds.push_back({r.child.stderr_fd, POLLIN, 0});
      }
      if (opts_.progress && Clock::now() - last_progress >= std::chrono::seconds(1)) {
        std::string names;
        for (auto& r : running_) names += (names.empty() ? "" : ", ") + units[r.unit].name;
        opts_.progress(fmt::format("{} running ({} of {} done): {}", running_.size(), done, units.size(), names));
        last_progress = Clock::now();
      }
      int n = ::poll(fds.data(), fds.size(), 1000);
      if (n < 0 && errno != EINTR) {
        if (!failure) failure = Error(std::string("poll failed: ") + std::strerror(errno));
        stop_all();
      }
      for (auto it = running_.begin(); it != running_.end();) {
        if (it->child.stdout_fd >= 0 && !drain(it->child.stdout_fd, it->out)) close_fd(it->child.stdout_fd);
        if (it->child.stderr_fd >= 0 && !drain(it->child.stderr_fd, it->err)) close_fd(it->child.stderr_fd);
        if (it->child.stdout_fd >= 0 || it->child.stderr_fd >= 0) {
          ++it;
          continue;
        }
        UnitOutcome o;
        o.index = it->unit;
        o.status = wait_child(it->child.pid);
        o.result = std::move(it->out);
        o.log = std::move(it->err);
        o.host = "localhost";
        o.started_ms = it->started_ms;
        o.ended_ms = now_ms();
        it = running_.erase(it);
        ++done;
        last_progress = Clock::now() - std::chrono::seconds(10);
        if (opts_.progress) opts_.progress("");
        // Stopped: nothing new starts; the running units end on their own
        // and are still handed back.
        if (!on_finished(o)) stopped = true;
      }
    }
    if (opts_.progress) opts_.progress("");
    if (failure) return tl::unexpected(*failure);
    return {};
  }

 private:
  Status start(const WorkUnit& unit, size_t index) {
    SpawnOptions o;
    o.capture_stdout = true;
    o.capture_stderr = true;
    auto child = spawn(unit.argv, o);
    if (!child) return tl::unexpected(child.error().context("cannot start " + unit.name));
    for (int fd : {child->stdout_fd, child->stderr_fd}) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    RunningUnit r;
    r.unit = index;
    r.child = *child;
    r.started_ms = now_ms();
    running_.push_back(std::move(r));
    return {};
  }

  LocalOptions opts_;
  std::vector<RunningUnit> running_;
};

}  // namespace

std::unique_ptr<Executor> local_executor(LocalOptions opts) { return std::make_unique<LocalExecutor>(std::move(opts)); }

}  // namespace ktstr::executor
