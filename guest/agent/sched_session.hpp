// One sched_ext scheduler's life inside the guest: spawn it with its output
// on pipes, wait for /sys/kernel/sched_ext/state to read "enabled", do the
// job's map writes, sample the monitor, stream trace_pipe's sched_ext_dump /
// sched_ext_exit lines and the kernel log, notice its death (process exit or
// the kernel disabling it) and stop it at the end. Every message goes out
// through `Sink::send` as an encoded frame; everything is bounded.
#pragma once

#include "core/result.hpp"
#include "guest/agent/kernel_sources.hpp"
#include "guest/proto/messages.hpp"

#include <functional>
#include <string>
#include <sys/types.h>

namespace ktstr::agent {

// Where the kernel interfaces live; tests point them into a scratch tree.
struct SchedPaths {
  std::string sched_ext = "/sys/kernel/sched_ext";
  std::string tracing = "/sys/kernel/tracing";
  std::string kmsg = "/dev/kmsg";
  std::string sched_debug = "/sys/kernel/debug/sched/debug";
  std::string boot = "/boot";  // the job's kernel config goes to <boot>/config-<uname -r>
};

struct SchedLimits {
  size_t max_output_bytes = 4u << 20;   // scheduler stdout+stderr per run
  size_t max_trace_bytes = 2u << 20;    // sched_ext trace lines per run
  size_t max_dmesg_bytes = 1u << 20;    // kernel log per run
  size_t max_chunk_bytes = 64u << 10;   // text per frame
  size_t max_monitor_samples = 4096;
  unsigned grace_ms = 500;              // collect after a death before ending the run
  unsigned stop_timeout_ms = 3000;      // SIGINT -> SIGKILL at the end
};

struct SchedSink {
  std::function<void(const std::string& frame)> send;
  std::function<void(const std::string& level, const std::string& text)> log;
};

enum class AttachOutcome { kEnabled, kExited, kTimedOut };

// Writes `config` (a kernel .config) to <boot_dir>/config-<uname -r>, where
// libbpf reads `__kconfig` values; returns that path. Used for scheduler
// runs and verifier jobs alike.
Result<std::string> place_boot_config(const std::string& boot_dir, const std::string& config);

class SchedSession {
 public:
  SchedSession(const proto::JobMsg& job, SchedSink sink, SchedPaths paths = {},
               SchedLimits limits = {});
  ~SchedSession();  // kills a scheduler still running
  SchedSession(const SchedSession&) = delete;
  SchedSession& operator=(const SchedSession&) = delete;

  // Puts the job's kernel config at <boot>/config-<uname -r>, enables the
  // sched_ext trace events, opens trace_pipe and /dev/kmsg (problems become
  // warn logs) and spawns the scheduler (a failure here is an error:
  // fork/pipe). An exec failure shows as exit status 127 plus a line on its
  // stderr.
  Status start();

  // Polls until the state reads "enabled", the process exits, or the job's
  // attach timeout passes.
  AttachOutcome wait_attached();

  // The map writes already due (after_ms 0 from the attach), done before
  // the workers start, so that what they set holds from the workload's
  // first moment; the rest are done by tick().
  void map_writes_due() { do_map_writes(); }

  // The workload started: map write and monitor clocks run from here.
  void workload_started();

  // One round of collecting while the workload runs; true once the run must
  // end early (the scheduler died or was disabled, plus the grace period).
  bool tick();

  // End of the run: stops a scheduler still alive (SIGINT, then SIGKILL),
  // drains its output and the kernel logs, sends SCHED_EXITED.
  void finish();

  pid_t pid() const { return pid_; }
  bool died() const { return death_ns_ != 0; }

 private:
  template <typename Msg>
  void send(const Msg& msg) {
    if (sink_.send) sink_.send(proto::encode_message(msg));
  }
  void log(const std::string& level, const std::string& text) {
    if (sink_.log) sink_.log(level, text);
  }
  void place_kernel_config();
  void setup_tracing();
  void poll_output();
  void poll_kernel_logs();
  void send_kernel_lines(const char* source, std::vector<std::string>& lines, size_t& sent_bytes,
                         size_t cap, bool& truncated);
  void poll_state();
  void poll_exit(bool block);
  void do_map_writes();
  void sample_monitor();
  void collect();  // all of the above but map writes and the monitor

  proto::JobMsg job_;
  SchedSink sink_;
  SchedPaths paths_;
  SchedLimits limits_;

  pid_t pid_ = -1;
  bool exited_ = false;
  bool stop_sent_ = false;  // the agent signalled it to stop
  NonBlockingSource stdout_, stderr_;
  size_t output_bytes_ = 0;
  bool output_truncated_ = false;

  NonBlockingSource trace_, kmsg_;
  LineBuffer trace_lines_;
  size_t trace_bytes_ = 0, dmesg_bytes_ = 0;
  bool trace_truncated_ = false, dmesg_truncated_ = false;

  std::string state_;
  bool enabled_ = false;
  uint64_t workload_ns_ = 0;    // the test clock's zero (map writes, monitor)
  uint64_t death_ns_ = 0;       // process exit or state left "enabled"
  size_t next_write_ = 0;
  uint64_t next_sample_ns_ = 0;
  size_t samples_ = 0;
  bool events_file_ = true;     // root/events readable
};

}  // namespace ktstr::agent
