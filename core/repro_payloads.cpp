// Parsing the guest's ProbeSetup/ProbeEvents payloads (untrusted JSON: bounded,
// wrong types skipped and noted, never throwing) and their JSON form.
#include "core/repro.hpp"

#include <cstdlib>

namespace ktstr {
namespace {

using nlohmann::json;

// Guest JSON accessors: wrong types read as absent (noted), never throw.
struct Reader {
  std::vector<std::string>* problems;
  std::string where;

  void note(const std::string& key, const char* want) const {
    if (problems && problems->size() < 64) problems->push_back(where + ": '" + key + "' is not " + want);
  }
  const json* field(const json& j, const std::string& key) const {
    if (!j.is_object()) return nullptr;
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  std::string str(const json& j, const std::string& key) const {
    const json* v = field(j, key);
    if (!v) return "";
    if (!v->is_string()) return note(key, "a string"), "";
    std::string s = v->get<std::string>();
    if (s.size() > kMaxProbeString) s.resize(kMaxProbeString);
    return s;
  }
  uint64_t u64(const json& j, const std::string& key) const {
    const json* v = field(j, key);
    if (!v) return 0;
    if (v->is_number_unsigned()) return v->get<uint64_t>();
    if (v->is_number_integer()) return static_cast<uint64_t>(v->get<int64_t>());
    return note(key, "an integer"), 0;
  }
  int64_t i64(const json& j, const std::string& key, int64_t dflt) const {
    const json* v = field(j, key);
    if (!v) return dflt;
    if (v->is_number_integer()) return v->get<int64_t>();
    return note(key, "an integer"), dflt;
  }
  bool boolean(const json& j, const std::string& key) const {
    const json* v = field(j, key);
    if (!v) return false;
    if (v->is_boolean()) return v->get<bool>();
    return note(key, "a boolean"), false;
  }
  std::vector<std::string> names(const json& j, const std::string& key) const {
    std::vector<std::string> out;
    const json* v = field(j, key);
    if (!v) return out;
    if (!v->is_array()) return note(key, "an array"), out;
    for (const auto& e : *v) {
      if (out.size() >= kMaxProbeNames) break;
      if (e.is_string()) out.push_back(e.get<std::string>().substr(0, kMaxProbeString));
    }
    return out;
  }
  std::vector<NamedError> named_errors(const json& j, const std::string& key, const char* err_key) const {
    std::vector<NamedError> out;
    const json* v = field(j, key);
    if (!v) return out;
    if (!v->is_array()) return note(key, "an array"), out;
    for (const auto& e : *v) {
      if (out.size() >= kMaxProbeNames) break;
      if (e.is_object()) out.push_back({str(e, "name"), str(e, err_key)});
    }
    return out;
  }
};

}  // namespace

ProbeSetupInfo parse_probe_setup(const json& j, std::vector<std::string>* problems) {
  Reader r{problems, "probe setup"};
  ProbeSetupInfo s;
  if (!j.is_object()) {
    if (problems) problems->push_back("probe setup: payload is not an object");
    return s;
  }
  s.t_ms = r.u64(j, "t_ms");
  s.traceable = r.names(j, "traceable");
  s.untraceable = r.named_errors(j, "untraceable", "why");
  s.kprobes_attached = r.names(j, "kprobes_attached");
  s.kprobe_failures = r.named_errors(j, "kprobe_failures", "error");
  s.bpf_discovered = r.names(j, "bpf_discovered");
  s.fentry_attached = r.names(j, "fentry_attached");
  s.fentry_failures = r.named_errors(j, "fentry_failures", "error");
  if (const json* t = r.field(j, "trigger"); t && t->is_object()) {
    s.trigger.name = r.str(*t, "name");
    s.trigger.kind = r.str(*t, "kind");
    s.trigger.status = r.str(*t, "status");
    s.trigger.error = r.str(*t, "error");
    s.trigger.fallback_from = r.str(*t, "fallback_from");
    s.trigger.fallback_error = r.str(*t, "fallback_error");
  }
  return s;
}

ProbeEventsInfo parse_probe_events(const json& j, std::vector<std::string>* problems) {
  Reader r{problems, "probe events"};
  ProbeEventsInfo p;
  if (!j.is_object()) {
    if (problems) problems->push_back("probe events: payload is not an object");
    return p;
  }
  p.trigger_fired = r.boolean(j, "trigger_fired");
  p.trigger_t_ns = r.u64(j, "trigger_t_ns");
  p.trigger_pid = r.i64(j, "trigger_pid", 0);
  p.trigger_cpu = r.i64(j, "trigger_cpu", -1);
  p.exit_kind = r.i64(j, "exit_kind", -1);
  p.exit_reason = r.str(j, "exit_reason");
  p.events_total = r.u64(j, "events_total");
  p.events_dropped = r.u64(j, "events_dropped");
  p.unmatched_ips = r.u64(j, "unmatched_ips");
  if (const json* h = r.field(j, "per_task_history"); h && h->is_object()) {
    for (auto it = h->begin(); it != h->end() && p.per_task_history.size() < kMaxProbeNames; ++it) {
      char* end = nullptr;
      long long pid = std::strtoll(it.key().c_str(), &end, 10);
      if (end && *end == '\0' && it->is_number_integer())
        p.per_task_history.emplace_back(pid, it->get<uint64_t>());
    }
  }
  const json* evs = r.field(j, "events");
  if (evs && !evs->is_array()) r.note("events", "an array");
  if (evs && evs->is_array()) {
    for (const auto& e : *evs) {
      if (p.events.size() >= kMaxProbeEvents) break;
      if (!e.is_object()) continue;
      ProbeEvent ev;
      ev.t_ns = r.u64(e, "t_ns");
      ev.cpu = r.i64(e, "cpu", -1);
      ev.pid = r.i64(e, "pid", 0);
      ev.comm = r.str(e, "comm");
      ev.func = r.str(e, "func");
      ev.kind = r.str(e, "kind");
      ev.ip = r.u64(e, "ip");
      ev.source = r.str(e, "source");
      if (const json* ret = r.field(e, "ret"); ret && ret->is_number_integer()) ev.ret = ret->get<int64_t>();
      if (const json* args = r.field(e, "args"); args && args->is_array()) {
        for (const auto& a : *args) {
          if (ev.args.size() >= kMaxProbeArgs || !a.is_object()) break;
          ProbeArg pa;
          pa.kind = r.str(a, "kind");
          pa.raw = r.u64(a, "raw");
          if (const json* t = r.field(a, "task"); t && t->is_object()) {
            ProbeTaskInfo ti;
            ti.pid = r.i64(*t, "pid", 0);
            ti.comm = r.str(*t, "comm");
            ti.cpus = r.str(*t, "cpus");
            ti.dsq_id = r.u64(*t, "dsq_id");
            ti.slice = r.u64(*t, "slice");
            ti.vtime = r.u64(*t, "vtime");
            ti.weight = r.u64(*t, "weight");
            ti.flags = r.u64(*t, "flags");
            pa.task = ti;
          }
          pa.cpu = r.i64(a, "cpu", -1);
          if (r.field(a, "dsq_id")) pa.dsq_id = r.u64(a, "dsq_id");
          pa.exit_kind = r.i64(a, "exit_kind", -1);
          pa.exit_reason = r.str(a, "exit_reason");
          ev.args.push_back(std::move(pa));
        }
      }
      p.events.push_back(std::move(ev));
    }
  }
  return p;
}

json to_json(const ProbeSetupInfo& s) {
  auto errs = [](const std::vector<NamedError>& v, const char* key) {
    json a = json::array();
    for (const auto& e : v) a.push_back({{"name", e.name}, {key, e.error}});
    return a;
  };
  return {{"t_ms", s.t_ms},
          {"traceable", s.traceable},
          {"untraceable", errs(s.untraceable, "why")},
          {"kprobes_attached", s.kprobes_attached},
          {"kprobe_failures", errs(s.kprobe_failures, "error")},
          {"bpf_discovered", s.bpf_discovered},
          {"fentry_attached", s.fentry_attached},
          {"fentry_failures", errs(s.fentry_failures, "error")},
          {"trigger",
           {{"name", s.trigger.name}, {"kind", s.trigger.kind}, {"status", s.trigger.status},
            {"error", s.trigger.error}, {"fallback_from", s.trigger.fallback_from},
            {"fallback_error", s.trigger.fallback_error}}}};
}

json to_json(const ProbeEvent& e) {
  json args = json::array();
  for (const auto& a : e.args) {
    json ja = {{"kind", a.kind}, {"raw", a.raw}};
    if (a.task)
      ja["task"] = {{"pid", a.task->pid},       {"comm", a.task->comm},   {"cpus", a.task->cpus},
                    {"dsq_id", a.task->dsq_id}, {"slice", a.task->slice}, {"vtime", a.task->vtime},
                    {"weight", a.task->weight}, {"flags", a.task->flags}};
    if (a.cpu >= 0) ja["cpu"] = a.cpu;
    if (a.dsq_id) ja["dsq_id"] = *a.dsq_id;
    if (a.exit_kind >= 0) ja["exit_kind"] = a.exit_kind;
    if (!a.exit_reason.empty()) ja["exit_reason"] = a.exit_reason;
    args.push_back(std::move(ja));
  }
  json j = {{"t_ns", e.t_ns}, {"cpu", e.cpu},   {"pid", e.pid},       {"comm", e.comm}, {"func", e.func},
            {"kind", e.kind}, {"ip", e.ip},     {"source", e.source}, {"args", args}};
  if (e.ret) j["ret"] = *e.ret;
  return j;
}

}  // namespace ktstr
