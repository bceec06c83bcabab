// Expanding a spec's scenario into the plan the guest agent follows.
#include "core/scenario.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

namespace ktstr {
namespace {

constexpr unsigned kMaxWorkersPerCgroup = 1024;
constexpr uint32_t kDefaultSleepRateHz = 1000, kMaxSleepRateHz = 100000;
constexpr uint32_t kDefaultPeriodUs = 10000, kDefaultRuntimeUs = 1000, kDefaultAffinityIntervalUs = 1000;
constexpr uint32_t kMinIntervalUs = 100, kMaxIntervalUs = 10000000;

// The canned scenario's cgroups on `cpus` >= 1 CPUs; empty for an unknown name.
std::vector<CgroupPlan> canned_cgroups(std::string_view scenario, unsigned cpus) {
  std::vector<CgroupPlan> out;
  auto* sc = find_canned_scenario(scenario);
  if (!sc) return out;
  for (auto& cg : sc->cgroups) {
    auto params = resolve_work_params(cg.work, cg.params);
    out.push_back(CgroupPlan{cg.name, cg.workers(cpus), cg.work, "", params ? *params : cg.params, 100});
  }
  return out;
}

// One step against the workers each cgroup has and the CPUs offline at
// that moment; the reason it cannot happen, else empty.
std::string replay_step(StepPlan& s, uint32_t duration_ms, unsigned cpu_count, std::map<std::string, unsigned>& workers,
                        std::set<int>& offline) {
  std::string at = "step at " + std::to_string(s.after_ms) + " ms";
  if (s.after_ms >= duration_ms)
    return at + " comes after the end of the run (" + std::to_string(duration_ms) + " ms)";
  if (s.action == "cpu_offline" || s.action == "cpu_online") {
    if (s.cpu <= 0 || static_cast<unsigned>(s.cpu) >= cpu_count)
      return at + " names CPU " + std::to_string(s.cpu) + "; " + s.action + " takes CPU 1-" +
             std::to_string(cpu_count - 1) + " (CPU 0 cannot go offline)";
    bool off = s.action == "cpu_offline";
    if (off == (offline.count(s.cpu) > 0))
      return at + " sets CPU " + std::to_string(s.cpu) + (off ? " offline" : " online") + ", which it already is";
    if (off) offline.insert(s.cpu);
    else offline.erase(s.cpu);
    return {};
  }
  auto it = workers.find(s.cgroup);
  if (it == workers.end()) return at + " names unknown cgroup '" + s.cgroup + "'";
  if (s.action == "set_cpus") {
    if (auto cpus = parse_cpulist(s.cpus, cpu_count); !cpus || s.cpus.empty())
      return at + " sets cgroup '" + s.cgroup + "' to " + (cpus ? "an empty cpulist" : cpus.error().msg);
    return {};
  }
  if (s.count == 0) return at + " changes 0 workers";
  if (s.action == "add_workers") {
    if (it->second + s.count > kMaxWorkersPerCgroup) return at + " grows cgroup '" + s.cgroup + "' past 1024 workers";
    it->second += s.count;
    return {};
  }
  if (s.action != "remove_workers" && s.action != "move_workers") return at + " has unknown action '" + s.action + "'";
  if (s.count > it->second)
    return at + (s.action == "move_workers" ? " moves " : " removes ") + std::to_string(s.count) +
           " workers from cgroup '" + s.cgroup + "', which has " + std::to_string(it->second);
  it->second -= s.count;
  if (s.action == "move_workers") {
    auto to = workers.find(s.to);
    if (to == workers.end() || s.to == s.cgroup)
      return at + " moves workers of '" + s.cgroup + "' into " +
             (s.to == s.cgroup ? "the same cgroup" : "unknown cgroup '" + s.to + "'");
    to->second += s.count;
  }
  return {};
}

}  // namespace

nlohmann::json work_params_json(const WorkParams& p) {
  return {{"rate_hz", p.rate_hz},         {"period_us", p.period_us}, {"runtime_us", p.runtime_us},
          {"interval_us", p.interval_us}, {"nice", p.nice},           {"policy", p.policy}};
}

const std::vector<std::string>& canned_scenarios() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (auto& sc : canned_scenario_table()) out.push_back(sc.name);
    return out;
  }();
  return names;
}

bool is_canned_scenario(std::string_view name) {
  auto& names = canned_scenarios();
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::vector<std::string> canned_cgroup_names(std::string_view scenario) {
  std::vector<std::string> out;
  for (auto& cg : canned_cgroups(scenario, 1)) out.push_back(cg.name);
  return out;
}

const std::vector<std::string>& work_kinds() {
  static const std::vector<std::string> kinds = {"spin",  "yield", "mixed", "sleep",    "futex",
                                                  "pipe", "fork",  "fault", "periodic", "affinity"};
  return kinds;
}

bool is_work_kind(std::string_view work) {
  return std::find(work_kinds().begin(), work_kinds().end(), work) != work_kinds().end();
}

std::string work_param_owner(std::string_view key) {
  if (key == "rate_hz") return "sleep";
  if (key == "period_us" || key == "runtime_us") return "periodic";
  if (key == "interval_us") return "affinity";
  return {};
}

bool work_param_applies(std::string_view key, std::string_view work) {
  if (key == "nice" || key == "policy") return true;
  std::string owner = work_param_owner(key);
  return !owner.empty() && owner == work;
}

const std::vector<std::string>& sched_policies() {
  static const std::vector<std::string> policies = {"normal", "batch", "idle"};
  return policies;
}

Result<WorkParams> resolve_work_params(std::string_view work, const WorkParams& params) {
  auto bad = [](const std::string& why, const std::string& hint = {}) { return fail(why, hint); };
  const std::pair<const char*, uint32_t> set[] = {{"rate_hz", params.rate_hz},
                                                  {"period_us", params.period_us},
                                                  {"runtime_us", params.runtime_us},
                                                  {"interval_us", params.interval_us}};
  for (auto& [key, value] : set)
    if (value != 0 && !work_param_applies(key, work))
      return bad("'" + std::string(key) + "' applies only to work '" + work_param_owner(key) + "', not '" +
                     std::string(work) + "'",
                 "remove it, or set work = \"" + work_param_owner(key) + "\"");
  if (params.nice < -20 || params.nice > 19)
    return bad("nice " + std::to_string(params.nice) + " is outside -20..19");
  if (std::find(sched_policies().begin(), sched_policies().end(), params.policy) == sched_policies().end())
    return bad("unknown policy '" + params.policy + "'", "policy is one of " + join_quoted(sched_policies()));
  WorkParams out = params;
  if (work == "sleep") {
    if (out.rate_hz == 0) out.rate_hz = kDefaultSleepRateHz;
    if (out.rate_hz > kMaxSleepRateHz)
      return bad("rate_hz " + std::to_string(out.rate_hz) + " is above " + std::to_string(kMaxSleepRateHz));
  } else if (work == "periodic") {
    if (out.period_us == 0) out.period_us = kDefaultPeriodUs;
    if (out.runtime_us == 0) out.runtime_us = std::min(kDefaultRuntimeUs, out.period_us / 2);
    if (out.period_us < kMinIntervalUs || out.period_us > kMaxIntervalUs)
      return bad("period_us " + std::to_string(out.period_us) + " is outside " + std::to_string(kMinIntervalUs) +
                 ".." + std::to_string(kMaxIntervalUs));
    if (out.runtime_us == 0 || out.runtime_us >= out.period_us)
      return bad("runtime_us " + std::to_string(out.runtime_us) + " must be below period_us " +
                     std::to_string(out.period_us),
                 "a periodic task needs time to sleep before its next release");
  } else if (work == "affinity") {
    if (out.interval_us == 0) out.interval_us = kDefaultAffinityIntervalUs;
    if (out.interval_us < kMinIntervalUs || out.interval_us > kMaxIntervalUs)
      return bad("interval_us " + std::to_string(out.interval_us) + " is outside " + std::to_string(kMinIntervalUs) +
                 ".." + std::to_string(kMaxIntervalUs));
  }
  return out;
}

const std::vector<std::string>& step_actions() {
  static const std::vector<std::string> actions = {"add_workers", "remove_workers", "move_workers",
                                                   "set_cpus",    "cpu_offline",    "cpu_online"};
  return actions;
}

const std::vector<std::string>& step_action_keys(std::string_view action) {
  static const std::vector<std::string> workers = {"cgroup", "count"}, move = {"cgroup", "count", "to"},
                                        cpus = {"cgroup", "cpus"}, hotplug = {"cpu"}, none;
  if (action == "add_workers" || action == "remove_workers") return workers;
  if (action == "move_workers") return move;
  if (action == "set_cpus") return cpus;
  if (action == "cpu_offline" || action == "cpu_online") return hotplug;
  return none;
}

Result<std::vector<unsigned>> parse_cpulist(std::string_view list, unsigned cpu_count) {
  auto bad = [&](const std::string& why) {
    return fail("invalid cpulist '" + std::string(list) + "': " + why, "a cpulist reads like 0-3,6");
  };
  if (list.empty()) return bad("it is empty");
  auto number = [](std::string_view s, unsigned& out) {
    if (s.empty() || s.size() > 6) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
  };
  std::vector<unsigned> cpus;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t comma = std::min(list.find(',', pos), list.size());
    std::string_view item = list.substr(pos, comma - pos);
    size_t dash = item.find('-');
    unsigned first = 0, last = 0;
    if (dash == std::string_view::npos) {
      if (!number(item, first)) return bad("'" + std::string(item) + "' is not a CPU number");
      last = first;
    } else if (!number(item.substr(0, dash), first) || !number(item.substr(dash + 1), last)) {
      return bad("'" + std::string(item) + "' is not a range such as 0-3");
    }
    if (first > last) return bad("range '" + std::string(item) + "' goes backwards");
    if (last >= cpu_count)
      return bad("CPU " + std::to_string(last) + " does not exist (the topology has " + std::to_string(cpu_count) +
                 " CPUs, 0-" + std::to_string(cpu_count - 1) + ")");
    for (unsigned c = first; c <= last; ++c) cpus.push_back(c);
    pos = comma + 1;
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

Result<ScenarioPlan> plan_scenario(const TestSpec& spec, const Topology& topo) {
  auto bad = [&](const std::string& why) { return fail(spec.where() + ": " + why + " in test '" + spec.name + "'"); };
  ScenarioPlan plan;
  plan.duration_ms = spec.duration_ms();
  if (plan.duration_ms == 0) return bad("the duration is 0 ms");
  if (spec.cgroups.empty()) {
    std::string scenario = spec.scenario.empty() ? "steady" : spec.scenario;
    if (!is_canned_scenario(scenario)) return bad("unknown scenario '" + scenario + "'");
    plan.scenario = scenario;
    plan.cgroups = canned_cgroups(scenario, topo.cpus());
  } else {
    plan.scenario = "custom";
    for (auto& cg : spec.cgroups) {
      if (cg.workers == 0 || cg.workers > kMaxWorkersPerCgroup)
        return bad("cgroup '" + cg.name + "' has " + std::to_string(cg.workers) + " workers (1 to 1024 allowed)");
      if (!is_work_kind(cg.work)) return bad("cgroup '" + cg.name + "' has unknown work '" + cg.work + "'");
      auto params = resolve_work_params(cg.work, cg.params);
      if (!params) return bad(params.error().msg + " (cgroup '" + cg.name + "')");
      // Checked again: the topology given here may not be the spec's own.
      if (!cg.cpus.empty())
        if (auto cpus = parse_cpulist(cg.cpus, topo.cpus()); !cpus)
          return bad(cpus.error().msg + " (cgroup '" + cg.name + "')");
      if (cg.weight < 1 || cg.weight > 10000)
        return bad("cgroup '" + cg.name + "' has weight " + std::to_string(cg.weight) + " (1 to 10000 allowed)");
      plan.cgroups.push_back(CgroupPlan{cg.name, cg.workers, cg.work, cg.cpus, *params, cg.weight});
    }
  }

  // Replay the steps in time order so a removal or move can never take
  // more workers than the cgroup has at that moment.
  std::map<std::string, unsigned> workers;
  for (auto& cg : plan.cgroups) workers[cg.name] = cg.workers;
  for (auto& s : spec.steps) plan.steps.push_back(StepPlan{s.after_ms, s.action, s.cgroup, s.count, s.to, s.cpus, s.cpu});
  std::stable_sort(plan.steps.begin(), plan.steps.end(),
                   [](const StepPlan& a, const StepPlan& b) { return a.after_ms < b.after_ms; });
  std::set<int> offline;
  for (auto& s : plan.steps) {
    if (auto why = replay_step(s, plan.duration_ms, topo.cpus(), workers, offline); !why.empty())
      return fail(spec.where() + ": " + why + " in test '" + spec.name + "'",
                  "steps replay in time order: each acts on the workers and CPUs left by the ones before");
  }

  plan.map_writes = spec.bpf_map_writes;
  std::stable_sort(plan.map_writes.begin(), plan.map_writes.end(),
                   [](const MapWrite& a, const MapWrite& b) { return a.after_ms < b.after_ms; });
  for (auto& w : plan.map_writes)
    if (w.after_ms >= plan.duration_ms)
      return bad("map write of '" + w.var + "' at " + std::to_string(w.after_ms) + " ms comes after the end of the run");
  return plan;
}

nlohmann::json step_plan_json(const StepPlan& s) {
  nlohmann::json j = {{"after_ms", s.after_ms}, {"action", s.action}};
  for (const std::string& key : step_action_keys(s.action)) {
    if (key == "cgroup") j["cgroup"] = s.cgroup;
    if (key == "count") j["count"] = s.count;
    if (key == "to") j["to"] = s.to;
    if (key == "cpus") j["cpus"] = s.cpus;
    if (key == "cpu") j["cpu"] = s.cpu;
  }
  return j;
}

nlohmann::json plan_to_json(const ScenarioPlan& plan) {
  using nlohmann::json;
  json cgroups = json::array(), steps = json::array(), writes = json::array();
  for (auto& cg : plan.cgroups)
    cgroups.push_back({{"name", cg.name}, {"workers", cg.workers}, {"work", cg.work}, {"cpus", cg.cpus},
                       {"params", work_params_json(cg.params)}, {"weight", cg.weight}});
  for (auto& s : plan.steps) steps.push_back(step_plan_json(s));
  for (auto& w : plan.map_writes)
    writes.push_back({{"map", w.map}, {"var", w.var}, {"value", w.value}, {"after_ms", w.after_ms}});
  return {{"scenario", plan.scenario}, {"duration_ms", plan.duration_ms}, {"cgroups", cgroups},
          {"steps", steps}, {"map_writes", writes}};
}

}  // namespace ktstr
