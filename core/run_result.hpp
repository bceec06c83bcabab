// What one test run produced, assembled on the host from the guest's stream
// and the VM's outcome. Rendered by report.hpp, stored as JSON in the runs
// table, printed by --json.
#pragma once

#include "core/repro.hpp"
#include "core/sched_exit.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct WorkerStats {
  std::string cgroup;
  unsigned index = 0;
  std::string work;            // one of work_kinds() (core/scenario.hpp)
  uint64_t iterations = 0;
  uint64_t cpu_time_ns = 0;
  uint64_t wall_ns = 0;
  uint64_t migrations = 0;
  uint64_t max_gap_ns = 0;     // longest time off-CPU between two iterations
  std::vector<int> cpus_used;
  // What the work type counts, by name (man ktstr-test, WORK TYPES):
  // wakeups, wake_latency_{p50,p99,max}_ns, round_trips, forks,
  // page_faults, periods, missed_deadlines, affinity_changes. Empty for
  // spin, yield and mixed.
  std::map<std::string, uint64_t> counters;
  // Steps (JOB version 5): the cgroup a move_workers step put it in (empty:
  // none); whether a step changed its cpuset (set_cpus on its cgroup, or a
  // move), and then the CPUs it used after the last such change.
  std::string moved_to;
  bool cpus_changed = false;
  std::vector<int> cpus_since_change;
};

// One failed workload check (core/checks.hpp): which one, and a message
// naming the cgroup or worker and the measured number.
struct CheckFailure {
  std::string check;    // "not_starved", "max_gap_ms", "max_spread_pct", ...
  std::string message;
  double t_s = -1;      // seconds into the test when known, else < 0
};

// One executed step of the scenario (spec `steps`), as the agent did it.
struct StepEvent {
  double t_s = 0;                // when it happened, seconds into the test
  unsigned index = 0;            // in the plan (time order)
  uint32_t after_ms = 0;         // when it was due
  std::string action;            // add_workers, remove_workers, move_workers, set_cpus, cpu_offline, cpu_online
  std::string cgroup, to, cpus;  // as the action uses them
  unsigned count = 0;
  int cpu = -1;
  bool ok = false;
  std::string detail;            // what it did
  std::string error;             // why it did not (e.g. the kernel refused the hotplug)
};

// The topology as the guest kernel reports it (sysfs cpulists).
struct GuestTopology {
  unsigned cpus = 0;
  std::vector<std::string> llc_groups;
  std::vector<std::string> numa_nodes;
  std::vector<std::string> smt_groups;
};

// Times below are seconds into the test: 0 is when the workload started
// (right after the scheduler attached); negative is before.
struct SchedStateChange {
  double t_s = 0;
  std::string state;             // /sys/kernel/sched_ext/state: enabled, disabling, disabled, ...
};

struct MapWriteEvent {
  double t_s = 0;
  std::string map;               // as asked (".bss")
  std::string var;
  int64_t value = 0;
  bool ok = false;
  std::string resolved_map;      // the map actually written ("scx_ktst.bss")
  std::string error;             // why it failed
};

// One sample of the in-guest monitor.
struct MonitorSample {
  double t_s = 0;
  std::vector<unsigned> nr_running;              // per CPU
  std::vector<uint64_t> nr_switches;             // per CPU, cumulative; empty when not read
  std::vector<std::pair<std::string, int64_t>> events;  // sched_ext event counters, cumulative
  int64_t dsq_depth = -1;                         // tasks queued in DSQs, -1 unknown
  std::string sched_state;                        // sched_ext state at the sample
};

struct SchedulerRun {
  std::string name;              // "scx-ktstr" or the binary path
  std::vector<std::string> args;
  bool started = false;
  bool attached = false;         // /sys/kernel/sched_ext/state reached "enabled"
  double attach_s = -1;          // seconds from start to enabled
  // Seconds into the test (like the times below) when the process started
  // and when sched_ext first read "enabled"; the workload starts at 0 once
  // the agent gets to start it, which a scheduler starving the agent delays.
  std::optional<double> started_t_s;
  std::optional<double> attached_t_s;
  bool workload_started = false; // the agent started the workers (stage workers_started)
  bool exited = false;           // the scheduler process ended
  int exit_code = -1;            // its exit status, when it exited
  int signal = 0;                // the signal that killed it, 0 if none
  double exit_t_s = 0;           // when it ended (seconds into test)
  bool stopped_by_ktstr = false; // the agent stopped it at the end of the run
  std::string log;               // stdout + stderr in arrival order (bounded)
  bool log_truncated = false;
  std::vector<SchedStateChange> states;
  std::vector<MapWriteEvent> map_writes;
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
  bool restored = false;         // the VM was restored from a snapshot, not booted (boot_s: the restore)
  // `--repeat N`: which repetition (1-based; 0 = not a repeat run), in which
  // VM of the run (1-based) and which repetition within that VM. wall_s is
  // then the repetition's own time (guest clock), boot_s the VM's boot for
  // a VM's first repetition and 0 for the others.
  unsigned repetition = 0;
  unsigned repeat_vm = 0;
  unsigned vm_repetition = 0;
  // The seed the scheduler got as KTSTR_SEED (core/seed.hpp); absent when
  // none was sent (a run recorded before seeds existed).
  std::optional<uint64_t> seed;

  // Guest milestones in seconds into the test (0 = workers_started): each
  // stage, and "probe_setup" on repro runs. For time breakdowns.
  std::vector<std::pair<std::string, double>> stage_t_s;

  std::vector<WorkerStats> workers;
  std::vector<StepEvent> steps;  // the spec's steps as executed, in time order
  std::optional<GuestTopology> guest_topology;
  std::string console_tail;
  std::vector<std::string> diagnostics;  // decoder complaints, agent errors

  int64_t run_id = 0;

  // sched_ext (absent for EEVDF runs)
  std::optional<SchedulerRun> sched;
  std::string sched_ext_dump;    // the kernel's dump as traced (sched_ext_dump lines), bounded
  std::string dmesg;             // guest kernel log lines captured during the run, bounded
  std::vector<MonitorSample> monitor;
  std::optional<SchedExit> exit; // parsed when the scheduler died
  std::string verifier_log;      // collapsed, when the scheduler failed to load
  std::string crash_id;          // set once the crash is recorded
  bool expected_failure = false; // expect_err = true and the scheduler failed as expected
  std::string failure_kind;      // "", "scheduler_died", "stall", "attach_failed", "verifier", "vm", "check"
  // failure_kind "check": which one ("max_gap_ms", "not_starved", "topology",
  // "workers", "expect_err", ...), for the gauntlet's grid; empty otherwise.
  std::string failed_check;
  // Every workload check that failed, in run_checks' order (failed_check is
  // the first); the reason lists them all.
  std::vector<CheckFailure> check_failures;

  // Auto-repro: the guest's crash-probe payloads (null unless probes ran)
  // and, on the crashed run, the repro's outcome.
  nlohmann::json probe_setup;
  nlohmann::json probe_events;
  std::optional<ReproResult> repro;
};

nlohmann::json to_json(const RunResult& r);

}  // namespace ktstr
