#include "core/checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace ktstr {
namespace {

std::string cpu_list(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
}

// Every worker did at least one iteration. One that first got a CPU after
// the test's window closed reports none (guest/agent/workers.hpp).
std::optional<CheckFailure> not_starved(const std::vector<WorkerStats>& ws, double duration_s) {
  const WorkerStats* first = nullptr;
  size_t starved = 0;
  for (const auto& w : ws)
    if (w.iterations == 0) {
      if (!first) first = &w;
      ++starved;
    }
  if (!first) return std::nullopt;
  std::string msg = fmt::format("worker {}/{} never ran (starved): 0 iterations", first->cgroup, first->index);
  if (duration_s > 0) msg += fmt::format(" in the {:g}s test", duration_s);
  if (starved > 1) msg += fmt::format("; {} of {} workers never ran", starved, ws.size());
  return CheckFailure{"not_starved", msg};
}

std::optional<CheckFailure> max_gap(uint32_t limit_ms, const std::vector<WorkerStats>& ws) {
  for (const auto& w : ws) {
    double gap_ms = static_cast<double>(w.max_gap_ns) / 1e6;
    if (gap_ms > limit_ms)
      return CheckFailure{"max_gap_ms", fmt::format("worker {}/{} waited {:.1f}ms off-CPU, more than max_gap_ms = {}",
                                                    w.cgroup, w.index, gap_ms, limit_ms)};
  }
  return std::nullopt;
}

// Fairness inside each cgroup: how far apart its slowest and fastest workers
// progressed, relative to the cgroup's mean rate.
std::optional<CheckFailure> max_spread(uint32_t limit_pct, const std::vector<WorkerStats>& ws) {
  std::map<std::string, std::vector<const WorkerStats*>> by_cg;
  for (const auto& w : ws) by_cg[w.cgroup].push_back(&w);
  for (const auto& [cg, members] : by_cg) {
    if (members.size() < 2) continue;
    auto [lo, hi] = std::minmax_element(members.begin(), members.end(),
                                        [](auto* a, auto* b) { return worker_rate(*a) < worker_rate(*b); });
    double sum = 0;
    for (auto* w : members) sum += worker_rate(*w);
    double mean = sum / static_cast<double>(members.size());
    if (mean <= 0) continue;  // nobody progressed: the starvation check speaks
    double spread = 100.0 * (worker_rate(**hi) - worker_rate(**lo)) / mean;
    if (spread > limit_pct)
      return CheckFailure{"max_spread_pct",
                          fmt::format("cgroup '{}': workers progressed {:.1f}% apart (slowest {}/{} at {:.0f} it/s, "
                                      "fastest {}/{} at {:.0f} it/s), more than max_spread_pct = {}",
                                      cg, spread, cg, (*lo)->index, worker_rate(**lo), cg, (*hi)->index,
                                      worker_rate(**hi), limit_pct)};
  }
  return std::nullopt;
}

// The cpusets a cgroup had during the run: the plan's, then each set_cpus
// that worked, in order. An empty entry means all CPUs.
std::vector<std::string> cpuset_history(const ScenarioPlan& plan, const std::vector<StepEvent>& steps,
                                        const std::string& cgroup) {
  std::vector<std::string> out;
  for (const auto& cg : plan.cgroups)
    if (cg.name == cgroup) out.push_back(cg.cpus);
  for (const auto& st : steps)
    if (st.ok && st.action == "set_cpus" && st.cgroup == cgroup) out.push_back(st.cpus);
  return out;
}

std::optional<std::set<int>> cpu_set_of(const std::string& list, unsigned cpu_count) {
  if (list.empty()) return std::nullopt;
  auto cpus = parse_cpulist(list, cpu_count ? cpu_count : 4096);
  if (!cpus) return std::nullopt;  // the plan was validated before the run
  return std::set<int>(cpus->begin(), cpus->end());
}

// Why a worker ran outside its cgroup's cpusets, when the run shows it:
// cpu_offline steps took every CPU of one of them offline, and cgroup v2
// then runs the cgroup's tasks on its parent's CPUs. Empty otherwise.
std::string offline_cause(const std::vector<std::string>& history, const std::vector<StepEvent>& steps,
                          unsigned cpu_count) {
  std::map<int, double> offline_at;  // first time a step took each CPU offline
  for (const auto& st : steps)
    if (st.ok && st.action == "cpu_offline" && st.cpu >= 0) offline_at.emplace(st.cpu, st.t_s);
  if (offline_at.empty()) return "";
  for (const auto& list : history) {
    auto set = cpu_set_of(list, cpu_count);
    if (!set || set->empty()) continue;
    double last = 0;
    bool all = true;
    for (int c : *set) {
      auto it = offline_at.find(c);
      if (it == offline_at.end()) {
        all = false;
        break;
      }
      last = std::max(last, it->second);
    }
    if (all)
      return fmt::format(": cpu_offline took {} offline by +{:.2f}s, leaving cpuset {} no online CPU, so the kernel "
                         "ran the cgroup on its parent's CPUs",
                         set->size() == 1 ? "CPU " + list : "CPUs " + list, last, list);
  }
  return "";
}

std::optional<CheckFailure> isolation(const ScenarioPlan& plan, const std::vector<StepEvent>& steps, unsigned cpu_count,
                                      const std::vector<WorkerStats>& ws) {
  for (const auto& w : ws) {
    const std::string& final_cg = w.moved_to.empty() ? w.cgroup : w.moved_to;
    auto history = cpuset_history(plan, steps, w.cgroup);
    if (!w.moved_to.empty()) {
      auto more = cpuset_history(plan, steps, w.moved_to);
      history.insert(history.end(), more.begin(), more.end());
    }
    // Over the whole run: inside the union (no judgement when any is "all").
    std::set<int> inside;
    bool unrestricted = history.empty();
    for (const auto& list : history) {
      auto set = cpu_set_of(list, cpu_count);
      if (!set) unrestricted = true;
      else inside.insert(set->begin(), set->end());
    }
    if (!unrestricted)
      for (int c : w.cpus_used)
        if (!inside.count(c)) {
          std::string where = history.size() == 1 ? "cgroup '" + w.cgroup + "''s cpuset " + history.front()
                                                  : "every cpuset its cgroup had during the run";
          return CheckFailure{"isolation", fmt::format("worker {}/{} ran on CPU {}, outside {} (it used CPUs {}){}",
                                                       w.cgroup, w.index, c, where, cpu_list(w.cpus_used),
                                                       offline_cause(history, steps, cpu_count))};
        }
    // After the last change: inside the cpuset in force at the end.
    if (!w.cpus_changed) continue;
    auto final_history = cpuset_history(plan, steps, final_cg);
    if (final_history.empty()) continue;
    auto final_set = cpu_set_of(final_history.back(), cpu_count);
    if (!final_set) continue;
    for (int c : w.cpus_since_change)
      if (!final_set->count(c))
        return CheckFailure{"isolation",
                            fmt::format("worker {}/{} ran on CPU {} after its cpuset changed to {} (cgroup '{}'), "
                                        "outside it (CPUs since the change: {})",
                                        w.cgroup, w.index, c, final_history.back(), final_cg,
                                        cpu_list(w.cpus_since_change))};
  }
  return std::nullopt;
}

std::optional<CheckFailure> numa_local(const GuestTopology& topo, const std::vector<WorkerStats>& ws) {
  std::map<int, size_t> node_of;
  for (size_t n = 0; n < topo.numa_nodes.size(); ++n) {
    auto cpus = parse_cpulist(topo.numa_nodes[n], topo.cpus ? topo.cpus : 4096);
    if (!cpus) continue;
    for (unsigned c : *cpus) node_of[static_cast<int>(c)] = n;
  }
  for (const auto& w : ws) {
    std::set<size_t> nodes;
    for (int c : w.cpus_used)
      if (auto it = node_of.find(c); it != node_of.end()) nodes.insert(it->second);
    if (nodes.size() > 1) {
      std::string list;
      for (size_t n : nodes) list += (list.empty() ? "" : " and ") + std::to_string(n);
      return CheckFailure{"numa_local", fmt::format("worker {}/{} ran on CPUs {}, in NUMA nodes {}", w.cgroup, w.index,
                                                    cpu_list(w.cpus_used), list)};
    }
  }
  return std::nullopt;
}

// Load balance across CPUs from the monitor: the largest difference in
// runnable tasks between two CPUs in one sample while the workload ran.
std::optional<CheckFailure> max_imbalance(uint32_t limit, const std::vector<MonitorSample>& samples, double duration_s) {
  size_t judged = 0;
  for (const auto& s : samples) {
    if (s.t_s < 0 || (duration_s > 0 && s.t_s > duration_s) || s.nr_running.size() < 2) continue;
    ++judged;
    auto [lo, hi] = std::minmax_element(s.nr_running.begin(), s.nr_running.end());
    unsigned spread = *hi - *lo;
    if (spread > limit)
      return CheckFailure{"max_imbalance",
                          fmt::format("CPU run queues {} tasks apart at +{:.2f}s (CPU {} had {}, CPU {} had {}), "
                                      "more than max_imbalance = {}",
                                      spread, s.t_s, hi - s.nr_running.begin(), *hi, lo - s.nr_running.begin(), *lo,
                                      limit),
                          s.t_s};
  }
  // Asked but not measurable: say so rather than pass.
  if (judged == 0)
    return CheckFailure{"max_imbalance",
                        "max_imbalance cannot be judged: the monitor took no per-CPU samples while the workload ran "
                        "(it samples under a sched_ext scheduler)"};
  return std::nullopt;
}

// The p99 wakeup latency of every worker that measures one (sleep and
// periodic work); asked of a run without such workers, it cannot be judged.
std::optional<CheckFailure> max_wakeup_latency(uint32_t limit_us, const std::vector<WorkerStats>& ws) {
  size_t judged = 0;
  for (const auto& w : ws) {
    auto it = w.counters.find("wake_latency_p99_ns");
    if (it == w.counters.end()) continue;
    ++judged;
    double p99_us = static_cast<double>(it->second) / 1e3;
    if (p99_us > limit_us) {
      auto max = w.counters.find("wake_latency_max_ns");
      double max_us = max == w.counters.end() ? p99_us : static_cast<double>(max->second) / 1e3;
      return CheckFailure{"max_wakeup_latency_us",
                          fmt::format("worker {}/{} woke {:.0f}us late at p99 (max {:.0f}us), more than "
                                      "max_wakeup_latency_us = {}",
                                      w.cgroup, w.index, p99_us, max_us, limit_us)};
    }
  }
  if (judged == 0)
    return CheckFailure{"max_wakeup_latency_us",
                        "max_wakeup_latency_us cannot be judged: no worker measured wakeup latency "
                        "(only work 'sleep' and 'periodic' do)"};
  return std::nullopt;
}

// Each cgroup's share of the workers' CPU time against its share of the
// cgroups' cpu.weight, in percentage points. A worker counts for the
// cgroup it started in (a moved worker's time is not split).
std::optional<CheckFailure> max_weight_error(uint32_t limit_pts, const ScenarioPlan& plan,
                                             const std::vector<WorkerStats>& ws) {
  std::map<std::string, double> cpu_s;
  for (const auto& w : ws) cpu_s[w.cgroup] += static_cast<double>(w.cpu_time_ns) / 1e9;
  double total_cpu = 0, total_weight = 0;
  for (const auto& cg : plan.cgroups) {
    if (!cpu_s.count(cg.name)) continue;  // no worker reported: the worker count check speaks
    total_cpu += cpu_s[cg.name];
    total_weight += cg.weight;
  }
  if (total_cpu <= 0 || total_weight <= 0)
    return CheckFailure{"max_weight_error_pct",
                        "max_weight_error_pct cannot be judged: the workers reported no CPU time"};
  for (const auto& cg : plan.cgroups) {
    if (!cpu_s.count(cg.name)) continue;
    double got = 100.0 * cpu_s[cg.name] / total_cpu;
    double want = 100.0 * cg.weight / total_weight;
    double off = std::fabs(got - want);
    if (off > limit_pts)
      return CheckFailure{"max_weight_error_pct",
                          fmt::format("cgroup '{}' got {:.1f}% of the CPU time ({:.2f}s of {:.2f}s), its weight {} "
                                      "asks for {:.1f}% (of {:.0f}): {:.1f} points off, more than "
                                      "max_weight_error_pct = {}",
                                      cg.name, got, cpu_s[cg.name], total_cpu, cg.weight, want, total_weight, off,
                                      limit_pts)};
  }
  return std::nullopt;
}

// From the monitor: a CPU whose run queue held a waiting task while it
// switched to nothing for longer than kStallThresholdS (checks.hpp).
std::optional<CheckFailure> stall(const std::vector<MonitorSample>& samples, double duration_s) {
  std::vector<const MonitorSample*> judged;
  for (const auto& s : samples)
    if (s.t_s >= 0 && (duration_s <= 0 || s.t_s <= duration_s) && !s.nr_switches.empty()) judged.push_back(&s);
  if (judged.size() < 2)
    return CheckFailure{"fail_on_stall",
                        "fail_on_stall cannot be judged: the monitor took fewer than 2 samples with per-CPU "
                        "nr_switches while the workload ran (it samples under a sched_ext scheduler)"};
  size_t cpus = 0;
  for (auto* s : judged) cpus = std::max(cpus, std::min(s->nr_running.size(), s->nr_switches.size()));
  for (size_t c = 0; c < cpus; ++c) {
    const MonitorSample* since = nullptr;  // first sample of the current stuck stretch
    for (auto* s : judged) {
      bool waiting = c < s->nr_running.size() && c < s->nr_switches.size() && s->nr_running[c] >= 2;
      if (!waiting) {
        since = nullptr;
        continue;
      }
      if (!since || s->nr_switches[c] != since->nr_switches[c]) {
        since = s;
        continue;
      }
      double stuck = s->t_s - since->t_s;
      if (stuck > kStallThresholdS)
        return CheckFailure{"fail_on_stall",
                            fmt::format("CPU {} stalled: {} runnable tasks and no context switch for {:.2f}s "
                                        "(+{:.2f}s to +{:.2f}s, nr_switches stayed {}), more than the {:.0f}s "
                                        "stall threshold",
                                        c, s->nr_running[c], stuck, since->t_s, s->t_s, s->nr_switches[c],
                                        kStallThresholdS),
                            since->t_s};
    }
  }
  return std::nullopt;
}

}  // namespace

double worker_rate(const WorkerStats& w) {
  return w.wall_ns ? static_cast<double>(w.iterations) * 1e9 / static_cast<double>(w.wall_ns) : 0;
}

std::vector<CheckFailure> run_checks(const Checks& checks, const CheckInputs& in) {
  static const std::vector<WorkerStats> kNone;
  static const std::vector<StepEvent> kNoSteps;
  const auto& ws = in.workers ? *in.workers : kNone;
  const auto& steps = in.steps ? *in.steps : kNoSteps;
  std::vector<CheckFailure> out;
  auto add = [&](std::optional<CheckFailure> f) {
    if (f) out.push_back(std::move(*f));
  };
  add(not_starved(ws, in.duration_s));
  if (checks.max_gap_ms) add(max_gap(*checks.max_gap_ms, ws));
  if (checks.max_spread_pct) add(max_spread(*checks.max_spread_pct, ws));
  if (checks.isolation && in.plan) add(isolation(*in.plan, steps, in.topology ? in.topology->cpus : 0, ws));
  if (checks.numa_local && in.topology) add(numa_local(*in.topology, ws));
  if (checks.max_imbalance && in.monitor) add(max_imbalance(*checks.max_imbalance, *in.monitor, in.duration_s));
  if (checks.max_wakeup_latency_us) add(max_wakeup_latency(*checks.max_wakeup_latency_us, ws));
  if (checks.max_weight_error_pct && in.plan) add(max_weight_error(*checks.max_weight_error_pct, *in.plan, ws));
  if (checks.fail_on_stall && in.monitor) add(stall(*in.monitor, in.duration_s));
  return out;
}

}  // namespace ktstr
