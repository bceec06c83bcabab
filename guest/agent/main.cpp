// ktstr-agent: PID 1 (/init) of a ktstr VM. Mounts the kernel filesystems,
// reports HELLO/TOPOLOGY over the "ktstr.results" virtio port, reads the JOB
// from "ktstr.control", runs the workers, streams their WORKER frames, sends
// DONE and powers off. PID 1 must never exit (the kernel would panic): every
// path ends in power_off().
#include "core/seed.hpp"
#include "guest/agent/file_receiver.hpp"
#include "guest/agent/mounts.hpp"
#include "guest/agent/ports.hpp"
#include "guest/agent/probes.hpp"
#include "guest/agent/repeat.hpp"
#include "guest/agent/sched_session.hpp"
#include "guest/agent/topology_report.hpp"
#include "guest/agent/util.hpp"
#include "guest/agent/verifier_job.hpp"
#include "guest/agent/workers.hpp"
#include "guest/proto/file_messages.hpp"
#include "guest/proto/messages.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <fcntl.h>
#include <sys/reboot.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ktstr::agent {

namespace {

using namespace ktstr::proto;

constexpr unsigned kDefaultJobTimeoutMs = 30000;
constexpr unsigned kWriteTimeoutMs = 30000;

// Kernel console: for people reading console.txt, and the only channel left
// when the results port is missing.
void console(const std::string& line) {
  std::string text = "ktstr-agent: " + line + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, text.data(), text.size());
  (void)ignored;
}

// The kernel hands PID 1 /dev/console as fds 0-2 only if the initramfs has
// it; after devtmpfs is mounted it always exists.
void ensure_console() {
  if (::fcntl(STDERR_FILENO, F_GETFD) >= 0) return;
  int fd = ::open("/dev/console", O_RDWR | O_NOCTTY);
  if (fd < 0) return;
  for (int target = 0; target <= 2; ++target) ::dup2(fd, target);
  if (fd > 2) ::close(fd);
}

void reap_orphans() {
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

[[noreturn]] void power_off() {
  ::kill(-1, SIGKILL);  // every process but PID 1
  reap_orphans();
  ::sync();
  ::reboot(RB_POWER_OFF);
  console("power off failed: " + errno_text(errno));
  for (;;) {  // PID 1 must not exit
    ::pause();
    reap_orphans();
  }
}

class Agent {
 public:
  Agent(uint64_t started_ms, std::vector<MountOutcome> mounts)
      : started_ms_(started_ms), mounts_(std::move(mounts)), mounted_ms_(boottime_ms()) {}

  Status run();
  void finish(const Status& status);

 private:
  template <typename Msg>
  void send(const Msg& msg) {
    if (!results_.is_open()) return;
    if (auto ok = results_.write_all(encode_message(msg), kWriteTimeoutMs); !ok && !send_failed_) {
      send_failed_ = true;
      console("sending '" + msg_type_name(Msg::kType) + "' frame: " + ok.error().msg);
    }
  }
  void stage(const char* name, uint64_t t_ms) { send(StageMsg{name, t_ms}); }
  void log(const std::string& level, const std::string& text) {
    if (level == "debug" && !verbose_) return;
    if (verbose_ || level == "error") console(level + ": " + text);
    send(LogMsg{level, text});
  }
  Result<JobMsg> receive_job(Port& control);
  Status run_job(const JobMsg& job);
  Status run_repeated(const JobMsg& job);
  Status run_verifier(const JobMsg& job);
  Status run_with_scheduler(const JobMsg& job, WorkerCallbacks callbacks, const WorkerOptions& options);

  uint64_t started_ms_;
  std::vector<MountOutcome> mounts_;
  uint64_t mounted_ms_;
  bool verbose_ = false;
  unsigned job_timeout_ms_ = kDefaultJobTimeoutMs;
  Port results_;
  bool send_failed_ = false;
  PreloadedProbes preloaded_probes_;  // for the first job with probes
};

Status Agent::run() {
  std::string cmdline = read_trimmed("/proc/cmdline").value_or("");
  verbose_ = cmdline_value(cmdline, "ktstr.verbose").value_or("0") == "1";
  if (auto t = cmdline_value(cmdline, "ktstr.job_timeout_ms")) {
    if (auto v = parse_u64(*t); v && *v > 0 && *v < 3600000) job_timeout_ms_ = unsigned(*v);
  }

  auto results_dev = find_port_device(kResultsPort);
  if (!results_dev)
    return fail(std::string("virtio-serial port '") + kResultsPort + "' not found",
                "start QEMU with -device virtserialport,name=ktstr.results");
  auto results = Port::open(*results_dev, O_WRONLY);
  if (!results) return fail(results.error());
  results_ = std::move(*results);

  utsname uts{};
  ::uname(&uts);
  send(HelloMsg{kAgentVersion, uts.release, started_ms_});
  stage(stage::kInit, started_ms_);
  for (const MountOutcome& m : mounts_)
    if (!m.error.empty()) log("warn", "mounting '" + m.fstype + "' on '" + m.target + "': " + m.error);
  stage(stage::kMounted, mounted_ms_);
  send(read_topology());
  log("debug", "kernel command line: " + cmdline);
  log("debug", std::string("results port: ") + *results_dev);
  if (auto sched = find_port_device(kSchedPort)) log("debug", std::string("scheduler port: ") + *sched);

  if (cmdline_value(cmdline, kPreloadProbesParam).value_or("0") == "1") {
    // Before the control port opens: a snapshot taken there includes it.
    preloaded_probes_ = preload_kernel_probes(kPreloadTriggerTracepoint);
    log("debug", "probes preloaded: " + preload_summary(*preloaded_probes_));
  }
  auto control_dev = find_port_device(kControlPort);
  if (!control_dev)
    return fail(std::string("virtio-serial port '") + kControlPort + "' not found",
                "start QEMU with -device virtserialport,name=ktstr.control");
  auto control = Port::open(*control_dev, O_RDONLY);
  if (!control) return fail(control.error());
  auto job = receive_job(*control);
  if (!job) return fail(job.error());
  stage(stage::kJobReceived, boottime_ms());
  if (job->seed) {
    // A guest restored from a snapshot starts with the snapshot's random
    // state: every restored run would draw the same numbers (addresses,
    // hash seeds). The run's seed, mixed in and reseeded, makes runs differ
    // and a run with the same --seed draw alike.
    if (std::string err = reseed_kernel_rng(*job->seed); !err.empty()) log("warn", "reseeding the kernel RNG: " + err);
  }
  if (job->verbose) verbose_ = true;
  if (auto valid = validate_job(*job); !valid) return fail(valid.error().context("invalid job"));
  {
    JobMsg shown = *job;  // the kernel config is long and says nothing here
    if (!shown.kernel_config.empty()) shown.kernel_config = std::to_string(shown.kernel_config.size()) + " bytes";
    log("debug", "job: " + dump_json(nlohmann::json(shown)));
  }

  // The kind (derived from the version for an older host's JOB) says what
  // to do; validate_job made sure the version agrees.
  switch (job->kind) {
    case JobKind::kVerifier: return run_verifier(*job);
    case JobKind::kRun: break;
  }
  if (is_repeat_job(*job)) return run_repeated(*job);
  return run_job(*job);
}

// A verifier job (version 4): load each BPF object (verify, attach nothing) and send
// one VERIFIER_RESULT per object. A program the verifier rejects is a
// result for the host to report, not an agent error.
Status Agent::run_verifier(const JobMsg& job) {
  if (!job.kernel_config.empty()) {
    if (auto placed = place_boot_config("/boot", job.kernel_config); !placed) log("warn", placed.error().msg);
  }
  auto log_fn = [this](const std::string& level, const std::string& text) { log(level, text); };
  for (uint32_t i = 0; i < job.verifier->objects.size(); ++i) {
    VerifierResultMsg result = verify_object(i, job.verifier->objects[i], log_fn);
    log("debug", "verifier: '" + result.path + "': " + std::to_string(result.programs.size()) + " programs, load " +
                     std::to_string(result.load_ms) + " ms" + (result.error.empty() ? "" : ", " + result.error));
    send(result);
  }
  return {};
}

// One run of the job: workers alone, or a scheduler and then workers.
Status Agent::run_job(const JobMsg& job) {
  WorkerCallbacks callbacks;
  callbacks.log = [this](const std::string& level, const std::string& text) { log(level, text); };
  callbacks.started = [this] { stage(stage::kWorkersStarted, boottime_ms()); };
  callbacks.report = [this](const WorkerMsg& w) { send(w); };
  callbacks.step = [this](const StepMsg& m) { send(m); };
  WorkerOptions options;
  options.cgroup_root = "/sys/fs/cgroup/ktstr";
  if (!job.scheduler.path.empty()) return run_with_scheduler(job, std::move(callbacks), options);
  Status workers = run_workers(job, options, callbacks);
  stage(stage::kWorkersDone, boottime_ms());
  reap_orphans();
  return workers;
}

// A repeat job (version 2, or 3 or 5 with `repeat` > 1): `repeat` runs in
// this boot. Between them the cgroups go and sched_ext must settle back to
// "disabled"; a run the agent could not do, or a state that does not
// settle, ends the VM (REPEAT_END next=false) and the host boots a new one
// for the rest.
Status Agent::run_repeated(const JobMsg& job) {
  const std::string cgroup_root = "/sys/fs/cgroup/ktstr";
  const std::string state_path = "/sys/kernel/sched_ext/state";
  for (uint32_t index = 1; index <= job.repeat; ++index) {
    if (index > 1 && !job.scheduler.path.empty())
      if (std::string err = clear_trace_buffer("/sys/kernel/tracing"); !err.empty())
        log("warn", "clearing the trace buffer before repetition " + std::to_string(index) + ": " + err);
    send(RepeatBeginMsg{index, boottime_ms()});
    // Each repetition reloads the scheduler with its own seed.
    std::optional<JobMsg> seeded;
    if (job.seed) {
      seeded = job;
      seeded->seed = seed_at(*job.seed, index - 1);
    }
    Status ran = run_job(seeded ? *seeded : job);
    RepeatEndMsg end;
    end.index = index;
    end.ok = bool(ran);
    if (!ran) {
      end.error = ran.error().msg;
      send(ErrorMsg{ran.error().msg, ran.error().hint});
    }
    for (const std::string& p : remove_job_cgroups(cgroup_root, job)) log("warn", p);
    SettleOutcome settled = wait_sched_disabled(
        [&] { return read_trimmed(state_path); }, job.settle_ms, real_settle_clock());
    end.sched_state = settled.state;
    if (!settled.settled)
      log("error", "sched_ext state reads '" + settled.state + "' " + std::to_string(job.settle_ms) +
                       " ms after repetition " + std::to_string(index) + ", not 'disabled': ending this VM");
    end.next = ran && settled.settled && index < job.repeat;
    end.t_ms = boottime_ms();
    send(end);
    if (!end.next) break;
  }
  return {};
}

// A sched_ext run: the scheduler first; workers only once it is enabled. A
// scheduler that dies or fails to attach is a result, not an agent error:
// the host judges it from the SCHED_* frames.
Status Agent::run_with_scheduler(const JobMsg& job, WorkerCallbacks callbacks,
                                 const WorkerOptions& options) {
  SchedSink sink;
  sink.send = [this](const std::string& frame) {
    if (!results_.is_open()) return;
    if (auto ok = results_.write_all(frame, kWriteTimeoutMs); !ok && !send_failed_) {
      send_failed_ = true;
      console("sending a scheduler frame: " + ok.error().msg);
    }
  };
  sink.log = [this](const std::string& level, const std::string& text) { log(level, text); };
  // Crash probes (auto-repro): kernel side before the scheduler exists, or
  // while it loads when the crash to replay came after the workload began;
  // the scheduler's programs as they load; the workload waits for them. A
  // crash well into the workload (probes_during_workload): all of them once
  // the workload runs, so the scheduler loads and the workload starts as in
  // the crashed run.
  std::unique_ptr<ProbeRunner> probes;
  if (job.probes) {
    probes = std::make_unique<ProbeRunner>(*job.probes, ProbeSink{sink.send, sink.log}, "/sys/kernel/tracing",
                                           std::move(preloaded_probes_));
    probes->start();
  }
  SchedLimits limits;
  // A replay needs nothing of the workers after the death, only the
  // probes' tail after the trigger: the run ends that much sooner.
  if (job.probes) limits.grace_ms = kProbeTriggerTailMs;
  SchedSession session(job, sink, SchedPaths{}, limits);
  if (auto started = session.start(); !started) return started;
  AttachOutcome attach = session.wait_attached();
  if (probes) {
    probes->scheduler_settled();
    if (!job.probes->probes_during_workload) probes->send_setup();
  }
  if (attach != AttachOutcome::kEnabled) {
    if (probes) probes->finish();
    session.finish();
    reap_orphans();
    return {};
  }
  session.map_writes_due();
  callbacks.started = [this, &session, &probes] {
    stage(stage::kWorkersStarted, boottime_ms());
    session.workload_started();
    if (probes) probes->launch();
  };
  callbacks.tick = [&session, &probes] {
    // Once the scheduler has died the run winds down: the ticks still take
    // in the events (that work overlaps the grace period), and they go out
    // after the workers (finish), not in a tick that would delay the end.
    if (probes) probes->tick(/*may_send=*/!session.died());
    return session.tick();
  };
  Status workers = run_workers(job, options, callbacks);
  stage(stage::kWorkersDone, boottime_ms());
  if (probes) probes->finish();
  session.finish();
  reap_orphans();
  return workers;
}

// The JOB, and before it the FILE frames (the scheduler and its libraries):
// each file is checked and put in place, or the job is refused. The deadline
// restarts with every FILE frame, so a large transfer under TCG is not cut
// short while it progresses.
Result<JobMsg> Agent::receive_job(Port& control) {
  FrameDecoder decoder;
  FileReceiver files;
  uint64_t first_file_ns = 0;
  uint64_t deadline = monotonic_ns() + uint64_t(job_timeout_ms_) * 1000000ull;
  for (;;) {
    uint64_t now = monotonic_ns();
    unsigned left = now >= deadline ? 0 : unsigned((deadline - now) / 1000000);
    auto frame = control.read_frame(decoder, left);
    for (const std::string& d : decoder.take_diagnostics()) log("warn", "control port: " + d);
    if (!frame && monotonic_ns() >= deadline)
      return fail("no job on port '" + std::string(kControlPort) + "' within " +
                      std::to_string(job_timeout_ms_) + " ms",
                  "the host must write a 'job' frame to the control port after 'hello'");
    if (!frame) return fail(frame.error().context("waiting for the job"));
    if (frame->type == MsgType::File) {
      if (first_file_ns == 0) first_file_ns = monotonic_ns();
      auto chunk = decode_payload<FileMsg>(*frame);
      if (!chunk) return fail(chunk.error().context("refusing the job"));
      if (auto ok = files.accept(*chunk); !ok) return fail(ok.error().context("refusing the job"));
      deadline = monotonic_ns() + uint64_t(job_timeout_ms_) * 1000000ull;
      continue;
    }
    if (frame->type == MsgType::Job) {
      if (auto ok = files.finish(); !ok) return fail(ok.error().context("refusing the job"));
      if (files.files() > 0)
        log("debug", "received " + std::to_string(files.files()) + " files (" + std::to_string(files.bytes()) +
                         " bytes) in " + std::to_string((monotonic_ns() - first_file_ns) / 1000000) + " ms");
      return decode_payload<JobMsg>(*frame);
    }
    log("warn", "ignoring a '" + msg_type_name(frame->type) + "' frame before the job");
  }
}

void Agent::finish(const Status& status) {
  if (!status) {
    console("error: " + status.error().msg);
    if (!status.error().hint.empty()) console("hint: " + status.error().hint);
    send(ErrorMsg{status.error().msg, status.error().hint});
  }
  stage(stage::kPoweroff, boottime_ms());
  send(DoneMsg{bool(status), status ? std::string() : status.error().msg});
  if (status) console("done, powering off");
}

}  // namespace
}  // namespace ktstr::agent

int main() {
  using namespace ktstr::agent;
  if (::getpid() != 1) {
    std::fprintf(stderr, "ktstr-agent: error: must run as PID 1 (/init) inside a ktstr VM\n");
    return 2;
  }
  uint64_t started_ms = boottime_ms();
  auto mounts = mount_filesystems();
  ensure_console();
  console("started at " + std::to_string(started_ms) + " ms after boot");
  try {
    Agent agent(started_ms, std::move(mounts));
    ktstr::Status status;
    try {
      status = agent.run();
    } catch (const std::exception& e) {
      status = ktstr::fail(std::string("unexpected exception: ") + e.what());
    }
    agent.finish(status);
  } catch (...) {
    console("error: unexpected exception while reporting");
  }
  power_off();
}
