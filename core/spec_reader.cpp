// Reading one [[test]] table (spec_reader.hpp): the primitives that give
// every message its "file:line:" from toml++'s source regions (the key's line
// for an unknown key, the value's line for a bad value), the test's own keys,
// its scheduler, checks, map writes and expectations.
#include "core/spec_reader.hpp"

#include <algorithm>
#include <map>

namespace ktstr::spec_detail {

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

std::string placed(const std::string& msg, const std::string& subject, const std::string& where) {
  if (msg.rfind(subject, 0) != 0) return msg + " (" + where + ")";
  return subject + " in " + where + msg.substr(subject.size());
}

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
  if (auto s = read_checks(); !s) return fail(s.error());
  if (auto n = tbl_.get("kernel")) {
    auto v = str(*n, "kernel");
    if (!v) return fail(v.error());
    spec_.kernel = *v;
  }
  return spec_;
}

// The checks table: each key's type and range (core/checks.hpp judges them).
Status TestReader::read_checks() {
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
  return {};
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

}  // namespace ktstr::spec_detail
