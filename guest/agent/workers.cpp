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

  int ready[2], go[2], results[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return fail("creating pipe: " + errno_text(errno));
  if (::pipe2(go, O_CLOEXEC) != 0) {
    ::close(ready[0]);
    ::close(ready[1]);
    return fail("creating pipe: " + errno_text(errno));
  }
  if (::pipe2(results, O_CLOEXEC) != 0) {
    for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);
    return fail("creating pipe: " + errno_text(errno));
  }
  Status status;
  for (uint32_t n = 0; n < slots.size(); ++n) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(ready[0]);
      ::close(go[1]);
      ::close(results[0]);
      worker_main(slots[n], n, job.scenario.duration_ms, ready[1], go[0], results[1]);
    }
    if (pid < 0) {
      status = fail("forking worker " + std::to_string(n) + ": " + errno_text(errno));
      break;
    }
    slots[n].pid = pid;
  }
  ::close(go[0]);
  ::close(ready[1]);
  // Every worker in its cgroup before the release, so that none is still
  // placing itself (a cgroup move, under TCG milliseconds) while the others
  // already run: all start their work at once.
  if (status) {
    size_t placed = 0;
    uint64_t ready_deadline = monotonic_ns() + uint64_t(kReadyTimeoutMs) * 1000000ull;
    while (placed < slots.size()) {
      uint64_t now = monotonic_ns();
      if (now >= ready_deadline) {
        cb.log("warn", std::to_string(slots.size() - placed) + " of " + std::to_string(slots.size()) +
                           " workers not placed after " + std::to_string(kReadyTimeoutMs) + " ms; releasing all");
        break;
      }
      pollfd p{ready[0], POLLIN, 0};
      int r = ::poll(&p, 1, static_cast<int>((ready_deadline - now) / 1000000 + 1));
      if (r < 0 && errno != EINTR) break;
      if (r <= 0) continue;
      char buf[64];
      ssize_t n = ::read(ready[0], buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // every worker has exited
      placed += static_cast<size_t>(n);
    }
  }
  ::close(ready[0]);
  // Added workers need the write end; without adds, EOF says all exited.
  bool write_open = steps.adds_pending();
  if (!write_open) ::close(results[1]);
  if (status) {
    // Releases every worker at once: each reads its copy of the release
    // time (8 KiB at most, which the pipe holds without a reader).
    std::vector<uint64_t> release(slots.size(), monotonic_ns());
    const char* p = reinterpret_cast<const char*>(release.data());
    size_t left = release.size() * sizeof(uint64_t);
    while (left > 0) {
      ssize_t n = ::write(go[1], p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // a worker without its copy reads EOF: no window rule
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  ::close(go[1]);
  if (!status) {
    ::close(results[0]);
    if (write_open) ::close(results[1]);
    kill_and_reap(slots);
    return status;
  }
  uint64_t start_ns = monotonic_ns();
  if (cb.started) cb.started();
  auto fork_added = [&](size_t n, uint64_t duration_ms) -> std::string {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(results[0]);
      worker_main(slots[n], static_cast<uint32_t>(n), duration_ms, -1, -1, results[1]);
    }
    if (pid < 0) return "forking an added worker: " + errno_text(errno);
    slots[n].pid = pid;
    return {};
  };

  uint64_t deadline = monotonic_ns() + (job.scenario.duration_ms + options.slack_ms) * 1000000ull;
  std::string pending;
  size_t reported = 0;
  bool stopping = false;
  while (reported < slots.size() || (steps.pending() && !stopping)) {
    if (!stopping) steps.run_due(start_ns, fork_added);
    if (write_open && !steps.adds_pending()) {
      ::close(results[1]);
      write_open = false;
    }
    if (reported >= slots.size() && !steps.pending()) break;
    uint64_t now = monotonic_ns();
    if (now >= deadline) break;
    int wait_ms = static_cast<int>((deadline - now) / 1000000 + 1);
    if (int step_ms = stopping ? -1 : steps.wait_ms(start_ns); step_ms >= 0) wait_ms = std::min(wait_ms, step_ms);
    if (cb.tick && !stopping) {
      if (cb.tick()) {
        stopping = true;
        for (Slot& s : slots)
          if (s.pid > 0 && !s.reported) ::kill(s.pid, SIGUSR1);
        deadline = monotonic_ns() + options.slack_ms * 1000000ull;
        continue;
      }
      wait_ms = std::min(wait_ms, static_cast<int>(cb.tick_ms));
    }
    pollfd p{results[0], POLLIN, 0};
    int r = ::poll(&p, 1, wait_ms);
    if (r < 0 && errno != EINTR) break;
    if (r <= 0) continue;
    char buf[sizeof(WorkerRecord) * 4];
    ssize_t n = ::read(results[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // every worker has exited
    pending.append(buf, static_cast<size_t>(n));
    while (pending.size() >= sizeof(WorkerRecord)) {
      WorkerRecord rec;
      std::memcpy(&rec, pending.data(), sizeof rec);
      pending.erase(0, sizeof rec);
      if (rec.slot >= slots.size() || slots[rec.slot].reported) continue;
      Slot& slot = slots[rec.slot];
      slot.reported = true;
      ++reported;
      rec.error[sizeof rec.error - 1] = '\0';
      if (rec.error[0] != '\0') {
        std::string what = "worker " + slot.plan->name + "/" + std::to_string(slot.index) + ": " + rec.error;
        cb.log("error", what);
        if (status) status = fail(what);
        continue;
      }
      if (cb.report) cb.report(to_message(slot, rec));
    }
  }
  if (write_open) ::close(results[1]);
  ::close(results[0]);
  steps.restore_cpus();
  if (reported < slots.size() && status)
    status = fail(std::to_string(slots.size() - reported) + " of " + std::to_string(slots.size()) +
                  " workers did not report");
  kill_and_reap(slots);
  return status;
}

}  // namespace ktstr::agent
