// JSON for the scenario steps of a JOB (version 5) and the STEP payload.
// Strict like messages.cpp: each action carries exactly the fields it uses.
#include "guest/proto/json_fields.hpp"
#include "guest/proto/messages.hpp"

#include <algorithm>

namespace ktstr::proto {

using nlohmann::json;

using detail::get_field;
using detail::get_optional;
using detail::get_signed;
using detail::get_unsigned;

namespace {

bool is_hotplug(const std::string& action) { return action == "cpu_offline" || action == "cpu_online"; }
bool moves_workers(const std::string& action) {
  return action == "add_workers" || action == "remove_workers" || action == "move_workers";
}

}  // namespace

void to_json(json& j, const StepPlan& v) {
  j = {{"after_ms", v.after_ms}, {"action", v.action}};
  if (!is_hotplug(v.action)) j["cgroup"] = v.cgroup;
  if (moves_workers(v.action)) j["count"] = v.count;
  if (v.action == "move_workers") j["to"] = v.to;
  if (v.action == "set_cpus") j["cpus"] = v.cpus;
  if (is_hotplug(v.action)) j["cpu"] = v.cpu;
}
void from_json(const json& j, StepPlan& v) {
  get_unsigned(j, "after_ms", v.after_ms);
  get_field(j, "action", v.action);
  get_optional(j, "cgroup", v.cgroup);
  if (j.contains("count")) get_unsigned(j, "count", v.count);
  get_optional(j, "to", v.to);
  get_optional(j, "cpus", v.cpus);
  if (j.contains("cpu")) get_signed(j, "cpu", v.cpu);
}

void to_json(json& j, const StepMsg& v) {
  j = {{"index", v.index}, {"step", v.step}, {"ok", v.ok}, {"detail", v.detail}, {"error", v.error}, {"t_ms", v.t_ms}};
}
void from_json(const json& j, StepMsg& v) {
  get_unsigned(j, "index", v.index);
  get_field(j, "step", v.step);
  get_field(j, "ok", v.ok);
  get_optional(j, "detail", v.detail);
  get_optional(j, "error", v.error);
  get_unsigned(j, "t_ms", v.t_ms);
}

bool job_needs_steps(const JobMsg& job) {
  if (!job.scenario.steps.empty()) return true;
  return std::any_of(job.scenario.cgroups.begin(), job.scenario.cgroups.end(),
                     [](const CgroupPlan& cg) { return cg.weight != 100; });
}

// The agent trusts the host's plan only this far: known actions, known
// cgroups, sane numbers, time order. Worker counts are checked as the steps
// run (a removal of more workers than are left removes what is there).
Status validate_steps(const Scenario& scenario) {
  if (scenario.steps.size() > kMaxSteps)
    return fail("job has " + std::to_string(scenario.steps.size()) + " steps, more than " + std::to_string(kMaxSteps));
  auto known = [&](const std::string& name) {
    return std::any_of(scenario.cgroups.begin(), scenario.cgroups.end(),
                       [&](const CgroupPlan& cg) { return cg.name == name; });
  };
  uint64_t prev = 0;
  for (size_t i = 0; i < scenario.steps.size(); ++i) {
    const StepPlan& s = scenario.steps[i];
    std::string at = "step " + std::to_string(i) + " ('" + s.action + "')";
    if (s.after_ms < prev) return fail(at + " is out of time order");
    prev = s.after_ms;
    if (s.after_ms >= scenario.duration_ms) return fail(at + " comes after the end of the run");
    if (is_hotplug(s.action)) {
      if (s.cpu <= 0) return fail(at + " names CPU " + std::to_string(s.cpu));
      continue;
    }
    if (!moves_workers(s.action) && s.action != "set_cpus") return fail("unknown step action '" + s.action + "'");
    if (!known(s.cgroup)) return fail(at + " names unknown cgroup '" + s.cgroup + "'");
    if (moves_workers(s.action) && (s.count == 0 || s.count > kMaxWorkersPerJob))
      return fail(at + " changes " + std::to_string(s.count) + " workers");
    if (s.action == "move_workers" && (!known(s.to) || s.to == s.cgroup))
      return fail(at + " moves workers into '" + s.to + "'");
    if (s.action == "set_cpus" && (s.cpus.empty() || s.cpus.find_first_not_of("0123456789,-") != std::string::npos))
      return fail(at + " has invalid cpulist '" + s.cpus + "'");
  }
  return {};
}

}  // namespace ktstr::proto
