// What one test run produced, assembled on the host from the guest's stream
// and the VM's outcome. Rendered by report.hpp, stored as JSON in the runs
// table, printed by --json.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct WorkerStats {
  std::string cgroup;
  unsigned index = 0;
  std::string work;            // spin | yield | mixed
  uint64_t iterations = 0;
  uint64_t cpu_time_ns = 0;
  uint64_t wall_ns = 0;
  uint64_t migrations = 0;
  uint64_t max_gap_ns = 0;     // longest time off-CPU between two iterations
  std::vector<int> cpus_used;
};

// The topology as the guest kernel reports it (sysfs cpulists).
struct GuestTopology {
  unsigned cpus = 0;
  std::vector<std::string> llc_groups;
  std::vector<std::string> numa_nodes;
  std::vector<std::string> smt_groups;
};

struct RunResult {
  std::string test_name;
  std::string scheduler = "eevdf";
  std::string topology;
  std::string scenario;
  std::string kernel_id;
  std::string kernel_version;
  std::string accel;             // "kvm" or "tcg"
  unsigned memory_mb = 0;

  bool passed = false;
  std::string reason;            // why it failed; empty on pass
  double fail_at_s = -1;         // seconds into the test when it failed, < 0 unknown

  std::string stage;             // last guest stage reached
  std::string vm_end;            // powered_off, panicked, watchdog_no_output, ...
  int vm_exit_code = 0;
  double wall_s = 0;             // whole run, host side
  double boot_s = 0;             // QEMU start to the agent's first frame

  std::vector<WorkerStats> workers;
  std::optional<GuestTopology> guest_topology;
  std::string console_tail;
  std::vector<std::string> diagnostics;  // decoder complaints, agent errors

  int64_t run_id = 0;
};

nlohmann::json to_json(const RunResult& r);

}  // namespace ktstr
