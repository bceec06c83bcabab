#include "core/probe_targets.hpp"

#include "core/crash_parse.hpp"

#include <algorithm>
#include <array>

namespace ktstr {
namespace {

constexpr std::string_view kTrampolinePrefix = "bpf__sched_ext_ops_";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// The first scx_*exit* frame: the kernel's exit entry the BPF error went
// through (scx_exit_bstr on 7.x, scx_kf_exit on 6.17, scx_exit on others).
bool is_exit_path_function(std::string_view f) {
  return starts_with(f, "scx_") && f.find("exit") != std::string_view::npos &&
         !starts_with(f, "scx_bpf_");
}

struct GenericRule {
  std::string_view pattern;  // exact name, or prefix when it ends in '*'
  std::string_view why;
};

// Frames every crash chain shares; probing them records the whole system,
// not the crash. Order matters only for readability.
constexpr std::array kGenericRules = {
    GenericRule{"__schedule", "scheduler core entry"},
    GenericRule{"schedule", "scheduler core entry"},
    GenericRule{"schedule_idle", "scheduler core entry"},
    GenericRule{"schedule_preempt_disabled", "scheduler core entry"},
    GenericRule{"schedule_timeout*", "scheduler core entry"},
    GenericRule{"preempt_schedule*", "scheduler core entry"},
    GenericRule{"__cond_resched", "scheduler core entry"},
    GenericRule{"do_idle", "scheduler core entry"},
    GenericRule{"cpu_startup_entry", "scheduler core entry"},
    GenericRule{"start_secondary", "scheduler core entry"},
    GenericRule{"raw_spin_*", "locking/irq"},
    GenericRule{"_raw_*", "locking/irq"},
    GenericRule{"__raw_*", "locking/irq"},
    GenericRule{"queued_spin_*", "locking/irq"},
    GenericRule{"native_queued_spin_*", "locking/irq"},
    GenericRule{"irq_work_*", "locking/irq"},
    GenericRule{"__sysvec_*", "locking/irq"},
    GenericRule{"sysvec_*", "locking/irq"},
    GenericRule{"entry_SYSCALL*", "syscall/irq entry"},
    GenericRule{"do_syscall_64", "syscall/irq entry"},
    GenericRule{"x64_sys_call", "syscall/irq entry"},
    GenericRule{"asm_*", "syscall/irq entry"},
    GenericRule{"irqentry_*", "syscall/irq entry"},
    GenericRule{"exit_to_user_mode*", "syscall/irq entry"},
    GenericRule{"syscall_exit_to_user_mode*", "syscall/irq entry"},
    GenericRule{"ret_from_fork*", "syscall/irq entry"},
    GenericRule{"kthread", "syscall/irq entry"},
    GenericRule{"worker_thread", "syscall/irq entry"},
    GenericRule{"smpboot_thread_fn", "syscall/irq entry"},
    GenericRule{"scx_exit*", "sched_ext exit path"},
    GenericRule{"__scx_exit*", "sched_ext exit path"},
    GenericRule{"scx_vexit", "sched_ext exit path"},
    GenericRule{"scx_kf_exit", "sched_ext exit path"},
    GenericRule{"scx_bpf_error_bstr", "sched_ext exit path"},
    GenericRule{"scx_bpf_exit_bstr", "sched_ext exit path"},
    GenericRule{"scx_dump_*", "sched_ext dump"},
    GenericRule{"scx_disable*", "sched_ext exit path"},
    GenericRule{"scx_error_irq_workfn", "sched_ext exit path"},
    GenericRule{"bpf__sched_ext_ops_*", "struct_ops trampoline, not a kernel function"},
    GenericRule{"bpf_trampoline_*", "BPF trampoline, not a kernel function"},
};

}  // namespace

std::string generic_frame_reason(std::string_view function) {
  for (const auto& r : kGenericRules) {
    bool prefix = r.pattern.back() == '*';
    std::string_view p = prefix ? r.pattern.substr(0, r.pattern.size() - 1) : r.pattern;
    if (prefix ? starts_with(function, p) : function == p) return std::string(r.why);
  }
  return "";
}

ProbeTargets probe_targets_from_frames(const std::vector<BacktraceFrame>& frames) {
  ProbeTargets t;
  auto add_kernel = [&](const std::string& f) {
    if (!contains(t.kernel_functions, f)) t.kernel_functions.push_back(f);
  };
  for (size_t i = 0; i < frames.size(); ++i) {
    const std::string& fn = frames[i].function;
    if (fn.empty() || contains(t.extracted, fn)) continue;
    t.extracted.push_back(fn);
    if (t.fallback_trigger.empty() && is_exit_path_function(fn)) t.fallback_trigger = fn;

    if (!frames[i].bpf_prog.empty()) {
      if (!contains(t.bpf_programs, frames[i].bpf_prog)) t.bpf_programs.push_back(frames[i].bpf_prog);
      t.dropped.push_back({fn, "BPF program, probed with fentry as '" + frames[i].bpf_prog + "'"});
      continue;
    }
    if (starts_with(fn, kTrampolinePrefix)) {
      std::string op = fn.substr(kTrampolinePrefix.size());
      if (!op.empty() && !contains(t.ops, op)) t.ops.push_back(op);
      t.dropped.push_back({fn, "struct_ops trampoline of op '" + op + "', not a kernel function"});
      // The kernel function that called the op bridges the BPF side and
      // the kernel side of the chain: probe it even when it looks generic.
      if (i + 1 < frames.size()) {
        const BacktraceFrame& caller = frames[i + 1];
        if (caller.bpf_prog.empty() && !starts_with(caller.function, kTrampolinePrefix) &&
            !contains(t.bridges, caller.function))
          t.bridges.push_back(caller.function);
      }
      continue;
    }
    if (contains(t.bridges, fn)) {
      add_kernel(fn);
      continue;
    }
    std::string why = generic_frame_reason(fn);
    if (!why.empty()) {
      if (fn == t.fallback_trigger) why += " (fallback trigger)";
      t.dropped.push_back({fn, why});
      continue;
    }
    add_kernel(fn);
  }
  return t;
}

ProbeTargets probe_targets_from_exit(const SchedExit& exit) {
  if (!exit.backtrace.empty() || exit.dump.empty()) return probe_targets_from_frames(exit.backtrace);
  auto from_dump = parse_dump_text(exit.dump);
  return probe_targets_from_frames(from_dump ? from_dump->backtrace : std::vector<BacktraceFrame>{});
}

nlohmann::json probe_plan_json(const ProbePlan& plan) {
  auto functions = [](const std::vector<ProbeFunction>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : list) {
      std::vector<std::string> args(f.args.begin(), f.args.begin() + std::min(f.args.size(), kMaxProbeArgs));
      out.push_back({{"name", f.name}, {"args", args}});
    }
    return out;
  };
  nlohmann::json j = {
      {"kernel_functions", functions(plan.kernel_functions)},
      {"bpf_programs", plan.bpf_programs},
      {"trigger", {{"tracepoint", plan.trigger_tracepoint}, {"fallback_kprobe", plan.fallback_kprobe}}},
      {"history_per_task", plan.history_per_task},
      {"max_events", plan.max_events}};
  if (plan.kernel_probes_parallel) j["kernel_probes_parallel"] = true;
  if (plan.probes_during_workload) j["probes_during_workload"] = true;
  if (!plan.ops_args.empty()) j["ops_args"] = functions(plan.ops_args);
  return j;
}

}  // namespace ktstr
