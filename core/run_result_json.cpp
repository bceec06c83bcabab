// run_result_from_json / repro_result_from_json: to_json's inverse, field by
// field in to_json's order (report.cpp, repro.cpp, repro_payloads.cpp).
#include "core/run_result_json.hpp"

#include <limits>
#include <type_traits>

namespace ktstr {
namespace {

using nlohmann::json;

// The first problem found; thrown inside this file only, caught by the two
// entry points and returned as an Error.
struct BadField {
  std::string msg;
};

// Typed reads of one object's fields. `path` names the object in messages
// ("run result: 'sched.states[2].t_s' is not a number").
class In {
 public:
  In(const json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j.is_object()) throw BadField{where() + " is not an object"};
  }

  const json* field(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  bool has(const char* key) const { return field(key) != nullptr; }
  std::string at(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  void get(const char* key, std::string& out) const {
    if (const json* v = field(key)) out = as_string(*v, at(key));
  }
  void get(const char* key, bool& out) const {
    if (const json* v = field(key)) {
      if (!v->is_boolean()) bad(at(key), "a boolean");
      out = v->get<bool>();
    }
  }
  void get(const char* key, double& out) const {
    if (const json* v = field(key)) out = as_double(*v, at(key));
  }
  template <typename T>
    requires std::is_integral_v<T>
  void get(const char* key, T& out) const {
    if (const json* v = field(key)) out = as_int<T>(*v, at(key));
  }
  template <typename T>
  void get(const char* key, std::optional<T>& out) const {
    if (!has(key)) return;
    T v{};
    get(key, v);
    out = v;
  }
  template <typename T>
  void get(const char* key, std::vector<T>& out) const {
    const json* v = field(key);
    if (!v) return;
    if (!v->is_array()) bad(at(key), "an array");
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      std::string p = at(key) + "[" + std::to_string(i) + "]";
      if constexpr (std::is_same_v<T, std::string>) out.push_back(as_string((*v)[i], p));
      else out.push_back(as_int<T>((*v)[i], p));
    }
  }
  // An array of objects, each read by `fn(In&)`.
  template <typename Fn>
  void each(const char* key, Fn fn) const {
    const json* v = field(key);
    if (!v) return;
    if (!v->is_array()) bad(at(key), "an array");
    for (size_t i = 0; i < v->size(); ++i) {
      In e((*v)[i], at(key) + "[" + std::to_string(i) + "]");
      fn(e);
    }
  }
  // An object field read by `fn(In&)`; false when absent.
  template <typename Fn>
  bool object(const char* key, Fn fn) const {
    const json* v = field(key);
    if (!v) return false;
    In o(*v, at(key));
    fn(o);
    return true;
  }
  // An object of name -> number, in the object's (sorted) order.
  template <typename T>
  void pairs(const char* key, std::vector<std::pair<std::string, T>>& out) const {
    const json* v = field(key);
    if (!v) return;
    if (!v->is_object()) bad(at(key), "an object");
    out.clear();
    for (auto it = v->begin(); it != v->end(); ++it) {
      std::string p = at(key) + "." + it.key();
      if constexpr (std::is_floating_point_v<T>) out.emplace_back(it.key(), as_double(*it, p));
      else out.emplace_back(it.key(), as_int<T>(*it, p));
    }
  }

  [[noreturn]] static void bad(const std::string& path, const char* want) {
    throw BadField{"'" + path + "' is not " + want};
  }

 private:
  std::string where() const { return path_.empty() ? "the document" : "'" + path_ + "'"; }

  static std::string as_string(const json& v, const std::string& path) {
    if (!v.is_string()) bad(path, "a string");
    return v.get<std::string>();
  }
  static double as_double(const json& v, const std::string& path) {
    if (!v.is_number()) bad(path, "a number");
    return v.get<double>();
  }
  template <typename T>
  static T as_int(const json& v, const std::string& path) {
    using L = std::numeric_limits<T>;
    if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(L::max())) bad(path, "an integer in range");
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
      int64_t s = v.get<int64_t>();
      if constexpr (std::is_signed_v<T>) {
        if (s < static_cast<int64_t>(L::min()) || s > static_cast<int64_t>(L::max())) bad(path, "an integer in range");
      } else {
        if (s < 0 || static_cast<uint64_t>(s) > static_cast<uint64_t>(L::max())) bad(path, "an integer in range");
      }
      return static_cast<T>(s);
    }
    bad(path, "an integer");
  }

  const json& j_;
  std::string path_;
};

std::vector<NamedError> named_errors(const In& in, const char* key, const char* err_key) {
  std::vector<NamedError> out;
  in.each(key, [&](const In& e) {
    NamedError n;
    e.get("name", n.name);
    e.get(err_key, n.error);
    out.push_back(std::move(n));
  });
  return out;
}

ProbeSetupInfo read_probe_setup(const In& s) {
  ProbeSetupInfo p;
  s.get("t_ms", p.t_ms);
  s.get("traceable", p.traceable);
  p.untraceable = named_errors(s, "untraceable", "why");
  s.get("kprobes_attached", p.kprobes_attached);
  p.kprobe_failures = named_errors(s, "kprobe_failures", "error");
  s.get("bpf_discovered", p.bpf_discovered);
  s.get("fentry_attached", p.fentry_attached);
  p.fentry_failures = named_errors(s, "fentry_failures", "error");
  s.object("trigger", [&](const In& t) {
    t.get("name", p.trigger.name);
    t.get("kind", p.trigger.kind);
    t.get("status", p.trigger.status);
    t.get("error", p.trigger.error);
    t.get("fallback_from", p.trigger.fallback_from);
    t.get("fallback_error", p.trigger.fallback_error);
  });
  return p;
}

ProbeEvent read_probe_event(const In& e) {
  ProbeEvent ev;
  e.get("t_ns", ev.t_ns);
  e.get("cpu", ev.cpu);
  e.get("pid", ev.pid);
  e.get("comm", ev.comm);
  e.get("func", ev.func);
  e.get("kind", ev.kind);
  e.get("ip", ev.ip);
  e.get("source", ev.source);
  e.each("args", [&](const In& a) {
    ProbeArg pa;
    a.get("kind", pa.kind);
    a.get("raw", pa.raw);
    a.object("task", [&](const In& t) {
      ProbeTaskInfo ti;
      t.get("pid", ti.pid);
      t.get("comm", ti.comm);
      t.get("cpus", ti.cpus);
      t.get("dsq_id", ti.dsq_id);
      t.get("slice", ti.slice);
      t.get("vtime", ti.vtime);
      t.get("weight", ti.weight);
      t.get("flags", ti.flags);
      pa.task = ti;
    });
    a.get("cpu", pa.cpu);
    a.get("dsq_id", pa.dsq_id);
    a.get("exit_kind", pa.exit_kind);
    a.get("exit_reason", pa.exit_reason);
    ev.args.push_back(std::move(pa));
  });
  e.get("ret", ev.ret);
  return ev;
}

ReproResult read_repro(const In& in) {
  ReproResult r;
  in.get("crash_id", r.crash_id);
  in.object("kernel", [&](const In& k) {
    k.get("id", r.kernel_id);
    k.get("version", r.kernel_version);
  });
  in.object("targets", [&](const In& t) {
    t.get("extracted", r.targets.extracted);
    t.get("kernel_functions", r.targets.kernel_functions);
    t.get("bridges", r.targets.bridges);
    t.get("ops", r.targets.ops);
    t.get("bpf_programs", r.targets.bpf_programs);
    t.each("dropped", [&](const In& d) {
      DroppedFrame f;
      d.get("function", f.function);
      d.get("why", f.why);
      r.targets.dropped.push_back(std::move(f));
    });
    t.get("fallback_trigger", r.targets.fallback_trigger);
  });
  auto probe_functions = [](const In& p, const char* key, std::vector<ProbeFunction>& out) {
    p.each(key, [&](const In& f) {
      ProbeFunction pf;
      f.get("name", pf.name);
      f.get("args", pf.args);
      f.get("arg_names", pf.arg_names);
      out.push_back(std::move(pf));
    });
  };
  in.object("plan", [&](const In& p) {
    probe_functions(p, "kernel_functions", r.plan.kernel_functions);
    p.get("bpf_programs", r.plan.bpf_programs);
    p.object("trigger", [&](const In& t) {
      t.get("tracepoint", r.plan.trigger_tracepoint);
      t.get("fallback_kprobe", r.plan.fallback_kprobe);
    });
    p.get("history_per_task", r.plan.history_per_task);
    p.get("max_events", r.plan.max_events);
    p.get("kernel_probes_parallel", r.plan.kernel_probes_parallel);
    p.get("probes_during_workload", r.plan.probes_during_workload);
    probe_functions(p, "ops_args", r.plan.ops_args);
  });
  in.object("pipeline", [&](const In& p) {
    ProbeAccounting& a = r.accounting;
    p.get("extracted", a.extracted);
    p.get("traceable_passed", a.traceable_passed);
    p.get("traceable_dropped", a.traceable_dropped);
    p.get("bpf_discovered", a.bpf_discovered);
    p.get("after_expand", a.after_expand);
    p.get("kprobes_attached", a.kprobes_attached);
    a.kprobe_failures = named_errors(p, "kprobe_failures", "error");
    p.get("fentry_attached", a.fentry_attached);
    a.fentry_failures = named_errors(p, "fentry_failures", "error");
    p.get("trigger", a.trigger);
    p.get("probe_keys", a.probe_keys);
    p.get("unmatched_ips", a.unmatched_ips);
    p.get("events_captured", a.events_captured);
    p.get("events_after_stitch", a.events_after_stitch);
  });
  in.get("duration_s", r.duration_s);
  in.get("seed", r.seed);
  in.each("events", [&](const In& e) { r.stitched.push_back(read_probe_event(e)); });
  in.get("outcome", r.outcome);
  in.get("notes", r.notes);
  in.object("setup", [&](const In& s) { r.setup = read_probe_setup(s); });
  in.object("trigger", [&](const In& t) {
    ProbeEventsInfo ev;
    t.get("fired", ev.trigger_fired);
    t.get("t_ns", ev.trigger_t_ns);
    t.get("pid", ev.trigger_pid);
    t.get("cpu", ev.trigger_cpu);
    t.get("exit_kind", ev.exit_kind);
    t.get("exit_reason", ev.exit_reason);
    r.events = std::move(ev);
  });
  in.get("different_summary", r.different_summary);
  in.get("repro_reason", r.repro_reason);
  in.object("diagnostics", [&](const In& d) {
    d.get("sched_log_tail", r.sched_log_tail);
    d.get("dump_tail", r.dump_tail);
    d.get("dmesg_tail", r.dmesg_tail);
  });
  in.object("timing", [&](const In& t) {
    t.get("btf_s", r.timing.btf_s);
    t.get("stitch_s", r.timing.stitch_s);
    t.get("kernel_probes_s", r.timing.kernel_probes_s);
    t.get("program_probes_s", r.timing.program_probes_s);
    t.get("boot_s", r.timing.boot_s);
    t.get("events_bytes", r.timing.events_bytes);
    if (t.has("probes_set_s")) {
      double s = 0;
      t.get("probes_set_s", s);
      r.timing.probes_set_s = s;
    }
    t.pairs("guest_ms", r.timing.guest_ms);
  });
  return r;
}

SchedulerRun read_sched(const In& in) {
  SchedulerRun s;
  in.get("name", s.name);
  in.get("args", s.args);
  in.get("started", s.started);
  in.get("attached", s.attached);
  in.get("attach_s", s.attach_s);
  in.get("exited", s.exited);
  in.get("exit_code", s.exit_code);
  in.get("signal", s.signal);
  in.get("exit_t_s", s.exit_t_s);
  in.get("stopped_by_ktstr", s.stopped_by_ktstr);
  in.get("log", s.log);
  in.get("log_truncated", s.log_truncated);
  in.get("started_t_s", s.started_t_s);
  in.get("attached_t_s", s.attached_t_s);
  in.get("workload_started", s.workload_started);
  in.each("states", [&](const In& st) {
    SchedStateChange c;
    st.get("t_s", c.t_s);
    st.get("state", c.state);
    s.states.push_back(std::move(c));
  });
  in.each("map_writes", [&](const In& m) {
    MapWriteEvent w;
    m.get("t_s", w.t_s);
    m.get("map", w.map);
    m.get("var", w.var);
    m.get("value", w.value);
    m.get("ok", w.ok);
    m.get("resolved_map", w.resolved_map);
    m.get("error", w.error);
    s.map_writes.push_back(std::move(w));
  });
  return s;
}

SchedExit read_exit(const In& in) {
  SchedExit e;
  in.get("kind", e.kind);
  in.get("reason", e.reason);
  in.get("msg", e.msg);
  in.get("trigger", e.trigger);
  in.get("exit_cpu", e.exit_cpu);
  in.each("backtrace", [&](const In& f) {
    BacktraceFrame b;
    f.get("function", b.function);
    f.get("offset", b.offset);
    f.get("bpf_prog", b.bpf_prog);
    f.get("bpf_tag", b.bpf_tag);
    e.backtrace.push_back(std::move(b));
  });
  in.get("scheduler_state", e.scheduler_state);
  in.get("source_location", e.source_location);
  in.get("failing_prog", e.failing_prog);
  return e;
}

WorkerStats read_worker(const In& in) {
  WorkerStats w;
  in.get("cgroup", w.cgroup);
  in.get("index", w.index);
  in.get("work", w.work);
  in.get("iterations", w.iterations);
  in.get("cpu_time_ns", w.cpu_time_ns);
  in.get("wall_ns", w.wall_ns);
  in.get("migrations", w.migrations);
  in.get("max_gap_ns", w.max_gap_ns);
  in.get("cpus_used", w.cpus_used);
  std::vector<std::pair<std::string, uint64_t>> counters;
  in.pairs("counters", counters);
  w.counters.insert(counters.begin(), counters.end());
  in.get("moved_to", w.moved_to);
  if (in.has("cpus_since_change")) {
    w.cpus_changed = true;
    in.get("cpus_since_change", w.cpus_since_change);
  }
  return w;
}

StepEvent read_step(const In& in) {
  StepEvent s;
  in.get("t_s", s.t_s);
  in.get("index", s.index);
  in.get("after_ms", s.after_ms);
  in.get("action", s.action);
  in.get("ok", s.ok);
  in.get("detail", s.detail);
  in.get("error", s.error);
  in.get("cgroup", s.cgroup);
  in.get("count", s.count);
  in.get("to", s.to);
  in.get("cpus", s.cpus);
  in.get("cpu", s.cpu);
  return s;
}

MonitorSample read_sample(const In& in) {
  MonitorSample m;
  in.get("t_s", m.t_s);
  in.get("nr_running", m.nr_running);
  in.pairs("events", m.events);
  in.get("dsq_depth", m.dsq_depth);
  in.get("sched_state", m.sched_state);
  in.get("nr_switches", m.nr_switches);
  return m;
}

RunResult read_run(const In& in) {
  RunResult r;
  if (!in.has("name")) throw BadField{"'name' is missing"};
  in.get("name", r.test_name);
  std::string status;
  in.get("status", status);
  if (status != "pass" && status != "fail") throw BadField{"'status' is not \"pass\" or \"fail\""};
  r.passed = status == "pass";
  in.get("reason", r.reason);
  in.get("fail_at_s", r.fail_at_s);
  in.get("scheduler", r.scheduler);
  in.get("topology", r.topology);
  in.get("scenario", r.scenario);
  in.object("kernel", [&](const In& k) {
    k.get("id", r.kernel_id);
    k.get("version", r.kernel_version);
  });
  in.get("accel", r.accel);
  in.get("memory_mb", r.memory_mb);
  in.get("stage", r.stage);
  in.object("vm", [&](const In& v) {
    v.get("end", r.vm_end);
    v.get("exit_code", r.vm_exit_code);
    v.get("wall_s", r.wall_s);
    v.get("boot_s", r.boot_s);
    v.get("restored", r.restored);
  });
  in.pairs("stage_t_s", r.stage_t_s);
  in.object("repeat", [&](const In& p) {
    p.get("repetition", r.repetition);
    p.get("vm", r.repeat_vm);
    p.get("vm_repetition", r.vm_repetition);
  });
  in.get("seed", r.seed);
  in.each("workers", [&](const In& w) { r.workers.push_back(read_worker(w)); });
  in.each("steps", [&](const In& s) { r.steps.push_back(read_step(s)); });
  in.object("guest_topology", [&](const In& g) {
    GuestTopology t;
    g.get("cpus", t.cpus);
    g.get("llc_groups", t.llc_groups);
    g.get("numa_nodes", t.numa_nodes);
    g.get("smt_groups", t.smt_groups);
    r.guest_topology = std::move(t);
  });
  in.get("diagnostics", r.diagnostics);
  in.get("console_tail", r.console_tail);
  in.get("run_id", r.run_id);
  in.get("failure_kind", r.failure_kind);
  in.get("failed_check", r.failed_check);
  in.each("check_failures", [&](const In& c) {
    CheckFailure f;
    c.get("check", f.check);
    c.get("message", f.message);
    c.get("t_s", f.t_s);
    r.check_failures.push_back(std::move(f));
  });
  in.object("sched", [&](const In& s) { r.sched = read_sched(s); });
  in.get("sched_ext_dump", r.sched_ext_dump);
  in.get("dmesg", r.dmesg);
  in.each("monitor", [&](const In& m) { r.monitor.push_back(read_sample(m)); });
  in.object("exit", [&](const In& e) { r.exit = read_exit(e); });
  in.get("verifier_log", r.verifier_log);
  in.get("crash_id", r.crash_id);
  in.get("expected_failure", r.expected_failure);
  if (const json* p = in.field("probe_setup")) r.probe_setup = *p;
  if (const json* p = in.field("probe_events")) r.probe_events = *p;
  in.object("repro", [&](const In& p) { r.repro = read_repro(p); });
  return r;
}

template <typename T, typename Fn>
Result<T> read_document(const json& j, const char* what, Fn fn) {
  try {
    In in(j, "");
    return fn(in);
  } catch (const BadField& e) {
    return fail(std::string(what) + ": " + e.msg);
  } catch (const json::exception& e) {  // not expected: every read checks its type first
    return fail(std::string(what) + ": " + e.what());
  }
}

}  // namespace

Result<RunResult> run_result_from_json(const json& j) {
  return read_document<RunResult>(j, "run result", read_run);
}

Result<ReproResult> repro_result_from_json(const json& j) {
  return read_document<ReproResult>(j, "repro result", read_repro);
}

}  // namespace ktstr
