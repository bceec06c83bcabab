// What an auto-repro produced: the probe pipeline's accounting (targets
// extracted from the crash, what the guest could trace and attach, whether
// the trigger fired, the events captured) and the repro VM's outcome. The
// guest's ProbeSetup/ProbeEvents payloads are untrusted JSON: parsed here
// with bounds, never throwing. Rendered as `--- auto-repro ---`.
#pragma once

#include "core/probe_targets.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct NamedError {
  std::string name;
  std::string error;  // "why" for untraceable functions
};

struct ProbeTriggerInfo {
  std::string name;            // "sched_ext_exit", "scx_kf_exit"
  std::string kind;            // "tp_btf" | "kprobe" | "none"
  std::string status;          // "attached" | "failed"
  std::string error;
  std::string fallback_from;   // the tracepoint that failed, when this is the fallback
  std::string fallback_error;
};

// ProbeSetup (guest -> host).
struct ProbeSetupInfo {
  uint64_t t_ms = 0;
  std::vector<std::string> traceable;
  std::vector<NamedError> untraceable;
  std::vector<std::string> kprobes_attached;
  std::vector<NamedError> kprobe_failures;
  std::vector<std::string> bpf_discovered;
  std::vector<std::string> fentry_attached;
  std::vector<NamedError> fentry_failures;
  ProbeTriggerInfo trigger;
};

struct ProbeTaskInfo {
  int64_t pid = 0;
  std::string comm, cpus;
  uint64_t dsq_id = 0, slice = 0, vtime = 0, weight = 0, flags = 0;
};

struct ProbeArg {
  std::string kind;            // task | rq | dsq | exit_info | scalar | none
  uint64_t raw = 0;
  std::optional<ProbeTaskInfo> task;
  int64_t cpu = -1;            // rq
  std::optional<uint64_t> dsq_id;
  int64_t exit_kind = -1;
  std::string exit_reason;
};

struct ProbeEvent {
  uint64_t t_ns = 0;
  int64_t cpu = -1, pid = 0;
  std::string comm, func;
  std::string kind;            // kprobe | fentry | fexit | trigger
  uint64_t ip = 0;
  std::string source;          // "bpf/scx_ktstr.bpf.c:98"
  std::vector<ProbeArg> args;
  std::optional<int64_t> ret;  // fexit
};

// ProbeEvents (guest -> host).
struct ProbeEventsInfo {
  bool trigger_fired = false;
  uint64_t trigger_t_ns = 0;
  int64_t trigger_pid = 0, trigger_cpu = -1;
  int64_t exit_kind = -1;
  std::string exit_reason;
  std::vector<ProbeEvent> events;
  uint64_t events_total = 0, events_dropped = 0, unmatched_ips = 0;
  std::vector<std::pair<int64_t, uint64_t>> per_task_history;
};

// Bounds applied to guest data.
inline constexpr size_t kMaxProbeNames = 4096;
inline constexpr size_t kMaxProbeEvents = 65536;
inline constexpr size_t kMaxProbeString = 512;

// Never throw; fields of the wrong type are skipped and noted in `problems`.
ProbeSetupInfo parse_probe_setup(const nlohmann::json& j, std::vector<std::string>* problems = nullptr);
ProbeEventsInfo parse_probe_events(const nlohmann::json& j, std::vector<std::string>* problems = nullptr);
nlohmann::json to_json(const ProbeSetupInfo& s);
nlohmann::json to_json(const ProbeEvent& e);

// Group by task, order each task by time, drop exact duplicates; the
// triggering task first, then tasks by their latest event (newest first).
// At most `per_task` events kept per task (the latest ones).
std::vector<ProbeEvent> stitch_events(const std::vector<ProbeEvent>& events, int64_t trigger_pid,
                                      size_t per_task = 64);

// The counts of `--- probe pipeline ---`.
struct ProbeAccounting {
  size_t extracted = 0;
  size_t traceable_passed = 0;
  std::vector<std::string> traceable_dropped;   // names
  size_t bpf_discovered = 0;
  size_t after_expand = 0;
  size_t kprobes_attached = 0;
  std::vector<NamedError> kprobe_failures;
  size_t fentry_attached = 0;
  std::vector<NamedError> fentry_failures;
  std::string trigger;                          // "fired (tp_btf/sched_ext_exit)", ...
  size_t probe_keys = 0;                        // distinct (task, function) pairs with data
  uint64_t unmatched_ips = 0;
  uint64_t events_captured = 0;
  size_t events_after_stitch = 0;
};

// "fired (tp_btf/sched_ext_exit)", "fired (fallback kprobe scx_kf_exit;
// tp_btf/sched_ext_exit: attach failed: E)", "not fired (...)",
// "attach failed (E)", "not reported by the guest".
std::string describe_trigger(const std::optional<ProbeSetupInfo>& setup,
                             const std::optional<ProbeEventsInfo>& events);

ProbeAccounting account_probes(const ProbeTargets& targets, const std::optional<ProbeSetupInfo>& setup,
                               const std::optional<ProbeEventsInfo>& events, size_t stitched);

struct ReproResult {
  std::string crash_id;
  std::string kernel_id, kernel_version;
  std::optional<uint64_t> seed;          // the crashed run's, given again (absent: it had none)
  ProbeTargets targets;
  ProbePlan plan;
  std::optional<ProbeSetupInfo> setup;   // absent: the guest sent none
  std::optional<ProbeEventsInfo> events;
  std::vector<ProbeEvent> stitched;
  ProbeAccounting accounting;
  double duration_s = 0;                 // repro VM wall time
  // Where the replay's time went (the bench prints it): host-side BTF
  // reading for the plan and stitching; in the guest, job received ->
  // scheduler spawned (the kernel probes attach in between) and scheduler
  // spawned -> probe setup reported (BPF program probes); the size of the
  // probe events payload; the repro VM's boot.
  struct Timing {
    double btf_s = 0;
    double stitch_s = 0;
    double kernel_probes_s = -1;
    double program_probes_s = -1;
    double boot_s = 0;
    size_t events_bytes = 0;
    // The guest's own attach breakdown (PROBE_SETUP timing_ms): filter_scan,
    // kprobes, trigger, kernel_total, programs. At most 16 entries.
    std::vector<std::pair<std::string, uint64_t>> guest_ms;
    // When the probes were all set, in seconds from the workload's start
    // (negative: before it); absent when the guest did not say.
    std::optional<double> probes_set_s;
  } timing;
  // "same" (reproduced), "no_crash", "different"
  std::string outcome;
  std::string different_summary;        // the other crash's summary
  std::string repro_reason;              // the repro run's failure reason, if any
  std::string sched_log_tail, dump_tail, dmesg_tail;
  std::vector<std::string> notes;        // guest problems, payload problems
  bool reproduced() const { return outcome == "same"; }
};

// "yes (same signature)", "no — the scheduler did not crash",
// "no — a different crash: <summary>".
std::string reproduced_text(const ReproResult& r);

// `--- auto-repro ---` + `--- probe pipeline ---` + decoded events + the
// repro VM's diagnostics + the reproduced line.
std::string render_repro(const ReproResult& r);
// One event line: "  +0.000123s cpu2 fentry ktstr_dispatch (src:98) p: pid=..."
std::string render_probe_event(const ProbeEvent& e, uint64_t t0_ns, const std::vector<std::string>& arg_names = {});

nlohmann::json to_json(const ReproResult& r);

}  // namespace ktstr
