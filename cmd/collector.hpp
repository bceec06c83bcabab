// Turns the guest's result stream into RunResult fields. Everything from the
// guest is untrusted: bad frames and bad payloads become diagnostics, and
// the counts it keeps are bounded.
#pragma once

#include "core/run_result.hpp"
#include "guest/proto/frame.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::cmd {

class ResultCollector {
 public:
  static constexpr size_t kMaxWorkers = 4096;
  static constexpr size_t kMaxLogLines = 1000;

  void feed(const char* data, size_t len);
  // End of stream: a truncated last frame becomes a diagnostic.
  void finish();

  bool hello_seen() const { return hello_seen_; }
  bool done() const { return done_; }
  bool done_ok() const { return done_ok_; }
  const std::string& done_error() const { return done_error_; }
  const std::string& stage() const { return stage_; }
  // CLOCK_BOOTTIME ms of each stage as the guest reported it.
  std::optional<uint64_t> stage_time_ms(const std::string& stage) const;
  const std::optional<GuestTopology>& topology() const { return topology_; }
  const std::vector<WorkerStats>& workers() const { return workers_; }
  const std::vector<std::string>& log_lines() const { return logs_; }
  const std::vector<std::string>& errors() const { return errors_; }
  std::vector<std::string> diagnostics() const;

 private:
  void handle(const proto::Frame& f);

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
};

}  // namespace ktstr::cmd
