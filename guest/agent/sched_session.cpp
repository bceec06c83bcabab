#include "guest/agent/sched_session.hpp"

#include "core/seed.hpp"
#include "guest/agent/util.hpp"
#include "guest/scheduler/mapwrite.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ktstr::agent {

namespace {

constexpr unsigned kAttachPollMs = 10;

uint64_t ms_to_ns(uint64_t ms) { return ms * 1000000ull; }

// The scheduler's environment: the agent's own, with KTSTR_SEED set to the
// job's seed (or removed when it has none). Built before fork; the agent's
// environment itself is left alone.
std::vector<std::string> scheduler_environment(const std::optional<uint64_t>& seed) {
  const std::string prefix = std::string(kSeedEnv) + "=";
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env.emplace_back(*e);
  if (seed) env.push_back(prefix + std::to_string(*seed));
  return env;
}

// Child side of spawn: only async-signal-safe calls until exec.
[[noreturn]] void exec_scheduler(const std::vector<char*>& argv, const std::vector<char*>& envp, int out_fd,
                                 int err_fd) {
  int devnull = ::open("/dev/null", O_RDONLY);
  if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::setpgid(0, 0);  // its own group: the agent stops helpers it forks too
  ::execve(argv[0], argv.data(), envp.data());
  const char* why = std::strerror(errno);
  const char* prefix = "ktstr-agent: cannot execute scheduler '";
  ssize_t ignored = ::write(STDERR_FILENO, prefix, std::strlen(prefix));
  ignored = ::write(STDERR_FILENO, argv[0], std::strlen(argv[0]));
  ignored = ::write(STDERR_FILENO, "': ", 3);
  ignored = ::write(STDERR_FILENO, why, std::strlen(why));
  ignored = ::write(STDERR_FILENO, "\n", 1);
  (void)ignored;
  ::_exit(127);
}

}  // namespace

SchedSession::SchedSession(const proto::JobMsg& job, SchedSink sink, SchedPaths paths,
                           SchedLimits limits)
    : job_(job), sink_(std::move(sink)), paths_(std::move(paths)), limits_(limits) {
  std::stable_sort(job_.map_writes.begin(), job_.map_writes.end(),
                   [](const auto& a, const auto& b) { return a.after_ms < b.after_ms; });
}

SchedSession::~SchedSession() {
  if (pid_ > 0 && !exited_) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

void SchedSession::place_kernel_config() {
  if (job_.kernel_config.empty()) {
    log("debug", "the job has no kernel config: no " + paths_.boot + "/config-*");
    return;
  }
  auto placed = place_boot_config(paths_.boot, job_.kernel_config);
  if (!placed) return log("warn", placed.error().msg);
  log("debug", "kernel config (" + std::to_string(job_.kernel_config.size()) + " bytes) at '" + *placed + "'");
}

Result<std::string> place_boot_config(const std::string& boot_dir, const std::string& config) {
  // libbpf fills `__kconfig` externs (CONFIG_HZ, ...) from
  // /boot/config-$(uname -r), else /proc/config.gz; the guest's root is the
  // shared initramfs, so the host sends the booted kernel's .config with the
  // job and it lands here before the scheduler can look.
  utsname uts{};
  if (::uname(&uts) != 0) return fail("uname: " + errno_text(errno));
  const std::string path = boot_dir + "/config-" + uts.release;
  if (::mkdir(boot_dir.c_str(), 0755) != 0 && errno != EEXIST)
    return fail("creating '" + boot_dir + "': " + errno_text(errno));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("writing the kernel config '" + path + "': " + errno_text(errno));
  ::close(fd);
  if (std::string err = write_text(path, config); !err.empty())
    return fail("writing the kernel config '" + path + "': " + err);
  return path;
}

void SchedSession::setup_tracing() {
  // Only the dump and exit events: sched_ext_event fires per fallback
  // dispatch (hundreds per second) and the counters come from root/events.
  bool any = false;
  for (const char* event : {"sched_ext_dump", "sched_ext_exit"}) {
    std::string path = paths_.tracing + "/events/sched_ext/" + event + "/enable";
    if (::access(path.c_str(), F_OK) != 0) {
      log("debug", std::string("trace event '") + event + "' is not in this kernel");
      continue;
    }
    std::string err = write_text(path, "1");
    if (!err.empty()) log("warn", "enabling trace event '" + std::string(event) + "': " + err);
    else any = true;
  }
  if (!any) return;
  if (std::string err = trace_.open(paths_.tracing + "/trace_pipe"); !err.empty())
    log("warn", "opening '" + paths_.tracing + "/trace_pipe': " + err);
}

Status SchedSession::start() {
  place_kernel_config();
  setup_tracing();
  if (std::string err = kmsg_.open(paths_.kmsg, /*seek_end=*/true); !err.empty())
    log("warn", "opening '" + paths_.kmsg + "': " + err);
  state_ = read_trimmed(paths_.sched_ext + "/state").value_or("");

  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return fail("creating pipe: " + errno_text(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    return fail("creating pipe: " + errno_text(errno));
  }
  std::vector<std::string> args = {job_.scheduler.path};
  args.insert(args.end(), job_.scheduler.args.begin(), job_.scheduler.args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = scheduler_environment(job_.seed);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  if (job_.seed) log("debug", std::string(kSeedEnv) + "=" + std::to_string(*job_.seed) + " for the scheduler");

  pid_t pid = ::fork();
  if (pid == 0) exec_scheduler(argv, envp, out[1], err[1]);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    return fail("forking scheduler '" + job_.scheduler.path + "': " + errno_text(errno));
  }
  pid_ = pid;
  stdout_.adopt(out[0]);
  stderr_.adopt(err[0]);
  send(proto::SchedStartedMsg{pid_, boottime_ms()});
  return {};
}

void SchedSession::poll_output() {
  for (auto [src, name] : {std::pair{&stdout_, "stdout"}, std::pair{&stderr_, "stderr"}}) {
    for (;;) {
      std::string chunk;
      size_t n = src->read_available(chunk, limits_.max_chunk_bytes);
      if (n == 0) break;
      if (output_truncated_) continue;  // keep draining so the scheduler never blocks
      bool truncate = output_bytes_ + chunk.size() > limits_.max_output_bytes;
      if (truncate) chunk.resize(limits_.max_output_bytes - output_bytes_);
      output_bytes_ += chunk.size();
      proto::SchedOutputMsg msg{name, std::move(chunk), truncate, boottime_ms()};
      if (truncate) {
        output_truncated_ = true;
        msg.text += "\n[ktstr: scheduler output truncated after " +
                    std::to_string(limits_.max_output_bytes) + " bytes]\n";
      }
      send(msg);
      if (n < limits_.max_chunk_bytes) break;
    }
  }
}

void SchedSession::send_kernel_lines(const char* source, std::vector<std::string>& lines,
                                     size_t& sent_bytes, size_t cap, bool& truncated) {
  std::string text;
  auto flush = [&] {
    if (text.empty()) return;
    send(proto::KernelLogMsg{source, std::move(text), false, boottime_ms()});
    text.clear();
  };
  for (std::string& line : lines) {
    if (truncated) break;
    if (sent_bytes + line.size() + 1 > cap) {
      truncated = true;
      flush();
      send(proto::KernelLogMsg{source, "[ktstr: " + std::string(source) + " truncated after " +
                                           std::to_string(cap) + " bytes]",
                               true, boottime_ms()});
      break;
    }
    sent_bytes += line.size() + 1;
    if (text.size() + line.size() + 1 > limits_.max_chunk_bytes) flush();
    if (!text.empty()) text += '\n';
    text += line;
  }
  flush();
  lines.clear();
}

void SchedSession::poll_kernel_logs() {
  if (trace_.is_open()) {
    std::string raw;
    while (trace_.read_available(raw, 256 * 1024) > 0) {
      trace_lines_.feed(raw);
      raw.clear();
    }
    std::vector<std::string> keep;
    for (std::string& line : trace_lines_.take_lines())
      if (is_sched_ext_trace_line(line)) keep.push_back(std::move(line));
    send_kernel_lines("trace", keep, trace_bytes_, limits_.max_trace_bytes, trace_truncated_);
  }
  if (kmsg_.is_open()) {
    std::vector<std::string> records, lines;
    std::string unused;
    while (kmsg_.read_available(unused, 256 * 1024, &records) > 0) {
      for (const std::string& r : records)
        if (auto line = kmsg_record_line(r)) lines.push_back(std::move(*line));
      records.clear();
    }
    send_kernel_lines("dmesg", lines, dmesg_bytes_, limits_.max_dmesg_bytes, dmesg_truncated_);
  }
}

void SchedSession::poll_state() {
  std::string state = read_trimmed(paths_.sched_ext + "/state").value_or("");
  if (state == state_) return;
  state_ = state;
  std::string ops = read_trimmed(paths_.sched_ext + "/root/ops").value_or("");
  send(proto::SchedStateMsg{state_, ops, boottime_ms()});
  if (state_ == "enabled" && !enabled_) {
    enabled_ = true;
  } else if (enabled_ && state_ != "enabled" && death_ns_ == 0) {
    death_ns_ = monotonic_ns();
    log("info", "sched_ext state changed to '" + state_ + "'");
  }
}

void SchedSession::poll_exit(bool block) {
  if (pid_ <= 0 || exited_) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return;
  exited_ = true;
  if (death_ns_ == 0) death_ns_ = monotonic_ns();
  proto::SchedExitedMsg msg{pid_, -1, 0, stop_sent_, boottime_ms()};
  if (WIFEXITED(status)) msg.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) msg.signal = WTERMSIG(status);
  // Whatever it printed last is in the pipes now: send it before the exit.
  poll_output();
  send(msg);
}

void SchedSession::collect() {
  poll_output();
  poll_state();
  poll_kernel_logs();
  poll_exit(false);
}

AttachOutcome SchedSession::wait_attached() {
  uint64_t deadline = monotonic_ns() + ms_to_ns(job_.scheduler.attach_timeout_ms);
  for (;;) {
    collect();
    if (enabled_) return AttachOutcome::kEnabled;
    if (exited_) return AttachOutcome::kExited;
    if (monotonic_ns() >= deadline) {
      log("warn", "scheduler '" + job_.scheduler.path + "' did not enable sched_ext within " +
                      std::to_string(job_.scheduler.attach_timeout_ms) + " ms (state '" + state_ + "')");
      return AttachOutcome::kTimedOut;
    }
    sleep_ms(kAttachPollMs);
  }
}

void SchedSession::workload_started() {
  workload_ns_ = monotonic_ns();
  next_sample_ns_ = workload_ns_;
}

void SchedSession::do_map_writes() {
  if (!enabled_) return;
  uint64_t now = monotonic_ns();
  // after_ms counts on the test's clock, from the workload's start (as a
  // run's fail_at_s and its steps do); before the start only the writes at
  // 0 are due, so they are in place when the workers begin.
  while (next_write_ < job_.map_writes.size()) {
    const uint64_t after = ms_to_ns(job_.map_writes[next_write_].after_ms);
    if (workload_ns_ ? now < workload_ns_ + after : after != 0) break;
    const proto::MapWritePlan& w = job_.map_writes[next_write_++];
    proto::MapWriteResultMsg msg{w.map, w.var, w.value, false, {}, {}, {}, 0};
    auto written = mapwrite::write_map_var(w.map, w.var, w.value);
    msg.t_ms = boottime_ms();
    if (written) {
      msg.ok = true;
      msg.resolved_map = written->map_name;
      log("info", "map write " + written->map_name + "." + w.var + " = " + std::to_string(w.value) +
                      " (was " + std::to_string(written->old_value) + ")");
    } else {
      msg.error = written.error().msg;
      msg.hint = written.error().hint;
    }
    send(msg);
  }
}

void SchedSession::sample_monitor() {
  uint64_t now = monotonic_ns();
  if (now < next_sample_ns_ || samples_ >= limits_.max_monitor_samples) return;
  next_sample_ns_ = now + ms_to_ns(job_.monitor_interval_ms);
  ++samples_;
  proto::MonitorMsg m;
  m.t_ms = boottime_ms();
  if (auto debug = read_text(paths_.sched_debug)) {
    m.nr_running = parse_sched_debug_nr_running(*debug);
    m.nr_switches = parse_sched_debug_field(*debug, ".nr_switches");
  }
  if (events_file_) {
    if (auto events = read_text(paths_.sched_ext + "/root/events"))
      m.events = parse_sched_ext_events(*events);
    else
      events_file_ = false;  // no scheduler loaded, or an older kernel
  }
  m.sched_state = state_;
  send(m);
}

bool SchedSession::tick() {
  collect();
  do_map_writes();
  sample_monitor();
  return death_ns_ != 0 && monotonic_ns() >= death_ns_ + ms_to_ns(limits_.grace_ms);
}

void SchedSession::finish() {
  collect();
  if (pid_ > 0 && !exited_ && death_ns_ != 0) {
    // The kernel disabled it: let it notice and print its exit on its own.
    uint64_t deadline = monotonic_ns() + ms_to_ns(limits_.stop_timeout_ms);
    while (!exited_ && monotonic_ns() < deadline) {
      sleep_ms(kAttachPollMs);
      collect();
    }
  }
  if (pid_ > 0 && !exited_) {
    // A normal end of the run: detach it the way a user would (Ctrl-C).
    stop_sent_ = true;
    ::kill(pid_, SIGINT);
    uint64_t deadline = monotonic_ns() + ms_to_ns(limits_.stop_timeout_ms);
    while (!exited_ && monotonic_ns() < deadline) {
      sleep_ms(kAttachPollMs);
      collect();
    }
    if (!exited_) {
      log("warn", "scheduler did not exit within " + std::to_string(limits_.stop_timeout_ms) +
                      " ms of SIGINT; killing it");
      ::kill(-pid_, SIGKILL);
      ::kill(pid_, SIGKILL);
      poll_exit(true);
    }
  }
  if (pid_ > 0) ::kill(-pid_, SIGKILL);  // helpers it left behind
  // Late kernel lines (the "disabled" message) and the last of the output.
  for (int i = 0; i < 5; ++i) {
    sleep_ms(20);
    collect();
  }
  if (auto rest = trace_lines_.take_rest(); rest && is_sched_ext_trace_line(*rest)) {
    std::vector<std::string> last = {*rest};
    send_kernel_lines("trace", last, trace_bytes_, limits_.max_trace_bytes, trace_truncated_);
  }
}

}  // namespace ktstr::agent
