// The scenario's steps against the live workers, and the cpuset epochs the
// workers read (worker_slot.hpp).
#include "guest/agent/step_runner.hpp"

#include "guest/agent/util.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

namespace ktstr::agent::detail {
namespace {

uint32_t* g_epochs = nullptr;

std::string pid_list(const std::vector<pid_t>& pids) {
  std::string s;
  for (pid_t p : pids) s += (s.empty() ? "" : ",") + std::to_string(p);
  return s.empty() ? "none" : s;
}

}  // namespace

uint32_t* cpuset_epochs() { return g_epochs; }

void reset_cpuset_epochs() {
  if (!g_epochs) {
    void* p = ::mmap(nullptr, kMaxSlots * sizeof(uint32_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) g_epochs = static_cast<uint32_t*>(p);
  }
  if (g_epochs) std::memset(g_epochs, 0, kMaxSlots * sizeof(uint32_t));
}

void bump_cpuset_epoch(size_t slot) {
  if (g_epochs && slot < kMaxSlots) __atomic_add_fetch(&g_epochs[slot], 1u, __ATOMIC_RELEASE);
}

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

void StepRunner::run_due(uint64_t start_ns, const ForkFn& fork_worker) {
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

void StepRunner::restore_cpus() {
  for (int cpu : offline_)
    if (std::string err = write_text(online_path(cpu), "1"); !err.empty() && cb_.log)
      cb_.log("warn", "bringing CPU " + std::to_string(cpu) + " back online: " + err);
  offline_.clear();
}

// The live workers now in `cgroup`, oldest first.
std::vector<size_t> StepRunner::live_in(const std::string& cgroup) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].pid > 0 && !slots_[i].reported && !slots_[i].stopping && slots_[i].now_in == cgroup)
      out.push_back(i);
  return out;
}

std::string StepRunner::run_one(const proto::StepPlan& step, uint64_t elapsed_ms, std::string& detail,
                                const ForkFn& fork_worker) {
  const std::string& a = step.action;
  if (a == "cpu_offline" || a == "cpu_online") return hotplug(step, detail);
  if (a == "add_workers") return add_workers(step, elapsed_ms, detail, fork_worker);
  if (a == "remove_workers") return remove_workers(step, detail);
  if (a == "move_workers") return move_workers(step, detail);
  if (a == "set_cpus") return set_cpus(step, detail);
  return "unknown step action '" + a + "'";
}

std::string StepRunner::hotplug(const proto::StepPlan& step, std::string& detail) {
  std::string path = online_path(step.cpu);
  if (::access(path.c_str(), F_OK) != 0)
    return "CPU " + std::to_string(step.cpu) + " cannot be hot-plugged in this guest: '" + path +
           "' does not exist (a kernel without CONFIG_HOTPLUG_CPU, or a CPU it keeps online)";
  bool off = step.action == "cpu_offline";
  if (std::string err = write_text(path, off ? "0" : "1"); !err.empty())
    return "the kernel refused to take CPU " + std::to_string(step.cpu) + (off ? " offline" : " online") + ": " + err;
  if (off) offline_.insert(step.cpu);
  else offline_.erase(step.cpu);
  detail = "CPU " + std::to_string(step.cpu) + (off ? " is offline" : " is online");
  return {};
}

std::string StepRunner::add_workers(const proto::StepPlan& step, uint64_t elapsed_ms, std::string& detail,
                                    const ForkFn& fork_worker) {
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

std::string StepRunner::remove_workers(const proto::StepPlan& step, std::string& detail) {
  auto live = live_in(step.cgroup);
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

std::string StepRunner::move_workers(const proto::StepPlan& step, std::string& detail) {
  auto live = live_in(step.cgroup);
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
    bump_cpuset_epoch(live[n]);
    pids.push_back(s.pid);
  }
  detail = "moved " + std::to_string(pids.size()) + " workers from '" + step.cgroup + "' into '" + step.to + "' (pids " +
           pid_list(pids) + ")";
  if (pids.size() < step.count)
    return "cgroup '" + step.cgroup + "' had only " + std::to_string(pids.size()) + " running workers: " + detail;
  return {};
}

std::string StepRunner::set_cpus(const proto::StepPlan& step, std::string& detail) {
  auto live = live_in(step.cgroup);
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
  for (size_t i : live) bump_cpuset_epoch(i);
  detail = "cgroup '" + step.cgroup + "' now runs on CPUs " + step.cpus + " (" + how + ", " +
           std::to_string(live.size()) + " workers)";
  return {};
}

}  // namespace ktstr::agent::detail
