#include "guest/agent/ports.hpp"

#include "guest/agent/util.hpp"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace ktstr::agent {

std::optional<std::string> find_port_device(const std::string& name, const std::string& sysfs,
                                            const std::string& dev) {
  std::string dir = sysfs + "/class/virtio-ports";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return std::nullopt;
  std::optional<std::string> found;
  while (dirent* e = ::readdir(d)) {
    std::string entry = e->d_name;
    if (entry == "." || entry == "..") continue;
    auto port_name = read_trimmed(dir + "/" + entry + "/name");
    if (port_name && *port_name == name) {
      found = dev + "/" + entry;
      break;
    }
  }
  ::closedir(d);
  return found;
}

Port::Port(int fd) : fd_(fd) {
  if (fd_ >= 0) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

Port::Port(Port&& other) noexcept : fd_(other.fd_), broken_(other.broken_) { other.fd_ = -1; }

Port& Port::operator=(Port&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    broken_ = other.broken_;
    other.fd_ = -1;
  }
  return *this;
}

Port::~Port() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Port> Port::open(const std::string& device, int flags) {
  int fd = ::open(device.c_str(), flags | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail("cannot open '" + device + "': " + errno_text(errno));
  return Port(fd);
}

namespace {

// Milliseconds left until `deadline_ns`, at least 0.
int remaining_ms(uint64_t deadline_ns) {
  uint64_t now = monotonic_ns();
  return now >= deadline_ns ? 0 : static_cast<int>((deadline_ns - now + 999999) / 1000000);
}

}  // namespace

Status Port::write_all(const std::string& data, unsigned timeout_ms) {
  if (fd_ < 0) return fail("port is not open");
  if (broken_) return fail("port timed out earlier");
  uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1000000ull;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return fail("writing port: " + errno_text(errno));
    int left = remaining_ms(deadline);
    if (left == 0) {
      broken_ = true;
      return fail("writing port: timed out after " + std::to_string(timeout_ms) + " ms");
    }
    pollfd p{fd_, POLLOUT, 0};
    int r = ::poll(&p, 1, left < 100 ? left : 100);
    // POLLHUP without POLLOUT: host not connected yet; poll returns at once.
    if (r > 0 && (p.revents & POLLHUP) && !(p.revents & POLLOUT)) sleep_ms(10);
  }
  return {};
}

Result<proto::Frame> Port::read_frame(proto::FrameDecoder& decoder, unsigned timeout_ms) {
  if (fd_ < 0) return fail("port is not open");
  uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1000000ull;
  char buf[4096];
  for (;;) {
    if (auto frame = decoder.next()) return std::move(*frame);
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) {
      decoder.feed(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return fail("reading port: " + errno_text(errno));
    int left = remaining_ms(deadline);
    if (left == 0) return fail("no frame within " + std::to_string(timeout_ms) + " ms");
    if (n == 0) {
      // EOF: the host has not connected (virtio) or closed (pipe); retry.
      sleep_ms(left < 20 ? left : 20);
      continue;
    }
    pollfd p{fd_, POLLIN, 0};
    ::poll(&p, 1, left < 100 ? left : 100);
  }
}

}  // namespace ktstr::agent
