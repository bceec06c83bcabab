// The TestSpec model outside of loading: its members, the checks shared by
// the loader and by specs built in code (ktstr pin), the "did you mean"
// helper, and writing specs back out: the TOML that `ktstr pin` emits (the
// format of DESIGN.md's example, read back unchanged by parse_spec_text) and
// JSON for --json output.
#include "core/spec.hpp"

#include "core/matcher.hpp"
#include "core/scenario.hpp"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

namespace ktstr {
namespace {

// toml++ does the escaping. A string with a backslash (a regex, mostly) is
// written as a literal '...' when it can be, so it reads as typed; other
// strings are basic "..." strings as in DESIGN.md's example.
std::string toml_string(const std::string& s) {
  auto flags = toml::format_flags::allow_unicode_strings;
  // toml++ 3.3 would put a raw line break into a one-line literal string, so
  // any control character rules the literal form out here.
  bool controls = std::any_of(s.begin(), s.end(), [](char c) { return (c >= 0 && c < 0x20) || c == 0x7f; });
  if (s.find('\\') != std::string::npos && !controls) flags |= toml::format_flags::allow_literal_strings;
  std::ostringstream out;
  out << toml::toml_formatter(toml::value<std::string>(s), flags);
  return out.str();
}

std::string toml_string_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + toml_string(items[i]);
  return out + "]";
}

// An array of inline tables: one line for one entry, one line per entry
// otherwise (TOML allows the trailing comma).
std::string inline_table_array(const std::vector<std::string>& tables) {
  if (tables.size() == 1) return "[" + tables[0] + "]";
  std::string out = "[\n";
  for (auto& t : tables) out += "  " + t + ",\n";
  return out + "]";
}

std::string inline_table(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out = "{ ";
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? ", " : "") + fields[i].first + " = " + fields[i].second;
  return out + " }";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

nlohmann::json optional_json(const std::optional<std::string>& s) {
  return s ? nlohmann::json(*s) : nlohmann::json(nullptr);
}

}  // namespace

bool is_valid_test_name(std::string_view name) {
  if (name.empty()) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

uint32_t TestSpec::duration_ms() const { return static_cast<uint32_t>(std::llround(duration_s * 1000)); }

std::string TestSpec::where() const {
  if (source_file.empty()) return "test '" + name + "'";
  return source_file + ":" + std::to_string(source_line);
}

std::optional<spec_detail::MatcherIssue> spec_detail::check_matchers(const TestSpec& spec) {
  const std::string label = "test '" + spec.name + "'";
  const std::pair<const char*, const std::optional<std::string>*> matchers[] = {
      {"expect_scx_bpf_error_contains", &spec.expect_scx_bpf_error_contains},
      {"expect_scx_bpf_error_matches", &spec.expect_scx_bpf_error_matches}};
  for (auto& [key, value] : matchers) {
    if (!value->has_value()) continue;
    if ((*value)->empty())
      return spec_detail::MatcherIssue{key, Error("'" + std::string(key) + "' in " + label + " must not be empty",
                                     "an empty matcher matches every error; remove it or pin a fragment")};
    if (!spec.expect_err)
      return spec_detail::MatcherIssue{key, Error("'" + std::string(key) + "' in " + label + " requires expect_err = true",
                                     "add 'expect_err = true' to the test, or remove the matcher")};
    // The regex compiles and cannot match "" (core/matcher.hpp), so a bad
    // pattern fails at load time, not after a VM run.
    auto valid = value == &spec.expect_scx_bpf_error_matches ? validate_match_regex(**value)
                                                             : validate_contains_literal(**value);
    if (!valid) return spec_detail::MatcherIssue{key, valid.error().context("'" + std::string(key) + "' in " + label)};
  }
  return std::nullopt;
}

Status validate_matchers(const TestSpec& spec) {
  if (auto bad = spec_detail::check_matchers(spec)) {
    if (spec.source_file.empty()) return fail(bad->error);
    return fail(Error(spec.where() + ": " + bad->error.msg, bad->error.hint));
  }
  return {};
}

std::string spec_detail::toml_number(double d) {
  if (d == std::floor(d) && std::abs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string s(buf, end);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";  // keep it a float
  return s;
}

std::string suggest_close(std::string_view got, const std::vector<std::string>& valid) {
  const size_t limit = std::max<size_t>(2, got.size() / 3);
  size_t best = limit + 1;
  std::vector<std::string> close;
  for (auto& v : valid) {
    size_t d = edit_distance(got, v);
    if (d > limit || d > best) continue;
    if (d < best) close.clear(), best = d;
    close.push_back(v);
  }
  if (close.empty()) return {};
  if (close.size() == 1) return "did you mean '" + close[0] + "'?";
  return "did you mean one of " + join_quoted(close) + "?";
}

std::string join_quoted(const std::vector<std::string>& words) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? ", '" : "'") + words[i] + "'";
  return out;
}

std::string spec_to_toml(const TestSpec& spec) {
  using spec_detail::toml_number;
  std::string out = "[[test]]\n";
  auto line = [&](const std::string& key, const std::string& value) { out += key + " = " + value + "\n"; };
  line("name", toml_string(spec.name));
  line("scheduler", toml_string(spec.scheduler));
  if (!spec.sched_args.empty()) line("sched_args", toml_string_array(spec.sched_args));
  line("topology", toml_string(spec.topology.to_string()));
  if (spec.memory_mb != TestSpec::kDefaultMemoryMb) line("memory_mb", std::to_string(spec.memory_mb));
  if (!spec.cgroups.empty()) {
    std::vector<std::string> tables;
    for (auto& cg : spec.cgroups) {
      std::vector<std::pair<std::string, std::string>> f = {
          {"name", toml_string(cg.name)}, {"workers", std::to_string(cg.workers)}, {"work", toml_string(cg.work)}};
      if (!cg.cpus.empty()) f.emplace_back("cpus", toml_string(cg.cpus));
      const WorkParams& p = cg.params;
      for (auto [key, value] : {std::pair{"rate_hz", p.rate_hz}, std::pair{"period_us", p.period_us},
                                std::pair{"runtime_us", p.runtime_us}, std::pair{"interval_us", p.interval_us}})
        if (value) f.emplace_back(key, std::to_string(value));
      if (p.nice) f.emplace_back("nice", std::to_string(p.nice));
      if (p.policy != "normal") f.emplace_back("policy", toml_string(p.policy));
      if (cg.weight != 100) f.emplace_back("weight", std::to_string(cg.weight));
      tables.push_back(inline_table(f));
    }
    line("cgroups", inline_table_array(tables));
  } else {
    line("scenario", toml_string(spec.scenario.empty() ? "steady" : spec.scenario));
  }
  line("duration_s", toml_number(spec.duration_s));
  if (!spec.steps.empty()) {
    std::vector<std::string> tables;
    for (auto& s : spec.steps) {
      std::vector<std::pair<std::string, std::string>> f = {{"after_ms", std::to_string(s.after_ms)},
                                                            {"action", toml_string(s.action)}};
      for (const std::string& key : step_action_keys(s.action)) {
        if (key == "cgroup") f.emplace_back(key, toml_string(s.cgroup));
        if (key == "count") f.emplace_back(key, std::to_string(s.count));
        if (key == "to") f.emplace_back(key, toml_string(s.to));
        if (key == "cpus") f.emplace_back(key, toml_string(s.cpus));
        if (key == "cpu") f.emplace_back(key, std::to_string(s.cpu));
      }
      tables.push_back(inline_table(f));
    }
    line("steps", inline_table_array(tables));
  }
  if (!spec.bpf_map_writes.empty()) {
    std::vector<std::string> tables;
    for (auto& w : spec.bpf_map_writes)
      tables.push_back(inline_table({{"map", toml_string(w.map)},
                                     {"var", toml_string(w.var)},
                                     {"value", std::to_string(w.value)},
                                     {"after_ms", std::to_string(w.after_ms)}}));
    line("bpf_map_write", inline_table_array(tables));
  }
  if (spec.expect_err) line("expect_err", "true");
  if (spec.expect_scx_bpf_error_contains)
    line("expect_scx_bpf_error_contains", toml_string(*spec.expect_scx_bpf_error_contains));
  if (spec.expect_scx_bpf_error_matches)
    line("expect_scx_bpf_error_matches", toml_string(*spec.expect_scx_bpf_error_matches));
  if (!spec.auto_repro) line("auto_repro", "false");
  if (spec.watchdog_timeout_s) line("watchdog_timeout_s", std::to_string(*spec.watchdog_timeout_s));
  if (spec.checks != Checks{}) {
    std::vector<std::pair<std::string, std::string>> f;
    if (spec.checks.not_starved) f.emplace_back("not_starved", "true");
    if (spec.checks.max_gap_ms) f.emplace_back("max_gap_ms", std::to_string(*spec.checks.max_gap_ms));
    if (spec.checks.max_spread_pct) f.emplace_back("max_spread_pct", std::to_string(*spec.checks.max_spread_pct));
    if (spec.checks.isolation) f.emplace_back("isolation", "true");
    if (spec.checks.numa_local) f.emplace_back("numa_local", "true");
    if (spec.checks.max_imbalance) f.emplace_back("max_imbalance", std::to_string(*spec.checks.max_imbalance));
    if (spec.checks.max_wakeup_latency_us)
      f.emplace_back("max_wakeup_latency_us", std::to_string(*spec.checks.max_wakeup_latency_us));
    if (spec.checks.max_weight_error_pct)
      f.emplace_back("max_weight_error_pct", std::to_string(*spec.checks.max_weight_error_pct));
    if (spec.checks.fail_on_stall) f.emplace_back("fail_on_stall", "true");
    line("checks", inline_table(f));
  }
  if (!spec.kernel.empty()) line("kernel", toml_string(spec.kernel));
  return out;
}

std::string specs_to_toml(const std::vector<TestSpec>& specs) {
  std::string out;
  for (size_t i = 0; i < specs.size(); ++i) out += (i ? "\n" : "") + spec_to_toml(specs[i]);
  return out;
}

nlohmann::json spec_to_json(const TestSpec& spec) {
  using nlohmann::json;
  json cgroups = json::array();
  for (auto& cg : spec.cgroups)
    cgroups.push_back({{"name", cg.name},
                       {"workers", cg.workers},
                       {"work", cg.work},
                       {"cpus", cg.cpus},
                       {"rate_hz", cg.params.rate_hz},
                       {"period_us", cg.params.period_us},
                       {"runtime_us", cg.params.runtime_us},
                       {"interval_us", cg.params.interval_us},
                       {"nice", cg.params.nice},
                       {"policy", cg.params.policy},
                       {"weight", cg.weight}});
  json steps = json::array();
  for (auto& s : spec.steps)
    steps.push_back(step_plan_json(StepPlan{s.after_ms, s.action, s.cgroup, s.count, s.to, s.cpus, s.cpu}));
  json writes = json::array();
  for (auto& w : spec.bpf_map_writes)
    writes.push_back({{"map", w.map}, {"var", w.var}, {"value", w.value}, {"after_ms", w.after_ms}});
  return {
      {"name", spec.name},
      {"scheduler", spec.scheduler},
      {"sched_args", spec.sched_args},
      {"topology", spec.topology.to_string()},
      {"cpus", spec.topology.cpus()},
      {"memory_mb", spec.memory_mb},
      {"duration_s", spec.duration_s},
      {"scenario", spec.cgroups.empty() ? json(spec.scenario) : json(nullptr)},
      {"cgroups", cgroups},
      {"steps", steps},
      {"bpf_map_write", writes},
      {"expect_err", spec.expect_err},
      {"expect_scx_bpf_error_contains", optional_json(spec.expect_scx_bpf_error_contains)},
      {"expect_scx_bpf_error_matches", optional_json(spec.expect_scx_bpf_error_matches)},
      {"auto_repro", spec.auto_repro},
      {"watchdog_timeout_s", spec.watchdog_timeout_s ? json(*spec.watchdog_timeout_s) : json(nullptr)},
      {"checks", {{"not_starved", spec.checks.not_starved},
                  {"max_gap_ms", spec.checks.max_gap_ms ? json(*spec.checks.max_gap_ms) : json(nullptr)},
                  {"max_spread_pct", spec.checks.max_spread_pct ? json(*spec.checks.max_spread_pct) : json(nullptr)},
                  {"isolation", spec.checks.isolation},
                  {"numa_local", spec.checks.numa_local},
                  {"max_imbalance", spec.checks.max_imbalance ? json(*spec.checks.max_imbalance) : json(nullptr)},
                  {"max_wakeup_latency_us",
                   spec.checks.max_wakeup_latency_us ? json(*spec.checks.max_wakeup_latency_us) : json(nullptr)},
                  {"max_weight_error_pct",
                   spec.checks.max_weight_error_pct ? json(*spec.checks.max_weight_error_pct) : json(nullptr)},
                  {"fail_on_stall", spec.checks.fail_on_stall}}},
      {"kernel", spec.kernel.empty() ? json(nullptr) : json(spec.kernel)},
      {"source", {{"file", spec.source_file}, {"line", spec.source_line}}},
  };
}

}  // namespace ktstr
