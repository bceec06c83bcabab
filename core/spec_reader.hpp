// The reader of one [[test]] table, shared by the files that load specs:
// spec_reader.cpp (the primitives, the test's own keys, its scheduler,
// checks, map writes and expectations), spec_workload.cpp (cgroups, work
// settings, steps) and spec.cpp (files and directories). Internal to core/.
#pragma once

#include "core/spec.hpp"

#include <toml++/toml.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ktstr::spec_detail {

inline const std::vector<std::string> kTestKeys = {
    "name", "scheduler", "sched_args", "topology", "memory_mb", "duration_s", "scenario",
    "cgroups", "steps", "bpf_map_write", "expect_err", "expect_scx_bpf_error_contains",
    "expect_scx_bpf_error_matches", "auto_repro", "watchdog_timeout_s", "checks", "kernel"};
inline const std::vector<std::string> kCgroupKeys = {"name",       "workers",    "work",        "cpus",
                                                     "rate_hz",    "period_us",  "runtime_us",  "interval_us",
                                                     "nice",       "policy",     "weight"};
inline const std::vector<std::string> kStepKeys = {"after_ms", "action", "cgroup", "count", "to", "cpus", "cpu"};
inline const std::vector<std::string> kMapWriteKeys = {"map", "var", "value", "after_ms"};
inline const std::vector<std::string> kChecksKeys = {"not_starved",   "max_gap_ms",           "max_spread_pct",
                                                     "isolation",     "numa_local",           "max_imbalance",
                                                     "max_wakeup_latency_us", "max_weight_error_pct", "fail_on_stall"};
inline const std::vector<std::string> kBuiltinSchedulers = {"eevdf", "scx-ktstr"};

inline constexpr unsigned kMinMemoryMb = 64, kMaxMemoryMb = 65536;
inline constexpr double kMaxDurationS = 3600;
inline constexpr int64_t kMaxWorkers = 1024;
inline constexpr size_t kMaxSpecBytes = 4 << 20;

// "a string", "an integer", ... for type errors.
std::string a_type(const toml::node& n);
// "invalid topology 'x': why" -> "invalid topology 'x' in test 'y': why"
std::string placed(const std::string& msg, const std::string& subject, const std::string& where);
inline unsigned line_of(const toml::node& n) { return n.source().begin.line; }
inline unsigned line_of(const toml::key& k) { return k.source().begin.line; }

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
  Status read_checks();

  const std::string& file_;
  const toml::table& tbl_;
  size_t index_;
  std::string label_;
  TestSpec spec_;
};

}  // namespace ktstr::spec_detail
