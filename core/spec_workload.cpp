// Reading a test's workload (spec_reader.hpp): a canned scenario or explicit
// cgroups with their work settings and weights, the steps, and the map
// writes' scheduler requirement.
#include "core/spec_reader.hpp"

#include "core/scenario.hpp"

#include <algorithm>

namespace ktstr::spec_detail {

Status TestReader::read_workload() {
  auto scenario = tbl_.get("scenario");
  auto cgroups = tbl_.get("cgroups");
  if (scenario && cgroups) {
    const toml::node& later = line_of(*cgroups) >= line_of(*scenario) ? *cgroups : *scenario;
    return fail(at(later, "'scenario' and 'cgroups' in " + label_ + " are mutually exclusive",
                   "keep either a canned scenario name or explicit cgroups"));
  }
  if (scenario) {
    auto s = str(*scenario, "scenario");
    if (!s) return fail(s.error());
    if (!is_canned_scenario(*s)) {
      std::string hint = suggest_close(*s, canned_scenarios());
      if (hint.empty()) hint = "'ktstr test --list-scenarios' lists the canned scenarios";
      return fail(at(*scenario, "unknown scenario '" + *s + "' in " + label_, hint));
    }
    spec_.scenario = *s;
  }
  if (cgroups) {
    spec_.scenario.clear();
    auto a = array(*cgroups, "cgroups");
    if (!a) return fail(a.error());
    if ((*a)->empty()) return fail(at(*cgroups, key_in("cgroups") + " must list at least one cgroup"));
    for (size_t i = 0; i < (*a)->size(); ++i) {
      std::string path = "cgroups[" + std::to_string(i) + "]";
      auto t = table(*(*a)->get(i), path);
      if (!t) return fail(t.error());
      auto cg = read_cgroup(**t, path);
      if (!cg) return fail(cg.error());
      for (auto& other : spec_.cgroups)
        if (other.name == cg->name)
          return fail(at(**t, "duplicate cgroup name '" + cg->name + "' in " + label_));
      spec_.cgroups.push_back(std::move(*cg));
    }
  }
  if (auto n = tbl_.get("steps")) {
    auto a = array(*n, "steps");
    if (!a) return fail(a.error());
    if (auto s = read_steps(**a); !s) return s;
  }
  if (auto n = tbl_.get("bpf_map_write")) {
    auto a = array(*n, "bpf_map_write");
    if (!a) return fail(a.error());
    if (auto s = read_map_writes(**a); !s) return s;
    if (!spec_.bpf_map_writes.empty() && !spec_.uses_bpf_scheduler())
      return fail(at(*n, key_in("bpf_map_write") + " needs a sched_ext scheduler, but the scheduler is 'eevdf'",
                     "set scheduler = \"scx-ktstr\" or a path to a scheduler binary"));
  }
  return {};
}

Result<CgroupSpec> TestReader::read_cgroup(const toml::table& t, const std::string& path) {
  if (auto s = check_keys(t, kCgroupKeys, path + " of " + label_); !s) return fail(s.error());
  CgroupSpec cg;
  auto name = required_str(t, "name", path);
  if (!name) return fail(name.error());
  if (!is_valid_test_name(*name))
    return fail(at(*t.get("name"), "invalid cgroup name '" + *name + "' in " + label_,
                   "a cgroup name uses only letters, digits, '_', '.' and '-'"));
  cg.name = *name;
  auto workers = t.get("workers");
  if (!workers) return fail(at(t, path + " of " + label_ + " has no 'workers'"));
  auto w = integer(*workers, path + ".workers", 1, kMaxWorkers);
  if (!w) return fail(w.error());
  cg.workers = static_cast<unsigned>(*w);
  auto work = required_str(t, "work", path);
  if (!work) return fail(work.error());
  if (!is_work_kind(*work)) {
    std::string hint = suggest_close(*work, work_kinds());
    if (hint.empty()) hint = "work is one of " + join_quoted(work_kinds());
    return fail(at(*t.get("work"), "unknown work '" + *work + "' in " + path + " of " + label_, hint));
  }
  cg.work = *work;
  if (auto n = t.get("cpus")) {
    auto s = str(*n, path + ".cpus");
    if (!s) return fail(s.error());
    auto cpus = parse_cpulist(*s, spec_.topology.cpus());
    if (!cpus)
      return fail(at(*n, placed(cpus.error().msg, "invalid cpulist '" + *s + "'", path + " of " + label_),
                     cpus.error().hint));
    cg.cpus = *s;
  }
  if (auto s = read_work_params(t, path, cg); !s) return fail(s.error());
  if (auto n = t.get("weight")) {
    auto v = integer(*n, path + ".weight", 1, 10000);
    if (!v) return fail(v.error());
    cg.weight = static_cast<unsigned>(*v);
  }
  return cg;
}

// The work type's settings: each per-kind key only with its kind, values in
// range (resolve_work_params holds the rules; here they get a line number).
Status TestReader::read_work_params(const toml::table& t, const std::string& path, CgroupSpec& cg) {
  const std::pair<const char*, uint32_t WorkParams::*> numbers[] = {{"rate_hz", &WorkParams::rate_hz},
                                                                    {"period_us", &WorkParams::period_us},
                                                                    {"runtime_us", &WorkParams::runtime_us},
                                                                    {"interval_us", &WorkParams::interval_us}};
  const toml::node* last = nullptr;
  for (auto& [key, field] : numbers) {
    auto n = t.get(key);
    if (!n) continue;
    if (!work_param_applies(key, cg.work)) {
      std::string owner = work_param_owner(key);
      return fail(at(*n, "'" + path + "." + key + "' in " + label_ + " applies only to work '" + owner + "', not '" +
                             cg.work + "'",
                     "remove it, or set work = \"" + owner + "\""));
    }
    auto v = integer(*n, path + "." + key, 1, 100000000);
    if (!v) return fail(v.error());
    cg.params.*field = static_cast<uint32_t>(*v);
    last = n;
  }
  if (auto n = t.get("nice")) {
    auto v = integer(*n, path + ".nice", -20, 19);
    if (!v) return fail(v.error());
    cg.params.nice = static_cast<int>(*v);
  }
  if (auto n = t.get("policy")) {
    auto v = str(*n, path + ".policy");
    if (!v) return fail(v.error());
    if (std::find(sched_policies().begin(), sched_policies().end(), *v) == sched_policies().end()) {
      std::string hint = suggest_close(*v, sched_policies());
      if (hint.empty()) hint = "policy is one of " + join_quoted(sched_policies());
      return fail(at(*n, "unknown policy '" + *v + "' in " + path + " of " + label_, hint));
    }
    cg.params.policy = *v;
  }
  if (auto resolved = resolve_work_params(cg.work, cg.params); !resolved)
    return fail(at(last ? *last : t, resolved.error().msg + " in " + path + " of " + label_, resolved.error().hint));
  return {};
}

Status TestReader::read_steps(const toml::array& a) {
  std::vector<std::string> cgroup_names;
  for (auto& cg : spec_.cgroups) cgroup_names.push_back(cg.name);
  if (cgroup_names.empty()) cgroup_names = canned_cgroup_names(spec_.scenario);
  const int64_t last_ms = spec_.duration_ms() - 1;
  const unsigned cpu_count = spec_.topology.cpus();
  for (size_t i = 0; i < a.size(); ++i) {
    std::string path = "steps[" + std::to_string(i) + "]";
    auto t = table(*a.get(i), path);
    if (!t) return fail(t.error());
    if (auto s = check_keys(**t, kStepKeys, path + " of " + label_); !s) return s;
    StepSpec step;
    auto after = (*t)->get("after_ms");
    if (!after) return fail(at(**t, path + " of " + label_ + " has no 'after_ms'"));
    auto ms = integer(*after, path + ".after_ms", 0, last_ms);
    if (!ms) return fail(ms.error());
    step.after_ms = static_cast<uint32_t>(*ms);
    auto action = required_str(**t, "action", path);
    if (!action) return fail(action.error());
    if (std::find(step_actions().begin(), step_actions().end(), *action) == step_actions().end()) {
      std::string hint = suggest_close(*action, step_actions());
      if (hint.empty()) hint = "action is one of " + join_quoted(step_actions());
      return fail(at(*(*t)->get("action"), "unknown action '" + *action + "' in " + path + " of " + label_, hint));
    }
    step.action = *action;
    const auto& keys = step_action_keys(step.action);
    auto uses = [&](const char* key) { return std::find(keys.begin(), keys.end(), key) != keys.end(); };
    for (const char* key : {"cgroup", "count", "to", "cpus", "cpu"}) {
      auto n = (*t)->get(key);
      if (!n || uses(key)) continue;
      std::vector<std::string> with;
      for (auto& act : step_actions()) {
        auto& k = step_action_keys(act);
        if (std::find(k.begin(), k.end(), key) != k.end()) with.push_back(act);
      }
      return fail(at(*n, "'" + path + "." + key + "' in " + label_ + " does not apply to action '" + step.action + "'",
                     "'" + std::string(key) + "' goes with action " + join_quoted(with) + "; this action takes " +
                         (keys.empty() ? std::string("no other keys") : join_quoted(keys))));
    }
    auto known_cgroup = [&](const char* key) -> Result<std::string> {
      auto name = required_str(**t, key, path);
      if (!name) return fail(name.error());
      if (std::find(cgroup_names.begin(), cgroup_names.end(), *name) == cgroup_names.end()) {
        std::string hint = suggest_close(*name, cgroup_names);
        if (hint.empty()) hint = "this test's cgroups: " + join_quoted(cgroup_names);
        return fail(at(*(*t)->get(key), "unknown cgroup '" + *name + "' in " + path + " of " + label_, hint));
      }
      return *name;
    };
    if (uses("cgroup")) {
      auto cg = known_cgroup("cgroup");
      if (!cg) return fail(cg.error());
      step.cgroup = *cg;
    }
    if (auto c = (*t)->get("count")) {
      auto v = integer(*c, path + ".count", 1, kMaxWorkers);
      if (!v) return fail(v.error());
      step.count = static_cast<unsigned>(*v);
    }
    if (uses("to")) {
      auto to = known_cgroup("to");
      if (!to) return fail(to.error());
      if (*to == step.cgroup)
        return fail(at(*(*t)->get("to"), "'" + path + ".to' in " + label_ + " is its own cgroup '" + *to + "'",
                       "move_workers moves workers from 'cgroup' into another cgroup 'to'"));
      step.to = *to;
    }
    if (uses("cpus")) {
      auto cpus = required_str(**t, "cpus", path);
      if (!cpus) return fail(cpus.error());
      auto list = parse_cpulist(*cpus, cpu_count);
      if (!list || list->empty())
        return fail(at(*(*t)->get("cpus"),
                       placed(list ? "invalid cpulist '': it is empty" : list.error().msg,
                              "invalid cpulist '" + *cpus + "'", path + " of " + label_),
                       list ? "a cpulist reads like 0-3,6" : list.error().hint));
      step.cpus = *cpus;
    }
    if (uses("cpu")) {
      auto n = (*t)->get("cpu");
      if (!n) return fail(at(**t, path + " of " + label_ + " has no 'cpu'", "name the CPU to take offline or online"));
      auto v = integer(*n, path + ".cpu", 0, INT32_MAX);
      if (!v) return fail(v.error());
      if (*v == 0)
        return fail(at(*n, "'" + path + ".cpu' in " + label_ + " is CPU 0, which cannot go offline",
                       "use a CPU from 1 to " + std::to_string(cpu_count - 1)));
      if (*v >= cpu_count)
        return fail(at(*n, "CPU " + std::to_string(*v) + " in " + path + " of " + label_ + " does not exist (the topology has " +
                               std::to_string(cpu_count) + " CPUs)",
                       cpu_count > 1 ? "use a CPU from 1 to " + std::to_string(cpu_count - 1)
                                     : "hotplug needs a topology of at least 2 CPUs"));
      step.cpu = static_cast<int>(*v);
    }
    spec_.steps.push_back(std::move(step));
  }
  return {};
}

}  // namespace ktstr::spec_detail
