// JSON for the probe plan (in JobMsg) and the PROBE_SETUP / PROBE_EVENTS
// payloads. Decoding is strict like messages.cpp; the host treats a guest's
// payload as untrusted, so sizes are checked by the reader too.
#include "guest/proto/json_fields.hpp"
#include "guest/proto/messages.hpp"

namespace ktstr::proto {

using nlohmann::json;

using detail::get_field;
using detail::get_optional;
using detail::get_signed;
using detail::get_unsigned;

namespace {

bool valid_arg_kind(const std::string& kind) {
  return kind == "task" || kind == "rq" || kind == "dsq" || kind == "exit_info" || kind == "scalar" ||
         kind == "none";
}

// Kernel symbols and BPF program names: [A-Za-z0-9_.]; no spaces, no paths.
bool valid_symbol(const std::string& name) {
  if (name.empty() || name.size() > kMaxProbeNameLen) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Status validate_probe_plan(const ProbePlan& plan) {
  if (plan.kernel_functions.size() > kMaxProbeFunctions)
    return fail("probe plan has " + std::to_string(plan.kernel_functions.size()) +
                " kernel functions, more than " + std::to_string(kMaxProbeFunctions));
  if (plan.ops_args.size() > kMaxProbeFunctions)
    return fail("probe plan has " + std::to_string(plan.ops_args.size()) + " ops members, more than " +
                std::to_string(kMaxProbeFunctions));
  for (const auto* list : {&plan.kernel_functions, &plan.ops_args})
    for (const ProbeFunction& f : *list) {
      if (!valid_symbol(f.name)) return fail("invalid probe function name '" + f.name + "'");
      if (f.args.size() > kMaxProbeArgs)
        return fail("probe function '" + f.name + "' has more than " + std::to_string(kMaxProbeArgs) +
                    " arguments");
      for (const std::string& kind : f.args)
        if (!valid_arg_kind(kind))
          return fail("probe function '" + f.name + "' has unknown argument kind '" + kind + "'",
                      "use task, rq, dsq, exit_info, scalar or none");
    }
  if (plan.bpf_programs.size() > kMaxProbePrograms)
    return fail("probe plan has more than " + std::to_string(kMaxProbePrograms) + " BPF programs");
  for (const std::string& name : plan.bpf_programs)
    if (!valid_symbol(name)) return fail("invalid probe program name '" + name + "'");
  for (const std::string* name : {&plan.trigger.tracepoint, &plan.trigger.fallback_kprobe})
    if (!name->empty() && !valid_symbol(*name)) return fail("invalid probe trigger '" + *name + "'");
  if (plan.history_per_task == 0 || plan.history_per_task > kMaxProbeHistoryPerTask)
    return fail("probe history_per_task " + std::to_string(plan.history_per_task) + " is not in 1.." +
                std::to_string(kMaxProbeHistoryPerTask));
  if (plan.max_events == 0 || plan.max_events > kMaxProbeEvents)
    return fail("probe max_events " + std::to_string(plan.max_events) + " is not in 1.." +
                std::to_string(kMaxProbeEvents));
  return {};
}

void to_json(json& j, const ProbeFunction& v) { j = {{"name", v.name}, {"args", v.args}}; }
void from_json(const json& j, ProbeFunction& v) {
  get_field(j, "name", v.name);
  get_optional(j, "args", v.args);
}

void to_json(json& j, const ProbeTrigger& v) {
  j = {{"tracepoint", v.tracepoint}, {"fallback_kprobe", v.fallback_kprobe}};
}
void from_json(const json& j, ProbeTrigger& v) {
  get_optional(j, "tracepoint", v.tracepoint);
  get_optional(j, "fallback_kprobe", v.fallback_kprobe);
}

void to_json(json& j, const ProbePlan& v) {
  j = {{"kernel_functions", v.kernel_functions}, {"bpf_programs", v.bpf_programs},
       {"trigger", v.trigger},                   {"history_per_task", v.history_per_task},
       {"max_events", v.max_events}};
  if (v.kernel_probes_parallel) j["kernel_probes_parallel"] = true;
  if (v.probes_during_workload) j["probes_during_workload"] = true;
  if (!v.ops_args.empty()) j["ops_args"] = v.ops_args;
}
void from_json(const json& j, ProbePlan& v) {
  get_optional(j, "kernel_functions", v.kernel_functions);
  get_optional(j, "bpf_programs", v.bpf_programs);
  get_optional(j, "trigger", v.trigger);
  if (j.contains("history_per_task")) get_unsigned(j, "history_per_task", v.history_per_task);
  if (j.contains("max_events")) get_unsigned(j, "max_events", v.max_events);
  get_optional(j, "kernel_probes_parallel", v.kernel_probes_parallel);
  get_optional(j, "probes_during_workload", v.probes_during_workload);
  get_optional(j, "ops_args", v.ops_args);
}

void to_json(json& j, const ProbeNameWhy& v) { j = {{"name", v.name}, {"why", v.why}}; }
void from_json(const json& j, ProbeNameWhy& v) {
  get_field(j, "name", v.name);
  get_optional(j, "why", v.why);
}

void to_json(json& j, const ProbeNameError& v) { j = {{"name", v.name}, {"error", v.error}}; }
void from_json(const json& j, ProbeNameError& v) {
  get_field(j, "name", v.name);
  get_optional(j, "error", v.error);
}

void to_json(json& j, const ProbeTriggerStatus& v) {
  j = {{"name", v.name},   {"kind", v.kind},   {"status", v.status},
       {"error", v.error}, {"fallback_from", v.fallback_from}, {"fallback_error", v.fallback_error}};
}
void from_json(const json& j, ProbeTriggerStatus& v) {
  get_optional(j, "name", v.name);
  get_field(j, "kind", v.kind);
  if (v.kind != "tp_btf" && v.kind != "kprobe" && v.kind != "none")
    throw std::runtime_error("unknown trigger kind '" + v.kind + "'");
  get_field(j, "status", v.status);
  if (v.status != "attached" && v.status != "failed")
    throw std::runtime_error("unknown trigger status '" + v.status + "'");
  get_optional(j, "error", v.error);
  get_optional(j, "fallback_from", v.fallback_from);
  get_optional(j, "fallback_error", v.fallback_error);
}

void to_json(json& j, const ProbeSetupMsg& v) {
  j = {{"t_ms", v.t_ms},
       {"traceable", v.traceable},
       {"untraceable", v.untraceable},
       {"kprobes_attached", v.kprobes_attached},
       {"kprobe_failures", v.kprobe_failures},
       {"bpf_discovered", v.bpf_discovered},
       {"fentry_attached", v.fentry_attached},
       {"fentry_failures", v.fentry_failures},
       {"trigger", v.trigger}};
  if (!v.timing_ms.empty()) j["timing_ms"] = v.timing_ms;
}
void from_json(const json& j, ProbeSetupMsg& v) {
  get_unsigned(j, "t_ms", v.t_ms);
  get_optional(j, "traceable", v.traceable);
  get_optional(j, "untraceable", v.untraceable);
  get_optional(j, "kprobes_attached", v.kprobes_attached);
  get_optional(j, "kprobe_failures", v.kprobe_failures);
  get_optional(j, "bpf_discovered", v.bpf_discovered);
  get_optional(j, "fentry_attached", v.fentry_attached);
  get_optional(j, "fentry_failures", v.fentry_failures);
  get_field(j, "trigger", v.trigger);
  v.timing_ms.clear();
  if (j.contains("timing_ms") && !j.at("timing_ms").is_null()) {
    const json& t = j.at("timing_ms");
    if (!t.is_object() || t.size() > 16) throw std::runtime_error("field 'timing_ms' must be an object of at most 16 times");
    for (auto it = t.begin(); it != t.end(); ++it) get_unsigned(t, it.key().c_str(), v.timing_ms[it.key()]);
  }
}

void to_json(json& j, const ProbeTask& v) {
  j = {{"pid", v.pid},       {"comm", v.comm},   {"cpus", v.cpus},     {"dsq_id", v.dsq_id},
       {"slice", v.slice},   {"vtime", v.vtime}, {"weight", v.weight}, {"flags", v.flags}};
}
void from_json(const json& j, ProbeTask& v) {
  get_signed(j, "pid", v.pid);
  get_optional(j, "comm", v.comm);
  get_optional(j, "cpus", v.cpus);
  get_unsigned(j, "dsq_id", v.dsq_id);
  get_unsigned(j, "slice", v.slice);
  get_unsigned(j, "vtime", v.vtime);
  get_unsigned(j, "weight", v.weight);
  get_unsigned(j, "flags", v.flags);
}

void to_json(json& j, const ProbeArg& v) {
  j = {{"kind", v.kind}, {"raw", v.raw}};
  if (v.task) j["task"] = *v.task;
  if (v.cpu) j["cpu"] = *v.cpu;
  if (v.dsq_id) j["dsq_id"] = *v.dsq_id;
  if (v.exit_kind) j["exit_kind"] = *v.exit_kind;
  if (v.exit_reason) j["exit_reason"] = *v.exit_reason;
}
void from_json(const json& j, ProbeArg& v) {
  get_field(j, "kind", v.kind);
  get_unsigned(j, "raw", v.raw);
  v.task.reset();
  v.cpu.reset();
  v.dsq_id.reset();
  v.exit_kind.reset();
  v.exit_reason.reset();
  if (j.contains("task")) v.task = j.at("task").get<ProbeTask>();
  if (j.contains("cpu")) get_signed(j, "cpu", v.cpu.emplace());
  if (j.contains("dsq_id")) get_unsigned(j, "dsq_id", v.dsq_id.emplace());
  if (j.contains("exit_kind")) get_unsigned(j, "exit_kind", v.exit_kind.emplace());
  if (j.contains("exit_reason")) v.exit_reason = j.at("exit_reason").get<std::string>();
}

void to_json(json& j, const ProbeEvent& v) {
  j = {{"t_ns", v.t_ns}, {"cpu", v.cpu},       {"pid", v.pid},       {"comm", v.comm},
       {"func", v.func}, {"kind", v.kind},     {"ip", v.ip},         {"source", v.source},
       {"args", v.args}, {"ret", v.ret}};
}
void from_json(const json& j, ProbeEvent& v) {
  get_unsigned(j, "t_ns", v.t_ns);
  get_unsigned(j, "cpu", v.cpu);
  get_signed(j, "pid", v.pid);
  get_optional(j, "comm", v.comm);
  get_field(j, "func", v.func);
  get_field(j, "kind", v.kind);
  if (v.kind != "kprobe" && v.kind != "fentry" && v.kind != "fexit" && v.kind != "trigger")
    throw std::runtime_error("unknown probe event kind '" + v.kind + "'");
  if (j.contains("ip")) get_unsigned(j, "ip", v.ip);
  get_optional(j, "source", v.source);
  get_optional(j, "args", v.args);
  if (v.args.size() > kMaxProbeArgs) throw std::runtime_error("probe event has too many arguments");
  if (j.contains("ret")) get_unsigned(j, "ret", v.ret);
}

void to_json(json& j, const ProbeEventsMsg& v) {
  j = {{"trigger_fired", v.trigger_fired},   {"trigger_t_ns", v.trigger_t_ns},
       {"trigger_pid", v.trigger_pid},       {"trigger_cpu", v.trigger_cpu},
       {"exit_kind", v.exit_kind},           {"exit_reason", v.exit_reason},
       {"events", v.events},                 {"events_total", v.events_total},
       {"events_dropped", v.events_dropped}, {"unmatched_ips", v.unmatched_ips},
       {"per_task_history", v.per_task_history}};
}
void from_json(const json& j, ProbeEventsMsg& v) {
  get_field(j, "trigger_fired", v.trigger_fired);
  get_unsigned(j, "trigger_t_ns", v.trigger_t_ns);
  get_signed(j, "trigger_pid", v.trigger_pid);
  get_unsigned(j, "trigger_cpu", v.trigger_cpu);
  get_unsigned(j, "exit_kind", v.exit_kind);
  get_optional(j, "exit_reason", v.exit_reason);
  get_optional(j, "events", v.events);
  get_unsigned(j, "events_total", v.events_total);
  get_unsigned(j, "events_dropped", v.events_dropped);
  get_unsigned(j, "unmatched_ips", v.unmatched_ips);
  v.per_task_history.clear();
  if (j.contains("per_task_history")) {
    const json& h = j.at("per_task_history");
    if (!h.is_object()) throw std::runtime_error("field 'per_task_history' must be an object");
    for (auto it = h.begin(); it != h.end(); ++it) {
      if (!it->is_number_unsigned()) throw std::runtime_error("history of '" + it.key() + "' must be a count");
      v.per_task_history[it.key()] = it->get<uint64_t>();
    }
  }
}

}  // namespace ktstr::proto
