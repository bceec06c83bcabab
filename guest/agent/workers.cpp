#include "guest/agent/workers.hpp"

#include "guest/agent/step_runner.hpp"
#include "guest/agent/util.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vector>

namespace ktstr::agent {

using detail::Slot;
using detail::pin;

namespace {

static_assert(kWorkerStopSignal == SIGUSR1);

void on_stop_signal(int) { work_stop_flag() = 1; }

// Sent child -> agent over a pipe in one write (< PIPE_BUF, so atomic).
struct WorkerRecord {
  uint32_t slot;
  int32_t pid;
  uint64_t iterations, cpu_time_ns, wall_ns, migrations, max_gap_ns;
  uint64_t cpu_mask[kMaxTrackedCpus / 64];
  uint64_t since_mask[kMaxTrackedCpus / 64];  // CPUs after the last cpuset change
  uint32_t cpus_changed;
  uint64_t counters[kCounterCount];
  uint32_t counters_set;  // bit per Counter
  char error[160];  // non-empty: the worker could not be placed
};
static_assert(sizeof(WorkerRecord) < PIPE_BUF);

void write_record(int fd, const WorkerRecord& rec) {
  ssize_t n;
  do {
    n = ::write(fd, &rec, sizeof rec);
  } while (n < 0 && errno == EINTR);
}

std::string place_self(const Slot& slot) {
  if (!slot.cgroup_dir.empty()) {
    std::string err = write_text(slot.cgroup_dir + "/cgroup.procs", std::to_string(::getpid()));
    if (!err.empty()) return "joining cgroup '" + slot.cgroup_dir + "': " + err;
  }
  if (slot.use_affinity && !slot.cpus.empty())
    if (std::string err = pin(0, slot.cpus); !err.empty()) return err;
  return apply_sched_params(*slot.plan);
}

// One worker's copy of the release time from the go pipe (the agent writes
// one per worker, then closes it); 0 when it closed without one.
uint64_t read_release(int go_fd) {
  uint64_t release_ns = 0;
  auto* bytes = reinterpret_cast<char*>(&release_ns);
  size_t got = 0;
  while (got < sizeof release_ns) {
    ssize_t n = ::read(go_fd, bytes + got, sizeof release_ns - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    got += static_cast<size_t>(n);
  }
  return release_ns;
}

// How long the release waits for the workers to be in their cgroups.
constexpr int kReadyTimeoutMs = 10000;

[[noreturn]] void worker_main(const Slot& slot, uint32_t slot_no, uint64_t duration_ms, int ready_fd, int go_fd,
                              int result_fd) {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGUSR1, &sa, nullptr);
  WorkerRecord rec{};
  rec.slot = slot_no;
  rec.pid = ::getpid();
  std::string err = place_self(slot);
  if (uint32_t* epochs = detail::cpuset_epochs()) work_cpuset_epoch() = epochs + slot_no;
  if (ready_fd >= 0) {  // placed (or failed to be): the agent may release
    char byte = 1;
    while (::write(ready_fd, &byte, 1) < 0 && errno == EINTR) {
    }
    ::close(ready_fd);
  }
  // The release: the agent's clock when it let everyone go (then EOF), so
  // a worker that first runs after the test's window never ran in it.
  uint64_t release_ns = 0;
  if (go_fd >= 0) release_ns = read_release(go_fd);  // added workers start at once
  if (err.empty()) {
    bool window_over = release_ns != 0 && monotonic_ns() >= release_ns + duration_ms * 1000000ull;
    WorkStats s = window_over ? WorkStats{} : run_work(*slot.plan, duration_ms);
    rec.iterations = s.iterations;
    rec.cpu_time_ns = s.cpu_time_ns;
    rec.wall_ns = s.wall_ns;
    rec.migrations = s.migrations;
    rec.max_gap_ns = s.max_gap_ns;
    for (unsigned c = 0; c < kMaxTrackedCpus; ++c) {
      if (s.cpus_used[c]) rec.cpu_mask[c / 64] |= 1ull << (c % 64);
      if (s.cpus_since_change[c]) rec.since_mask[c / 64] |= 1ull << (c % 64);
    }
    rec.cpus_changed = s.cpus_changed;
    for (unsigned c = 0; c < kCounterCount; ++c) rec.counters[c] = s.counters[c];
    rec.counters_set = s.counters_set;
  } else {
    std::snprintf(rec.error, sizeof rec.error, "%s", err.c_str());
  }
  write_record(result_fd, rec);
  ::_exit(err.empty() ? 0 : 1);
}

// cgroup2 enables controllers one level at a time; "+cpuset" may be missing
// from the kernel, so each controller is tried on its own.
void enable_controllers(const std::string& dir, const WorkerCallbacks& cb) {
  for (const char* ctl : {"+cpu", "+cpuset"}) {
    std::string err = write_text(dir + "/cgroup.subtree_control", ctl);
    if (!err.empty()) cb.log("warn", std::string("enabling '") + ctl + "' in '" + dir + "': " + err);
  }
}

Status setup_cgroups(const WorkerOptions& options, std::vector<Slot>& slots,
                     const WorkerCallbacks& cb) {
  if (options.cgroup_root.empty()) {
    for (Slot& s : slots) s.use_affinity = true;
    return {};
  }
  std::string parent = options.cgroup_root.substr(0, options.cgroup_root.find_last_of('/'));
  enable_controllers(parent, cb);
  if (::mkdir(options.cgroup_root.c_str(), 0755) != 0 && errno != EEXIST)
    return fail("creating cgroup '" + options.cgroup_root + "': " + errno_text(errno));
  enable_controllers(options.cgroup_root, cb);
  const proto::CgroupPlan* done = nullptr;
  bool affinity = false;
  for (Slot& s : slots) {
    s.cgroup_dir = options.cgroup_root + "/" + s.plan->name;
    if (s.plan != done) {  // slots of one plan are adjacent
      done = s.plan;
      affinity = false;
      if (::mkdir(s.cgroup_dir.c_str(), 0755) != 0 && errno != EEXIST)
        return fail("creating cgroup '" + s.cgroup_dir + "': " + errno_text(errno));
      if (s.plan->weight != 100) {
        std::string err = write_text(s.cgroup_dir + "/cpu.weight", std::to_string(s.plan->weight));
        if (!err.empty())
          cb.log("warn", "setting cpu.weight " + std::to_string(s.plan->weight) + " of '" + s.cgroup_dir + "': " + err);
      }
      if (!s.plan->cpus.empty()) {
        std::string err = write_text(s.cgroup_dir + "/cpuset.cpus", s.plan->cpus);
        if (!err.empty()) {
          cb.log("warn", "setting cpuset.cpus '" + s.plan->cpus + "' of '" + s.cgroup_dir +
                             "': " + err + "; using CPU affinity instead");
          affinity = true;
        }
      }
    }
    s.use_affinity = affinity;
  }
  return {};
}

proto::WorkerMsg to_message(const Slot& slot, const WorkerRecord& rec) {
  proto::WorkerMsg msg;
  msg.cgroup = slot.plan->name;
  msg.index = slot.index;
  msg.moved_to = slot.moved_to;
  msg.cpus_changed = rec.cpus_changed != 0;
  if (msg.cpus_changed)
    for (unsigned c = 0; c < kMaxTrackedCpus; ++c)
      if (rec.since_mask[c / 64] & (1ull << (c % 64))) msg.cpus_since_change.push_back(c);
  msg.pid = rec.pid;
  msg.work = slot.plan->work;
  msg.iterations = rec.iterations;
  msg.cpu_time_ns = rec.cpu_time_ns;
  msg.wall_ns = rec.wall_ns;
  msg.migrations = rec.migrations;
  msg.max_gap_ns = rec.max_gap_ns;
  for (unsigned c = 0; c < kMaxTrackedCpus; ++c)
    if (rec.cpu_mask[c / 64] & (1ull << (c % 64))) msg.cpus_used.push_back(c);
  for (unsigned c = 0; c < kCounterCount; ++c)
    if ((rec.counters_set >> c) & 1u) msg.counters[counter_name(static_cast<Counter>(c))] = rec.counters[c];
  return msg;
}

void kill_and_reap(std::vector<Slot>& slots) {
  for (Slot& s : slots)
    if (s.pid > 0 && !s.reported) ::kill(s.pid, SIGKILL);
  for (Slot& s : slots) {
    if (s.pid <= 0) continue;
    while (::waitpid(s.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    s.pid = -1;
  }
}

// The run's pipes, each [read end, write end]: ready (worker -> agent, one
// byte once placed), go (agent -> workers, the release time), results
// (worker -> agent, one WorkerRecord).
struct Pipes {
  int ready[2] = {-1, -1};
  int go[2] = {-1, -1};
  int results[2] = {-1, -1};
};

Status open_pipes(Pipes& p) {
  if (::pipe2(p.ready, O_CLOEXEC) != 0) return fail("creating pipe: " + errno_text(errno));
  if (::pipe2(p.go, O_CLOEXEC) != 0) {
    ::close(p.ready[0]);
    ::close(p.ready[1]);
    return fail("creating pipe: " + errno_text(errno));
  }
  if (::pipe2(p.results, O_CLOEXEC) != 0) {
    for (int fd : {p.ready[0], p.ready[1], p.go[0], p.go[1]}) ::close(fd);
    return fail("creating pipe: " + errno_text(errno));
  }
  return {};
}

// One worker per slot, each waiting for the release; stops at the first fork that fails.
Status fork_workers(std::vector<Slot>& slots, uint64_t duration_ms, const Pipes& p) {
  for (uint32_t n = 0; n < slots.size(); ++n) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(p.ready[0]);
      ::close(p.go[1]);
      ::close(p.results[0]);
      worker_main(slots[n], n, duration_ms, p.ready[1], p.go[0], p.results[1]);
    }
    if (pid < 0) return fail("forking worker " + std::to_string(n) + ": " + errno_text(errno));
    slots[n].pid = pid;
  }
  return {};
}

// Every worker in its cgroup before the release, so that none is still
// placing itself (a cgroup move, under TCG milliseconds) while the others
// already run: all start their work at once.
void await_placement(int ready_fd, size_t workers, const WorkerCallbacks& cb) {
  size_t placed = 0;
  uint64_t ready_deadline = monotonic_ns() + uint64_t(kReadyTimeoutMs) * 1000000ull;
  while (placed < workers) {
    uint64_t now = monotonic_ns();
    if (now >= ready_deadline) {
      cb.log("warn", std::to_string(workers - placed) + " of " + std::to_string(workers) +
                         " workers not placed after " + std::to_string(kReadyTimeoutMs) + " ms; releasing all");
      break;
    }
    pollfd p{ready_fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>((ready_deadline - now) / 1000000 + 1));
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[64];
    ssize_t n = ::read(ready_fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every worker has exited
    placed += static_cast<size_t>(n);
  }
}

// Releases every worker at once: each reads its copy of the release time
// (8 KiB at most, which the pipe holds without a reader).
void release_workers(int go_fd, size_t workers) {
  std::vector<uint64_t> release(workers, monotonic_ns());
  const char* p = reinterpret_cast<const char*>(release.data());
  size_t left = release.size() * sizeof(uint64_t);
  while (left > 0) {
    ssize_t n = ::write(go_fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // a worker without its copy reads EOF: no window rule
    p += n;
    left -= static_cast<size_t>(n);
  }
}

// After the release: the steps at their time, cb.tick, and the workers'
// records, until every worker reported (and no step is left) or the
// deadline. Closes the results pipe at the end.
class ResultLoop {
 public:
  ResultLoop(const proto::JobMsg& job, const WorkerOptions& options, const WorkerCallbacks& cb,
             std::vector<Slot>& slots, detail::StepRunner& steps, const Pipes& pipes, bool write_open,
             Status& status)
      : job_(job), options_(options), cb_(cb), slots_(slots), steps_(steps), read_fd_(pipes.results[0]),
        write_fd_(pipes.results[1]), write_open_(write_open), status_(status) {}

  void run(uint64_t start_ns) {
    auto fork_added = [this](size_t n, uint64_t duration_ms) { return fork_added_worker(n, duration_ms); };
    uint64_t deadline = monotonic_ns() + (job_.scenario.duration_ms + options_.slack_ms) * 1000000ull;
    while (reported_ < slots_.size() || (steps_.pending() && !stopping_)) {
      if (!stopping_) steps_.run_due(start_ns, fork_added);
      if (write_open_ && !steps_.adds_pending()) {
        ::close(write_fd_);
        write_open_ = false;
      }
      if (reported_ >= slots_.size() && !steps_.pending()) break;
      uint64_t now = monotonic_ns();
      if (now >= deadline) break;
      int wait_ms = static_cast<int>((deadline - now) / 1000000 + 1);
      if (int step_ms = stopping_ ? -1 : steps_.wait_ms(start_ns); step_ms >= 0) wait_ms = std::min(wait_ms, step_ms);
      if (cb_.tick && !stopping_) {
        if (cb_.tick()) {
          stop_all();
          deadline = monotonic_ns() + options_.slack_ms * 1000000ull;
          continue;
        }
        wait_ms = std::min(wait_ms, static_cast<int>(cb_.tick_ms));
      }
      if (!read_records(wait_ms)) break;
    }
    if (write_open_) ::close(write_fd_);
    ::close(read_fd_);
  }

  size_t reported() const { return reported_; }

 private:
  std::string fork_added_worker(size_t n, uint64_t duration_ms) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(read_fd_);
      worker_main(slots_[n], static_cast<uint32_t>(n), duration_ms, -1, -1, write_fd_);
    }
    if (pid < 0) return "forking an added worker: " + errno_text(errno);
    slots_[n].pid = pid;
    return {};
  }

  // cb.tick asked to stop early: each worker ends its loop and still reports.
  void stop_all() {
    stopping_ = true;
    for (Slot& s : slots_)
      if (s.pid > 0 && !s.reported) ::kill(s.pid, SIGUSR1);
  }

  // Waits up to wait_ms for records and takes them; false when none can
  // come any more (every worker has exited, or poll failed).
  bool read_records(int wait_ms) {
    pollfd p{read_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) return false;
    if (r <= 0) return true;
    char buf[sizeof(WorkerRecord) * 4];
    ssize_t n = ::read(read_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) return false;  // every worker has exited
    pending_.append(buf, static_cast<size_t>(n));
    while (pending_.size() >= sizeof(WorkerRecord)) {
      WorkerRecord rec;
      std::memcpy(&rec, pending_.data(), sizeof rec);
      pending_.erase(0, sizeof rec);
      take(rec);
    }
    return true;
  }

  void take(WorkerRecord& rec) {
    if (rec.slot >= slots_.size() || slots_[rec.slot].reported) return;
    Slot& slot = slots_[rec.slot];
    slot.reported = true;
    ++reported_;
    rec.error[sizeof rec.error - 1] = '\0';
    if (rec.error[0] != '\0') {
      std::string what = "worker " + slot.plan->name + "/" + std::to_string(slot.index) + ": " + rec.error;
      cb_.log("error", what);
      if (status_) status_ = fail(what);
      return;
    }
    if (cb_.report) cb_.report(to_message(slot, rec));
  }

  const proto::JobMsg& job_;
  const WorkerOptions& options_;
  const WorkerCallbacks& cb_;
  std::vector<Slot>& slots_;
  detail::StepRunner& steps_;
  const int read_fd_, write_fd_;
  bool write_open_;  // added workers need the write end; without adds, EOF says all exited
  Status& status_;
  std::string pending_;  // bytes of a record not yet complete
  size_t reported_ = 0;
  bool stopping_ = false;
};

}  // namespace

Status run_workers(const proto::JobMsg& job, const WorkerOptions& options,
                   const WorkerCallbacks& cb) {
  if (auto valid = proto::validate_job(job); !valid) return valid;
  std::vector<Slot> slots;
  for (const proto::CgroupPlan& plan : job.scenario.cgroups)
    for (uint32_t i = 0; i < plan.workers; ++i) {
      slots.push_back(Slot{&plan, i, {}, false});
      slots.back().cpus = plan.cpus;
      slots.back().now_in = plan.name;
    }
  if (auto ok = setup_cgroups(options, slots, cb); !ok) return ok;
  if (!job.scenario.steps.empty()) detail::reset_cpuset_epochs();
  detail::StepRunner steps(job, options, cb, slots);

  Pipes pipes;
  if (auto opened = open_pipes(pipes); !opened) return opened;
  Status status = fork_workers(slots, job.scenario.duration_ms, pipes);
  ::close(pipes.go[0]);
  ::close(pipes.ready[1]);
  if (status) await_placement(pipes.ready[0], slots.size(), cb);
  ::close(pipes.ready[0]);
  // Added workers need the write end; without adds, EOF says all exited.
  bool write_open = steps.adds_pending();
  if (!write_open) ::close(pipes.results[1]);
  if (status) release_workers(pipes.go[1], slots.size());
  ::close(pipes.go[1]);
  if (!status) {
    ::close(pipes.results[0]);
    if (write_open) ::close(pipes.results[1]);
    kill_and_reap(slots);
    return status;
  }
  uint64_t start_ns = monotonic_ns();
  if (cb.started) cb.started();
  ResultLoop loop(job, options, cb, slots, steps, pipes, write_open, status);
  loop.run(start_ns);
  steps.restore_cpus();
  const size_t reported = loop.reported();
  if (reported < slots.size() && status)
    status = fail(std::to_string(slots.size() - reported) + " of " + std::to_string(slots.size()) +
                  " workers did not report");
  kill_and_reap(slots);
  return status;
}

}  // namespace ktstr::agent
