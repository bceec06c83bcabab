#include "core/checks.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

namespace ktstr {
namespace {

std::string cpu_list(const std::vector<int>& cpus) {
  std::string s;
  for (int c : cpus) s += (s.empty() ? "" : ",") + std::to_string(c);
  return s;
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

std::optional<CheckFailure> isolation(const ScenarioPlan& plan, unsigned cpu_count, const std::vector<WorkerStats>& ws) {
  for (const auto& cg : plan.cgroups) {
    if (cg.cpus.empty()) continue;  // no cpuset: every CPU is inside
    auto allowed = parse_cpulist(cg.cpus, cpu_count ? cpu_count : 4096);
    if (!allowed) continue;  // the plan was validated before the run
    std::set<int> inside(allowed->begin(), allowed->end());
    for (const auto& w : ws) {
      if (w.cgroup != cg.name) continue;
      for (int c : w.cpus_used)
        if (!inside.count(c))
          return CheckFailure{"isolation", fmt::format("worker {}/{} ran on CPU {}, outside cgroup '{}''s cpuset {} "
                                                       "(it used CPUs {})",
                                                       w.cgroup, w.index, c, cg.name, cg.cpus, cpu_list(w.cpus_used))};
    }
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

}  // namespace

double worker_rate(const WorkerStats& w) {
  return w.wall_ns ? static_cast<double>(w.iterations) * 1e9 / static_cast<double>(w.wall_ns) : 0;
}

std::optional<CheckFailure> run_checks(const Checks& checks, const CheckInputs& in) {
  static const std::vector<WorkerStats> kNone;
  const auto& ws = in.workers ? *in.workers : kNone;
  if (checks.max_gap_ms)
    if (auto f = max_gap(*checks.max_gap_ms, ws)) return f;
  if (checks.max_spread_pct)
    if (auto f = max_spread(*checks.max_spread_pct, ws)) return f;
  if (checks.isolation && in.plan)
    if (auto f = isolation(*in.plan, in.topology ? in.topology->cpus : 0, ws)) return f;
  if (checks.numa_local && in.topology)
    if (auto f = numa_local(*in.topology, ws)) return f;
  if (checks.max_imbalance && in.monitor)
    if (auto f = max_imbalance(*checks.max_imbalance, *in.monitor, in.duration_s)) return f;
  if (checks.max_wakeup_latency_us)
    if (auto f = max_wakeup_latency(*checks.max_wakeup_latency_us, ws)) return f;
  return std::nullopt;
}

}  // namespace ktstr
