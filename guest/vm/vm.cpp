#include "guest/vm/vm.hpp"

#include "core/file_lock.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "guest/vm/qmp.hpp"
#include "guest/vm/snapshot.hpp"
#include "guest/vm/work_dir.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
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
// After a panic on the console, how long QEMU may take to end by itself (State::panic_seen).
constexpr auto kPanicGrace = std::chrono::seconds(3);
// Saving or restoring a snapshot: about a second for a small guest under TCG (bench/README.md).
constexpr auto kSnapshotDeadline = std::chrono::seconds(60);
constexpr const char* kSnapshotFdName = "ktstr-snapshot";

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
  // Kept across a KVM -> TCG retry: whether the caller was told the port is
  // connected, and everything sent to it while no guest data had arrived
  // (the replacement QEMU gets it again).
  bool announced = false;
  std::string sent_log;
  bool is_console() const { return name.empty(); }

  // Back to "not yet connected" for a new QEMU; what was sent is queued again.
  void reset_for_retry() {
    listen_fd = fd = -1;
    eof = false;
    received = 0;
    pending = sent_log;
  }
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

bool contains_nocase(std::string_view hay, std::string_view needle) {
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
         }) != hay.end();
}

}  // namespace

std::string kvm_failure_evidence(std::string_view line) {
  // What QEMU (accel/kvm, target/i386/kvm) prints when KVM cannot run the
  // guest: it then pauses the guest (internal error, emulation failure,
  // entry failure) or exits (cannot initialise KVM).
  static constexpr std::string_view kMarkers[] = {
      "KVM internal error",       "emulation failure",  "KVM: entry failed", "kvm run failed",
      "failed to initialize kvm", "Could not access KVM", "kvm_init_vcpu",   "KVM: unknown exit reason",
  };
  for (auto m : kMarkers) {
    if (!contains_nocase(line, m)) continue;
    std::string l(line);
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
    if (l.size() > 200) l = l.substr(0, 200) + "...";
    return "QEMU: \"" + l + "\"";
  }
  return "";
}

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
  // QEMU's stdout+stderr: a pipe read in the loop (KVM failures show up
  // there while QEMU keeps running), copied to <work_dir>/qemu.log.
  Channel qemu_out;
  int qemu_log_file = -1;
  size_t qemu_log_bytes = 0;
  std::string qemu_log_tail;
  std::string qemu_line;                    // the line being assembled
  Accel attempt_accel = Accel::kTcg;        // what the running QEMU uses
  bool watch_kvm = false;                   // look for KVM failures in this attempt
  std::string kvm_failure;                  // evidence, once seen
  bool any_port_data = false;               // the guest wrote to a port (ever)
  bool replay_broken = false;               // sent_log could not keep everything
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

  // Snapshots (snapshot.hpp). kCreate: record the guest's output and hold
  // what the caller sends until the guest opens the ready port, then save.
  // kRestore: QEMU starts with -incoming defer; load, replay the recorded
  // output to the caller, then let its sends through.
  enum class SnapMode { kOff, kCreate, kRestore };
  SnapMode snap_mode = SnapMode::kOff;
  std::string snap_key;
  std::optional<StoredSnapshot> snap;
  std::string qmp_socket_path;
  int qmp_listen_fd = -1;
  std::unique_ptr<QmpClient> qmp;
  bool hold_sends = false;
  bool recording = false;
  std::vector<ReplayChunk> replay;
  size_t replay_bytes = 0;
  bool restore_failed = false;   // this attempt could not load the snapshot
  bool snapshots_off = false;    // for the rest of this run
  bool restored = false;
  bool snapshot_saved = false;
  std::optional<milliseconds> snapshot_time;
  std::string snapshot_note;

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
    qmp.reset();
    close_fd(qmp_listen_fd);
    if (!qmp_socket_path.empty()) ::unlink(qmp_socket_path.c_str());
    qmp_socket_path.clear();
    for (Channel* c : channels()) {
      close_fd(c->listen_fd);
      close_fd(c->fd);
      if (!c->socket_path.empty()) ::unlink(c->socket_path.c_str());
      c->socket_path.clear();
    }
    close_fd(console_file);
    close_fd(qemu_out.fd);
    close_fd(qemu_log_file);
  }

  // Per-attempt state back to "before QEMU started" (after cleanup()).
  void reset_for_retry() {
    console.reset_for_retry();
    for (auto& p : ports) p.reset_for_retry();
    qemu_out = Channel{};
    qemu_log_bytes = 0;
    qemu_log_tail.clear();
    qemu_line.clear();
    kvm_failure.clear();
    tail.clear();
    console_bytes = 0;
    console_over_limit = false;
    panic_seen.reset();
    boot_time.reset();
    snap_mode = SnapMode::kOff;
    snap.reset();
    hold_sends = recording = restore_failed = false;
    replay.clear();
    replay_bytes = 0;
  }

  void on_qemu_line(const std::string& line) {
    if (!watch_kvm || !kvm_failure.empty()) return;
    kvm_failure = kvm_failure_evidence(line);
  }

  void on_qemu_bytes(const char* data, size_t n) {
    constexpr size_t kMaxQemuLog = 1024 * 1024;
    size_t room = qemu_log_bytes < kMaxQemuLog ? kMaxQemuLog - qemu_log_bytes : 0;
    if (qemu_log_file >= 0 && room > 0) (void)!::write(qemu_log_file, data, std::min(room, n));
    qemu_log_bytes += n;
    qemu_log_tail.append(data, n);
    if (qemu_log_tail.size() > 2 * kQemuLogTail) qemu_log_tail.erase(0, qemu_log_tail.size() - kQemuLogTail);
    for (size_t i = 0; i < n; ++i) {
      if (data[i] == '\n') {
        on_qemu_line(qemu_line);
        qemu_line.clear();
      } else if (qemu_line.size() < 4096) {
        qemu_line += data[i];
      }
    }
  }

  void flush(Channel& c) {
    if (hold_sends) return;
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

  // QEMU's connection on a listening socket: its fd; kNonePending; or
  // kRefused when the peer is not QEMU (closed, with a warning).
  static constexpr int kNonePending = -1, kRefused = -2;
  int accept_from_qemu(int listen_fd, const std::string& socket_path) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return kNonePending;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.pid != pid) {
      spdlog::warn("vm: refused a connection to '{}' from pid {}, not QEMU", socket_path, cred.pid);
      ::close(fd);
      return kRefused;
    }
    return fd;
  }

  void accept_on(Vm& vm, Channel& c) {
    if (snap_mode != SnapMode::kOff && !qmp) accept_qmp(vm, false);
    int fd = accept_from_qemu(c.listen_fd, c.socket_path);
    if (fd < 0) return;
    c.fd = fd;
    // One connection per channel: the socket file has done its job.
    close_fd(c.listen_fd);
    ::unlink(c.socket_path.c_str());
    c.socket_path.clear();
    if (!c.is_console()) {
      flush(c);
      if (!c.announced) {
        c.announced = true;
        if (cb.on_port_connected) cb.on_port_connected(vm, c.name);
      }
    }
  }

  // Guest output before a snapshot is saved: the restored guest has written it already.
  void record(uint32_t channel, const char* data, size_t n) {
    if (!recording) return;
    replay_bytes += n;
    if (replay_bytes > kMaxReplayBytes) {
      // Stop recording only: the checkpoint still pauses and resumes, then says why nothing was saved.
      recording = false;
      replay.clear();
      snapshot_note = "the guest wrote more than " + std::to_string(kMaxReplayBytes) + " bytes before its agent was ready";
      release_sends();
      return;
    }
    if (!replay.empty() && replay.back().channel == channel) replay.back().bytes.append(data, n);
    else replay.push_back({channel, std::string(data, n)});
  }

  void release_sends() {
    if (!hold_sends) return;
    hold_sends = false;
    for (auto& p : ports) flush(p);
  }

  void on_console_bytes(Vm& vm, const char* data, size_t n) {
    record(0, data, n);
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
    record(static_cast<uint32_t>(&c - ports.data()) + 1, data, n);
    if (!boot_time) boot_time = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    if (!any_port_data) {
      // The guest runs our code: no retry from here on, nothing to replay.
      any_port_data = true;
      for (auto& p : ports) p.sent_log.clear();
    }
    size_t room = c.received < cfg.max_port_bytes ? cfg.max_port_bytes - c.received : 0;
    if (room < n) spdlog::warn("vm: port '{}' sent more than {} bytes; dropping the rest", c.name, cfg.max_port_bytes);
    c.received += n;
    if (room > 0 && cb.on_port_data) cb.on_port_data(vm, c.name, data, std::min(room, n));
  }

  // --- snapshots ---------------------------------------------------------

  // The snapshot step of this attempt is over (done or not): stop recording
  // and let the caller's held bytes go.
  void leave_snapshot_mode() {
    snap_mode = SnapMode::kOff;
    recording = false;
    replay.clear();
    release_sends();
  }

  // Stop snapshotting for this attempt (the run itself goes on).
  void snapshot_give_up(const std::string& why) {
    if (snapshot_note.empty()) snapshot_note = why;
    spdlog::debug("vm: no snapshot: {}", why);
    leave_snapshot_mode();
  }

  // The restore cannot go on: this QEMU is ended and run() boots instead.
  void restore_give_up(const std::string& why) {
    snapshot_note = "restoring the snapshot failed (" + why + "); the guest was booted instead";
    spdlog::warn("vm: {}", snapshot_note);
    restore_failed = true;
    kill_qemu();
  }

  // QEMU connects its QMP socket first (it is the first -chardev). With
  // `wait` false, a connection not already pending means there will be none.
  void accept_qmp(Vm& vm, bool wait) {
    if (qmp_listen_fd < 0) return;
    int fd = accept_from_qemu(qmp_listen_fd, qmp_socket_path);
    if (fd == kRefused || (fd == kNonePending && wait)) return;
    if (fd == kNonePending) {
      close_fd(qmp_listen_fd);
      if (snap_mode == SnapMode::kRestore) restore_give_up("QEMU did not connect its QMP socket");
      else snapshot_give_up("QEMU did not connect its QMP socket");
      return;
    }
    close_fd(qmp_listen_fd);
    ::unlink(qmp_socket_path.c_str());
    qmp = std::make_unique<QmpClient>(fd);
    auto deadline = Clock::now() + kSnapshotDeadline;
    Status ready = qmp->handshake(deadline);
    if (ready) {
      auto events = qmp->execute("migrate-set-capabilities",
                                 {{"capabilities", {{{"capability", "events"}, {"state", true}}}}}, deadline);
      if (!events) ready = tl::unexpected(events.error());
    }
    if (!ready) {
      if (snap_mode == SnapMode::kRestore) restore_give_up(ready.error().msg);
      else snapshot_give_up(ready.error().msg);
      return;
    }
    if (snap_mode == SnapMode::kRestore) restore(vm);
  }

  Status migrate(const std::string& command, const std::string& key, int fd, Clock::time_point deadline) {
    if (auto got = qmp->execute("getfd", {{"fdname", kSnapshotFdName}}, deadline, fd); !got)
      return tl::unexpected(got.error());
    if (auto started = qmp->execute(command, {{key, std::string("fd:") + kSnapshotFdName}}, deadline); !started)
      return tl::unexpected(started.error());
    auto done = qmp->wait_event(
        "MIGRATION",
        [](const nlohmann::json& d) {
          std::string st = d.value("status", "");
          return st == "completed" || st == "failed" || st == "cancelled";
        },
        deadline);
    if (!done) return tl::unexpected(done.error());
    if (std::string st = done->value("status", ""); st != "completed") return fail("migration " + st);
    return {};
  }

  // `cont`. QEMU announces a finished migration (the MIGRATION event) a
  // moment before it leaves the finish-migrate state, and refuses `cont`
  // until then ("Migration is not finalized yet"): ask again until it takes it.
  Status resume(Clock::time_point deadline) {
    for (;;) {
      auto resumed = qmp->execute("cont", nlohmann::json::object(), deadline);
      if (resumed) return {};
      if (resumed.error().msg.find("not finalized") == std::string::npos || Clock::now() >= deadline)
        return tl::unexpected(resumed.error());
      ::poll(nullptr, 0, 5);
    }
  }

  // kRestore, QMP ready: load the state, hand the caller what the guest
  // wrote before the snapshot, then let the caller's sends through.
  void restore(Vm& vm) {
    auto deadline = Clock::now() + kSnapshotDeadline;
    int fd = ::open(snap->vmstate.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return restore_give_up("cannot open '" + snap->vmstate + "': " + errno_text());
    Status loaded = migrate("migrate-incoming", "uri", fd, deadline);
    ::close(fd);
    if (!loaded) return restore_give_up(loaded.error().msg);
    // The state was saved from a paused guest, and QEMU restores that run state.
    if (auto resumed = resume(deadline); !resumed) return restore_give_up(resumed.error().msg);
    touch_snapshot(snap->dir);
    restored = true;
    snapshot_time = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    spdlog::debug("vm: restored snapshot {} in {} ms", snap_key.substr(0, 12), snapshot_time->count());
    last_output = Clock::now();
    for (const ReplayChunk& c : snap->replay) {
      if (c.channel == 0) on_console_bytes(vm, c.bytes.data(), c.bytes.size());
      else on_port_bytes(vm, ports[c.channel - 1], c.bytes.data(), c.bytes.size());
    }
    leave_snapshot_mode();
  }

  // kCreate: the guest opened the ready port, so its agent is about to wait
  // for the job and nothing of the caller's has reached it. Pause, take in
  // what is still in the sockets, save, resume, then let the sends through.
  void checkpoint(Vm& vm) {
    const auto t0 = Clock::now();
    const auto deadline = t0 + kSnapshotDeadline;
    auto stopped = qmp->execute("stop", nlohmann::json::object(), deadline);
    if (!stopped) return snapshot_give_up(stopped.error().msg);
    for (Channel* c : channels()) read_channel(vm, *c, true);
    Status saved = [&]() -> Status {
      if (!recording) return fail(snapshot_note);
      auto pending = PendingSnapshot::begin(cfg.snapshot_dir, snap_key);
      if (!pending) return tl::unexpected(pending.error());
      // QEMU 7.2 limits migration to 32 MiB/s by default; a file takes it all at once.
      if (auto bw = qmp->execute("migrate-set-parameters", {{"max-bandwidth", int64_t(1) << 36}}, deadline); !bw)
        return tl::unexpected(bw.error());
      if (auto m = migrate("migrate", "uri", pending->vmstate_fd(), deadline); !m) return m;
      auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
      if (auto c = pending->commit(replay, boot_time.value_or(took), took); !c) return c;
      snapshot_time = took;
      return {};
    }();
    auto resumed = resume(Clock::now() + kSnapshotDeadline);
    if (!saved) snapshot_give_up("saving the snapshot failed: " + saved.error().msg);
    else snapshot_saved = true;
    if (!resumed) {
      // A guest left paused would only end at the watchdog: end it now, and say why.
      snapshot_note = "QEMU did not resume the guest after the snapshot: " + resumed.error().msg;
      spdlog::warn("vm: {}", snapshot_note);
      kill_qemu();
      return;
    }
    spdlog::debug("vm: snapshot {} {} in {} ms", snap_key.substr(0, 12), snapshot_saved ? "saved" : "not saved",
                  std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count());
    last_output = Clock::now();
    leave_snapshot_mode();
  }

  // kCreate: QMP events while the guest boots; the ready port opening is the moment.
  void on_qmp_readable(Vm& vm) {
    bool open = qmp->read_available();
    const std::string ready_id = "vport" + std::to_string(ready_port_index());
    for (auto& e : qmp->take_events()) {
      if (snap_mode != SnapMode::kCreate || e.value("event", "") != "VSERPORT_CHANGE") continue;
      const auto& d = e.contains("data") ? e["data"] : nlohmann::json::object();
      if (d.value("id", "") == ready_id && d.value("open", false)) checkpoint(vm);
    }
    if (!open) {
      qmp.reset();
      if (snap_mode == SnapMode::kCreate) snapshot_give_up("QEMU closed its QMP connection");
    }
  }

  size_t ready_port_index() const {
    for (size_t i = 0; i < ports.size(); ++i)
      if (ports[i].name == cfg.snapshot_ready_port) return i;
    return ports.size();
  }

  // Whether this attempt may save or restore a snapshot (plan_snapshot
  // decides which, or that it cannot after all).
  bool snapshot_possible(Accel accel) const {
    return !cfg.snapshot_dir.empty() && !snapshots_off && accel == Accel::kTcg && ready_port_index() < ports.size();
  }

  // Decide this attempt's snapshot mode and add QMP (and -incoming) to argv.
  Status plan_snapshot(std::vector<std::string>& argv, Accel accel) {
    if (!snapshot_possible(accel)) return {};
    auto key = snapshot_key(argv, cfg.work_dir);
    if (!key) {
      snapshot_note = "no snapshot: " + key.error().msg;
      return {};
    }
    snap_key = *key;
    const std::string failed_marker = cfg.snapshot_dir + "/" + snap_key + ".restore-failed";
    if (path_exists(failed_marker)) {
      snapshot_note = "snapshots are off for this VM: restoring one failed before (see '" + failed_marker + "')";
      return {};
    }
    snap = find_snapshot(cfg.snapshot_dir, snap_key, static_cast<uint32_t>(ports.size() + 1));
    snap_mode = snap ? SnapMode::kRestore : SnapMode::kCreate;
    if (snap_mode == SnapMode::kCreate) {
      // The vmstate is at most the guest's memory; leave the disk room to spare.
      uint64_t need = (uint64_t(cfg.memory_mb) << 20) + (1ull << 30);
      struct statvfs fs{};
      if (!make_dirs(cfg.snapshot_dir, 0700) || ::statvfs(cfg.snapshot_dir.c_str(), &fs) != 0 ||
          uint64_t(fs.f_bavail) * fs.f_frsize < need) {
        snapshot_note = "no snapshot saved: '" + cfg.snapshot_dir + "' has less than " + std::to_string(need >> 20) +
                        " MiB free (or cannot be created)";
        snap_mode = SnapMode::kOff;
        return {};
      }
    }
    qmp_socket_path = cfg.work_dir + "/qmp.sock";
    auto lfd = listen_unix(qmp_socket_path);
    if (!lfd) return fail(lfd.error());
    qmp_listen_fd = *lfd;
    argv.insert(argv.begin() + 1, {"-chardev", "socket,id=qmp,path=" + qmp_socket_path, "-mon",
                                   "chardev=qmp,mode=control"});
    if (snap_mode == SnapMode::kRestore) argv.insert(argv.end(), {"-incoming", "defer"});
    hold_sends = true;
    recording = snap_mode == SnapMode::kCreate;
    return {};
  }

  // Read what is there (bounded per call); `drain` reads until EAGAIN/EOF.
  void read_channel(Vm& vm, Channel& c, bool drain) {
    char buf[kReadChunk];
    for (int i = 0; c.fd >= 0 && !c.eof && (drain || i < kReadsPerWakeup); ++i) {
      ssize_t n = ::read(c.fd, buf, sizeof buf);
      if (n > 0) {
        if (&c == &qemu_out) {
          on_qemu_bytes(buf, static_cast<size_t>(n));
          continue;
        }
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

  bool any_output() const {
    if (console_bytes > 0) return true;
    for (auto& p : ports)
      if (p.received > 0) return true;
    return false;
  }

  // The host ends QEMU connects to (console, ports) and the files it fills.
  Status open_host_ends(const std::string& wd, const std::string& console_path) {
    console.socket_path = console_socket_path(wd);
    auto lfd = listen_unix(console.socket_path);
    if (!lfd) return fail(lfd.error());
    console.listen_fd = *lfd;
    for (size_t i = 0; i < ports.size(); ++i) {
      ports[i].socket_path = port_socket_path(wd, i);
      auto pfd = listen_unix(ports[i].socket_path);
      if (!pfd) return fail(pfd.error());
      ports[i].listen_fd = *pfd;
    }
    console_file = ::open(console_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (console_file < 0) return fail("cannot create '" + console_path + "': " + errno_text());
    const std::string qemu_log = wd + "/qemu.log";
    qemu_log_file = ::open(qemu_log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (qemu_log_file < 0) return fail("cannot create '" + qemu_log + "': " + errno_text());
    return {};
  }

  // Starts QEMU with its output on a pipe; false (and `why`) when it cannot be spawned.
  bool spawn_qemu(const std::vector<std::string>& argv, std::string& why) {
    SpawnOptions opts;
    opts.capture_stdout = true;
    opts.stderr_path = "=stdout";
    start = Clock::now();
    last_output = start;
    auto child = spawn(argv, opts);
    if (!child) {
      why = child.error().msg;
      return false;
    }
    pid = child->pid;
    qemu_out.name = "(qemu)";
    qemu_out.fd = child->stdout_fd;
    ::fcntl(qemu_out.fd, F_SETFL, ::fcntl(qemu_out.fd, F_GETFL) | O_NONBLOCK);
    pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // wakes poll() at exit; optional
    return true;
  }

  // When an attempt's clock runs out. silence_bound: under KVM a kernel
  // prints within well under a second (earlyprintk); silence past
  // first_output means KVM is not running it.
  struct Deadlines {
    Clock::time_point overall;
    Clock::time_point first_output;
    bool silence_bound = false;
  };

  // One round of the pump: stop (killing QEMU for killed_for, or not at all
  // when it exited by itself), or poll until `next`.
  struct Round {
    bool stop = false;
    std::optional<VmEnd> killed_for;
    Clock::time_point now;
    Clock::time_point next;
  };

  Round check_round(const Deadlines& d) {
    Round r;
    auto stop = [&r](std::optional<VmEnd> why) {
      r.stop = true;
      r.killed_for = why;
      return r;
    };
    if (stop_requested) return stop(VmEnd::kInterrupted);
    if (restore_failed) return stop(VmEnd::kQemuFailedToStart);
    // Ended by a snapshot step that could not resume the guest.
    if (pid < 0) return stop(VmEnd::kQemuFailed);
    if (console_over_limit) return stop(VmEnd::kOutputLimit);
    // QEMU reported a KVM failure: it pauses the guest and would wait forever.
    if (!kvm_failure.empty()) return stop(any_output() ? VmEnd::kQemuFailed : VmEnd::kQemuFailedToStart);
    if (qemu_exited()) return stop(std::nullopt);
    r.now = Clock::now();
    auto quiet_deadline = last_output + cfg.no_output_timeout;
    if (r.now >= d.overall) return stop(VmEnd::kWatchdogTimeout);
    if (r.now >= quiet_deadline) return stop(VmEnd::kWatchdogNoOutput);
    bool awaiting_first_output = d.silence_bound && !any_output();
    if (awaiting_first_output && r.now >= d.first_output) {
      kvm_failure = "no guest output within " + std::to_string(cfg.kvm_first_output_limit.count()) +
                    " ms under KVM";
      return stop(VmEnd::kWatchdogNoOutput);
    }
    if (panic_seen && r.now >= *panic_seen + kPanicGrace) return stop(VmEnd::kPanicked);
    r.next = std::min(d.overall, quiet_deadline);
    if (awaiting_first_output) r.next = std::min(r.next, d.first_output);
    if (panic_seen) r.next = std::min(r.next, *panic_seen + kPanicGrace);
    return r;
  }

  // What one poll() waits on; kept across rounds.
  struct PollSet {
    std::vector<pollfd> pfds;
    std::vector<std::pair<Channel*, bool /*listening*/>> owners;
    size_t first_channel = 0;
    bool qmp_polled = false;
  };

  void fill_poll_set(PollSet& ps) {
    ps.pfds.clear();
    ps.owners.clear();
    // QMP first: QEMU connects it before the channels (snapshots).
    ps.qmp_polled = false;
    if (qmp_listen_fd >= 0) {
      ps.pfds.push_back({qmp_listen_fd, POLLIN, 0});
    } else if (qmp && snap_mode == SnapMode::kCreate) {
      ps.pfds.push_back({qmp->fd(), POLLIN, 0});
      ps.qmp_polled = true;
    }
    ps.first_channel = ps.pfds.size();
    for (Channel* c : channels()) {
      if (c->fd >= 0 && !c->eof) {
        ps.pfds.push_back({c->fd, static_cast<short>(POLLIN | (c->pending.empty() ? 0 : POLLOUT)), 0});
        ps.owners.emplace_back(c, false);
      } else if (c->listen_fd >= 0) {
        ps.pfds.push_back({c->listen_fd, POLLIN, 0});
        ps.owners.emplace_back(c, true);
      }
    }
    if (qemu_out.fd >= 0 && !qemu_out.eof) {
      ps.pfds.push_back({qemu_out.fd, POLLIN, 0});
      ps.owners.emplace_back(&qemu_out, false);
    }
    if (pidfd >= 0) ps.pfds.push_back({pidfd, POLLIN, 0});
  }

  // Waits for QEMU's fds until `r.next` at most and serves what is ready.
  Status poll_once(Vm& vm, PollSet& ps, const Round& r) {
    fill_poll_set(ps);
    auto wait = std::chrono::duration_cast<milliseconds>(r.next - r.now) + milliseconds(1);
    // Without a pidfd, QEMU's exit is noticed by waitid() on the next round.
    if (pidfd < 0) wait = std::min(wait, milliseconds(100));
    int n = ::poll(ps.pfds.data(), ps.pfds.size(), static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) return fail("poll failed while running the VM: " + errno_text());
    if (n <= 0) return {};
    if (ps.first_channel > 0 && ps.pfds[0].revents) {
      if (ps.qmp_polled) on_qmp_readable(vm);
      else accept_qmp(vm, true);
      return {};  // the channels' fds may have changed meanwhile
    }
    for (size_t i = 0; i < ps.owners.size(); ++i) {
      const short revents = ps.pfds[ps.first_channel + i].revents;
      if (!revents) continue;
      auto [c, listening] = ps.owners[i];
      if (listening) {
        accept_on(vm, *c);
        continue;
      }
      if (revents & POLLOUT) flush(*c);
      if (revents & (POLLIN | POLLHUP | POLLERR)) read_channel(vm, *c, false);
    }
    return {};
  }

  // Serves QEMU until it ends or must be killed; what it must be killed for.
  Result<std::optional<VmEnd>> pump(Vm& vm, const Deadlines& d) {
    PollSet ps;
    while (true) {
      Round r = check_round(d);
      if (r.stop) return r.killed_for;
      if (auto polled = poll_once(vm, ps, r); !polled) return fail(polled.error());
    }
  }

  // QEMU stops (killed) or is reaped; what it wrote before is still in the
  // sockets and the pipe.
  void reap(Vm& vm, std::optional<VmEnd> killed_for, VmOutcome& out) {
    if (killed_for) {
      kill_qemu();
      out.qemu_status = 128 + SIGKILL;
      out.end = *killed_for;
    } else {
      out.qemu_status = wait_child(pid);
      pid = -1;
      close_fd(pidfd);
    }
    out.wall_time = std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    for (Channel* c : channels()) read_channel(vm, *c, true);
    read_channel(vm, qemu_out, true);
    if (!qemu_line.empty()) on_qemu_line(qemu_line);
  }

  // How a VM ended whose QEMU exited by itself.
  VmEnd exit_end(int qemu_status) const {
    if (qemu_status != 0) return any_output() ? VmEnd::kQemuFailed : VmEnd::kQemuFailedToStart;
    if (tail.find("Kernel panic - not syncing") != std::string::npos) return VmEnd::kPanicked;
    if (tail.find("reboot: Power down") != std::string::npos) return VmEnd::kPoweredOff;
    return VmEnd::kRebooted;
  }

  // The attempt's console, boot and snapshot figures into `out`.
  void fill_outcome(VmOutcome& out) {
    if (tail.size() > cfg.console_tail_bytes) tail.erase(0, tail.size() - cfg.console_tail_bytes);
    out.console_tail = tail;
    out.console_bytes = console_bytes;
    out.boot_time = boot_time;
    out.restored = restored;
    out.snapshot_saved = snapshot_saved;
    out.snapshot_time = snapshot_time;
    out.snapshot_note = snapshot_note;
    out.qemu_log_tail = qemu_log_tail.size() > kQemuLogTail ? qemu_log_tail.substr(qemu_log_tail.size() - kQemuLogTail)
                                                            : qemu_log_tail;
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

VmOutcome Vm::so_far() const {
  const State& s = *state_;
  VmOutcome out;
  out.accel = s.attempt_accel;
  out.wall_time = std::chrono::duration_cast<milliseconds>(Clock::now() - s.start);
  out.boot_time = s.boot_time;
  out.console_bytes = s.console_bytes;
  out.console_tail = s.tail.size() > s.cfg.console_tail_bytes ? s.tail.substr(s.tail.size() - s.cfg.console_tail_bytes)
                                                              : s.tail;
  return out;
}
void Vm::request_stop() { state_->stop_requested = true; }

Status Vm::send(const std::string& port, std::string_view bytes) {
  for (auto& c : state_->ports) {
    if (c.name != port) continue;
    if (c.pending.size() + bytes.size() > kMaxPendingSend)
      return fail("cannot send to port '" + port + "': more than 64 MiB are waiting");
    c.pending.append(bytes);
    if (!state_->any_port_data) {
      if (c.sent_log.size() + bytes.size() <= kMaxPendingSend) c.sent_log.append(bytes);
      else state_->replay_broken = true;  // too much to send again: no TCG retry
    }
    state_->flush(c);
    return {};
  }
  return fail("cannot send to port '" + port + "': the VM has no such port");
}

// One QEMU run in the prepared work dir: listen, spawn, pump, end, classify.
// `s.kvm_failure` says when KVM gave up on the guest.
Result<VmOutcome> Vm::attempt(Accel accel, bool may_fall_back) {
  State& s = *state_;
  const std::string& wd = s.cfg.work_dir;
  s.attempt_accel = accel;
  s.watch_kvm = accel == Accel::kKvm;
  // KTSTR_VM_LOCK: one QEMU at a time on a shared host; taken before the
  // clock starts, so waiting never counts against the VM's timeouts.
  auto host_lock = FileLock::from_env(kVmLockEnv, [](const std::string& path) {
    spdlog::info("vm: waiting for the VM lock '{}' ({})", path, kVmLockEnv);
  });
  if (!host_lock) return fail(host_lock.error());

  const std::string console_path = console_log_path(wd);
  if (auto opened = s.open_host_ends(wd, console_path); !opened) return fail(opened.error());

  VmOutcome out;
  out.accel = accel;
  VmConfig attempt_cfg = s.cfg;
  if (s.snapshot_possible(accel) && !s.cfg.snapshot_cmdline_extra.empty())
    attempt_cfg.cmdline_extra += (attempt_cfg.cmdline_extra.empty() ? "" : " ") + s.cfg.snapshot_cmdline_extra;
  auto argv = qemu_argv(attempt_cfg, accel);
  if (auto planned = s.plan_snapshot(argv, accel); !planned) return fail(planned.error());
  spdlog::debug("vm: {}", argv_to_string(argv));
  if (!s.spawn_qemu(argv, out.qemu_log_tail)) {
    out.end = VmEnd::kQemuFailedToStart;
    s.cleanup();
    return out;
  }

  State::Deadlines deadlines;
  deadlines.overall = s.start + s.cfg.overall_timeout;
  deadlines.first_output = s.start + s.cfg.kvm_first_output_limit;
  deadlines.silence_bound = may_fall_back && accel == Accel::kKvm;
  auto killed_for = s.pump(*this, deadlines);
  if (!killed_for) return fail(killed_for.error());

  s.reap(*this, *killed_for, out);
  if (!*killed_for) out.end = s.exit_end(out.qemu_status);
  s.fill_outcome(out);
  s.cleanup();
  out.console_path = console_path;
  spdlog::debug("vm: {} ended {} after {} ms (qemu status {})", accel_name(accel), vm_end_name(out.end),
                out.wall_time.count(), out.qemu_status);
  return out;
}

Result<VmOutcome> Vm::run() {
  State& s = *state_;
  if (s.started) return fail("cannot run a VM twice");
  s.started = true;

  if (s.cfg.work_dir.empty()) {
    sweep_stale_vm_work_dirs_once();
    auto tmp = create_vm_work_dir();
    if (!tmp) return fail(tmp.error());
    s.temp_dir.emplace(std::move(*tmp));
    if (s.cfg.keep_work_dir) s.temp_dir->keep();
    s.cfg.work_dir = s.temp_dir->path();
  } else if (auto made = make_dirs(s.cfg.work_dir, 0700); !made) {
    return fail(made.error());
  }
  for (auto& name : s.cfg.ports) {
    Channel c;
    c.name = name;
    s.ports.push_back(std::move(c));
  }

  // KTSTR_ACCEL=kvm asks for KVM whatever happens: a failure is then shown, not hidden.
  const bool may_fall_back = s.accel == Accel::kKvm && !accel_forced();
  auto out = attempt(s.accel, may_fall_back);
  if (out && s.accel == Accel::kKvm && !s.kvm_failure.empty() && may_fall_back && !s.any_port_data &&
      !s.replay_broken && !s.stop_requested) {
    // KVM cannot run the guest here: once under TCG, and remember it for this host boot.
    std::string evidence = s.kvm_failure;
    auto abandoned_after = out->wall_time;
    warn_kvm_fallback(evidence);
    AccelVerdict v;
    v.kvm_works = false;
    v.decided_by = kDecidedByBoot;
    v.evidence = evidence;
    if (auto w = record_accel_verdict(cache_dir(), v); !w) spdlog::debug("vm: cannot record the KVM verdict: {}", w.error().msg);
    // The abandoned attempt's console and QEMU log stay beside the TCG run's.
    const std::string& wd = s.cfg.work_dir;
    (void)!::rename(console_log_path(wd).c_str(), (wd + "/console-kvm.txt").c_str());
    (void)!::rename((wd + "/qemu.log").c_str(), (wd + "/qemu-kvm.log").c_str());
    s.reset_for_retry();
    out = attempt(Accel::kTcg, false);
    if (out) out->kvm_abandoned = VmOutcome::AbandonedKvm{evidence, abandoned_after};
  } else if (out && s.accel == Accel::kKvm && s.any_port_data && s.kvm_failure.empty()) {
    record_kvm_boot(out->boot_time);
  }
  if (out && s.restore_failed && !s.any_port_data && !s.stop_requested) {
    // The snapshot did not load (nothing of it reached the caller): boot
    // instead, and take no snapshot of this VM until someone looks.
    const std::string marker = s.cfg.snapshot_dir + "/" + s.snap_key + ".restore-failed";
    (void)write_file_atomic(marker, s.snapshot_note + "\nqemu: " + out->qemu_log_tail + "\n", 0600);
    if (s.snap) (void)remove_tree(s.snap->dir);
    const std::string& wd = s.cfg.work_dir;
    (void)!::rename((wd + "/qemu.log").c_str(), (wd + "/qemu-restore.log").c_str());
    std::string note = s.snapshot_note;
    s.reset_for_retry();
    s.snapshots_off = true;
    auto kvm_abandoned = out->kvm_abandoned;
    out = attempt(Accel::kTcg, false);
    if (out) {
      out->snapshot_note = note;
      out->kvm_abandoned = kvm_abandoned;
    }
  }
  if (!out) return out;
  if (s.temp_dir && !s.cfg.keep_work_dir) out->console_path.clear();
  s.temp_dir.reset();
  return out;
}

// A kernel reached the guest agent under KVM: the probe's provisional verdict
// is now proven (recorded once per host boot).
void Vm::record_kvm_boot(std::optional<std::chrono::milliseconds> boot_time) {
  auto cached = read_accel_verdict(cache_dir());
  if (cached && cached->this_boot && cached->kvm_works && cached->decided_by == kDecidedByBoot) return;
  AccelVerdict v;
  v.kvm_works = true;
  v.decided_by = kDecidedByBoot;
  std::string image = state_->cfg.kernel_image.substr(state_->cfg.kernel_image.find_last_of('/') + 1);
  v.evidence = "a kernel (" + image + ") reached the guest under KVM" +
               (boot_time ? " in " + std::to_string(boot_time->count()) + " ms" : std::string());
  if (auto w = record_accel_verdict(cache_dir(), v); !w) spdlog::debug("vm: cannot record the KVM verdict: {}", w.error().msg);
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
