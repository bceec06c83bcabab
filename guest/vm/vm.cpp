#include "guest/vm/vm.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ktstr {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerWakeup = 16;               // fairness between channels
constexpr size_t kMaxPendingSend = 64 * 1024 * 1024;
constexpr size_t kQemuLogTail = 16 * 1024;

std::string errno_text() { return std::strerror(errno); }

// One host end: the console or a virtio-serial port. The host listens and
// QEMU connects as a client at start-up, so the socket exists before QEMU
// needs it (no race) and only QEMU's connection is accepted.
struct Channel {
  std::string name;  // port name; empty for the console
  std::string socket_path;
  int listen_fd = -1;
  int fd = -1;
  bool eof = false;
  std::string pending;  // host -> guest bytes not yet written
  size_t received = 0;
  bool is_console() const { return name.empty(); }
};

Result<int> listen_unix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return fail("socket path '" + path + "' is too long (" + std::to_string(path.size()) + " bytes)",
                "use a shorter work directory (or TMPDIR)");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail("cannot create a socket: " + errno_text());
  ::unlink(path.c_str());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::chmod(path.c_str(), 0600) != 0 ||
      ::listen(fd, 4) != 0) {
    std::string err = errno_text();
    ::close(fd);
    return fail("cannot listen on '" + path + "': " + err);
  }
  return fd;
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

const char* vm_end_name(VmEnd e) {
  switch (e) {
    case VmEnd::kPoweredOff: return "powered_off";
    case VmEnd::kPanicked: return "panicked";
    case VmEnd::kRebooted: return "rebooted";
    case VmEnd::kWatchdogNoOutput: return "watchdog_no_output";
    case VmEnd::kWatchdogTimeout: return "watchdog_timeout";
    case VmEnd::kOutputLimit: return "output_limit";
    case VmEnd::kQemuFailedToStart: return "qemu_failed_to_start";
    case VmEnd::kQemuFailed: return "qemu_failed";
    case VmEnd::kInterrupted: return "interrupted";
  }
  return "unknown";
}

struct Vm::State {
  VmConfig cfg;
  VmCallbacks cb;
  Accel accel;
  std::optional<TempDir> temp_dir;
  Channel console;
  std::vector<Channel> ports;
  pid_t pid = -1;
  int pidfd = -1;
  int console_file = -1;
  bool started = false;
  bool stop_requested = false;
  std::string tail;
  size_t console_bytes = 0;
  bool console_over_limit = false;
  // When the console showed a kernel panic. panic=-1 and -no-reboot should
  // end QEMU at once, but a panic in some contexts (seen under TCG) leaves it
  // spinning; after a short grace the host ends the VM itself.
  std::optional<Clock::time_point> panic_seen;
  Clock::time_point start;
  Clock::time_point last_output;
  std::optional<milliseconds> boot_time;

  std::vector<Channel*> channels() {
    std::vector<Channel*> all{&console};
    for (auto& p : ports) all.push_back(&p);
    return all;
  }

  bool qemu_exited() const {
    siginfo_t info{};
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
    return info.si_pid == pid;
  }

  void kill_qemu() {
    if (pid > 0) kill_child(pid);
    pid = -1;
    close_fd(pidfd);
  }

  void cleanup() {
    kill_qemu();
    for (Channel* c : channels()) {
      close_fd(c->listen_fd);
      close_fd(c->fd);
      if (!c->socket_path.empty()) ::unlink(c->socket_path.c_str());
    }
    close_fd(console_file);
  }

  void flush(Channel& c) {
    while (c.fd >= 0 && !c.pending.empty()) {
      ssize_t n = ::send(c.fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
      if (n > 0) {
        c.pending.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
          spdlog::debug("vm: dropping {} bytes for port '{}': {}", c.pending.size(), c.name, errno_text());
          c.pending.clear();
        }
        return;
      }
    }
  }

  void accept_on(Vm& vm, Channel& c) {
    int fd = ::accept4(c.listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != pid) {
      spdlog::warn("vm: refused a connection to '{}' from pid {}, not QEMU", c.socket_path, cred.pid);
      ::close(fd);
      return;
    }
    c.fd = fd;
    // One connection per channel: the socket file has done its job.
    close_fd(c.listen_fd);
    ::unlink(c.socket_path.c_str());
    c.socket_path.clear();
    if (!c.is_console()) {
      flush(c);
      if (cb.on_port_connected) cb.on_port_connected(vm, c.name);
    }
  }

  void on_console_bytes(Vm& vm, const char* data, size_t n) {
    size_t room = console_bytes < cfg.max_console_bytes ? cfg.max_console_bytes - console_bytes : 0;
    if (console_file >= 0 && room > 0) (void)!::write(console_file, data, std::min(room, n));
    console_bytes += n;
    if (console_bytes > cfg.max_console_bytes) console_over_limit = true;
    size_t scan_from = tail.size() > 64 ? tail.size() - 64 : 0;  // the marker may span two reads
    tail.append(data, n);
    if (!panic_seen && tail.find("Kernel panic - not syncing", scan_from) != std::string::npos)
      panic_seen = Clock::now();
    if (tail.size() > 2 * cfg.console_tail_bytes) tail.erase(0, tail.size() - cfg.console_tail_bytes);
    if (cb.on_console) cb.on_console(vm, data, n);
  }

  void on_port_bytes(Vm& vm, Channel& c, const char* data, size_t n) {
    if (!boot_time) boot_time = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    size_t room = c.received < cfg.max_port_bytes ? cfg.max_port_bytes - c.received : 0;
    if (room < n) spdlog::warn("vm: port '{}' sent more than {} bytes; dropping the rest", c.name, cfg.max_port_bytes);
    c.received += n;
    if (room > 0 && cb.on_port_data) cb.on_port_data(vm, c.name, data, std::min(room, n));
  }

  // Read what is there (bounded per call); `drain` reads until EAGAIN/EOF.
  void read_channel(Vm& vm, Channel& c, bool drain) {
    char buf[kReadChunk];
    for (int i = 0; c.fd >= 0 && !c.eof && (drain || i < kReadsPerWakeup); ++i) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        last_output = Clock::now();
        if (c.is_console()) {
          on_console_bytes(vm, buf, static_cast<size_t>(n));
        } else {
          on_port_bytes(vm, c, buf, static_cast<size_t>(n));
        }
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) c.eof = true;
        return;
      }
    }
  }
};

Vm::Vm(VmConfig cfg, VmCallbacks callbacks, Accel accel) : state_(std::make_unique<State>()) {
  state_->cfg = std::move(cfg);
  state_->cb = std::move(callbacks);
  state_->accel = accel;
}

Vm::~Vm() {
  if (state_) state_->cleanup();
}

const VmConfig& Vm::config() const { return state_->cfg; }
pid_t Vm::qemu_pid() const { return state_->pid; }
void Vm::request_stop() { state_->stop_requested = true; }

Status Vm::send(const std::string& port, std::string_view bytes) {
  for (auto& c : state_->ports) {
    if (c.name != port) continue;
    if (c.pending.size() + bytes.size() > kMaxPendingSend)
      return fail("cannot send to port '" + port + "': more than 64 MiB are waiting");
    c.pending.append(bytes);
    state_->flush(c);
    return {};
  }
  return fail("cannot send to port '" + port + "': the VM has no such port");
}

Result<VmOutcome> Vm::run() {
  State& s = *state_;
  if (s.started) return fail("cannot run a VM twice");
  s.started = true;

  if (s.cfg.work_dir.empty()) {
    auto tmp = TempDir::create("ktstr-vm");
    if (!tmp) return fail(tmp.error());
    s.temp_dir.emplace(std::move(*tmp));
    if (s.cfg.keep_work_dir) s.temp_dir->keep();
    s.cfg.work_dir = s.temp_dir->path();
  } else if (auto made = make_dirs(s.cfg.work_dir, 0700); !made) {
    return fail(made.error());
  }
  const std::string& wd = s.cfg.work_dir;

  s.console.socket_path = console_socket_path(wd);
  auto lfd = listen_unix(s.console.socket_path);
  if (!lfd) return fail(lfd.error());
  s.console.listen_fd = *lfd;
  for (size_t i = 0; i < s.cfg.ports.size(); ++i) {
    Channel c;
    c.name = s.cfg.ports[i];
    c.socket_path = port_socket_path(wd, i);
    s.ports.push_back(std::move(c));
    auto pfd = listen_unix(s.ports.back().socket_path);
    if (!pfd) return fail(pfd.error());
    s.ports.back().listen_fd = *pfd;
  }
  const std::string console_path = console_log_path(wd);
  s.console_file = ::open(console_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.console_file < 0) return fail("cannot create '" + console_path + "': " + errno_text());

  VmOutcome out;
  out.accel = s.accel;
  auto argv = qemu_argv(s.cfg, s.accel);
  spdlog::debug("vm: {}", argv_to_string(argv));
  SpawnOptions opts;
  opts.stdout_path = wd + "/qemu.log";
  opts.stderr_path = "=stdout";
  s.start = Clock::now();
  s.last_output = s.start;
  auto child = spawn(argv, opts);
  if (!child) {
    out.end = VmEnd::kQemuFailedToStart;
    out.qemu_log_tail = child.error().msg;
    s.cleanup();
    return out;
  }
  s.pid = child->pid;
  s.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, s.pid, 0));  // wakes poll() at exit; optional

  const auto overall_deadline = s.start + s.cfg.overall_timeout;
  std::optional<VmEnd> killed_for;
  std::vector<pollfd> pfds;
  std::vector<std::pair<Channel*, bool /*listening*/>> owners;
  while (true) {
    if (s.stop_requested) {
      killed_for = VmEnd::kInterrupted;
      break;
    }
    if (s.console_over_limit) {
      killed_for = VmEnd::kOutputLimit;
      break;
    }
    if (s.qemu_exited()) break;
    auto now = Clock::now();
    auto quiet_deadline = s.last_output + s.cfg.no_output_timeout;
    if (now >= overall_deadline) {
      killed_for = VmEnd::kWatchdogTimeout;
      break;
    }
    if (now >= quiet_deadline) {
      killed_for = VmEnd::kWatchdogNoOutput;
      break;
    }
    const auto panic_grace = std::chrono::seconds(3);
    if (s.panic_seen && now >= *s.panic_seen + panic_grace) {
      killed_for = VmEnd::kPanicked;
      break;
    }
    pfds.clear();
    owners.clear();
    for (Channel* c : s.channels()) {
      if (c->fd >= 0 && !c->eof) {
        pfds.push_back({c->fd, static_cast<short>(POLLIN | (c->pending.empty() ? 0 : POLLOUT)), 0});
        owners.emplace_back(c, false);
      } else if (c->listen_fd >= 0) {
        pfds.push_back({c->listen_fd, POLLIN, 0});
        owners.emplace_back(c, true);
      }
    }
    if (s.pidfd >= 0) pfds.push_back({s.pidfd, POLLIN, 0});
    auto next = std::min(overall_deadline, quiet_deadline);
    if (s.panic_seen) next = std::min(next, *s.panic_seen + panic_grace);
    auto wait = std::chrono::duration_cast<milliseconds>(next - now) + milliseconds(1);
    // Without a pidfd, QEMU's exit is noticed by waitid() on the next round.
    if (s.pidfd < 0) wait = std::min(wait, milliseconds(100));
    int r = ::poll(pfds.data(), pfds.size(), static_cast<int>(wait.count()));
    if (r < 0 && errno != EINTR) return fail("poll failed while running the VM: " + errno_text());
    if (r <= 0) continue;
    for (size_t i = 0; i < owners.size(); ++i) {
      if (!pfds[i].revents) continue;
      auto [c, listening] = owners[i];
      if (listening) {
        s.accept_on(*this, *c);
        continue;
      }
      if (pfds[i].revents & POLLOUT) s.flush(*c);
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) s.read_channel(*this, *c, false);
    }
  }

  if (killed_for) {
    s.kill_qemu();
    out.qemu_status = 128 + SIGKILL;
    out.end = *killed_for;
  } else {
    out.qemu_status = wait_child(s.pid);
    s.pid = -1;
    close_fd(s.pidfd);
  }
  out.wall_time = std::chrono::duration_cast<milliseconds>(Clock::now() - s.start);
  // QEMU is gone: whatever it wrote before is still in the sockets.
  for (Channel* c : s.channels()) s.read_channel(*this, *c, true);

  bool any_output = s.console_bytes > 0;
  for (auto& p : s.ports) any_output = any_output || p.received > 0;
  if (!killed_for) {
    if (out.qemu_status != 0) {
      out.end = any_output ? VmEnd::kQemuFailed : VmEnd::kQemuFailedToStart;
    } else if (s.tail.find("Kernel panic - not syncing") != std::string::npos) {
      out.end = VmEnd::kPanicked;
    } else if (s.tail.find("reboot: Power down") != std::string::npos) {
      out.end = VmEnd::kPoweredOff;
    } else {
      out.end = VmEnd::kRebooted;
    }
  }
  if (s.tail.size() > s.cfg.console_tail_bytes) s.tail.erase(0, s.tail.size() - s.cfg.console_tail_bytes);
  out.console_tail = std::move(s.tail);
  out.console_bytes = s.console_bytes;
  out.boot_time = s.boot_time;
  if (auto log = read_file(wd + "/qemu.log", 1024 * 1024)) {
    out.qemu_log_tail = log->size() > kQemuLogTail ? log->substr(log->size() - kQemuLogTail) : *log;
  }
  s.cleanup();
  out.console_path = (s.temp_dir && !s.cfg.keep_work_dir) ? std::string() : console_path;
  s.temp_dir.reset();
  spdlog::debug("vm: ended {} after {} ms (qemu status {})", vm_end_name(out.end), out.wall_time.count(),
                out.qemu_status);
  return out;
}

Result<VmOutcome> run_vm(const VmConfig& cfg, VmCallbacks callbacks, std::optional<Accel> accel) {
  if (!accel) {
    auto chosen = choose_accel(cache_dir());
    if (!chosen) return fail(chosen.error());
    accel = *chosen;
  }
  Vm vm(cfg, std::move(callbacks), *accel);
  return vm.run();
}

}  // namespace ktstr
