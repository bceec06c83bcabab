#include "guest/agent/workers.hpp"

#include "guest/agent/util.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <set>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ktstr::agent {

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

struct Slot {
  const proto::CgroupPlan* plan;
  uint32_t index;
  std::string cgroup_dir;   // empty: no cgroup
  bool use_affinity;        // cpuset unavailable: pin with sched_setaffinity
  pid_t pid = -1;
  bool reported = false;
  std::string cpus;         // the cpuset to pin to with use_affinity (the cgroup's at fork time)
  std::string now_in;       // the cgroup it is in now (a move changes it)
  std::string moved_to;     // set by move_workers
  bool stopping = false;    // remove_workers sent it the stop signal
};

// Cpuset epochs shared with the workers (work_cpuset_epoch), one per slot.
uint32_t* g_epochs = nullptr;
constexpr size_t kMaxSlots = proto::kMaxWorkersPerJob;

uint32_t* map_epochs() {
  void* p = ::mmap(nullptr, kMaxSlots * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<uint32_t*>(p);
}

void write_record(int fd, const WorkerRecord& rec) {
  ssize_t n;
  do {
    n = ::write(fd, &rec, sizeof rec);
  } while (n < 0 && errno == EINTR);
}

// CPU affinity of `pid` (0: the caller) to a cpulist; empty on success.
std::string pin(pid_t pid, const std::string& cpulist) {
  auto cpus = parse_cpulist(cpulist);
  if (!cpus) return "invalid cpulist '" + cpulist + "'";
  cpu_set_t set;
  CPU_ZERO(&set);
  for (unsigned c : *cpus)
    if (c < CPU_SETSIZE) CPU_SET(c, &set);
  if (sched_setaffinity(pid, sizeof set, &set) != 0) return "setting affinity '" + cpulist + "': " + errno_text(errno);
  return {};
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

[[noreturn]] void worker_main(const Slot& slot, uint32_t slot_no, uint64_t duration_ms, int go_fd,
                              int result_fd) {
  struct sigaction sa{};
  sa.sa_handler = on_stop_signal;
  ::sigaction(SIGUSR1, &sa, nullptr);
  WorkerRecord rec{};
  rec.slot = slot_no;
  rec.pid = ::getpid();
  std::string err = place_self(slot);
  if (g_epochs) work_cpuset_epoch() = g_epochs + slot_no;
  char byte;
  while (go_fd >= 0 && ::read(go_fd, &byte, 1) < 0 && errno == EINTR) {
  }  // EOF once the agent has forked everyone; added workers start at once
  if (err.empty()) {
    WorkStats s = run_work(*slot.plan, duration_ms);
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

// The scenario's steps against the live slots. Slots of added workers are
// appended; a slot's `now_in` follows moves.
class StepRunner {
 public:
  StepRunner(const proto::JobMsg& job, const WorkerOptions& options, const WorkerCallbacks& cb,
             std::vector<Slot>& slots)
      : job_(job), options_(options), cb_(cb), slots_(slots) {
    for (const proto::CgroupPlan& cg : job.scenario.cgroups) cpus_[cg.name] = cg.cpus;
  }

  bool pending() const { return next_ < job_.scenario.steps.size(); }
  // Whether a later step forks workers (the result pipe's write end stays open).
  bool adds_pending() const {
    for (size_t i = next_; i < job_.scenario.steps.size(); ++i)
      if (job_.scenario.steps[i].action == "add_workers") return true;
    return false;
  }
  // ms until the next step is due (0: now), or -1 when none is left.
  int wait_ms(uint64_t start_ns) const {
    if (!pending()) return -1;
    uint64_t due = start_ns + job_.scenario.steps[next_].after_ms * 1000000ull, now = monotonic_ns();
    return now >= due ? 0 : static_cast<int>((due - now) / 1000000 + 1);
  }

  // Does every step that is due. `fork_worker` starts an added slot.
  template <typename Fork>
  void run_due(uint64_t start_ns, Fork&& fork_worker) {
    while (pending() && monotonic_ns() >= start_ns + job_.scenario.steps[next_].after_ms * 1000000ull) {
      const proto::StepPlan& step = job_.scenario.steps[next_];
      proto::StepMsg msg;
      msg.index = static_cast<uint32_t>(next_);
      msg.step = step;
      uint64_t elapsed_ms = (monotonic_ns() - start_ns) / 1000000;
      std::string err = run_one(step, elapsed_ms, msg.detail, fork_worker);
      msg.ok = err.empty();
      msg.error = err;
      msg.t_ms = boottime_ms();
      ++next_;
      if (cb_.log) cb_.log(msg.ok ? "debug" : "warn", "step " + std::to_string(msg.index) + " '" + step.action + "': " +
                                                          (msg.ok ? msg.detail : msg.error));
      if (cb_.step) cb_.step(msg);
    }
  }

  // CPUs a cpu_offline step took down and no step brought back.
  void restore_cpus() {
    for (int cpu : offline_)
      if (std::string err = write_text(online_path(cpu), "1"); !err.empty() && cb_.log)
        cb_.log("warn", "bringing CPU " + std::to_string(cpu) + " back online: " + err);
    offline_.clear();
  }

 private:
  std::string online_path(int cpu) const { return options_.cpu_sysfs + "/cpu" + std::to_string(cpu) + "/online"; }

  // The live workers now in `cgroup`, oldest first.
  std::vector<size_t> live_in(const std::string& cgroup) const {
    std::vector<size_t> out;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].pid > 0 && !slots_[i].reported && !slots_[i].stopping && slots_[i].now_in == cgroup)
        out.push_back(i);
    return out;
  }
  void bump_epoch(size_t slot) {
    if (g_epochs && slot < kMaxSlots) __atomic_add_fetch(&g_epochs[slot], 1u, __ATOMIC_RELEASE);
  }
  static std::string pid_list(const std::vector<pid_t>& pids) {
    std::string s;
    for (pid_t p : pids) s += (s.empty() ? "" : ",") + std::to_string(p);
    return s.empty() ? "none" : s;
  }

  template <typename Fork>
  std::string run_one(const proto::StepPlan& step, uint64_t elapsed_ms, std::string& detail, Fork&& fork_worker) {
    const std::string& a = step.action;
    if (a == "cpu_offline" || a == "cpu_online") {
      std::string path = online_path(step.cpu);
      if (::access(path.c_str(), F_OK) != 0)
        return "CPU " + std::to_string(step.cpu) + " cannot be hot-plugged in this guest: '" + path +
               "' does not exist (a kernel without CONFIG_HOTPLUG_CPU, or a CPU it keeps online)";
      bool off = a == "cpu_offline";
      if (std::string err = write_text(path, off ? "0" : "1"); !err.empty())
        return "the kernel refused to take CPU " + std::to_string(step.cpu) + (off ? " offline" : " online") + ": " + err;
      if (off) offline_.insert(step.cpu);
      else offline_.erase(step.cpu);
      detail = "CPU " + std::to_string(step.cpu) + (off ? " is offline" : " is online");
      return {};
    }
    if (a == "add_workers") {
      uint64_t left = job_.scenario.duration_ms > elapsed_ms ? job_.scenario.duration_ms - elapsed_ms : 1;
      std::vector<pid_t> pids;
      for (uint32_t i = 0; i < step.count; ++i) {
        if (slots_.size() >= kMaxSlots) return "more than " + std::to_string(kMaxSlots) + " workers in this job";
        const proto::CgroupPlan* plan = nullptr;
        for (const proto::CgroupPlan& cg : job_.scenario.cgroups)
          if (cg.name == step.cgroup) plan = &cg;
        uint32_t index = 0;
        const Slot* like = nullptr;
        for (const Slot& s : slots_)
          if (s.plan == plan) ++index, like = &s;
        Slot slot{plan, index, like ? like->cgroup_dir : std::string(), like ? like->use_affinity : true};
        slot.cpus = cpus_[step.cgroup];
        slot.now_in = step.cgroup;
        slots_.push_back(slot);
        if (std::string err = fork_worker(slots_.size() - 1, left); !err.empty()) {
          slots_.pop_back();
          return err + " (after starting pids " + pid_list(pids) + ")";
        }
        pids.push_back(slots_.back().pid);
      }
      detail = "started " + std::to_string(pids.size()) + " workers in '" + step.cgroup + "' for " + std::to_string(left) +
               " ms (pids " + pid_list(pids) + ")";
      return {};
    }
    auto live = live_in(step.cgroup);
    if (a == "remove_workers") {
      std::vector<pid_t> pids;
      for (size_t n = 0; n < step.count && !live.empty(); ++n) {
        Slot& s = slots_[live.back()];
        live.pop_back();
        ::kill(s.pid, kWorkerStopSignal);
        s.stopping = true;
        pids.push_back(s.pid);
      }
      detail = "stopped " + std::to_string(pids.size()) + " workers of '" + step.cgroup + "' (pids " + pid_list(pids) + ")";
      if (pids.size() < step.count)
        return "cgroup '" + step.cgroup + "' had only " + std::to_string(pids.size()) + " running workers: " + detail;
      return {};
    }
    if (a == "move_workers") {
      std::vector<pid_t> pids;
      for (size_t n = 0; n < step.count && n < live.size(); ++n) {
        Slot& s = slots_[live[n]];
        std::string err;
        if (!s.cgroup_dir.empty()) {
          std::string dir = s.cgroup_dir.substr(0, s.cgroup_dir.find_last_of('/')) + "/" + step.to;
          err = write_text(dir + "/cgroup.procs", std::to_string(s.pid));
        }
        if (err.empty() && s.use_affinity && !cpus_[step.to].empty()) err = pin(s.pid, cpus_[step.to]);
        if (!err.empty())
          return "moving pid " + std::to_string(s.pid) + " into '" + step.to + "': " + err + " (moved " + pid_list(pids) + ")";
        s.now_in = step.to;
        s.moved_to = step.to;
        bump_epoch(live[n]);
        pids.push_back(s.pid);
      }
      detail = "moved " + std::to_string(pids.size()) + " workers from '" + step.cgroup + "' into '" + step.to + "' (pids " +
               pid_list(pids) + ")";
      if (pids.size() < step.count)
        return "cgroup '" + step.cgroup + "' had only " + std::to_string(pids.size()) + " running workers: " + detail;
      return {};
    }
    if (a == "set_cpus") {
      std::string how = "cpuset.cpus";
      std::string err;
      bool affinity = slots_.empty() || std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
                        return s.plan->name == step.cgroup && s.use_affinity;
                      });
      if (!affinity) {
        std::string dir = options_.cgroup_root + "/" + step.cgroup;
        err = write_text(dir + "/cpuset.cpus", step.cpus);
      }
      if (affinity || !err.empty()) {  // no cpuset: pin each worker in the cgroup
        if (!err.empty() && cb_.log)
          cb_.log("warn", "setting cpuset.cpus '" + step.cpus + "' of '" + step.cgroup + "': " + err + "; using CPU affinity");
        how = "CPU affinity";
        for (size_t i : live)
          if (std::string e = pin(slots_[i].pid, step.cpus); !e.empty())
            return "pinning pid " + std::to_string(slots_[i].pid) + ": " + e;
      }
      cpus_[step.cgroup] = step.cpus;
      for (size_t i : live) bump_epoch(i);
      detail = "cgroup '" + step.cgroup + "' now runs on CPUs " + step.cpus + " (" + how + ", " +
               std::to_string(live.size()) + " workers)";
      return {};
    }
    return "unknown step action '" + a + "'";
  }

  const proto::JobMsg& job_;
  const WorkerOptions& options_;
  const WorkerCallbacks& cb_;
  std::vector<Slot>& slots_;
  std::map<std::string, std::string> cpus_;  // each cgroup's cpuset now
  std::set<int> offline_;
  size_t next_ = 0;
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
  if (!job.scenario.steps.empty() && !g_epochs) g_epochs = map_epochs();  // kept for the agent's life
  if (g_epochs) std::memset(g_epochs, 0, kMaxSlots * sizeof(uint32_t));
  StepRunner steps(job, options, cb, slots);

  int go[2], results[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return fail("creating pipe: " + errno_text(errno));
  if (::pipe2(results, O_CLOEXEC) != 0) {
    ::close(go[0]);
    ::close(go[1]);
    return fail("creating pipe: " + errno_text(errno));
  }
  Status status;
  for (uint32_t n = 0; n < slots.size(); ++n) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(go[1]);
      ::close(results[0]);
      worker_main(slots[n], n, job.scenario.duration_ms, go[0], results[1]);
    }
    if (pid < 0) {
      status = fail("forking worker " + std::to_string(n) + ": " + errno_text(errno));
      break;
    }
    slots[n].pid = pid;
  }
  ::close(go[0]);
  // Added workers need the write end; without adds, EOF says all exited.
  bool write_open = steps.adds_pending();
  if (!write_open) ::close(results[1]);
  ::close(go[1]);  // releases every worker at once
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
      worker_main(slots[n], static_cast<uint32_t>(n), duration_ms, -1, results[1]);
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
