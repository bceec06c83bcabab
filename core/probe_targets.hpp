// Which functions a repro VM probes, derived from a crash's backtrace: BPF
// program frames become fentry targets, kernel frames kprobes, and generic
// frames (scheduler entry, locking, syscall/irq entry, the exit and dump
// machinery, struct_ops trampolines) are dropped with the reason. The probe
// plan sent to the guest (JobMsg "probes") is built from the result.
#pragma once

#include "core/sched_exit.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

struct DroppedFrame {
  std::string function;
  std::string why;  // "scheduler core entry", "sched_ext exit path", ...
  bool operator==(const DroppedFrame&) const = default;
};

struct ProbeTargets {
  std::vector<std::string> extracted;         // unique frame names, backtrace order
  std::vector<std::string> kernel_functions;  // kprobe candidates (bridges included)
  std::vector<std::string> bridges;           // kernel callers of a BPF op (do_pick_task_scx)
  std::vector<std::string> ops;               // struct_ops ops on the chain ("dispatch")
  std::vector<std::string> bpf_programs;      // BPF program names to fentry ("ktstr_dispatch")
  std::vector<DroppedFrame> dropped;          // host-side drops, with why
  std::string fallback_trigger;               // first scx_*exit* frame (scx_exit_bstr, scx_kf_exit)
};

// Why a frame name is generic (not worth a probe), or "" when it is not.
std::string generic_frame_reason(std::string_view function);

// From a backtrace, innermost frame first (as printed).
ProbeTargets probe_targets_from_frames(const std::vector<BacktraceFrame>& frames);
// From an exit: its backtrace, or when that is empty the backtrace of its
// DEBUG DUMP text.
ProbeTargets probe_targets_from_exit(const SchedExit& exit);

// Argument kinds the guest can decode ("task", "rq", "dsq", "exit_info",
// "scalar", "none"), at most kMaxProbeArgs per function.
inline constexpr size_t kMaxProbeArgs = 6;

struct ProbeFunction {
  std::string name;
  std::vector<std::string> args;       // kinds
  std::vector<std::string> arg_names;  // from BTF when known (host only, for rendering)
};

// The JobMsg "probes" field as the host builds it (see the probe interface).
struct ProbePlan {
  std::vector<ProbeFunction> kernel_functions;
  std::vector<std::string> bpf_programs;  // empty = every struct_ops program ("discover")
  std::string trigger_tracepoint = "sched_ext_exit";
  std::string fallback_kprobe;            // "" = none
  uint32_t history_per_task = 64;
  uint32_t max_events = 4096;
  // The agent attaches the kernel probes while the scheduler loads (the
  // crash came after the workload started); on the wire only when true.
  bool kernel_probes_parallel = false;
  // The workload starts once the scheduler is enabled and the probes finish
  // attaching while it runs (the crash came well into the workload); on the
  // wire only when true.
  bool probes_during_workload = false;
  // sched_ext_ops members and their callbacks' argument kinds (kernel BTF),
  // for struct_ops programs; on the wire only when not empty.
  std::vector<ProbeFunction> ops_args;
};

// The wire form: {"kernel_functions":[{"name","args"}], "bpf_programs", "trigger":{...}, ...}.
nlohmann::json probe_plan_json(const ProbePlan& plan);

}  // namespace ktstr
