// A small QMP (QEMU Machine Protocol) client for the VM snapshot: stop,
// migrate to a file, cont; and migrate-incoming from one. QEMU connects to a
// socket the host listens on (like every other channel), so the client gets
// a connected, non-blocking fd. Calls block with a deadline: they run while
// the guest is paused or not yet running, so nothing else needs serving.
#pragma once

#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

namespace ktstr {

class QmpClient {
 public:
  using Clock = std::chrono::steady_clock;

  explicit QmpClient(int fd) : fd_(fd) {}  // takes ownership
  ~QmpClient();
  QmpClient(const QmpClient&) = delete;
  QmpClient& operator=(const QmpClient&) = delete;

  int fd() const { return fd_; }

  // Read QEMU's greeting and enter command mode (qmp_capabilities).
  Status handshake(Clock::time_point deadline);

  // Run one command; its "return" value, or its "error" as an Error. With
  // `pass_fd` >= 0 the fd travels with the command (SCM_RIGHTS), as `getfd`
  // needs. Events that arrive meanwhile are kept for wait_event/take_events.
  Result<nlohmann::json> execute(std::string_view command, const nlohmann::json& arguments,
                                 Clock::time_point deadline, int pass_fd = -1);

  // Wait until an event named `name` arrives whose data satisfies `match`
  // (kept events first); returns its data.
  Result<nlohmann::json> wait_event(std::string_view name, const std::function<bool(const nlohmann::json&)>& match,
                                    Clock::time_point deadline);

  // Read what has arrived without waiting (for poll() loops); false once
  // QEMU closed the connection.
  bool read_available();
  std::deque<nlohmann::json> take_events();

 private:
  // Wait for more input (or the deadline), then split it into messages.
  Status read_some(Clock::time_point deadline, const std::string& waiting_for);
  Status parse_lines();
  Status send_all(std::string_view text, int pass_fd, Clock::time_point deadline);

  int fd_ = -1;
  bool closed_ = false;
  std::string in_;
  std::deque<nlohmann::json> events_;
  std::deque<nlohmann::json> replies_;
};

// One QMP message line (parsed); a greeting, reply or event. Exposed for tests.
Result<nlohmann::json> parse_qmp_line(std::string_view line);

}  // namespace ktstr
