// Scenarios: what the guest agent runs. plan_scenario() expands a TestSpec's
// canned scenario name (or its explicit cgroups) on a given topology into
// concrete cgroups, worker counts and timed steps, so the agent only follows
// a plan and never interprets spec names.
//
// Canned scenarios (N = CPUs of the topology):
//   steady              cgroup "steady": N spin workers (one per CPU)
//   yield_heavy         cgroup "yield_heavy": 2*N workers that yield in a loop
//   custom_crash_light  cgroup "light": max(1, N/2) spin workers; a light load
//                       on which a host-triggered scheduler crash is observed
//   mixed               cgroups "spin" (N spin workers) and "yield" (N yield
//                       workers): 2x oversubscribed, two kinds of behaviour
#pragma once

#include "core/result.hpp"
#include "core/spec.hpp"
#include "core/topology.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

struct CgroupPlan {
  std::string name;
  unsigned workers = 0;
  std::string work;  // "spin", "yield" or "mixed"
  std::string cpus;  // cpulist for cpuset.cpus; empty = all CPUs

  bool operator==(const CgroupPlan&) const = default;
};

struct StepPlan {
  uint32_t after_ms = 0;  // since the workload started
  std::string action;     // "add_workers" or "remove_workers"
  std::string cgroup;
  unsigned count = 0;

  bool operator==(const StepPlan&) const = default;
};

struct ScenarioPlan {
  std::string scenario;  // canned name, or "custom" for explicit cgroups
  std::vector<CgroupPlan> cgroups;
  uint32_t duration_ms = 0;
  std::vector<StepPlan> steps;         // sorted by after_ms (stable)
  std::vector<MapWrite> map_writes;    // sorted by after_ms (stable)

  bool operator==(const ScenarioPlan&) const = default;
};

Result<ScenarioPlan> plan_scenario(const TestSpec& spec, const Topology& topo);

nlohmann::json plan_to_json(const ScenarioPlan& plan);

// Canned scenario names, in documentation order.
const std::vector<std::string>& canned_scenarios();
bool is_canned_scenario(std::string_view name);
// The cgroup names a canned scenario creates (independent of the topology);
// empty for an unknown name.
std::vector<std::string> canned_cgroup_names(std::string_view scenario);

// Work kinds and step actions the agent knows.
const std::vector<std::string>& work_kinds();
const std::vector<std::string>& step_actions();

// "0-3,6,8-9" -> {0,1,2,3,6,8,9}: sorted, no duplicates. Every CPU must be
// below `cpu_count`.
Result<std::vector<unsigned>> parse_cpulist(std::string_view list, unsigned cpu_count);

}  // namespace ktstr
