// Loading [[test]] tables. Reading is strict and every message starts with
// "file:line:" taken from toml++'s source regions (the key's line for an
// unknown key, the value's line for a bad value).
#include "core/spec.hpp"

#include "core/fs.hpp"
#include "core/scenario.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

namespace ktstr {
namespace {

using spec_detail::check_matchers;
using spec_detail::toml_number;

const std::vector<std::string> kTestKeys = {
    "name", "scheduler", "sched_args", "topology", "memory_mb", "duration_s", "scenario",
    "cgroups", "steps", "bpf_map_write", "expect_err", "expect_scx_bpf_error_contains",
    "expect_scx_bpf_error_matches", "auto_repro", "watchdog_timeout_s", "checks", "kernel"};
const std::vector<std::string> kCgroupKeys = {"name",       "workers",     "work", "cpus",  "rate_hz",
                                               "period_us",  "runtime_us",  "interval_us", "nice", "policy", "weight"};
const std::vector<std::string> kStepKeys = {"after_ms", "action", "cgroup", "count", "to", "cpus", "cpu"};
const std::vector<std::string> kMapWriteKeys = {"map", "var", "value", "after_ms"};
const std::vector<std::string> kChecksKeys = {"not_starved", "max_gap_ms",    "max_spread_pct",       "isolation",
                                               "numa_local",  "max_imbalance", "max_wakeup_latency_us",
                                               "max_weight_error_pct", "fail_on_stall"};
const std::vector<std::string> kBuiltinSchedulers = {"eevdf", "scx-ktstr"};

constexpr unsigned kMinMemoryMb = 64, kMaxMemoryMb = 65536;
constexpr double kMaxDurationS = 3600;
constexpr int64_t kMaxWorkers = 1024;
constexpr size_t kMaxSpecBytes = 4 << 20;

std::string a_type(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::array: return "an array";
    case toml::node_type::table: return "a table";
    default: return "a date or time";
  }
}

// "invalid topology 'x': why" -> "invalid topology 'x' in test 'y': why"
std::string placed(const std::string& msg, const std::string& subject, const std::string& where) {
  if (msg.rfind(subject, 0) != 0) return msg + " (" + where + ")";
  return subject + " in " + where + msg.substr(subject.size());
}

unsigned line_of(const toml::node& n) { return n.source().begin.line; }
unsigned line_of(const toml::key& k) { return k.source().begin.line; }

// Parses one [[test]] table. Each field's reader returns the first problem
// found; the key order of checks is fixed so messages are deterministic.
class TestReader {
 public:
  TestReader(const std::string& file, const toml::table& tbl, size_t index)
      : file_(file), tbl_(tbl), index_(index) {}

  Result<TestSpec> read();

 private:
  Error at(unsigned line, const std::string& msg, const std::string& hint = {}) const {
    return Error(file_ + ":" + std::to_string(line) + ": " + msg, hint);
  }
  Error at(const toml::node& n, const std::string& msg, const std::string& hint = {}) const {
    return at(line_of(n), msg, hint);
  }
  // "'memory_mb' in test 'foo'"
  std::string key_in(const std::string& path) const { return "'" + path + "' in " + label_; }

  Status check_keys(const toml::table& t, const std::vector<std::string>& valid, const std::string& where);
  Result<std::string> str(const toml::node& n, const std::string& path, bool allow_empty = false);
  Result<int64_t> integer(const toml::node& n, const std::string& path, int64_t min, int64_t max);
  Result<bool> boolean(const toml::node& n, const std::string& path);
  Result<const toml::table*> table(const toml::node& n, const std::string& path);
  Result<const toml::array*> array(const toml::node& n, const std::string& path);
  Result<std::string> required_str(const toml::table& t, const std::string& key, const std::string& prefix);

  Status read_scheduler();
  Status read_workload();
  Result<CgroupSpec> read_cgroup(const toml::table& t, const std::string& path);
  Status read_work_params(const toml::table& t, const std::string& path, CgroupSpec& cg);
  Status read_steps(const toml::array& a);
  Status read_map_writes(const toml::array& a);
  Status read_expectations();

  const std::string& file_;
  const toml::table& tbl_;
  size_t index_;
  std::string label_;
  TestSpec spec_;
};

Status TestReader::check_keys(const toml::table& t, const std::vector<std::string>& valid,
                              const std::string& where) {
  std::vector<std::pair<const toml::key*, unsigned>> unknown;
  for (auto&& [k, v] : t)
    if (std::find(valid.begin(), valid.end(), k.str()) == valid.end()) unknown.emplace_back(&k, line_of(k));
  if (unknown.empty()) return {};
  // Report the first unknown key in file order, not toml++'s sorted order.
  auto first = std::min_element(unknown.begin(), unknown.end(),
                                [](auto& a, auto& b) { return a.second < b.second; });
  std::string key(first->first->str());
  return fail(at(first->second, "unknown key '" + key + "' in " + where, suggest_close(key, valid)));
}

Result<std::string> TestReader::str(const toml::node& n, const std::string& path, bool allow_empty) {
  auto v = n.as_string();
  if (!v) return fail(at(n, key_in(path) + " must be a string, not " + a_type(n)));
  if (!allow_empty && v->get().empty()) return fail(at(n, key_in(path) + " must not be empty"));
  return v->get();
}

Result<int64_t> TestReader::integer(const toml::node& n, const std::string& path, int64_t min, int64_t max) {
  auto v = n.as_integer();
  if (!v) return fail(at(n, key_in(path) + " must be an integer, not " + a_type(n)));
  int64_t x = v->get();
  if (x < min || x > max)
    return fail(at(n, key_in(path) + " must be between " + std::to_string(min) + " and " + std::to_string(max) +
                          ", not " + std::to_string(x)));
  return x;
}

Result<bool> TestReader::boolean(const toml::node& n, const std::string& path) {
  auto v = n.as_boolean();
  if (!v) return fail(at(n, key_in(path) + " must be true or false, not " + a_type(n)));
  return v->get();
}

Result<const toml::table*> TestReader::table(const toml::node& n, const std::string& path) {
  auto v = n.as_table();
  if (!v) return fail(at(n, key_in(path) + " must be a table, not " + a_type(n)));
  return v;
}

Result<const toml::array*> TestReader::array(const toml::node& n, const std::string& path) {
  auto v = n.as_array();
  if (!v) return fail(at(n, key_in(path) + " must be an array, not " + a_type(n)));
  return v;
}

Result<std::string> TestReader::required_str(const toml::table& t, const std::string& key,
                                             const std::string& prefix) {
  auto n = t.get(key);
  if (!n) return fail(at(t, prefix + " of " + label_ + " has no '" + key + "'"));
  return str(*n, prefix + "." + key);
}

Result<TestSpec> TestReader::read() {
  spec_.source_file = file_;
  spec_.source_line = line_of(tbl_);
  label_ = "test #" + std::to_string(index_ + 1);
  auto name_node = tbl_.get("name");
  if (!name_node)
    return fail(at(tbl_, label_ + " has no 'name'", "add a line such as name = \"my_test\""));
  auto name = str(*name_node, "name");
  if (!name) return fail(name.error());
  if (!is_valid_test_name(*name))
    return fail(at(*name_node, "invalid test name '" + *name + "'",
                   "a test name uses only letters, digits, '_', '.' and '-'"));
  spec_.name = *name;
  label_ = "test '" + spec_.name + "'";
  if (auto s = check_keys(tbl_, kTestKeys, label_); !s) return fail(s.error());

  if (auto n = tbl_.get("topology")) {
    auto s = str(*n, "topology");
    if (!s) return fail(s.error());
    auto topo = Topology::parse(*s);
    if (!topo) return fail(at(*n, placed(topo.error().msg, "invalid topology '" + *s + "'", label_), topo.error().hint));
    spec_.topology = *topo;
  }
  if (auto n = tbl_.get("memory_mb")) {
    auto v = integer(*n, "memory_mb", kMinMemoryMb, kMaxMemoryMb);
    if (!v) return fail(v.error());
    spec_.memory_mb = static_cast<unsigned>(*v);
  }
  if (auto n = tbl_.get("duration_s")) {
    if (!n->is_number())
      return fail(at(*n, key_in("duration_s") + " must be a number of seconds, not " + a_type(*n)));
    double d = n->is_integer() ? static_cast<double>(n->as_integer()->get()) : n->as_floating_point()->get();
    if (!(d >= 0.001 && d <= kMaxDurationS))
      return fail(at(*n, key_in("duration_s") + " must be more than 0 and at most 3600, not " + toml_number(d),
                     "the smallest duration is 0.001 (one millisecond)"));
    spec_.duration_s = d;
  }
  if (auto s = read_scheduler(); !s) return fail(s.error());
  if (auto s = read_workload(); !s) return fail(s.error());
  if (auto s = read_expectations(); !s) return fail(s.error());
  if (auto n = tbl_.get("watchdog_timeout_s")) {
    auto v = integer(*n, "watchdog_timeout_s", 1, 3600);
    if (!v) return fail(v.error());
    spec_.watchdog_timeout_s = static_cast<unsigned>(*v);
  }
  if (auto n = tbl_.get("checks")) {
    auto t = table(*n, "checks");
    if (!t) return fail(t.error());
    if (auto s = check_keys(**t, kChecksKeys, "'checks' of " + label_); !s) return fail(s.error());
    if (auto c = (*t)->get("not_starved")) {
      auto v = boolean(*c, "checks.not_starved");
      if (!v) return fail(v.error());
      spec_.checks.not_starved = *v;
    }
    if (auto c = (*t)->get("max_gap_ms")) {
      auto v = integer(*c, "checks.max_gap_ms", 1, 3600 * 1000);
      if (!v) return fail(v.error());
      spec_.checks.max_gap_ms = static_cast<uint32_t>(*v);
    }
    if (auto c = (*t)->get("max_spread_pct")) {
      auto v = integer(*c, "checks.max_spread_pct", 1, 10000);
      if (!v) return fail(v.error());
      spec_.checks.max_spread_pct = static_cast<uint32_t>(*v);
    }
    for (auto [key, field] : {std::pair{"isolation", &Checks::isolation}, std::pair{"numa_local", &Checks::numa_local},
                              std::pair{"fail_on_stall", &Checks::fail_on_stall}})
      if (auto c = (*t)->get(key)) {
        auto v = boolean(*c, std::string("checks.") + key);
        if (!v) return fail(v.error());
        spec_.checks.*field = *v;
      }
    if (auto c = (*t)->get("max_imbalance")) {
      auto v = integer(*c, "checks.max_imbalance", 1, 100000);
      if (!v) return fail(v.error());
      spec_.checks.max_imbalance = static_cast<uint32_t>(*v);
    }
    if (auto c = (*t)->get("max_wakeup_latency_us")) {
      auto v = integer(*c, "checks.max_wakeup_latency_us", 1, 3600ll * 1000 * 1000);
      if (!v) return fail(v.error());
      spec_.checks.max_wakeup_latency_us = static_cast<uint32_t>(*v);
    }
    if (auto c = (*t)->get("max_weight_error_pct")) {
      auto v = integer(*c, "checks.max_weight_error_pct", 0, 100);
      if (!v) return fail(v.error());
      spec_.checks.max_weight_error_pct = static_cast<uint32_t>(*v);
    }
  }
  if (auto n = tbl_.get("kernel")) {
    auto v = str(*n, "kernel");
    if (!v) return fail(v.error());
    spec_.kernel = *v;
  }
  return spec_;
}

Status TestReader::read_scheduler() {
  if (auto n = tbl_.get("scheduler")) {
    auto s = str(*n, "scheduler");
    if (!s) return fail(s.error());
    bool builtin = std::find(kBuiltinSchedulers.begin(), kBuiltinSchedulers.end(), *s) != kBuiltinSchedulers.end();
    if (!builtin && s->find('/') == std::string::npos) {
      std::string hint = suggest_close(*s, kBuiltinSchedulers);
      if (hint.empty()) hint = "use 'eevdf', 'scx-ktstr' or a path to a scheduler binary, e.g. './" + *s + "'";
      return fail(at(*n, "unknown scheduler '" + *s + "' in " + label_, hint));
    }
    spec_.scheduler = *s;
  }
  if (auto n = tbl_.get("sched_args")) {
    auto a = array(*n, "sched_args");
    if (!a) return fail(a.error());
    for (size_t i = 0; i < (*a)->size(); ++i) {
      auto s = str(*(*a)->get(i), "sched_args[" + std::to_string(i) + "]", true);
      if (!s) return fail(s.error());
      spec_.sched_args.push_back(*s);
    }
    if (!spec_.sched_args.empty() && !spec_.uses_bpf_scheduler())
      return fail(at(*n, key_in("sched_args") + " needs a sched_ext scheduler, but the scheduler is 'eevdf'",
                     "set scheduler = \"scx-ktstr\" or a path to a scheduler binary"));
  }
  return {};
}

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

Status TestReader::read_map_writes(const toml::array& a) {
  const int64_t last_ms = spec_.duration_ms() - 1;
  for (size_t i = 0; i < a.size(); ++i) {
    std::string path = "bpf_map_write[" + std::to_string(i) + "]";
    auto t = table(*a.get(i), path);
    if (!t) return fail(t.error());
    if (auto s = check_keys(**t, kMapWriteKeys, path + " of " + label_); !s) return s;
    MapWrite w;
    auto map = required_str(**t, "map", path);
    if (!map) return fail(map.error());
    w.map = *map;
    auto var = required_str(**t, "var", path);
    if (!var) return fail(var.error());
    w.var = *var;
    auto value = (*t)->get("value");
    if (!value) return fail(at(**t, path + " of " + label_ + " has no 'value'"));
    auto v = integer(*value, path + ".value", INT64_MIN, INT64_MAX);
    if (!v) return fail(v.error());
    w.value = *v;
    if (auto n = (*t)->get("after_ms")) {
      auto ms = integer(*n, path + ".after_ms", 0, last_ms);
      if (!ms) return fail(ms.error());
      w.after_ms = static_cast<uint32_t>(*ms);
    }
    spec_.bpf_map_writes.push_back(std::move(w));
  }
  return {};
}

Status TestReader::read_expectations() {
  std::map<std::string, unsigned> lines;
  auto flag = [&](const char* key, bool& out) -> Status {
    if (auto n = tbl_.get(key)) {
      auto v = boolean(*n, key);
      if (!v) return fail(v.error());
      out = *v;
    }
    return {};
  };
  auto matcher = [&](const char* key, std::optional<std::string>& out) -> Status {
    if (auto n = tbl_.get(key)) {
      auto v = str(*n, key, true);  // emptiness is validate_matchers' call
      if (!v) return fail(v.error());
      out = *v;
      lines[key] = line_of(*n);
    }
    return {};
  };
  if (auto s = flag("expect_err", spec_.expect_err); !s) return s;
  if (auto s = flag("auto_repro", spec_.auto_repro); !s) return s;
  if (auto s = matcher("expect_scx_bpf_error_contains", spec_.expect_scx_bpf_error_contains); !s) return s;
  if (auto s = matcher("expect_scx_bpf_error_matches", spec_.expect_scx_bpf_error_matches); !s) return s;
  if (auto bad = check_matchers(spec_)) return fail(at(lines[bad->key], bad->error.msg, bad->error.hint));
  return {};
}

std::string parse_error_message(const std::string& file, const toml::parse_error& e) {
  auto pos = e.source().begin;
  return file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) +
         ": invalid TOML: " + std::string(e.description());
}

}  // namespace

Result<std::vector<TestSpec>> parse_spec_text(std::string_view text, const std::string& source_name) {
  toml::table doc;
  try {
    doc = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return fail(parse_error_message(source_name, e));
  }
  for (auto&& [k, v] : doc) {
    if (k.str() == "test") continue;
    return fail(Error(source_name + ":" + std::to_string(line_of(k)) + ": unknown top-level key '" +
                          std::string(k.str()) + "'",
                      "each test is a [[test]] table; put its keys below a [[test]] line"));
  }
  auto tests = doc.get("test");
  if (!tests)
    return fail("no tests in spec '" + source_name + "'", "add a [[test]] table with at least a name");
  auto arr = tests->as_array();
  if (!arr || !arr->is_array_of_tables())
    return fail(Error(source_name + ":" + std::to_string(line_of(*tests)) + ": 'test' must be an array of tables",
                      "write each test as [[test]], with double brackets"));
  std::vector<TestSpec> specs;
  std::map<std::string, unsigned> first_line;
  for (size_t i = 0; i < arr->size(); ++i) {
    auto spec = TestReader(source_name, *arr->get(i)->as_table(), i).read();
    if (!spec) return fail(spec.error());
    auto [it, fresh] = first_line.emplace(spec->name, spec->source_line);
    if (!fresh)
      return fail(Error(source_name + ":" + std::to_string(spec->source_line) + ": duplicate test name '" +
                            spec->name + "' (first defined at line " + std::to_string(it->second) + ")",
                        "test names must be unique within a file"));
    specs.push_back(std::move(*spec));
  }
  return specs;
}

Result<std::vector<TestSpec>> load_spec_file(const std::string& path) {
  auto text = read_file(path, kMaxSpecBytes);
  if (!text) {
    // read_file says "cannot read 'x': why"; say what was being read.
    std::string msg = text.error().msg;
    const std::string plain = "cannot read '";
    if (msg.rfind(plain, 0) == 0) msg = "cannot read spec '" + msg.substr(plain.size());
    return fail(Error(msg, text.error().hint));
  }
  return parse_spec_text(*text, path);
}

Result<std::vector<TestSpec>> load_spec_paths(const std::vector<std::string>& paths) {
  std::vector<TestSpec> out;
  for (auto& p : paths) {
    std::vector<std::string> files;
    std::error_code ec;
    if (std::filesystem::is_directory(p, ec)) {
      for (auto& e : std::filesystem::directory_iterator(p, ec))
        if (e.path().extension() == ".toml") files.push_back(e.path().string());
      std::sort(files.begin(), files.end());
      if (files.empty()) return fail("no test specs (*.toml) in '" + p + "'");
    } else {
      files.push_back(p);
    }
    for (auto& f : files) {
      auto specs = load_spec_file(f);
      if (!specs) return tl::unexpected(specs.error());
      out.insert(out.end(), specs->begin(), specs->end());
    }
  }
  return out;
}

}  // namespace ktstr
