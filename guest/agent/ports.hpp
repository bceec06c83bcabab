// virtio-serial ports: found by name under /sys/class/virtio-ports, opened
// once. Until the host side connects, guest reads see EOF and writes block,
// so both directions poll with deadlines instead of blocking.
#pragma once

#include "core/result.hpp"
#include "guest/proto/frame.hpp"

#include <optional>
#include <string>

namespace ktstr::agent {

inline constexpr const char* kControlPort = "ktstr.control";  // host -> guest
inline constexpr const char* kResultsPort = "ktstr.results";  // guest -> host
inline constexpr const char* kSchedPort = "ktstr.sched";      // scheduler output (later)

// /dev/vportNpM of the port named `name`, or nullopt.
std::optional<std::string> find_port_device(const std::string& name,
                                            const std::string& sysfs = "/sys",
                                            const std::string& dev = "/dev");

// One open port (or any fd: tests use pipes and socketpairs). Non-blocking.
class Port {
 public:
  Port() = default;
  explicit Port(int fd);  // takes ownership, sets O_NONBLOCK
  Port(Port&& other) noexcept;
  Port& operator=(Port&& other) noexcept;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;
  ~Port();

  static Result<Port> open(const std::string& device, int flags);

  bool is_open() const { return fd_ >= 0; }
  int fd() const { return fd_; }

  // Writes everything within `timeout_ms` (waiting for the host to connect
  // and to drain). After one timeout the port counts as broken and later
  // writes fail at once, so a vanished host costs one timeout, not one each.
  Status write_all(const std::string& data, unsigned timeout_ms);

  // Next frame within `timeout_ms`; decoder diagnostics stay in `decoder`.
  Result<proto::Frame> read_frame(proto::FrameDecoder& decoder, unsigned timeout_ms);

 private:
  int fd_ = -1;
  bool broken_ = false;
};

}  // namespace ktstr::agent
