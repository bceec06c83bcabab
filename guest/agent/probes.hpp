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
#include <mutex>
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

// How long the probes keep collecting after the trigger.
inline constexpr unsigned kProbeTriggerTailMs = 300;

// Trigger kprobes attached when the tracepoint is missing, at most.
inline constexpr size_t kMaxTriggerKprobes = 8;

// The kernel side's BPF object (kprobe.multi, the tp_btf trigger and the
// shared maps), loaded before any job: a guest snapshotted while it waits
// for its job carries it loaded into every restore, so a replay pays
// neither its BTF parse nor its verification (most of the probes' attach
// time under TCG). Loaded but attached to nothing, it costs no run anything.
struct KernelProbeObject;
struct KernelProbeObjectDeleter {
  void operator()(KernelProbeObject* k) const;
};
using PreloadedProbes = std::unique_ptr<KernelProbeObject, KernelProbeObjectDeleter>;
// Never null; a failed load is kept (a ProbeRunner then loads its own).
PreloadedProbes preload_kernel_probes(const std::string& tracepoint);
// "kprobe.multi and tp_btf/sched_ext_exit loaded in N ms", or the error.
std::string preload_summary(const KernelProbeObject& k);

class ProbeRunner {
 public:
  // `preloaded`: used when it loaded and has the plan's trigger tracepoint.
  ProbeRunner(proto::ProbePlan plan, ProbeSink sink, std::string tracing_dir = "/sys/kernel/tracing",
              PreloadedProbes preloaded = nullptr);
  ~ProbeRunner();
  ProbeRunner(const ProbeRunner&) = delete;
  ProbeRunner& operator=(const ProbeRunner&) = delete;

  // Before the scheduler starts. Takes the highest BPF program id so far
  // (later struct_ops programs are the scheduler's), then attaches the
  // kernel side (traceable split, kprobes, the trigger): here, or with
  // plan.kernel_probes_parallel on a thread of its own while the scheduler
  // loads. A second thread puts fentry/fexit on the scheduler's struct_ops
  // programs as they appear, once the shared maps exist. Until setup is
  // sent, those threads own everything; the caller's thread owns it after.
  void start();
  // plan.probes_during_workload: start() only took the baseline; this
  // starts both threads (call once the workload runs). Otherwise a no-op.
  void launch();
  // The scheduler is enabled (or gave up): the program thread makes a last
  // discovery (after the kernel side is done) and ends.
  void scheduler_settled();
  // Waits for both threads, then sends PROBE_SETUP (once).
  void send_setup();
  // Sends PROBE_SETUP once the threads are done (without waiting for them),
  // drains the ring buffer after that, and sends PROBE_EVENTS ~300 ms after
  // the trigger when `may_send`.
  void tick(bool may_send = true);
  // End of the run: send_setup, a last drain, PROBE_EVENTS if not sent yet.
  void finish();

  bool events_sent() const { return events_sent_; }

 private:
  struct Impl;
  void send_events();
  // The tracepoint did not attach: kprobes on the exit path instead.
  void attach_fallback_triggers(const std::string& filter_path, const std::string& tp_error);
  void log(const std::string& level, const std::string& text);
  void take_baseline();
  void attach_kernel();
  struct KernelAttach;  // one attach_kernel run (probes.cpp)
  // fentry/fexit on newly loaded struct_ops programs the plan wants.
  void poll_programs();
  // The program thread: polls until scheduler_settled, then waits for the
  // kernel side and polls once more.
  void watch_programs();

  proto::ProbePlan plan_;
  ProbeSink sink_;
  std::string tracing_dir_;
  PreloadedProbes preloaded_;  // taken by attach_kernel
  std::unique_ptr<Impl> impl_;
  proto::ProbeSetupMsg setup_;
  bool setup_sent_ = false;
  uint64_t programs_ns_ = 0;  // attaching fentry/fexit to the scheduler's programs (program thread)
  uint64_t program_load_ns_ = 0;  // of which loading (BTF parse and verifier)
  // The shared maps exist (set by attach_kernel, on its thread or not).
  std::atomic<bool> maps_ready_{false};
  std::atomic<bool> settled_{false};       // scheduler_settled was called
  std::atomic<bool> kernel_done_{false};   // attach_kernel has returned
  bool launched_ = false;
  std::atomic<bool> threads_done_{false};  // the program thread has ended
  uint64_t ready_ms_ = 0;                  // boottime when the program thread ended
  // The kernel-attach thread (joined by the program thread) and the program
  // thread (joined by send_setup). Their log lines are kept until then:
  // frames go out from the agent's thread only.
  std::thread kernel_thread_;
  std::thread program_thread_;
  const std::thread::id owner_thread_ = std::this_thread::get_id();
  std::mutex logs_mutex_;
  std::vector<std::pair<std::string, std::string>> deferred_logs_;
  bool events_sent_ = false;
  ProbeHistory history_;
  std::optional<TriggerHit> trigger_;
  uint64_t trigger_seen_ns_ = 0;  // monotonic, when the agent saw the trigger
};

}  // namespace ktstr::agent
