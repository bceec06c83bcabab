#include "core/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <sstream>

namespace ktstr {

namespace {

nlohmann::json workers_json(const std::vector<WorkerStats>& workers) {
  nlohmann::json ws = nlohmann::json::array();
  for (auto& w : workers) {
    ws.push_back({{"cgroup", w.cgroup}, {"index", w.index}, {"work", w.work},
                  {"iterations", w.iterations}, {"cpu_time_ns", w.cpu_time_ns},
                  {"wall_ns", w.wall_ns}, {"migrations", w.migrations},
                  {"max_gap_ns", w.max_gap_ns}, {"cpus_used", w.cpus_used}});
    if (!w.counters.empty()) ws.back()["counters"] = w.counters;
    if (!w.moved_to.empty()) ws.back()["moved_to"] = w.moved_to;
    if (w.cpus_changed) ws.back()["cpus_since_change"] = w.cpus_since_change;
  }
  return ws;
}

nlohmann::json steps_json(const std::vector<StepEvent>& steps) {
  nlohmann::json st = nlohmann::json::array();
  for (auto& s : steps) {
    st.push_back({{"t_s", s.t_s}, {"index", s.index}, {"after_ms", s.after_ms}, {"action", s.action}, {"ok", s.ok},
                  {"detail", s.detail}, {"error", s.error}});
    auto& e = st.back();
    if (!s.cgroup.empty()) e["cgroup"] = s.cgroup;
    if (s.action == "add_workers" || s.action == "remove_workers" || s.action == "move_workers") e["count"] = s.count;
    if (!s.to.empty()) e["to"] = s.to;
    if (!s.cpus.empty()) e["cpus"] = s.cpus;
    if (s.cpu >= 0) e["cpu"] = s.cpu;
  }
  return st;
}

nlohmann::json sched_json(const SchedulerRun& s) {
  nlohmann::json js = {{"name", s.name}, {"args", s.args}, {"started", s.started}, {"attached", s.attached},
                       {"attach_s", s.attach_s}, {"exited", s.exited}, {"exit_code", s.exit_code},
                       {"signal", s.signal}, {"exit_t_s", s.exit_t_s}, {"stopped_by_ktstr", s.stopped_by_ktstr}, {"log", s.log},
                       {"log_truncated", s.log_truncated}};
  if (s.started_t_s) js["started_t_s"] = *s.started_t_s;
  if (s.attached_t_s) js["attached_t_s"] = *s.attached_t_s;
  js["workload_started"] = s.workload_started;
  js["states"] = nlohmann::json::array();
  for (auto& st : s.states) js["states"].push_back({{"t_s", st.t_s}, {"state", st.state}});
  js["map_writes"] = nlohmann::json::array();
  for (auto& m : s.map_writes)
    js["map_writes"].push_back({{"t_s", m.t_s}, {"map", m.map}, {"var", m.var}, {"value", m.value},
                                {"ok", m.ok}, {"resolved_map", m.resolved_map}, {"error", m.error}});
  return js;
}

nlohmann::json monitor_json(const std::vector<MonitorSample>& monitor) {
  nlohmann::json mon = nlohmann::json::array();
  for (auto& m : monitor) {
    nlohmann::json ev = nlohmann::json::object();
    for (auto& [k, v] : m.events) ev[k] = v;
    mon.push_back({{"t_s", m.t_s}, {"nr_running", m.nr_running}, {"events", ev}, {"dsq_depth", m.dsq_depth},
                   {"sched_state", m.sched_state}});
    if (!m.nr_switches.empty()) mon.back()["nr_switches"] = m.nr_switches;
  }
  return mon;
}

nlohmann::json exit_json(const SchedExit& e) {
  nlohmann::json frames = nlohmann::json::array();
  for (auto& f : e.backtrace)
    frames.push_back({{"function", f.function}, {"offset", f.offset}, {"bpf_prog", f.bpf_prog}, {"bpf_tag", f.bpf_tag}});
  return {{"kind", e.kind}, {"reason", e.reason}, {"msg", e.msg}, {"summary", e.summary()},
          {"trigger", e.trigger}, {"exit_cpu", e.exit_cpu}, {"backtrace", frames},
          {"scheduler_state", e.scheduler_state}, {"source_location", e.source_location},
          {"failing_prog", e.failing_prog}};
}

}  // namespace

nlohmann::json to_json(const RunResult& r) {
  nlohmann::json j;
  j["name"] = r.test_name;
  j["status"] = r.passed ? "pass" : "fail";
  j["reason"] = r.reason;
  if (r.fail_at_s >= 0) j["fail_at_s"] = r.fail_at_s;
  j["scheduler"] = r.scheduler;
  j["topology"] = r.topology;
  j["scenario"] = r.scenario;
  j["kernel"] = {{"id", r.kernel_id}, {"version", r.kernel_version}};
  j["accel"] = r.accel;
  j["memory_mb"] = r.memory_mb;
  j["stage"] = r.stage;
  j["vm"] = {{"end", r.vm_end}, {"exit_code", r.vm_exit_code}, {"wall_s", r.wall_s}, {"boot_s", r.boot_s},
             {"restored", r.restored}};
  if (!r.stage_t_s.empty()) {
    auto& st = j["stage_t_s"] = nlohmann::json::object();
    for (auto& [name, t] : r.stage_t_s) st[name] = t;
  }
  if (r.repetition)
    j["repeat"] = {{"repetition", r.repetition}, {"vm", r.repeat_vm}, {"vm_repetition", r.vm_repetition}};
  if (r.seed) j["seed"] = *r.seed;
  j["workers"] = workers_json(r.workers);
  if (!r.steps.empty()) j["steps"] = steps_json(r.steps);
  if (r.guest_topology) {
    auto& g = *r.guest_topology;
    j["guest_topology"] = {{"cpus", g.cpus}, {"llc_groups", g.llc_groups},
                           {"numa_nodes", g.numa_nodes}, {"smt_groups", g.smt_groups}};
  }
  j["diagnostics"] = r.diagnostics;
  if (!r.passed) j["console_tail"] = r.console_tail;
  if (r.run_id) j["run_id"] = r.run_id;
  if (!r.failure_kind.empty()) j["failure_kind"] = r.failure_kind;
  if (!r.failed_check.empty()) j["failed_check"] = r.failed_check;
  if (!r.check_failures.empty()) {
    auto& cf = j["check_failures"] = nlohmann::json::array();
    for (auto& f : r.check_failures) {
      cf.push_back({{"check", f.check}, {"message", f.message}});
      if (f.t_s >= 0) cf.back()["t_s"] = f.t_s;
    }
  }
  if (r.sched) j["sched"] = sched_json(*r.sched);
  if (!r.sched_ext_dump.empty()) j["sched_ext_dump"] = r.sched_ext_dump;
  if (!r.dmesg.empty()) j["dmesg"] = r.dmesg;
  if (!r.monitor.empty()) j["monitor"] = monitor_json(r.monitor);
  if (r.exit) j["exit"] = exit_json(*r.exit);
  if (!r.verifier_log.empty()) j["verifier_log"] = r.verifier_log;
  if (!r.crash_id.empty()) j["crash_id"] = r.crash_id;
  if (r.expected_failure) j["expected_failure"] = true;
  if (!r.probe_setup.is_null()) j["probe_setup"] = r.probe_setup;
  if (!r.probe_events.is_null()) j["probe_events"] = r.probe_events;
  if (r.repro) j["repro"] = to_json(*r.repro);
  return j;
}

std::string render_header(const RunResult& r) {
  std::string s = "ktstr_test '" + r.test_name + "'";
  if (!r.scheduler.empty() && r.scheduler != "eevdf") s += " [sched=" + r.scheduler + "]";
  s += " [topo=" + r.topology + "]";
  if (r.passed) return s + " passed";
  s += " failed: " + r.reason;
  if (r.fail_at_s >= 0) s += fmt::format(" ({:.1f}s into test)", r.fail_at_s);
  return s;
}

// ", forks 812, wake latency p50 40us p99 210us max 1.2ms": the work
// type's counters, latencies together in one readable unit.
static std::string counters_text(const std::map<std::string, uint64_t>& counters) {
  std::string out;
  for (auto& [name, value] : counters)
    if (name.rfind("wake_latency_", 0) != 0) out += fmt::format(", {} {}", name, value);
  auto latency = [&](const char* key) -> std::string {
    auto it = counters.find(key);
    if (it == counters.end()) return "?";
    return it->second >= 1000000 ? fmt::format("{:.1f}ms", it->second / 1e6) : fmt::format("{}us", it->second / 1000);
  };
  if (counters.count("wake_latency_p99_ns"))
    out += fmt::format(", wake latency p50 {} p99 {} max {}", latency("wake_latency_p50_ns"),
                       latency("wake_latency_p99_ns"), latency("wake_latency_max_ns"));
  return out;
}

std::string render_stats(const RunResult& r) {
  if (r.workers.empty()) return "";
  // Group by cgroup, keeping first-seen order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const WorkerStats*>> by_cg;
  for (auto& w : r.workers) {
    if (!by_cg.count(w.cgroup)) order.push_back(w.cgroup);
    by_cg[w.cgroup].push_back(&w);
  }
  std::ostringstream o;
  o << "--- stats ---\n";
  for (auto& cg : order) {
    auto& ws = by_cg[cg];
    uint64_t iters = 0, cpu = 0, migr = 0, gap = 0;
    uint64_t min_it = UINT64_MAX, max_it = 0;
    for (auto* w : ws) {
      iters += w->iterations;
      cpu += w->cpu_time_ns;
      migr += w->migrations;
      gap = std::max(gap, w->max_gap_ns);
      min_it = std::min(min_it, w->iterations);
      max_it = std::max(max_it, w->iterations);
    }
    o << fmt::format("cgroup {}: {} workers ({}), iterations {} (min {} max {}), cpu {:.2f}s, "
                     "migrations {}, max gap {:.1f}ms\n",
                     cg, ws.size(), ws.front()->work, iters, min_it, max_it, cpu / 1e9, migr, gap / 1e6);
    for (auto* w : ws) {
      std::string cpus;
      for (int c : w->cpus_used) cpus += (cpus.empty() ? "" : ",") + std::to_string(c);
      o << fmt::format("  worker {}: iterations {}, cpu {:.2f}s of {:.2f}s, migrations {}, max gap {:.1f}ms, cpus [{}]{}\n",
                       w->index, w->iterations, w->cpu_time_ns / 1e9, w->wall_ns / 1e9, w->migrations,
                       w->max_gap_ns / 1e6, cpus, counters_text(w->counters));
      if (!w->moved_to.empty()) o << "    moved to cgroup " << w->moved_to << "\n";
      if (w->cpus_changed) {
        std::string since;
        for (int c : w->cpus_since_change) since += (since.empty() ? "" : ",") + std::to_string(c);
        o << "    cpus since its cpuset last changed [" << since << "]\n";
      }
    }
  }
  if (!r.steps.empty()) o << "steps:\n";
  for (auto& st : r.steps)
    o << fmt::format("  {:+.2f}s {} (due at {} ms): {}\n", st.t_s, st.action, st.after_ms,
                     st.ok ? st.detail : "FAILED: " + st.error);
  return o.str();
}

std::string render_diagnostics(const RunResult& r, const ReportOptions& opt) {
  std::ostringstream o;
  o << "--- diagnostics ---\n";
  o << "init stage: " << (r.stage.empty() ? "none (the agent never reported)" : r.stage) << "\n";
  o << "VM exit code: " << r.vm_exit_code << " (" << (r.vm_end.empty() ? "unknown" : r.vm_end) << ")\n";
  if (!r.accel.empty()) o << fmt::format("VM: {} accel, {} MB, {} {:.1f}s, wall {:.1f}s\n", r.accel, r.memory_mb,
                                        r.restored ? "restored from a snapshot in" : "boot", r.boot_s, r.wall_s);
  if (r.repetition)
    o << fmt::format("repetition {}: VM {}, repetition {} in that boot\n", r.repetition, r.repeat_vm, r.vm_repetition);
  if (r.seed) o << fmt::format("seed: {} (KTSTR_SEED; 'ktstr test --seed {}' runs it again)\n", *r.seed, *r.seed);
  for (auto& d : r.diagnostics) o << "note: " << d << "\n";
  // Tail of the kernel console: the last N lines.
  std::vector<std::string> lines;
  std::istringstream in(r.console_tail);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  size_t from = lines.size() > opt.console_lines ? lines.size() - opt.console_lines : 0;
  if (!lines.empty()) {
    o << "kernel console (last " << (lines.size() - from) << " lines):\n";
    for (size_t i = from; i < lines.size(); ++i) o << "  " << lines[i] << "\n";
  }
  return o.str();
}

std::string render_failure(const RunResult& r, const ReportOptions& opt) {
  if (r.passed) return "";
  std::string s = render_bug_summary(r);
  s += render_header(r) + "\n";
  s += render_stats(r);
  // Diagnostics appear on every failure in verbose mode, whenever the
  // scheduler died, and when the run never got as far as results.
  bool sched_died = r.sched && (r.sched->exited || r.exit);
  if (opt.verbose || sched_died || r.workers.empty()) s += render_diagnostics(r, opt);
  s += render_timeline(r);
  s += render_scheduler_log(r);
  if (!r.verifier_log.empty() && (!r.sched || r.sched->log.find(r.verifier_log) == std::string::npos))
    s += "--- verifier log ---\n" + r.verifier_log + (r.verifier_log.back() == '\n' ? "" : "\n");
  s += render_monitor(r);
  s += render_sched_ext_dump(r);
  if (r.repro) s += render_repro(*r.repro);
  s += render_crash_footer(r);
  return s;
}

std::string render_summary_line(const RunResult& r) {
  std::string rep = r.repetition ? fmt::format(" #{} (vm {})", r.repetition, r.repeat_vm) : "";
  return fmt::format("{} [{:>6.1f}s] {}{} (topo={}{})", r.passed ? "PASS" : "FAIL", r.wall_s, r.test_name, rep,
                     r.topology, r.scheduler != "eevdf" ? ", sched=" + r.scheduler : "");
}

}  // namespace ktstr
