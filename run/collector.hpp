// Turns the guest's result stream into RunResult fields. Everything from the
// guest is untrusted: bad frames and bad payloads become diagnostics, and
// the counts it keeps are bounded.
#pragma once

#include "core/result.hpp"
#include "core/run_result.hpp"
#include "guest/proto/frame.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::proto {
struct HelloMsg;
struct StageMsg;
struct TopologyMsg;
struct WorkerMsg;
struct LogMsg;
struct ErrorMsg;
struct SchedStartedMsg;
struct SchedStateMsg;
struct SchedOutputMsg;
struct SchedExitedMsg;
struct MapWriteResultMsg;
struct KernelLogMsg;
struct MonitorMsg;
struct StepMsg;
struct DoneMsg;
}  // namespace ktstr::proto

namespace ktstr::runner {

class ResultCollector {
 public:
  static constexpr size_t kMaxWorkers = 4096;
  static constexpr size_t kMaxLogLines = 1000;
  // sched_ext captures; a little above the agent's own caps.
  static constexpr size_t kMaxSchedLogBytes = 5u << 20;
  static constexpr size_t kMaxTraceBytes = 3u << 20;
  static constexpr size_t kMaxDmesgBytes = 2u << 20;
  static constexpr size_t kMaxMonitorSamples = 10000;
  static constexpr size_t kMaxSchedEvents = 256;  // state changes, map writes

  void feed(const char* data, size_t len);
  // One frame already decoded elsewhere (RepeatSplitter).
  void feed_frame(const proto::Frame& f) { handle(f); }
  // End of stream: a truncated last frame becomes a diagnostic.
  void finish();

  bool hello_seen() const { return hello_seen_; }
  bool done() const { return done_; }
  bool done_ok() const { return done_ok_; }
  const std::string& done_error() const { return done_error_; }
  const std::string& stage() const { return stage_; }
  // CLOCK_BOOTTIME ms of each stage as the guest reported it.
  std::optional<uint64_t> stage_time_ms(const std::string& stage) const;
  // Every stage reported, with its CLOCK_BOOTTIME ms, in order.
  const std::vector<std::pair<std::string, uint64_t>>& stage_times() const { return stage_times_; }
  const std::optional<GuestTopology>& topology() const { return topology_; }
  const std::vector<WorkerStats>& workers() const { return workers_; }
  const std::vector<std::string>& log_lines() const { return logs_; }
  const std::vector<std::string>& errors() const { return errors_; }
  std::vector<std::string> diagnostics() const;

  // sched_ext runs. Times are seconds into the test (0 = workers_started;
  // when the workload never started, 0 = the last time the guest reported,
  // so everything reads as "before").
  double test_seconds(uint64_t t_ms) const;
  // Empty when the guest started no scheduler. name/args are left for the
  // caller (they come from the spec).
  std::optional<SchedulerRun> sched_run() const;
  // Payloads of the sched_ext_dump trace lines (text after
  // "sched_ext_dump: "), newline-joined.
  std::string sched_ext_dump() const;
  const std::vector<std::string>& trace_lines() const { return trace_lines_; }
  std::string dmesg() const;
  std::vector<MonitorSample> monitor() const;
  // The scenario's steps as the agent executed them (STEP frames).
  std::vector<StepEvent> steps() const;
  // CLOCK_BOOTTIME ms of the scheduler's exit record, when it came.
  std::optional<uint64_t> sched_exit_time_ms() const;
  // The agent stopped the scheduler at the end of the run (SIGINT after the
  // workload, or after an attach timeout): its exit is not a death.
  bool sched_stopped_by_agent() const { return sched_stopped_by_agent_; }
  // Crash-probe payloads (auto-repro runs) as the guest sent them: null
  // when none came. Parsed, with bounds, by core/repro.
  const nlohmann::json& probe_setup() const { return probe_setup_; }
  const nlohmann::json& probe_events() const { return probe_events_; }

 private:
  // One frame: its payload decoded, then handed to the on() of its type.
  void handle(const proto::Frame& f);
  template <typename Msg>
  void decode_and_handle(const proto::Frame& f);
  // A bad payload (bounded list of diagnostics).
  void note(const Error& e);
  void on(const proto::HelloMsg& m);
  void on(const proto::StageMsg& m);
  void on(const proto::TopologyMsg& m);
  void on(const proto::WorkerMsg& m);
  void on(const proto::LogMsg& m);
  void on(const proto::ErrorMsg& m);
  void on(const proto::SchedStartedMsg& m);
  void on(const proto::SchedStateMsg& m);
  void on(const proto::SchedOutputMsg& m);
  void on(const proto::SchedExitedMsg& m);
  void on(const proto::MapWriteResultMsg& m);
  void on(const proto::KernelLogMsg& m);
  void on(const proto::MonitorMsg& m);
  void on(const proto::StepMsg& m);
  void on(const proto::DoneMsg& m);

  proto::FrameDecoder decoder_;
  bool hello_seen_ = false;
  bool done_ = false;
  bool done_ok_ = false;
  std::string done_error_;
  std::string stage_;
  std::vector<std::pair<std::string, uint64_t>> stage_times_;
  std::optional<GuestTopology> topology_;
  std::vector<WorkerStats> workers_;
  std::vector<std::string> logs_;
  std::vector<std::string> errors_;
  std::vector<std::string> payload_problems_;
  uint64_t dropped_ = 0;
  uint64_t last_t_ms_ = 0;

  // sched_ext, with guest CLOCK_BOOTTIME times (converted on the way out).
  struct TimedState {
    uint64_t t_ms;
    std::string state;
  };
  struct TimedWrite {
    uint64_t t_ms;
    MapWriteEvent event;
  };
  struct TimedSample {
    uint64_t t_ms;
    MonitorSample sample;
  };
  bool sched_started_ = false;
  uint64_t sched_start_ms_ = 0;
  bool sched_exited_ = false;
  bool sched_stopped_by_agent_ = false;
  uint64_t sched_exit_ms_ = 0;
  int sched_exit_code_ = -1, sched_signal_ = 0;
  std::string sched_log_;
  bool sched_log_truncated_ = false;
  std::vector<TimedState> states_;
  std::vector<TimedWrite> map_writes_;
  std::vector<std::string> trace_lines_;
  size_t trace_bytes_ = 0;
  std::vector<std::string> dmesg_lines_;
  size_t dmesg_bytes_ = 0;
  bool kernel_log_truncated_ = false;
  std::vector<TimedSample> samples_;
  struct TimedStep {
    uint64_t t_ms;
    StepEvent event;
  };
  std::vector<TimedStep> steps_;
  nlohmann::json probe_setup_;
  nlohmann::json probe_events_;
};

}  // namespace ktstr::runner
