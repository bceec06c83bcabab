#include "core/repro.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace ktstr {
namespace {

using nlohmann::json;

// How much of the other tasks' histories the text shows.
constexpr size_t kRenderedOtherTasks = 6;
constexpr size_t kRenderedEventsPerTask = 6;

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

std::string join_errors(const std::vector<NamedError>& v) {
  std::vector<std::string> parts;
  for (const auto& e : v) parts.push_back(e.name + " (" + e.error + ")");
  return join(parts);
}

std::string tail_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  size_t from = lines.size() > n ? lines.size() - n : 0;
  std::string out;
  for (size_t i = from; i < lines.size(); ++i) out += "  " + lines[i] + "\n";
  return out;
}

std::string arg_label(const ProbeArg& a, size_t i, const std::vector<std::string>& names) {
  if (i < names.size() && !names[i].empty()) return names[i];
  if (a.kind == "task") return "p";
  if (a.kind == "rq") return "rq";
  if (a.kind == "dsq") return "dsq";
  if (a.kind == "exit_info") return "ei";
  return "arg" + std::to_string(i);
}

// UINT64_MAX: the task is on no DSQ.
std::string dsq_text(uint64_t id) { return id == UINT64_MAX ? "none" : fmt::format("{:#x}", id); }

std::string arg_value(const ProbeArg& a) {
  if (a.kind == "task" && a.task) {
    const auto& t = *a.task;
    return fmt::format("pid={} comm={} cpus={} dsq={} slice={} vtime={} weight={} flags={:#x}", t.pid, t.comm,
                       t.cpus.empty() ? "?" : t.cpus, dsq_text(t.dsq_id), t.slice, t.vtime, t.weight, t.flags);
  }
  if (a.kind == "rq" && a.cpu >= 0) return fmt::format("cpu={}", a.cpu);
  if (a.kind == "dsq" && a.dsq_id) return "dsq=" + dsq_text(*a.dsq_id);
  if (a.kind == "exit_info" && (a.exit_kind >= 0 || !a.exit_reason.empty()))
    return fmt::format("kind={} reason={}", a.exit_kind, a.exit_reason);
  if (a.kind == "scalar") return std::to_string(static_cast<int64_t>(a.raw));
  return fmt::format("{:#x}", a.raw);
}

}  // namespace

std::vector<ProbeEvent> stitch_events(const std::vector<ProbeEvent>& events, int64_t trigger_pid, size_t per_task) {
  std::map<int64_t, std::vector<ProbeEvent>> by_task;
  for (const auto& e : events) by_task[e.pid].push_back(e);
  struct Group {
    int64_t pid;
    uint64_t latest;
    std::vector<ProbeEvent> events;
  };
  std::vector<Group> groups;
  for (auto& [pid, evs] : by_task) {
    std::stable_sort(evs.begin(), evs.end(), [](const ProbeEvent& a, const ProbeEvent& b) { return a.t_ns < b.t_ns; });
    // Duplicates: the same probe hit reported twice (kprobe.multi and a
    // single kprobe, or a resent batch).
    auto same = [](const ProbeEvent& a, const ProbeEvent& b) {
      return std::tie(a.t_ns, a.cpu, a.func, a.kind, a.ip) == std::tie(b.t_ns, b.cpu, b.func, b.kind, b.ip);
    };
    evs.erase(std::unique(evs.begin(), evs.end(), same), evs.end());
    if (evs.size() > per_task) evs.erase(evs.begin(), evs.end() - static_cast<ptrdiff_t>(per_task));
    groups.push_back({pid, evs.empty() ? 0 : evs.back().t_ns, std::move(evs)});
  }
  std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
    bool at = a.pid == trigger_pid, bt = b.pid == trigger_pid;
    if (at != bt) return at;
    return a.latest > b.latest;
  });
  std::vector<ProbeEvent> out;
  for (auto& g : groups)
    for (auto& e : g.events) out.push_back(std::move(e));
  return out;
}

std::string describe_trigger(const std::optional<ProbeSetupInfo>& setup, const std::optional<ProbeEventsInfo>& events) {
  if (!setup) return "not reported by the guest";
  const ProbeTriggerInfo& t = setup->trigger;
  std::string used = t.kind == "tp_btf" ? "tp_btf/" + t.name : t.kind == "kprobe" ? "kprobe " + t.name : t.name;
  std::string fallback_note;
  if (!t.fallback_from.empty())
    fallback_note = "; tp_btf/" + t.fallback_from + ": attach failed: " + t.fallback_error;
  if (t.status != "attached" || t.kind == "none") {
    std::string err = t.error.empty() ? "no trigger" : t.error;
    if (!t.fallback_from.empty()) err = "fallback " + used + ": " + err + fallback_note;
    return "attach failed (" + err + ")";
  }
  // Several fallback kprobes may be attached (name "a,b,c", the crash's own
  // exit frame first): name the one that fired first (the earliest trigger
  // event), else the first, and list the others after.
  std::string also;
  if (t.kind == "kprobe" && t.name.find(',') != std::string::npos) {
    const ProbeEvent* first = nullptr;
    if (events && events->trigger_fired)
      for (const auto& e : events->events)
        if (e.kind == "trigger" && (!first || e.t_ns < first->t_ns)) first = &e;
    std::string fired = first ? first->func : t.name.substr(0, t.name.find(','));
    std::vector<std::string> others;
    for (size_t pos = 0; pos <= t.name.size();) {
      size_t comma = std::min(t.name.find(',', pos), t.name.size());
      std::string n = t.name.substr(pos, comma - pos);
      if (!n.empty() && n != fired) others.push_back(n);
      pos = comma + 1;
    }
    used = "kprobe " + fired;
    if (!others.empty()) also = "; also attached: " + join(others, ",");
  }
  std::string what = t.fallback_from.empty() ? used + also : "fallback " + used + fallback_note + also;
  return (events && events->trigger_fired ? "fired (" : "not fired (") + what + ")";
}

ProbeAccounting account_probes(const ProbeTargets& targets, const std::optional<ProbeSetupInfo>& setup,
                               const std::optional<ProbeEventsInfo>& events, size_t stitched) {
  ProbeAccounting a;
  a.extracted = targets.extracted.size();
  // Every extracted name ends up passed or dropped: dropped on the host
  // (generic frames, BPF frames, trampolines) or by the guest (not traceable).
  for (const auto& d : targets.dropped) a.traceable_dropped.push_back(d.function);
  for (const auto& f : targets.kernel_functions) {
    if (setup && contains(setup->traceable, f))
      ++a.traceable_passed;
    else
      a.traceable_dropped.push_back(f);
  }
  if (setup) {
    a.bpf_discovered = setup->bpf_discovered.size();
    size_t bpf_targets = 0;
    if (targets.bpf_programs.empty())
      bpf_targets = setup->bpf_discovered.size();
    else if (setup->bpf_discovered.empty())
      bpf_targets = targets.bpf_programs.size();
    else
      for (const auto& p : targets.bpf_programs) bpf_targets += contains(setup->bpf_discovered, p);
    a.after_expand = a.traceable_passed + bpf_targets;
    a.kprobes_attached = setup->kprobes_attached.size();
    a.kprobe_failures = setup->kprobe_failures;
    a.fentry_attached = setup->fentry_attached.size();
    a.fentry_failures = setup->fentry_failures;
  }
  a.trigger = describe_trigger(setup, events);
  if (events) {
    std::set<std::pair<int64_t, std::string>> keys;
    for (const auto& e : events->events)
      if (e.kind != "trigger") keys.emplace(e.pid, e.func);
    a.probe_keys = keys.size();
    a.unmatched_ips = events->unmatched_ips;
    a.events_captured = std::max<uint64_t>(events->events_total, events->events.size());
  }
  a.events_after_stitch = stitched;
  return a;
}

std::string reproduced_text(const ReproResult& r) {
  if (r.outcome == "same") return "yes (same signature)";
  if (r.outcome == "different") return "no — a different crash: " + r.different_summary;
  return "no — the scheduler did not crash";
}

std::string render_probe_event(const ProbeEvent& e, uint64_t t0_ns, const std::vector<std::string>& arg_names) {
  double dt = e.t_ns >= t0_ns ? (e.t_ns - t0_ns) / 1e9 : -((t0_ns - e.t_ns) / 1e9);
  std::string s = fmt::format("  {:+.6f}s cpu{} {} {}", dt, e.cpu, e.kind, e.func);
  if (!e.source.empty()) s += " (" + e.source + ")";
  std::vector<std::string> parts;
  for (size_t i = 0; i < e.args.size(); ++i) {
    if (e.args[i].kind == "none" || e.args[i].kind.empty()) continue;
    parts.push_back(arg_label(e.args[i], i, arg_names) + ": " + arg_value(e.args[i]));
  }
  if (!parts.empty()) s += " " + join(parts, ", ");
  if (e.ret && e.kind == "fexit") s += fmt::format(" ret={}", *e.ret);
  return s;
}

std::string render_repro(const ReproResult& r) {
  const ProbeAccounting& a = r.accounting;
  std::ostringstream o;
  o << "--- auto-repro ---\n";
  if (r.seed) o << "seed: " << *r.seed << " (the crashed run's)\n";
  o << "--- probe pipeline ---\n";
  o << "extracted: " << a.extracted << " functions from crash backtrace\n";
  o << "traceable: " << a.traceable_passed << " passed, " << a.traceable_dropped.size() << " dropped";
  if (!a.traceable_dropped.empty()) o << ": " << join(a.traceable_dropped);
  o << "\n";
  o << "bpf_discover: " << a.bpf_discovered << " programs found\n";
  o << "after_expand: " << a.after_expand << " total probe targets\n";
  o << "kprobes: " << a.kprobes_attached << " attached";
  if (!a.kprobe_failures.empty()) o << ", " << a.kprobe_failures.size() << " failed: " << join_errors(a.kprobe_failures);
  o << "\n";
  o << "fentry: " << a.fentry_attached << " attached";
  if (!a.fentry_failures.empty()) o << ", " << a.fentry_failures.size() << " failed: " << join_errors(a.fentry_failures);
  o << "\n";
  o << "trigger: " << a.trigger << "\n";
  o << "probe_data: " << a.probe_keys << " keys, " << a.unmatched_ips << " unmatched IPs\n";
  o << "events: " << a.events_captured << " captured, " << a.events_after_stitch << " after stitch\n";
  o << fmt::format("repro VM duration: {:.1f}s\n", r.duration_s);

  // Why each dropped name was dropped: host reasons, then the guest's.
  std::vector<std::string> why;
  for (const auto& d : r.targets.dropped) why.push_back(d.function + ": " + d.why);
  if (r.setup)
    for (const auto& u : r.setup->untraceable) why.push_back(u.name + ": " + (u.error.empty() ? "not traceable" : u.error));
  if (!why.empty()) {
    o << "dropped:\n";
    for (const auto& w : why) o << "  " << w << "\n";
  }
  if (!r.targets.bridges.empty())
    o << "bridges (kernel callers of BPF ops " << join(r.targets.ops) << "): " << join(r.targets.bridges) << "\n";

  if (!r.stitched.empty()) {
    std::map<std::string, std::vector<std::string>> arg_names;
    for (const auto& f : r.plan.kernel_functions) arg_names[f.name] = f.arg_names;
    uint64_t t0 = UINT64_MAX;
    for (const auto& e : r.stitched) t0 = std::min(t0, e.t_ns);
    o << "--- probe events ---\n";
    int64_t trigger_pid = r.events && r.events->trigger_fired ? r.events->trigger_pid : INT64_MIN;
    // The stitched events come grouped by task. The triggering task shows
    // its whole history; the others their latest few (--json has all).
    size_t shown_tasks = 0, hidden_tasks = 0, hidden_events = 0;
    for (size_t i = 0; i < r.stitched.size();) {
      size_t end = i;
      while (end < r.stitched.size() && r.stitched[end].pid == r.stitched[i].pid) ++end;
      const ProbeEvent& first = r.stitched[i];
      bool trigger_task = first.pid == trigger_pid;
      size_t n = end - i;
      if (!trigger_task && shown_tasks >= kRenderedOtherTasks) {
        ++hidden_tasks;
        hidden_events += n;
        i = end;
        continue;
      }
      if (!trigger_task) ++shown_tasks;
      size_t from = trigger_task ? i : std::max(i, end - std::min(n, kRenderedEventsPerTask));
      o << fmt::format("task {}[{}]: {} events{}\n", first.comm, first.pid, n, trigger_task ? " (triggered the exit)" : "");
      if (from > i) o << fmt::format("  [... {} earlier events omitted ...]\n", from - i);
      for (size_t k = from; k < end; ++k) {
        auto it = arg_names.find(r.stitched[k].func);
        o << render_probe_event(r.stitched[k], t0, it == arg_names.end() ? std::vector<std::string>{} : it->second)
          << "\n";
      }
      i = end;
    }
    if (hidden_tasks)
      o << fmt::format("[... {} more tasks ({} events) omitted; 'ktstr repro --json' lists them ...]\n", hidden_tasks,
                       hidden_events);
  }
  if (!r.sched_log_tail.empty() || !r.dump_tail.empty() || !r.dmesg_tail.empty()) {
    o << "--- repro diagnostics ---\n";
    if (!r.repro_reason.empty()) o << "repro run: " << r.repro_reason << "\n";
    if (!r.sched_log_tail.empty()) o << "scheduler log (tail):\n" << tail_lines(r.sched_log_tail, 1000);
    if (!r.dump_tail.empty()) o << "sched_ext dump (tail):\n" << tail_lines(r.dump_tail, 1000);
    if (!r.dmesg_tail.empty()) o << "dmesg (tail):\n" << tail_lines(r.dmesg_tail, 1000);
  }
  for (const auto& n : r.notes) o << "note: " << n << "\n";
  o << "reproduced: " << reproduced_text(r) << "\n";
  return o.str();
}

json to_json(const ReproResult& r) {
  const ProbeAccounting& a = r.accounting;
  auto errs = [](const std::vector<NamedError>& v) {
    json arr = json::array();
    for (const auto& e : v) arr.push_back({{"name", e.name}, {"error", e.error}});
    return arr;
  };
  json dropped = json::array();
  for (const auto& d : r.targets.dropped) dropped.push_back({{"function", d.function}, {"why", d.why}});
  json events = json::array();
  for (const auto& e : r.stitched) events.push_back(to_json(e));
  json j = {
      {"crash_id", r.crash_id},
      {"kernel", {{"id", r.kernel_id}, {"version", r.kernel_version}}},
      {"targets",
       {{"extracted", r.targets.extracted},
        {"kernel_functions", r.targets.kernel_functions},
        {"bridges", r.targets.bridges},
        {"ops", r.targets.ops},
        {"bpf_programs", r.targets.bpf_programs},
        {"dropped", dropped},
        {"fallback_trigger", r.targets.fallback_trigger}}},
      {"plan", probe_plan_json(r.plan)},
      {"pipeline",
       {{"extracted", a.extracted},
        {"traceable_passed", a.traceable_passed},
        {"traceable_dropped", a.traceable_dropped},
        {"bpf_discovered", a.bpf_discovered},
        {"after_expand", a.after_expand},
        {"kprobes_attached", a.kprobes_attached},
        {"kprobe_failures", errs(a.kprobe_failures)},
        {"fentry_attached", a.fentry_attached},
        {"fentry_failures", errs(a.fentry_failures)},
        {"trigger", a.trigger},
        {"probe_keys", a.probe_keys},
        {"unmatched_ips", a.unmatched_ips},
        {"events_captured", a.events_captured},
        {"events_after_stitch", a.events_after_stitch}}},
      {"duration_s", r.duration_s},
      {"seed", r.seed ? json(*r.seed) : json(nullptr)},
      {"events", events},
      {"trigger_fired", r.events && r.events->trigger_fired},
      {"outcome", r.outcome},
      {"reproduced", r.reproduced()},
      {"reproduced_text", reproduced_text(r)},
      {"notes", r.notes},
  };
  // The argument names (host-side, from BTF) name the decoded arguments
  // when the report is rendered again from this JSON (cmd/ records a
  // worker's repro this way); the guest's plan never carries them.
  auto& plan_functions = j["plan"]["kernel_functions"];
  for (size_t i = 0; i < r.plan.kernel_functions.size() && i < plan_functions.size(); ++i)
    if (!r.plan.kernel_functions[i].arg_names.empty())
      plan_functions[i]["arg_names"] = r.plan.kernel_functions[i].arg_names;
  if (r.setup) j["setup"] = to_json(*r.setup);
  if (r.events) {
    j["trigger"] = {{"fired", r.events->trigger_fired}, {"t_ns", r.events->trigger_t_ns},
                    {"pid", r.events->trigger_pid},     {"cpu", r.events->trigger_cpu},
                    {"exit_kind", r.events->exit_kind}, {"exit_reason", r.events->exit_reason}};
  }
  if (!r.different_summary.empty()) j["different_summary"] = r.different_summary;
  if (!r.repro_reason.empty()) j["repro_reason"] = r.repro_reason;
  j["diagnostics"] = {{"sched_log_tail", r.sched_log_tail}, {"dump_tail", r.dump_tail}, {"dmesg_tail", r.dmesg_tail}};
  j["timing"] = {{"btf_s", r.timing.btf_s},
                 {"stitch_s", r.timing.stitch_s},
                 {"kernel_probes_s", r.timing.kernel_probes_s},
                 {"program_probes_s", r.timing.program_probes_s},
                 {"boot_s", r.timing.boot_s},
                 {"events_bytes", r.timing.events_bytes}};
  if (r.timing.probes_set_s) j["timing"]["probes_set_s"] = *r.timing.probes_set_s;
  for (auto& [name, ms] : r.timing.guest_ms) j["timing"]["guest_ms"][name] = ms;
  return j;
}

}  // namespace ktstr
