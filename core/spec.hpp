// Test specs: the TOML files `ktstr test` runs and `ktstr pin` writes
// (DESIGN.md "Test specs"). A file holds several [[test]] tables; each becomes
// one TestSpec. Loading is strict: unknown keys, wrong types and bad values
// are errors naming file:line, so a typo never silently changes a test.
#pragma once

#include "core/result.hpp"
#include "core/topology.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// A host-side write into a scheduler's global (e.g. `.bss` `crash` = 1),
// done `after_ms` after the scheduler is attached.
struct MapWrite {
  std::string map;    // ".bss", ".data", or a named map
  std::string var;    // a variable in that map's BTF datasec
  int64_t value = 0;
  uint32_t after_ms = 0;

  bool operator==(const MapWrite&) const = default;
};

// The settings of a cgroup's work type and how its workers are scheduled.
// A rate or time of 0 means the work type's default (resolved by
// plan_scenario); each applies to one work type only (work_param_applies).
struct WorkParams {
  uint32_t rate_hz = 0;      // sleep: wakeups per second
  uint32_t period_us = 0;    // periodic: release period (= the deadline)
  uint32_t runtime_us = 0;   // periodic: CPU time to burn per period
  uint32_t interval_us = 0;  // affinity: time between two affinity changes
  int nice = 0;              // -20..19, any work type
  std::string policy = "normal";  // "normal", "batch" or "idle" (SCHED_OTHER/BATCH/IDLE)

  bool operator==(const WorkParams&) const = default;
};

// One explicit cgroup of workers (the alternative to a canned scenario).
struct CgroupSpec {
  std::string name;
  unsigned workers = 1;
  std::string work = "spin";  // one of work_kinds() (core/scenario.hpp)
  std::string cpus;           // cpulist ("0-3,6"); empty = all CPUs
  WorkParams params;
  unsigned weight = 100;      // cgroup v2 cpu.weight, 1..10000

  bool operator==(const CgroupSpec&) const = default;
};

// A change to the workload while it runs (man ktstr-test, STEPS). Each
// action uses some of the fields: add_workers/remove_workers `cgroup` and
// `count`; move_workers `cgroup`, `count` and `to`; set_cpus `cgroup` and
// `cpus`; cpu_offline/cpu_online `cpu` only.
struct StepSpec {
  uint32_t after_ms = 0;
  std::string action;  // one of step_actions() (core/scenario.hpp)
  std::string cgroup;
  unsigned count = 1;
  std::string to;      // move_workers: the cgroup the workers move into
  std::string cpus;    // set_cpus: the new cpuset cpulist
  int cpu = -1;        // cpu_offline / cpu_online: the CPU (never 0)

  bool operator==(const StepSpec&) const = default;
};

struct Checks {
  bool not_starved = false;              // every worker ran at least once
  std::optional<uint32_t> max_gap_ms;    // longest a worker may wait to run
  std::optional<uint32_t> max_spread_pct; // fastest - slowest worker of a cgroup, % of its mean rate
  bool isolation = false;                // workers stayed inside their cgroup's cpuset
  bool numa_local = false;               // no worker ran on CPUs of two NUMA nodes
  std::optional<uint32_t> max_imbalance; // runnable tasks between two CPUs in one monitor sample
  std::optional<uint32_t> max_wakeup_latency_us;  // p99 wakeup latency of each sleep/periodic worker
  // Points between a cgroup's share of the workers' CPU time and its share
  // of the cgroups' cpu.weight (both in %).
  std::optional<uint32_t> max_weight_error_pct;
  bool fail_on_stall = false;            // no CPU held runnable tasks without switching (checks.hpp)

  bool operator==(const Checks&) const = default;
};

struct TestSpec {
  static constexpr unsigned kDefaultMemoryMb = 256;
  static constexpr double kDefaultDurationS = 3;

  std::string name;
  std::string scheduler = "eevdf";       // "eevdf", "scx-ktstr" or a path (contains '/')
  std::vector<std::string> sched_args;
  Topology topology = {1, 1, 2, 1};      // "1n1l2c1t"
  unsigned memory_mb = kDefaultMemoryMb;
  double duration_s = kDefaultDurationS;
  std::string scenario = "steady";       // empty when `cgroups` is given
  std::vector<CgroupSpec> cgroups;
  std::vector<StepSpec> steps;
  std::vector<MapWrite> bpf_map_writes;  // key `bpf_map_write`
  bool expect_err = false;
  // Matchers on the captured scx_bpf_error text (AND when both are set).
  std::optional<std::string> expect_scx_bpf_error_contains;  // a substring
  std::optional<std::string> expect_scx_bpf_error_matches;   // a regex
  bool auto_repro = true;
  std::optional<unsigned> watchdog_timeout_s;
  Checks checks;
  std::string kernel;                    // empty = the default kernel

  // Where the test was defined, for messages; empty/0 when built in code.
  std::string source_file;
  unsigned source_line = 0;

  uint32_t duration_ms() const;
  bool uses_bpf_scheduler() const { return scheduler != "eevdf"; }
  // "file:line" or "test 'name'" when there is no file.
  std::string where() const;

  bool operator==(const TestSpec&) const = default;
};

// Every [[test]] of a file, in file order. Test names are unique in a file.
Result<std::vector<TestSpec>> load_spec_file(const std::string& path);
Result<std::vector<TestSpec>> parse_spec_text(std::string_view toml, const std::string& source_name);
// Spec files, a directory standing for its *.toml files (sorted by name):
// every test of each, in order. A directory without one is an error.
Result<std::vector<TestSpec>> load_spec_paths(const std::vector<std::string>& paths);

// Checks of the scx_bpf_error matchers that also apply to specs built in
// code (ktstr pin): a set matcher needs expect_err = true and must not be
// empty (an empty pattern matches any text, so it would pin nothing).
// A regex must also compile and must not match the empty string, so a bad
// pattern fails at load time, not after a VM run.
Status validate_matchers(const TestSpec& spec);

// One [[test]] table in exactly the format the parser reads; defaults that
// the DESIGN.md example leaves out are left out. Regexes and other strings
// with backslashes are written as TOML literal strings ('...') when they can.
std::string spec_to_toml(const TestSpec& spec);
// Several tests, separated by blank lines.
std::string specs_to_toml(const std::vector<TestSpec>& specs);

// Every field, defaults included, plus "source": {"file", "line"}.
nlohmann::json spec_to_json(const TestSpec& spec);

// Valid test and cgroup names: [A-Za-z0-9_.-]+.
bool is_valid_test_name(std::string_view name);

// A "did you mean 'x'?" hint naming the entries of `valid` closest to `got`
// by edit distance (at most 2, or a third of the word); empty when none is.
std::string suggest_close(std::string_view got, const std::vector<std::string>& valid);
// "'a', 'b', 'c'"
std::string join_quoted(const std::vector<std::string>& words);

namespace spec_detail {

// A matcher problem and the key it is about, so the parser can point at the
// key's line while validate_matchers() points at the test's.
struct MatcherIssue {
  std::string key;
  Error error;
};
std::optional<MatcherIssue> check_matchers(const TestSpec& spec);

// Shortest text that reads back as the same double ("5", "2.5", "0.001").
std::string toml_number(double d);

}  // namespace spec_detail

}  // namespace ktstr
