// The canned scenarios: data only. Each is a composition of the same parts a
// spec's `cgroups` uses (a work type, its settings, a worker count that
// scales with the CPU count N), so any of them can be copied into a spec.
#include "core/scenario.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace ktstr {
namespace {

// Worker counts: N, k*N, N/k (at least 1) or a fixed number.
struct Count {
  unsigned num, den, min;
};
constexpr Count kPerCpu{1, 1, 1}, kTwicePerCpu{2, 1, 1}, kFourPerCpu{4, 1, 1}, kHalfPerCpu{1, 2, 1}, kOne{0, 1, 1};

CannedCgroup part(std::string name, std::string work, Count n, WorkParams params = {}) {
  return CannedCgroup{std::move(name), std::move(work), n.num, n.den, n.min, std::move(params)};
}

WorkParams sleep_at(uint32_t hz) {
  WorkParams p;
  p.rate_hz = hz;
  return p;
}
WorkParams periodic(uint32_t period_us, uint32_t runtime_us) {
  WorkParams p;
  p.period_us = period_us;
  p.runtime_us = runtime_us;
  return p;
}
WorkParams niced(int nice) {
  WorkParams p;
  p.nice = nice;
  return p;
}
WorkParams policy(std::string name) {
  WorkParams p;
  p.policy = std::move(name);
  return p;
}

std::vector<CannedScenario> build_table() {
  return {
      {"steady", "one CPU-bound spinner per CPU", {part("steady", "spin", kPerCpu)}},
      {"yield_heavy", "two workers per CPU that call sched_yield() in a loop",
       {part("yield_heavy", "yield", kTwicePerCpu)}},
      {"custom_crash_light", "a light load (half the CPUs spin) to observe a host-triggered scheduler crash",
       {part("light", "spin", kHalfPerCpu)}},
      {"mixed", "2x oversubscribed: spinners and yielders in two cgroups",
       {part("spin", "spin", kPerCpu), part("yield", "yield", kPerCpu)}},
      {"mixed_work", "one worker per CPU alternating a spin unit and sched_yield()",
       {part("mixed", "mixed", kPerCpu)}},
      {"sleep_wake", "one sleeper per CPU waking at 1000 Hz; wakeup latency measured",
       {part("sleepers", "sleep", kPerCpu, sleep_at(1000))}},
      {"wake_storm", "four sleepers per CPU waking at 500 Hz each", {part("storm", "sleep", kFourPerCpu, sleep_at(500))}},
      {"sleep_under_load", "sleepers' wakeup latency while every CPU is busy spinning",
       {part("hogs", "spin", kPerCpu), part("sleepers", "sleep", kPerCpu, sleep_at(1000))}},
      {"futex_pingpong", "futex ping-pong pairs on half the CPUs", {part("futex", "futex", kHalfPerCpu)}},
      {"futex_oversubscribed", "two futex ping-pong pairs per CPU", {part("futex", "futex", kTwicePerCpu)}},
      {"pipe_pingpong", "pipe ping-pong pairs on half the CPUs", {part("pipe", "pipe", kHalfPerCpu)}},
      {"pipe_under_load", "pipe ping-pong pairs competing with a spinner per CPU",
       {part("hogs", "spin", kPerCpu), part("pipe", "pipe", kHalfPerCpu)}},
      {"fork_churn", "one fork/exit loop per CPU", {part("forkers", "fork", kPerCpu)}},
      {"fork_under_load", "fork/exit loops competing with a spinner per CPU",
       {part("hogs", "spin", kPerCpu), part("forkers", "fork", kHalfPerCpu)}},
      {"fault_churn", "one page-fault loop per CPU (map, touch, unmap 1 MiB)", {part("faulters", "fault", kPerCpu)}},
      {"periodic", "one periodic task per CPU: 1 ms of work every 10 ms, missed deadlines counted",
       {part("periodic", "periodic", kPerCpu, periodic(10000, 1000))}},
      {"periodic_under_load", "periodic tasks (2 ms every 10 ms) competing with a spinner per CPU",
       {part("hogs", "spin", kPerCpu), part("periodic", "periodic", kPerCpu, periodic(10000, 2000))}},
      {"nice_mix", "spinners at nice -5, 0 and 10 in three cgroups",
       {part("nice_m5", "spin", kPerCpu, niced(-5)), part("nice_0", "spin", kPerCpu),
        part("nice_10", "spin", kPerCpu, niced(10))}},
      {"idle_vs_normal", "SCHED_IDLE spinners beside normal spinners",
       {part("normal", "spin", kPerCpu), part("idle", "spin", kPerCpu, policy("idle"))}},
      {"batch_vs_sleepers", "SCHED_BATCH spinners beside normal 1000 Hz sleepers",
       {part("batch", "spin", kPerCpu, policy("batch")), part("sleepers", "sleep", kPerCpu, sleep_at(1000))}},
      {"affinity_churn", "one spinner per CPU that moves its own CPU affinity every millisecond",
       {part("hoppers", "affinity", kPerCpu)}},
      {"affinity_vs_sleepers", "affinity changers beside 1000 Hz sleepers",
       {part("hoppers", "affinity", kPerCpu), part("sleepers", "sleep", kPerCpu, sleep_at(1000))}},
      {"ipc_mix", "futex and pipe ping-pong pairs and sleepers together",
       {part("futex", "futex", kHalfPerCpu), part("pipe", "pipe", kHalfPerCpu),
        part("sleepers", "sleep", kPerCpu, sleep_at(1000))}},
      {"everything", "one worker of every work type, each in its own cgroup",
       {part("spin", "spin", kOne), part("yield", "yield", kOne), part("sleep", "sleep", kOne, sleep_at(1000)),
        part("futex", "futex", kOne), part("pipe", "pipe", kOne), part("fork", "fork", kOne),
        part("fault", "fault", kOne), part("periodic", "periodic", kOne, periodic(10000, 1000)),
        part("affinity", "affinity", kOne)}},
  };
}

}  // namespace

unsigned CannedCgroup::workers(unsigned cpus) const {
  unsigned n = per_cpu_den ? cpus * per_cpu_num / per_cpu_den : 0;
  return std::max(min_workers, n);
}

std::string workers_formula(const CannedCgroup& cg) {
  if (cg.per_cpu_num == 0) return std::to_string(cg.min_workers);
  std::string n = cg.per_cpu_num == 1 ? "N" : std::to_string(cg.per_cpu_num) + "*N";
  if (cg.per_cpu_den != 1) n += "/" + std::to_string(cg.per_cpu_den);
  if (cg.per_cpu_den != 1 && cg.min_workers > 0) return "max(" + std::to_string(cg.min_workers) + "," + n + ")";
  return n;
}

const std::vector<CannedScenario>& canned_scenario_table() {
  static const std::vector<CannedScenario> table = build_table();
  return table;
}

const CannedScenario* find_canned_scenario(std::string_view name) {
  for (auto& sc : canned_scenario_table())
    if (sc.name == name) return &sc;
  return nullptr;
}

nlohmann::json canned_scenario_json(const CannedScenario& sc) {
  nlohmann::json cgroups = nlohmann::json::array();
  for (auto& cg : sc.cgroups) {
    nlohmann::json c = {{"name", cg.name}, {"work", cg.work}, {"workers", workers_formula(cg)}};
    // The settings as a spec would write them (defaults left out).
    if (cg.params.rate_hz) c["rate_hz"] = cg.params.rate_hz;
    if (cg.params.period_us) c["period_us"] = cg.params.period_us;
    if (cg.params.runtime_us) c["runtime_us"] = cg.params.runtime_us;
    if (cg.params.interval_us) c["interval_us"] = cg.params.interval_us;
    if (cg.params.nice) c["nice"] = cg.params.nice;
    if (cg.params.policy != "normal") c["policy"] = cg.params.policy;
    cgroups.push_back(std::move(c));
  }
  return {{"name", sc.name}, {"description", sc.description}, {"cgroups", cgroups}};
}

}  // namespace ktstr
