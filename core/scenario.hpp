// Scenarios: what the guest agent runs. plan_scenario() expands a TestSpec's
// canned scenario name (or its explicit cgroups) on a given topology into
// concrete cgroups, worker counts and timed steps, so the agent only follows
// a plan and never interprets spec names.
//
// Canned scenarios are data: a table (core/scenario_table.cpp) of named
// compositions of cgroups, each a work type, its settings and a worker count
// that scales with the topology's CPU count N; `ktstr test --list-scenarios`
// prints it. A spec builds its own from the same parts with `cgroups`.
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
  std::string work;  // one of work_kinds()
  std::string cpus;  // cpulist for cpuset.cpus; empty = all CPUs
  WorkParams params; // defaults resolved (resolve_work_params)
  unsigned weight = 100;  // cpu.weight

  bool operator==(const CgroupPlan&) const = default;
};

struct StepPlan {
  uint32_t after_ms = 0;  // since the workload started
  std::string action;     // one of step_actions()
  std::string cgroup;     // empty for cpu_offline / cpu_online
  unsigned count = 0;     // workers (add, remove, move)
  std::string to;         // move_workers
  std::string cpus;       // set_cpus
  int cpu = -1;           // cpu_offline / cpu_online

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
// {"after_ms", "action"} plus the keys the action uses (step_action_keys).
nlohmann::json step_plan_json(const StepPlan& step);
// {"rate_hz", "period_us", "runtime_us", "interval_us", "nice", "policy"}
nlohmann::json work_params_json(const WorkParams& params);

// One cgroup of a canned scenario: max(min_workers, N * per_cpu_num /
// per_cpu_den) workers on a topology of N CPUs.
struct CannedCgroup {
  std::string name;
  std::string work;
  unsigned per_cpu_num = 1, per_cpu_den = 1, min_workers = 1;
  WorkParams params;

  unsigned workers(unsigned cpus) const;
};

struct CannedScenario {
  std::string name;
  std::string description;  // one line
  std::vector<CannedCgroup> cgroups;
};

// The canned scenarios, in documentation order.
const std::vector<CannedScenario>& canned_scenario_table();
const CannedScenario* find_canned_scenario(std::string_view name);
// {"name", "description", "cgroups": [{name, work, workers (as text: "N",
// "2*N", "max(1,N/2)", "1"), params...}]}
nlohmann::json canned_scenario_json(const CannedScenario& sc);
// "N", "2*N", "max(1,N/2)", "1": how many workers a canned cgroup gets.
std::string workers_formula(const CannedCgroup& cg);

// Canned scenario names, in documentation order.
const std::vector<std::string>& canned_scenarios();
bool is_canned_scenario(std::string_view name);
// The cgroup names a canned scenario creates (independent of the topology);
// empty for an unknown name.
std::vector<std::string> canned_cgroup_names(std::string_view scenario);

// Work kinds and step actions the agent knows.
const std::vector<std::string>& work_kinds();
bool is_work_kind(std::string_view work);
// Whether a WorkParams key ("rate_hz", "period_us", "runtime_us",
// "interval_us", "nice", "policy") may be set for a work kind; `nice` and
// `policy` apply to every kind. Empty for an unknown key.
bool work_param_applies(std::string_view key, std::string_view work);
// The work kind a per-kind key belongs to ("rate_hz" -> "sleep"); empty for
// `nice`, `policy` and unknown keys.
std::string work_param_owner(std::string_view key);
// Scheduling policies a cgroup may ask for.
const std::vector<std::string>& sched_policies();
// Fills the work type's defaults (sleep 1000 Hz, periodic 10000/1000 us,
// affinity 1000 us) and checks the values; the error names the bad field.
Result<WorkParams> resolve_work_params(std::string_view work, const WorkParams& params);
const std::vector<std::string>& step_actions();
// Which StepSpec keys ("cgroup", "count", "to", "cpus", "cpu") an action
// uses; empty for an unknown action.
const std::vector<std::string>& step_action_keys(std::string_view action);

// "0-3,6,8-9" -> {0,1,2,3,6,8,9}: sorted, no duplicates. Every CPU must be
// below `cpu_count`.
Result<std::vector<unsigned>> parse_cpulist(std::string_view list, unsigned cpu_count);

}  // namespace ktstr
