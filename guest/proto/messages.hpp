// Payloads of the frames in frame.hpp: one struct per MsgType, carried as
// JSON (nlohmann to_json/from_json). To add a message: a MsgType value, a
// struct with `static constexpr MsgType kType`, to_json/from_json in
// messages.cpp; encode_message()/decode_payload() then work for it.
#pragma once

#include "core/result.hpp"
#include "guest/proto/frame.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::proto {

inline constexpr const char* kAgentVersion = "0.1.0";

// Kernel command line parameter: "=1" asks the agent to load the crash
// probes' kernel-side object before it waits for its job. The host sets it
// on VMs that may be snapshotted, which then carry it loaded into every
// restore (an auto-repro skips that load); the trigger it loads for.
inline constexpr const char* kPreloadProbesParam = "ktstr.preload_probes";
inline constexpr const char* kPreloadTriggerTracepoint = "sched_ext_exit";

// Progress markers, in the order the agent reaches them.
namespace stage {
inline constexpr const char* kInit = "init";
inline constexpr const char* kMounted = "mounted";
inline constexpr const char* kJobReceived = "job_received";
inline constexpr const char* kWorkersStarted = "workers_started";
inline constexpr const char* kWorkersDone = "workers_done";
inline constexpr const char* kPoweroff = "poweroff";
}  // namespace stage

// "spin", "yield", "mixed" (any job version); the rest need JOB version 3.
enum class WorkKind : uint8_t { Spin, Yield, Mixed, Sleep, Futex, Pipe, Fork, Fault, Periodic, Affinity };
const char* work_kind_name(WorkKind kind);
// Parses a work kind name; false for an unknown one.
bool parse_work_kind(const std::string& name, WorkKind& out);

struct HelloMsg {
  static constexpr MsgType kType = MsgType::Hello;
  std::string agent_version;
  std::string kernel_release;
  uint64_t boot_ms = 0;  // CLOCK_BOOTTIME when the agent started
};

struct CgroupPlan {
  std::string name;      // directory under /sys/fs/cgroup/ktstr/
  uint32_t workers = 1;
  WorkKind work = WorkKind::Spin;
  std::string cpus;      // cpuset cpulist ("0-1"); empty: no restriction
  // JOB version 3: the work type's settings (resolved by the host, 0 where
  // the kind has none) and the workers' scheduling. On the wire only when
  // they differ from these defaults, so older jobs read the same.
  uint32_t rate_hz = 0;      // sleep
  uint32_t period_us = 0;    // periodic
  uint32_t runtime_us = 0;   // periodic
  uint32_t interval_us = 0;  // affinity
  int32_t nice = 0;
  std::string policy = "normal";  // "normal", "batch", "idle"
  // JOB version 5: cgroup v2 cpu.weight (1-10000); on the wire only when
  // not 100.
  uint32_t weight = 100;
};

// JOB version 5: a change to the workload `after_ms` after the workers
// started. Each action uses some fields (core/scenario.hpp step_action_keys):
// add_workers/remove_workers {cgroup, count}, move_workers {cgroup, count,
// to}, set_cpus {cgroup, cpus}, cpu_offline/cpu_online {cpu}.
struct StepPlan {
  uint64_t after_ms = 0;
  std::string action;
  std::string cgroup;
  uint32_t count = 0;
  std::string to;
  std::string cpus;
  int32_t cpu = -1;
};

struct Scenario {
  std::vector<CgroupPlan> cgroups;
  uint64_t duration_ms = 0;
  std::vector<StepPlan> steps;  // version 5, sorted by after_ms; on the wire only when not empty
};

// The sched_ext scheduler to run; an empty path means none (EEVDF).
struct SchedulerPlan {
  std::string path;                 // inside the guest, e.g. "/bin/scx-ktstr"
  std::vector<std::string> args;    // argv[1..]
  uint32_t attach_timeout_ms = 30000;
};

// A write into a loaded scheduler's global, `after_ms` after it attached.
struct MapWritePlan {
  std::string map;  // map name suffix: ".bss", ".data", "scx_ktst.bss"
  std::string var;
  int64_t value = 0;
  uint64_t after_ms = 0;
};

// Crash probes for an auto-repro run (docs: the probe interface). Arg kinds
// per kernel function come from the host's BTF: "task", "rq", "dsq",
// "exit_info", "scalar", "none"; at most kMaxProbeArgs.
struct ProbeFunction {
  std::string name;
  std::vector<std::string> args;
};

struct ProbeTrigger {
  std::string tracepoint = "sched_ext_exit";  // tp_btf, tried first; "" = none
  std::string fallback_kprobe;                // when the tracepoint cannot attach; "" = none
};

struct ProbePlan {
  std::vector<ProbeFunction> kernel_functions;
  std::vector<std::string> bpf_programs;  // struct_ops program names; empty = all of them
  ProbeTrigger trigger;
  uint32_t history_per_task = 64;
  uint32_t max_events = 4096;
  // Attach the kernel probes while the scheduler loads instead of before it
  // starts (the workload still waits for them). The host asks for it when
  // the crash came after the workload started, so nothing of the crash
  // chain is missed and the replay costs no more than the crashed run. On
  // the wire only when true.
  bool kernel_probes_parallel = false;
  // Start the workload as soon as the scheduler is enabled and finish
  // attaching meanwhile (implies kernel_probes_parallel). The host asks for
  // it when the crash came well into the workload: the probes are set long
  // before it and the replay keeps the crashed run's pace. On the wire only
  // when true.
  bool probes_during_workload = false;
  // Argument kinds of each sched_ext_ops member (its name and the kinds of
  // its callback's parameters), from the kernel's BTF on the host: a
  // struct_ops program "<prefix>_<member>" whose own BTF lost its inner
  // function gets them here rather than from a parse of the guest's
  // vmlinux BTF. On the wire only when not empty.
  std::vector<ProbeFunction> ops_args;
};

// A verifier job (JOB version 4, `ktstr verifier`): load every program of
// each BPF object with log_level BPF_LOG_STATS, attach nothing, and send one
// VERIFIER_RESULT per object. No workers, no scheduler process.
struct VerifierPlan {
  std::vector<std::string> objects;  // .bpf.o paths inside the guest
};

// What a JOB asks of the agent. A run: workers, with or without a
// scheduler, once or `repeat` times in one boot; a probe replay (auto-repro)
// is a run with `probes`. A verifier job: load BPF objects, run nothing.
enum class JobKind : uint8_t { kRun, kVerifier };
const char* job_kind_name(JobKind kind);  // "run", "verifier": the wire form
// Parses a job kind name; false for an unknown one.
bool parse_job_kind(const std::string& name, JobKind& out);
// The kind of a JOB without `kind` (a host older than the field), from what
// its version meant then: 4 is a verifier job, every other version a run.
JobKind job_kind_of_version(uint32_t version);

struct JobMsg {
  static constexpr MsgType kType = MsgType::Job;
  // What the agent does (always on the wire from this host; derived from
  // `version` when absent). The version is the format: which fields the job
  // may use, and what an older agent, which knows only the version, reads
  // it as. The host keeps sending the version older agents expect of that
  // kind, so a job never means something else to them.
  JobKind kind = JobKind::kRun;
  // 1: one run, then DONE and power off. 2: `repeat` runs in this boot, each
  // framed by REPEAT_BEGIN/REPEAT_END (an agent that only knows 1 refuses 2).
  // 3: work types (below). 4: a verifier job (`verifier` set, nothing else
  // runs); an older agent refuses it rather than run an empty workload.
  // 5: steps and weights (below).
  uint32_t version = 1;
  // Version 2: how many repetitions, and how long after each one the
  // sched_ext state may take to read "disabled" again before the agent
  // gives up on this VM (REPEAT_END next=false).
  uint32_t repeat = 1;
  uint32_t settle_ms = 5000;
  Scenario scenario;
  bool verbose = false;
  std::string topology;  // informational, e.g. "1n2l2c1t"
  SchedulerPlan scheduler;
  std::vector<MapWritePlan> map_writes;
  uint32_t monitor_interval_ms = 250;
  std::optional<ProbePlan> probes;  // absent: no probes
  std::optional<VerifierPlan> verifier;  // version 4 only
  // The booted kernel's .config, which the agent puts at
  // /boot/config-<uname -r> before the scheduler starts, where libbpf looks
  // for the values of `__kconfig` externs. Empty: none (the guest has no
  // /boot/config-* and, unless the kernel has /proc/config.gz, a scheduler
  // using __kconfig fails to load).
  std::string kernel_config;
  // The run's seed (core/seed.hpp), which the scheduler gets as KTSTR_SEED;
  // repetition i (1-based) of a repeat job gets seed_at(seed, i - 1). Any
  // job version but the verifier's; on the wire only when set, so a job
  // without one reads as before (an agent that ignores it runs the scheduler
  // unseeded, which is what such a job asks for).
  std::optional<uint64_t> seed;
};

// JOB version 3 adds the work kinds past "mixed" and the CgroupPlan settings;
// repetition then follows `repeat` (> 1) instead of the version.
inline constexpr uint32_t kJobVersionWorkTypes = 3;
// JOB version 4 is a verifier job (`verifier` set, nothing else runs).
inline constexpr uint32_t kJobVersionVerifier = 4;
// JOB version 5 is a version 3 job that may carry `scenario.steps` and
// cgroup `weight`s; the host sends it only for a job that uses them.
inline constexpr uint32_t kJobVersionSteps = 5;
inline constexpr size_t kMaxSteps = 256;
// Whether the job needs version 3 (a new work kind or a setting).
bool job_needs_work_types(const JobMsg& job);
// Whether the job needs version 5 (steps, or a weight other than 100).
bool job_needs_steps(const JobMsg& job);
Status validate_steps(const Scenario& scenario);
// Whether the agent runs the job as repetitions (REPEAT_BEGIN/END frames):
// a run of version 2, or of version 3 or 5 with `repeat` > 1.
bool is_repeat_job(const JobMsg& job);

// Limits a job must respect; the agent refuses anything else.
inline constexpr uint32_t kMaxWorkersPerJob = 1024;
inline constexpr uint64_t kMaxDurationMs = 3600 * 1000;
inline constexpr uint32_t kMaxRepeat = 1000;
inline constexpr uint32_t kMaxSettleMs = 60000;
inline constexpr size_t kMaxMapWrites = 64;
inline constexpr size_t kMaxSchedArgs = 256;
inline constexpr size_t kMaxProbeFunctions = 255;
inline constexpr size_t kMaxProbePrograms = 128;
inline constexpr size_t kMaxProbeArgs = 6;
inline constexpr size_t kMaxProbeNameLen = 128;
inline constexpr uint32_t kMaxProbeHistoryPerTask = 4096;
inline constexpr uint32_t kMaxProbeEvents = 65536;
// A JOB frame's payload is at most 1 MiB: leave room for the rest.
inline constexpr size_t kMaxKernelConfigBytes = 768u << 10;
inline constexpr size_t kMaxVerifierObjects = 16;
Status validate_job(const JobMsg& job);
Status validate_probe_plan(const ProbePlan& plan);

struct StageMsg {
  static constexpr MsgType kType = MsgType::Stage;
  std::string stage;  // one of stage::k*
  uint64_t t_ms = 0;  // CLOCK_BOOTTIME
};

struct TopologyMsg {
  static constexpr MsgType kType = MsgType::Topology;
  std::string cpus_online;              // /sys/devices/system/cpu/online
  uint32_t cpus = 0;                    // number of online CPUs
  std::vector<std::string> llc_groups;  // unique shared_cpu_list of index3, by first CPU
  std::vector<std::string> numa_nodes;  // node*/cpulist, by node id
  std::vector<std::string> smt_groups;  // unique thread_siblings_list, by first CPU
};

struct WorkerMsg {
  static constexpr MsgType kType = MsgType::Worker;
  std::string cgroup;
  uint32_t index = 0;  // within its cgroup
  int32_t pid = 0;
  WorkKind work = WorkKind::Spin;
  uint64_t iterations = 0;
  uint64_t cpu_time_ns = 0;
  uint64_t wall_ns = 0;
  uint64_t migrations = 0;  // times sched_getcpu() changed between iterations
  uint64_t max_gap_ns = 0;  // longest CLOCK_MONOTONIC gap between iterations
  std::vector<uint32_t> cpus_used;
  // What the work type counts (wakeups, wake_latency_p99_ns, forks, ...);
  // absent from the JSON when empty (spin, yield, mixed; older agents).
  std::map<std::string, uint64_t> counters;
  // JOB version 5: the cgroup a move_workers step put it in (empty: none),
  // and whether a step changed its cpuset (set_cpus on its cgroup, or a
  // move) and the CPUs it used after the last such change (empty
  // otherwise). Absent from the JSON when unused.
  std::string moved_to;
  bool cpus_changed = false;
  std::vector<uint32_t> cpus_since_change;
};

// One step of a version 5 job, sent when it was done (or could not be):
// the plan entry, its index in the plan, whether it worked, what it did
// ("moved pids 81,82 into 'b'") or why not. t_ms is CLOCK_BOOTTIME.
struct StepMsg {
  static constexpr MsgType kType = MsgType::Step;
  uint32_t index = 0;
  StepPlan step;
  bool ok = false;
  std::string detail;  // what it did
  std::string error;   // why it did not; a hotplug the kernel refuses says so here
  uint64_t t_ms = 0;
};

struct LogMsg {
  static constexpr MsgType kType = MsgType::Log;
  std::string level;  // "debug", "info", "warn", "error"
  std::string text;
};

struct ErrorMsg {
  static constexpr MsgType kType = MsgType::Error;
  std::string what;    // what failed, git style ("mounting 'tracefs' ...")
  std::string detail;  // errno text or context
};

struct DoneMsg {
  static constexpr MsgType kType = MsgType::Done;
  bool ok = false;
  std::string error;  // empty when ok
};

// Repeat jobs (JOB version 2): every frame between REPEAT_BEGIN {index}
// and REPEAT_END {index} belongs to that repetition; HELLO, TOPOLOGY and the
// first stages come once per boot, before the first REPEAT_BEGIN.
struct RepeatBeginMsg {
  static constexpr MsgType kType = MsgType::RepeatBegin;
  uint32_t index = 1;  // 1-based, within this boot
  uint64_t t_ms = 0;   // CLOCK_BOOTTIME
};

struct RepeatEndMsg {
  static constexpr MsgType kType = MsgType::RepeatEnd;
  uint32_t index = 1;
  bool ok = false;          // the agent ran it (what DONE.ok says for one run)
  std::string error;        // why not, when !ok
  std::string sched_state;  // /sys/kernel/sched_ext/state after settling ("" without sched_ext)
  // The agent runs the next repetition in this boot: the run went through
  // and the state read "disabled" within settle_ms. false: this VM ends
  // (DONE, power off) and the host boots a new one for what is left.
  bool next = false;
  uint64_t t_ms = 0;
};

// One program of a verifier job's object. The log is the kernel's
// BPF_LOG_STATS text (the host parses it: core/verifier_stats.hpp); the
// sizes come from bpf_prog_info and are absent when the kernel lacks them.
struct VerifierProgramMsg {
  std::string name;
  std::string section;
  std::string type;    // libbpf_bpf_prog_type_str
  std::string attach;  // struct_ops member name, else libbpf_bpf_attach_type_str; "" when none
  bool loaded = false;
  std::string error;   // when !loaded
  std::string log;     // the program's log (its last kMaxVerifierLogBytes)
  std::optional<uint64_t> verified_insns;
  std::optional<uint64_t> xlated_bytes;
  std::optional<uint64_t> jited_bytes;
};

struct VerifierResultMsg {
  static constexpr MsgType kType = MsgType::VerifierResult;
  uint32_t object = 0;      // index into VerifierPlan::objects
  std::string path;
  bool opened = false;      // libbpf parsed the object
  bool loaded = false;      // bpf_object__load succeeded (every program verified)
  std::string error;        // open or load error, "" when loaded
  std::string libbpf_log;   // libbpf's warnings during open and load (its last kMaxVerifierLogBytes)
  std::vector<VerifierProgramMsg> programs;
  uint64_t load_ms = 0;     // bpf_object__load wall time
  uint64_t t_ms = 0;        // CLOCK_BOOTTIME
};
inline constexpr size_t kMaxVerifierLogBytes = 16u << 10;
// The error of a program libbpf never tried: it stops at the first failure.
inline constexpr const char* kVerifierNotReached = "the object's load stopped at an earlier failure";
inline constexpr size_t kMaxVerifierPrograms = 256;

// Scheduler life and death (guest -> host). t_ms is CLOCK_BOOTTIME, like
// StageMsg, so the host can place everything relative to workers_started.
struct SchedStartedMsg {
  static constexpr MsgType kType = MsgType::SchedStarted;
  int32_t pid = 0;
  uint64_t t_ms = 0;
};

struct SchedStateMsg {
  static constexpr MsgType kType = MsgType::SchedState;
  std::string state;  // /sys/kernel/sched_ext/state: enabled, disabling, disabled, ...
  std::string ops;    // /sys/kernel/sched_ext/root/ops, empty when none
  uint64_t t_ms = 0;
};

struct SchedOutputMsg {
  static constexpr MsgType kType = MsgType::SchedOutput;
  std::string stream;  // "stdout" or "stderr"
  std::string text;    // a chunk, not necessarily whole lines
  bool truncated = false;  // the agent's cap was reached: later output is dropped
  uint64_t t_ms = 0;
};

struct SchedExitedMsg {
  static constexpr MsgType kType = MsgType::SchedExited;
  int32_t pid = 0;
  int32_t exit_code = -1;  // -1 when killed by a signal
  int32_t signal = 0;
  // The agent stopped it (SIGINT at the end of the workload, or SIGKILL
  // after an attach timeout): a normal end, not a death.
  bool stopped_by_agent = false;
  uint64_t t_ms = 0;
};

struct MapWriteResultMsg {
  static constexpr MsgType kType = MsgType::MapWriteResult;
  std::string map;
  std::string var;
  int64_t value = 0;
  bool ok = false;
  std::string resolved_map;  // the map written, e.g. "scx_ktst.bss"
  std::string error;
  std::string hint;
  uint64_t t_ms = 0;
};

struct KernelLogMsg {
  static constexpr MsgType kType = MsgType::KernelLog;
  std::string source;  // "trace" (trace_pipe) or "dmesg" (/dev/kmsg)
  std::string text;    // whole lines, '\n'-separated
  bool truncated = false;  // the agent's cap for this source was reached
  uint64_t t_ms = 0;
};

struct MonitorMsg {
  static constexpr MsgType kType = MsgType::Monitor;
  uint64_t t_ms = 0;
  std::vector<uint32_t> nr_running;         // per CPU
  std::vector<uint64_t> nr_switches;        // per CPU, cumulative; absent when not read
  std::map<std::string, int64_t> events;    // sched_ext event counters, cumulative
  int64_t dsq_depth = -1;                   // -1: unknown
  std::string sched_state;
};

// Probe runner outcome (guest -> host), once the probes are attached.
struct ProbeNameWhy {
  std::string name;
  std::string why;
};

struct ProbeNameError {
  std::string name;
  std::string error;
};

struct ProbeTriggerStatus {
  std::string name;            // tracepoint or kprobe actually used
  std::string kind = "none";   // "tp_btf", "kprobe", "none"
  std::string status = "failed";  // "attached", "failed"
  std::string error;
  std::string fallback_from;   // the tracepoint that failed, when kind is "kprobe"
  std::string fallback_error;
};

struct ProbeSetupMsg {
  static constexpr MsgType kType = MsgType::ProbeSetup;
  uint64_t t_ms = 0;
  std::vector<std::string> traceable;
  std::vector<ProbeNameWhy> untraceable;
  std::vector<std::string> kprobes_attached;
  std::vector<ProbeNameError> kprobe_failures;
  std::vector<std::string> bpf_discovered;
  std::vector<std::string> fentry_attached;
  std::vector<ProbeNameError> fentry_failures;
  ProbeTriggerStatus trigger;
  // Where the attach time went, ms: "filter_scan" (reading
  // available_filter_functions, only when needed), "kprobes", "trigger",
  // "kernel_total", "programs" (fentry/fexit on the scheduler's programs).
  std::map<std::string, uint64_t> timing_ms;
};

// A decoded task_struct argument.
struct ProbeTask {
  int32_t pid = 0;
  std::string comm;
  std::string cpus;           // allowed CPUs (first 64) as a cpulist, "0-3"
  uint64_t dsq_id = 0;        // UINT64_MAX: on no DSQ
  uint64_t slice = 0;
  uint64_t vtime = 0;
  uint32_t weight = 0;
  uint32_t flags = 0;
};

struct ProbeArg {
  std::string kind;           // as in ProbeFunction::args
  uint64_t raw = 0;
  std::optional<ProbeTask> task;          // kind "task"
  std::optional<int32_t> cpu;             // kind "rq": rq->cpu
  std::optional<uint64_t> dsq_id;         // kind "dsq"
  std::optional<uint32_t> exit_kind;      // kind "exit_info"
  std::optional<std::string> exit_reason;
};

struct ProbeEvent {
  uint64_t t_ns = 0;          // bpf_ktime_get_ns (CLOCK_MONOTONIC)
  uint32_t cpu = 0;
  int32_t pid = 0;
  std::string comm;
  std::string func;
  std::string kind;           // "kprobe", "fentry", "fexit", "trigger"
  uint64_t ip = 0;
  std::string source;         // "bpf/scx_ktstr.bpf.c:98" for BPF programs, else ""
  std::vector<ProbeArg> args;
  uint64_t ret = 0;           // fexit
};

struct ProbeEventsMsg {
  static constexpr MsgType kType = MsgType::ProbeEvents;
  bool trigger_fired = false;
  uint64_t trigger_t_ns = 0;
  int32_t trigger_pid = 0;
  uint32_t trigger_cpu = 0;
  uint32_t exit_kind = 0;
  std::string exit_reason;
  std::vector<ProbeEvent> events;  // the triggering task's first, then by time
  uint64_t events_total = 0;       // seen in the ring buffer
  uint64_t events_dropped = 0;     // ring buffer full, history bounds, payload size
  uint64_t unmatched_ips = 0;
  std::map<std::string, uint64_t> per_task_history;  // pid -> events kept
};

void to_json(nlohmann::json& j, const WorkKind& v);
void from_json(const nlohmann::json& j, WorkKind& v);
void to_json(nlohmann::json& j, const HelloMsg& v);
void from_json(const nlohmann::json& j, HelloMsg& v);
void to_json(nlohmann::json& j, const CgroupPlan& v);
void from_json(const nlohmann::json& j, CgroupPlan& v);
void to_json(nlohmann::json& j, const Scenario& v);
void from_json(const nlohmann::json& j, Scenario& v);
void to_json(nlohmann::json& j, const JobKind& v);
void from_json(const nlohmann::json& j, JobKind& v);
void to_json(nlohmann::json& j, const JobMsg& v);
void from_json(const nlohmann::json& j, JobMsg& v);
void to_json(nlohmann::json& j, const StageMsg& v);
void from_json(const nlohmann::json& j, StageMsg& v);
void to_json(nlohmann::json& j, const TopologyMsg& v);
void from_json(const nlohmann::json& j, TopologyMsg& v);
void to_json(nlohmann::json& j, const WorkerMsg& v);
void from_json(const nlohmann::json& j, WorkerMsg& v);
void to_json(nlohmann::json& j, const LogMsg& v);
void from_json(const nlohmann::json& j, LogMsg& v);
void to_json(nlohmann::json& j, const ErrorMsg& v);
void from_json(const nlohmann::json& j, ErrorMsg& v);
void to_json(nlohmann::json& j, const DoneMsg& v);
void from_json(const nlohmann::json& j, DoneMsg& v);
void to_json(nlohmann::json& j, const RepeatBeginMsg& v);
void from_json(const nlohmann::json& j, RepeatBeginMsg& v);
void to_json(nlohmann::json& j, const RepeatEndMsg& v);
void from_json(const nlohmann::json& j, RepeatEndMsg& v);
void to_json(nlohmann::json& j, const SchedulerPlan& v);
void from_json(const nlohmann::json& j, SchedulerPlan& v);
void to_json(nlohmann::json& j, const MapWritePlan& v);
void from_json(const nlohmann::json& j, MapWritePlan& v);
void to_json(nlohmann::json& j, const SchedStartedMsg& v);
void from_json(const nlohmann::json& j, SchedStartedMsg& v);
void to_json(nlohmann::json& j, const SchedStateMsg& v);
void from_json(const nlohmann::json& j, SchedStateMsg& v);
void to_json(nlohmann::json& j, const SchedOutputMsg& v);
void from_json(const nlohmann::json& j, SchedOutputMsg& v);
void to_json(nlohmann::json& j, const SchedExitedMsg& v);
void from_json(const nlohmann::json& j, SchedExitedMsg& v);
void to_json(nlohmann::json& j, const MapWriteResultMsg& v);
void from_json(const nlohmann::json& j, MapWriteResultMsg& v);
void to_json(nlohmann::json& j, const KernelLogMsg& v);
void from_json(const nlohmann::json& j, KernelLogMsg& v);
void to_json(nlohmann::json& j, const MonitorMsg& v);
void from_json(const nlohmann::json& j, MonitorMsg& v);
// Probe payloads: guest/proto/probe_messages.cpp.
void to_json(nlohmann::json& j, const ProbeFunction& v);
void from_json(const nlohmann::json& j, ProbeFunction& v);
void to_json(nlohmann::json& j, const ProbeTrigger& v);
void from_json(const nlohmann::json& j, ProbeTrigger& v);
void to_json(nlohmann::json& j, const ProbePlan& v);
void from_json(const nlohmann::json& j, ProbePlan& v);
void to_json(nlohmann::json& j, const ProbeNameWhy& v);
void from_json(const nlohmann::json& j, ProbeNameWhy& v);
void to_json(nlohmann::json& j, const ProbeNameError& v);
void from_json(const nlohmann::json& j, ProbeNameError& v);
void to_json(nlohmann::json& j, const ProbeTriggerStatus& v);
void from_json(const nlohmann::json& j, ProbeTriggerStatus& v);
void to_json(nlohmann::json& j, const ProbeSetupMsg& v);
void from_json(const nlohmann::json& j, ProbeSetupMsg& v);
void to_json(nlohmann::json& j, const ProbeTask& v);
void from_json(const nlohmann::json& j, ProbeTask& v);
void to_json(nlohmann::json& j, const ProbeArg& v);
void from_json(const nlohmann::json& j, ProbeArg& v);
void to_json(nlohmann::json& j, const ProbeEvent& v);
void from_json(const nlohmann::json& j, ProbeEvent& v);
void to_json(nlohmann::json& j, const ProbeEventsMsg& v);
void from_json(const nlohmann::json& j, ProbeEventsMsg& v);
// Verifier payloads: guest/proto/verifier_messages.cpp.
void to_json(nlohmann::json& j, const VerifierPlan& v);
void from_json(const nlohmann::json& j, VerifierPlan& v);
void to_json(nlohmann::json& j, const VerifierProgramMsg& v);
void from_json(const nlohmann::json& j, VerifierProgramMsg& v);
void to_json(nlohmann::json& j, const VerifierResultMsg& v);
void from_json(const nlohmann::json& j, VerifierResultMsg& v);
Status validate_verifier_plan(const VerifierPlan& plan);
// Step payloads: guest/proto/step_messages.cpp.
void to_json(nlohmann::json& j, const StepPlan& v);
void from_json(const nlohmann::json& j, StepPlan& v);
void to_json(nlohmann::json& j, const StepMsg& v);
void from_json(const nlohmann::json& j, StepMsg& v);

// JSON text of a message; invalid UTF-8 in strings is replaced, never thrown.
std::string dump_json(const nlohmann::json& j);

// Parses a frame's payload as JSON, checking it is of type `expected`.
Result<nlohmann::json> parse_payload(const Frame& frame, MsgType expected);
// "decoding 'job' payload: <what>", without nlohmann's "[json.exception…]" tag.
Error payload_error(MsgType type, const char* what);

template <typename Msg>
std::string encode_message(const Msg& msg) {
  return encode_frame(Msg::kType, dump_json(nlohmann::json(msg)));
}

// Never throws: missing or mistyped fields come back as an Error.
template <typename Msg>
Result<Msg> decode_payload(const Frame& frame) {
  auto j = parse_payload(frame, Msg::kType);
  if (!j) return fail(j.error());
  try {
    return j->template get<Msg>();
  } catch (const std::exception& e) {
    return fail(payload_error(Msg::kType, e.what()));
  }
}

}  // namespace ktstr::proto
