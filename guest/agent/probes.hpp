// The in-guest probe runner of an auto-repro run (JOB `probes`): kprobes on
// the crash chain's kernel functions and the trigger (tp_btf/sched_ext_exit,
// else fallback kprobes: the plan's, from the crash's own backtrace, then
// every traceable exit-path function of the running kernel's BTF; the first
// to fire is the trigger) before the scheduler starts, fentry/fexit on the
// scheduler's struct_ops programs as they appear, a bounded per-task history
// of the ring buffer's events, and one PROBE_SETUP plus one PROBE_EVENTS
// frame. Nothing here throws or aborts the run: failures become report fields.
#pragma once

#include "guest/agent/probe_history.hpp"
#include "guest/proto/messages.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

struct btf;

namespace ktstr::agent {

struct ProbeSink {
  std::function<void(const std::string& frame)> send;
  std::function<void(const std::string& level, const std::string& text)> log;
};

// Reads `path` (available_filter_functions: one "name [module]" per line)
// in chunks, keeping only names in `wanted`; at most `max_bytes` are read.
std::vector<std::string> find_traceable(const std::string& path, const std::vector<std::string>& wanted,
                                        size_t max_bytes = 64u << 20);

// A function on the sched_ext exit path of the running kernel, found by its
// prototype rather than its name (the names change between versions:
// scx_ops_exit_kind, scx_kf_exit, scx_exit, scx_vexit, scx_exit_bstr,
// scx_claim_exit...): it takes an `enum scx_exit_kind`.
struct ExitPathFunction {
  std::string name;
  int kind_arg = -1;  // index of the enum scx_exit_kind parameter
};
// Every FUNC of `b` with an `enum scx_exit_kind` parameter (through
// typedefs and qualifiers), in BTF order, at most `max`.
std::vector<ExitPathFunction> exit_kind_functions(const btf* b, size_t max = 32);

// Trigger kprobes attached when the tracepoint is missing, at most.
inline constexpr size_t kMaxTriggerKprobes = 8;

class ProbeRunner {
 public:
  ProbeRunner(proto::ProbePlan plan, ProbeSink sink, std::string tracing_dir = "/sys/kernel/tracing");
  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  // Before the scheduler starts: traceable split, kprobes, the trigger, and
  // the highest BPF program id so far (later struct_ops programs are the
  // scheduler's).
  void attach_kernel();
  // The same on a thread of its own, so the scheduler can load meanwhile
  // (plan.kernel_probes_parallel). The baseline is taken first, here; once
  // the thread has made the shared maps, poll_programs probes the
  // scheduler's programs meanwhile; programs_ready waits for the thread,
  // so the workload never starts unprobed.
  void attach_kernel_async();
  // While waiting for the scheduler to attach (call often): fentry/fexit on
  // newly loaded struct_ops programs the plan wants.
  void poll_programs();
  // The scheduler is enabled (or gave up): a last discovery, then PROBE_SETUP.
  void programs_ready();
  // Drains the ring buffer; sends PROBE_EVENTS ~300 ms after the trigger.
  void tick();
  // End of the run: drains and sends PROBE_EVENTS if not sent yet.
  void finish();

  bool events_sent() const { return events_sent_; }

 private:
  struct Impl;
  void send_events();
  // The tracepoint did not attach: kprobes on the exit path instead.
  void attach_fallback_triggers(const std::string& filter_path, const std::string& tp_error);
  void log(const std::string& level, const std::string& text);
  void take_baseline();
  // Joins the kernel-attach thread (if any) and sends the logs it kept.
  void join_kernel();

  proto::ProbePlan plan_;
  ProbeSink sink_;
  std::string tracing_dir_;
  std::unique_ptr<Impl> impl_;
  proto::ProbeSetupMsg setup_;
  bool setup_sent_ = false;
  uint64_t programs_ns_ = 0;  // attaching fentry/fexit to the scheduler's programs
  bool baseline_taken_ = false;  // set before the thread starts
  // The shared maps exist (set by attach_kernel, on its thread or not).
  std::atomic<bool> maps_ready_{false};
  // attach_kernel_async: its thread, and the log lines it gives (kept until
  // the join: frames go out from the agent's thread only).
  std::thread kernel_thread_;
  const std::thread::id owner_thread_ = std::this_thread::get_id();
  std::vector<std::pair<std::string, std::string>> deferred_logs_;
  bool events_sent_ = false;
  ProbeHistory history_;
  std::optional<TriggerHit> trigger_;
  uint64_t trigger_seen_ns_ = 0;  // monotonic, when the agent saw the trigger
};

}  // namespace ktstr::agent
