// The sched_ext sections of a failure report: BUG SUMMARY, timeline,
// scheduler log, monitor, sched_ext dump and the crash's closing lines. All
// text comes from captured data in the RunResult.
#include "core/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

namespace ktstr {
namespace {

// The last `max_lines` lines of `text`, with a note when lines were cut.
std::string tail_lines(const std::string& text, size_t max_lines) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::string out;
  size_t from = lines.size() > max_lines ? lines.size() - max_lines : 0;
  if (from) out += fmt::format("[... {} earlier lines omitted ...]\n", from);
  for (size_t i = from; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

std::string join_counts(const std::vector<unsigned>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : " ") + std::to_string(x);
  return "[" + s + "]";
}

}  // namespace

std::string render_bug_summary(const RunResult& r) {
  if (!r.exit) return "";
  return "BUG SUMMARY: " + r.exit->summary() + "\n";
}

std::string render_timeline(const RunResult& r) {
  // Starting the workers takes the agent well under this; more means it was
  // held off the CPU.
  constexpr double kWorkloadLateS = 1.0;
  if (!r.sched && r.monitor.empty()) return "";
  struct Event {
    double t;
    std::string what;
  };
  std::vector<Event> ev;
  if (r.sched) {
    const auto& s = *r.sched;
    if (s.started_t_s) ev.push_back({*s.started_t_s, "scheduler process started"});
    bool attach_said = false;
    for (auto& st : s.states) {
      std::string what = "sched_ext state: " + st.state;
      if (s.attached && st.state == "enabled" && !attach_said) {
        what += fmt::format(" (scheduler attached {:.2f}s after it started)", s.attach_s);
        attach_said = true;
      }
      ev.push_back({st.t_s, what});
    }
    // The workload starts at 0 when the agent gets to start it. A scheduler
    // that keeps the agent off the CPU delays that, however early it
    // attached: say how long the workload waited, not only the attach time.
    if (s.attached && s.workload_started) {
      std::string what = "workload started";
      if (s.attached_t_s) {
        const double waited = -*s.attached_t_s;
        what += waited >= kWorkloadLateS
                    ? fmt::format("; it could not start for {:.2f}s after the scheduler attached (the guest "
                                  "agent that starts it did not get to run)",
                                  waited)
                    : fmt::format(" ({:.2f}s after the scheduler attached)", waited);
      }
      ev.push_back({0, what});
    } else if (s.attached && s.attached_t_s) {
      ev.push_back({*s.attached_t_s, "the workload never started: the run ended before the guest agent could start it"});
    }
    for (auto& m : s.map_writes)
      ev.push_back({m.t_s, m.ok ? fmt::format("map write {}:{} = {} ({})", m.map, m.var, m.value, m.resolved_map)
                                : fmt::format("map write {}:{} = {} failed: {}", m.map, m.var, m.value, m.error)});
    if (s.exited)
      ev.push_back({s.exit_t_s, s.signal ? fmt::format("scheduler process killed by signal {}", s.signal)
                                         : fmt::format("scheduler process exited with status {}", s.exit_code)});
  }
  std::stable_sort(ev.begin(), ev.end(), [](const Event& a, const Event& b) { return a.t < b.t; });
  std::ostringstream o;
  o << "--- timeline ---\n";
  for (auto& e : ev) o << fmt::format("{:>+8.2f}s  {}\n", e.t, e.what);
  if (!r.monitor.empty()) {
    // Phases: consecutive samples with the same sched_ext state.
    size_t i = 0;
    while (i < r.monitor.size()) {
      size_t j = i;
      unsigned peak = 0;
      while (j < r.monitor.size() && r.monitor[j].sched_state == r.monitor[i].sched_state) {
        for (auto n : r.monitor[j].nr_running) peak = std::max(peak, n);
        ++j;
      }
      const auto& first = r.monitor[i];
      const auto& last = r.monitor[j - 1];
      o << fmt::format("phase {:+.2f}s..{:+.2f}s: sched_ext {}, {} samples, peak nr_running {}, last {}\n", first.t_s,
                       last.t_s, first.sched_state.empty() ? "n/a" : first.sched_state, j - i, peak,
                       join_counts(last.nr_running));
      i = j;
    }
  }
  return o.str();
}

std::string render_scheduler_log(const RunResult& r, size_t max_lines) {
  if (!r.sched || r.sched->log.empty()) return "";
  std::string s = "--- scheduler log ---\n" + tail_lines(r.sched->log, max_lines);
  if (r.sched->log_truncated) s += "[scheduler output was truncated by the guest's size limit]\n";
  return s;
}

std::string render_monitor(const RunResult& r) {
  if (!r.sched && r.monitor.empty()) return "";
  std::ostringstream o;
  o << "--- monitor ---\n";
  if (!r.monitor.empty()) {
    unsigned peak = 0;
    double peak_t = 0;
    for (auto& m : r.monitor)
      for (auto n : m.nr_running)
        if (n > peak) {
          peak = n;
          peak_t = m.t_s;
        }
    o << fmt::format("samples: {} over {:.2f}s..{:.2f}s; peak per-CPU nr_running {} at {:+.2f}s\n", r.monitor.size(),
                     r.monitor.front().t_s, r.monitor.back().t_s, peak, peak_t);
    const auto& first = r.monitor.front().events;
    const auto& last = r.monitor.back().events;
    std::vector<std::string> deltas;
    for (auto& [name, v] : last) {
      int64_t before = 0;
      for (auto& [n0, v0] : first)
        if (n0 == name) before = v0;
      if (v - before) deltas.push_back(fmt::format("{} +{}", name, v - before));
    }
    if (!deltas.empty()) {
      o << "sched_ext events:";
      for (auto& d : deltas) o << " " << d << ";";
      o << "\n";
    }
    int64_t dsq_peak = -1;
    for (auto& m : r.monitor) dsq_peak = std::max(dsq_peak, m.dsq_depth);
    if (dsq_peak >= 0) o << "peak DSQ depth: " << dsq_peak << "\n";
  }
  // The verdict: what the host concluded from the run.
  std::string verdict;
  if (r.exit && r.exit->is_stall())
    verdict = "stall: the kernel watchdog ejected the scheduler (" + r.exit->summary() + ")";
  else if (r.exit)
    verdict = "scheduler died: " + r.exit->summary();
  else if (r.sched && !r.sched->attached)
    verdict = r.failure_kind == "attach_failed" && !r.reason.empty() ? r.reason : "scheduler never attached";
  else if (r.sched && r.sched->exited)
    verdict = "scheduler exited without an exit record";
  else
    verdict = r.passed ? "healthy" : "no scheduler fault seen";
  o << "verdict: " << verdict << "\n";
  return o.str();
}

std::string render_sched_ext_dump(const RunResult& r, size_t max_lines) {
  if (r.sched_ext_dump.empty()) return "";
  return "--- sched_ext dump ---\n" + tail_lines(r.sched_ext_dump, max_lines);
}

std::string render_crash_footer(const RunResult& r) {
  if (r.crash_id.empty()) return "";
  return fmt::format("crash {} recorded\n  replay: ktstr repro {}\n  pin:    ktstr pin {}\n", r.crash_id, r.crash_id,
                     r.crash_id);
}

}  // namespace ktstr
