#include "guest/vm/qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ktstr {
namespace {

constexpr size_t kMaxBuffered = 4 * 1024 * 1024;  // QEMU's replies here are small; a flood is an error

int ms_until(QmpClient::Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - QmpClient::Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

}  // namespace

Result<nlohmann::json> parse_qmp_line(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("QEMU sent a QMP message that is not a JSON object");
  return j;
}

QmpClient::~QmpClient() {
  if (fd_ >= 0) ::close(fd_);
}

Status QmpClient::parse_lines() {
  size_t nl;
  while ((nl = in_.find('\n')) != std::string::npos) {
    std::string line = in_.substr(0, nl);
    in_.erase(0, nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    auto msg = parse_qmp_line(line);
    if (!msg) return tl::unexpected(msg.error());
    if (msg->contains("event")) events_.push_back(std::move(*msg));
    else replies_.push_back(std::move(*msg));
  }
  if (in_.size() > kMaxBuffered) return fail("QEMU sent a QMP line longer than 4 MiB");
  return {};
}

bool QmpClient::read_available() {
  char buf[16 * 1024];
  while (!closed_) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      if (!parse_lines()) closed_ = true;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed_ = true;
      break;
    }
  }
  return !closed_;
}

Status QmpClient::read_some(Clock::time_point deadline, const std::string& waiting_for) {
  if (closed_) return fail("QEMU closed its QMP connection while ktstr waited for " + waiting_for);
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, ms_until(deadline));
  if (r < 0 && errno != EINTR) return fail(std::string("poll on the QMP socket failed: ") + std::strerror(errno));
  if (r == 0 && Clock::now() >= deadline) return fail("QEMU did not send " + waiting_for + " in time (QMP)");
  size_t before = events_.size() + replies_.size();
  bool open = read_available();
  if (!open && events_.size() + replies_.size() == before)
    return fail("QEMU closed its QMP connection while ktstr waited for " + waiting_for);
  return {};
}

std::deque<nlohmann::json> QmpClient::take_events() {
  std::deque<nlohmann::json> out;
  out.swap(events_);
  return out;
}

Status QmpClient::send_all(std::string_view text, int pass_fd, Clock::time_point deadline) {
  size_t off = 0;
  while (off < text.size()) {
    msghdr msg{};
    iovec iov{const_cast<char*>(text.data() + off), text.size() - off};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (pass_fd >= 0 && off == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, ms_until(deadline)) <= 0) return fail("cannot write to QEMU's QMP socket in time");
      continue;
    }
    return fail(std::string("cannot write to QEMU's QMP socket: ") + std::strerror(errno));
  }
  return {};
}

Status QmpClient::handshake(Clock::time_point deadline) {
  while (replies_.empty())
    if (auto got = read_some(deadline, "its QMP greeting"); !got) return got;
  nlohmann::json greeting = replies_.front();
  replies_.pop_front();
  if (!greeting.contains("QMP")) return fail("QEMU's first QMP message is not a greeting");
  auto ok = execute("qmp_capabilities", nlohmann::json::object(), deadline);
  if (!ok) return tl::unexpected(ok.error());
  return {};
}

Result<nlohmann::json> QmpClient::execute(std::string_view command, const nlohmann::json& arguments,
                                          Clock::time_point deadline, int pass_fd) {
  nlohmann::json cmd = {{"execute", std::string(command)}};
  if (!arguments.empty()) cmd["arguments"] = arguments;
  if (auto sent = send_all(cmd.dump() + "\n", pass_fd, deadline); !sent) return tl::unexpected(sent.error());
  const std::string waiting_for = "the reply to '" + std::string(command) + "'";
  while (replies_.empty())
    if (auto got = read_some(deadline, waiting_for); !got) return tl::unexpected(got.error());
  nlohmann::json reply = std::move(replies_.front());
  replies_.pop_front();
  if (reply.contains("error")) {
    std::string desc = reply["error"].is_object() ? reply["error"].value("desc", "") : "";
    return fail("QEMU refused '" + std::string(command) + "': " + desc);
  }
  if (!reply.contains("return")) return fail("QEMU's reply to '" + std::string(command) + "' has no result");
  return reply["return"];
}

Result<nlohmann::json> QmpClient::wait_event(std::string_view name,
                                             const std::function<bool(const nlohmann::json&)>& match,
                                             Clock::time_point deadline) {
  const std::string waiting_for = "the '" + std::string(name) + "' event";
  for (;;) {
    while (!events_.empty()) {
      nlohmann::json e = std::move(events_.front());
      events_.pop_front();
      if (e.value("event", "") != name) continue;
      nlohmann::json data = e.contains("data") ? e["data"] : nlohmann::json::object();
      if (match(data)) return data;
    }
    if (auto got = read_some(deadline, waiting_for); !got) return tl::unexpected(got.error());
  }
}

}  // namespace ktstr
