#include "run/pipeline.hpp"

#include "core/fs.hpp"
#include "core/scenario.hpp"
#include "guest/initramfs/initramfs.hpp"
#include "guest/vm/snapshot.hpp"
#include "guest/proto/file_messages.hpp"
#include "guest/proto/messages.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace ktstr::runner {
namespace {

constexpr const char* kSchedPort = "ktstr.sched";

proto::WorkKind work_kind(const std::string& w) {
  proto::WorkKind kind = proto::WorkKind::Spin;
  proto::parse_work_kind(w, kind);  // the plan holds known kinds only
  return kind;
}

// Where the scheduler binary sits inside the guest: the fixture at
// /bin/scx-ktstr, an external binary at /sched/<basename>.
constexpr const char* kFixtureScheduler = "scx-ktstr";
constexpr uint32_t kAttachTimeoutMs = 30000;

constexpr const char* kFixtureGuestPath = "/bin/scx-ktstr";

std::string guest_scheduler_path(const TestSpec& spec) {
  if (!spec.uses_bpf_scheduler()) return "";
  if (spec.scheduler == kFixtureScheduler) return kFixtureGuestPath;
  return "/sched/" + spec.scheduler.substr(spec.scheduler.find_last_of('/') + 1);
}

proto::JobMsg make_job(const ScenarioPlan& plan, const TestSpec& spec, bool verbose,
                       const std::optional<ProbePlan>& probes) {
  proto::JobMsg job;
  job.kind = proto::JobKind::kRun;  // the version follows from what it uses (prepare_run)
  job.verbose = verbose;
  job.topology = spec.topology.to_string();
  job.scenario.duration_ms = plan.duration_ms;
  for (auto& cg : plan.cgroups) {
    proto::CgroupPlan p;
    p.name = cg.name;
    p.workers = cg.workers;
    p.work = work_kind(cg.work);
    p.cpus = cg.cpus;
    p.rate_hz = cg.params.rate_hz;
    p.period_us = cg.params.period_us;
    p.runtime_us = cg.params.runtime_us;
    p.interval_us = cg.params.interval_us;
    p.nice = cg.params.nice;
    p.policy = cg.params.policy;
    p.weight = cg.weight;
    job.scenario.cgroups.push_back(std::move(p));
  }
  for (auto& s : plan.steps)
    job.scenario.steps.push_back(proto::StepPlan{s.after_ms, s.action, s.cgroup, s.count, s.to, s.cpus, s.cpu});
  job.scheduler.path = guest_scheduler_path(spec);
  job.scheduler.args = spec.sched_args;
  job.scheduler.attach_timeout_ms = kAttachTimeoutMs;
  for (const MapWrite& w : plan.map_writes)
    job.map_writes.push_back(proto::MapWritePlan{w.map, w.var, w.value, w.after_ms});
  // The host plan and the wire plan share one JSON form.
  if (probes) job.probes = probe_plan_json(*probes).get<proto::ProbePlan>();
  return job;
}

// The files the spec's scheduler needs in the guest: the binary, and for a
// dynamic one every shared library at its own absolute path. They travel as
// FILE frames before the JOB (guest/proto/file_messages.hpp), so the
// initramfs holds only what comes with the agent's build. Checked before
// boot, with the agent's limits. The fixture is part of that build: it sits
// in the image (agent_entries), since sending its 2 MB costs 0.5-0.8 s per
// boot under TCG, and every image of one build holds the same one.
Result<std::vector<GuestFile>> scheduler_files(const TestSpec& spec) {
  std::vector<GuestFile> files;
  if (!spec.uses_bpf_scheduler()) return files;
  std::string host_path;
  if (spec.scheduler == kFixtureScheduler) {
    auto fixture = find_fixture_scheduler();
    if (!fixture) return tl::unexpected(fixture.error());
    return files;
  } else if (spec.scheduler.find('/') != std::string::npos) {
    host_path = spec.scheduler;
    if (::access(host_path.c_str(), F_OK) != 0)
      return fail("scheduler '" + host_path + "' does not exist",
                  "set scheduler to the path of a built scheduler binary, or \"scx-ktstr\"");
    if (::access(host_path.c_str(), X_OK) != 0)
      return fail("scheduler '" + host_path + "' is not executable", "chmod +x '" + host_path + "'");
  } else {
    return fail("unknown scheduler '" + spec.scheduler + "'",
                "use \"eevdf\", \"scx-ktstr\" or a path containing '/'");
  }
  files.push_back(GuestFile{guest_scheduler_path(spec), host_path, 0755});
  auto libs = elf_shared_libraries(host_path);
  if (!libs)
    return tl::unexpected(libs.error().context("scheduler '" + spec.scheduler + "'"));
  for (const std::string& lib : *libs) {
    if (::access(lib.c_str(), R_OK) != 0)
      return fail("library '" + lib + "' needed by scheduler '" + spec.scheduler + "' is not readable");
    files.push_back(GuestFile{lib, lib, 0755});
  }
  std::vector<proto::FileSetEntry> set;
  for (const GuestFile& f : files) {
    struct stat st{};
    if (::stat(f.host_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      return fail("'" + f.host_path + "' needed by scheduler '" + spec.scheduler + "' is not a regular file");
    set.push_back(proto::FileSetEntry{f.guest_path, uint64_t(st.st_size)});
  }
  if (auto ok = proto::validate_file_set(set); !ok)
    return tl::unexpected(ok.error().context("scheduler '" + spec.scheduler + "'"));
  return files;
}

Result<std::string> cached_initramfs(const std::string& artifacts_dir, const std::vector<InitramfsEntry>& entries) {
  std::string dir = artifacts_dir + "/initramfs";
  if (auto st = make_dirs(dir); !st) return tl::unexpected(st.error());
  return build_initramfs_cached(entries, dir);
}

// The agent as /init and, when built beside it, the fixture scheduler at
// /bin/scx-ktstr: one image per build, whatever scheduler a run uses.
Result<std::vector<InitramfsEntry>> agent_entries() {
  auto agent = find_agent_binary();
  if (!agent) return tl::unexpected(agent.error());
  std::vector<InitramfsEntry> entries{
      InitramfsEntry::file_from_host("init", *agent, 0755),
      InitramfsEntry::directory("dev"),
      InitramfsEntry::directory("proc"),
      InitramfsEntry::directory("sys"),
      InitramfsEntry::directory("tmp", 01777),
      InitramfsEntry::char_device("dev/console", 5, 1),
  };
  if (auto fixture = find_fixture_scheduler()) {
    entries.push_back(InitramfsEntry::file_from_host(std::string(kFixtureGuestPath).substr(1), *fixture, 0755));
  }
  return entries;
}

}  // namespace

Result<std::string> find_fixture_scheduler() {
  for (auto& cand : {exe_dir() + "/scx-ktstr", exe_dir() + "/../libexec/ktstr/scx-ktstr"})
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  return fail("the fixture scheduler 'scx-ktstr' was not found next to ktstr",
              "build it (ninja scx-ktstr) or rerun scripts/setup.sh");
}

Status check_scheduler(const TestSpec& spec) {
  auto files = scheduler_files(spec);
  if (!files) return tl::unexpected(files.error());
  return {};
}

Result<std::string> encode_guest_files(const std::vector<GuestFile>& files) {
  std::string frames;
  for (const GuestFile& f : files) {
    if (f.content) {
      frames += proto::encode_file_frames(f.guest_path, f.mode, *f.content);
      continue;
    }
    auto content = read_file(f.host_path, proto::kMaxFileBytes);
    if (!content) return tl::unexpected(content.error().context("sending '" + f.host_path + "' to the guest"));
    frames += proto::encode_file_frames(f.guest_path, f.mode, *content);
  }
  return frames;
}

VmConfig job_vm_config(const KernelRecord& kernel, const std::string& initramfs, const Topology& topology,
                       unsigned memory_mb, bool verbose) {
  VmConfig cfg;
  cfg.kernel_image = kernel.image_path;
  cfg.initramfs = initramfs;
  cfg.topology = topology;
  cfg.memory_mb = memory_mb;
  cfg.verbose_console = verbose;
  cfg.ports = {kControlPort, kResultsPort};
  // The agent opens the control port when it starts to wait for the job:
  // the moment to snapshot, and where a restored guest resumes.
  cfg.snapshot_dir = default_snapshot_dir();
  cfg.snapshot_ready_port = kControlPort;
  return cfg;
}

std::string kernel_config_for_guest(const KernelRecord& kernel, const std::string& without_it,
                                    std::vector<std::string>& notes) {
  if (kernel.config_path.empty()) {
    notes.push_back("kernel " + kernel.version + " has no config in the cache: " + without_it);
    return {};
  }
  auto text = read_file(kernel.config_path, proto::kMaxKernelConfigBytes);
  if (!text) {
    notes.push_back("the kernel config was not given to the guest: " + text.error().msg);
    return {};
  }
  return std::move(*text);
}

Result<std::string> find_agent_binary() {
  if (const char* a = std::getenv("KTSTR_AGENT"); a && *a) {
    if (::access(a, X_OK) != 0) return fail("KTSTR_AGENT '" + std::string(a) + "' is not executable");
    return std::string(a);
  }
  for (auto& cand : {exe_dir() + "/ktstr-agent", exe_dir() + "/../libexec/ktstr/ktstr-agent"})
    if (::access(cand.c_str(), X_OK) == 0) return cand;
  return fail("the guest agent 'ktstr-agent' was not found next to ktstr",
              "rebuild with scripts/setup.sh, or set KTSTR_AGENT to its path");
}

Result<std::string> agent_initramfs(const std::string& artifacts_dir) {
  auto entries = agent_entries();
  if (!entries) return tl::unexpected(entries.error());
  return cached_initramfs(artifacts_dir, *entries);
}


RunResult new_run_result(const TestSpec& spec, const KernelRecord& kernel, const PipelineOptions& opts) {
  RunResult r;
  r.test_name = spec.name;
  r.scheduler = spec.scheduler;
  r.topology = spec.topology.to_string();
  r.scenario = spec.scenario.empty() ? "custom" : spec.scenario;
  r.kernel_id = kernel.id;
  r.kernel_version = kernel.version;
  r.memory_mb = opts.memory_mb.value_or(spec.memory_mb);
  r.seed = opts.seed;
  return r;
}

Result<VmRunPlan> prepare_run(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                const PipelineOptions& opts, unsigned repeat) {
  auto progress = [&](const std::string& s) {
    if (opts.progress) opts.progress(spec.name + ": " + s);
  };
  auto plan = plan_scenario(spec, spec.topology);
  if (!plan) return tl::unexpected(plan.error().context("test '" + spec.name + "'"));

  progress("preparing initramfs");
  auto initrd = agent_initramfs(artifacts_dir);
  if (!initrd) return tl::unexpected(initrd.error().context("test '" + spec.name + "'"));
  auto files = scheduler_files(spec);
  if (!files) return tl::unexpected(files.error().context("test '" + spec.name + "'"));
  auto file_frames = encode_guest_files(*files);
  if (!file_frames) return tl::unexpected(file_frames.error().context("test '" + spec.name + "'"));

  VmRunPlan p;
  p.file_frames = std::move(*file_frames);
  p.cfg = job_vm_config(kernel, *initrd, spec.topology, opts.memory_mb.value_or(spec.memory_mb), opts.verbose);
  VmConfig& cfg = p.cfg;
  cfg.ports.push_back(kSchedPort);
  // Restored guests start with the probes' kernel object loaded.
  cfg.snapshot_cmdline_extra = std::string(proto::kPreloadProbesParam) + "=1";
  // The agent is quiet while workers run, so the no-output watchdog must
  // outlast the scenario; a spec can tighten it.
  // A scheduler run is also quiet while it attaches (up to the attach
  // timeout) and while it is stopped at the end.
  unsigned duration_s = (plan->duration_ms + 999) / 1000;
  unsigned attach_s = spec.uses_bpf_scheduler() ? kAttachTimeoutMs / 1000 + 10 : 0;
  cfg.no_output_timeout =
      std::chrono::seconds(spec.watchdog_timeout_s.value_or(attach_s + duration_s + 60));
  // A repeat job: each further repetition may take as long again, plus its
  // teardown and the settle time (kRepeatSettleMs).
  cfg.overall_timeout = std::chrono::seconds(attach_s + duration_s + 180 +
                                             (repeat - 1) * (attach_s + duration_s + 30));

  p.job = make_job(*plan, spec, opts.verbose, opts.probes);
  if (repeat > 1) {
    p.job.version = 2;
    p.job.repeat = repeat;
    p.job.settle_ms = kRepeatSettleMs;
  }
  // Only a job that uses them says version 3, so an older agent refuses it
  // by its version instead of by an unknown work kind.
  if (proto::job_needs_work_types(p.job)) p.job.version = proto::kJobVersionWorkTypes;
  // Steps and cgroup weights: version 5 (a version 3 job plus those), so an
  // older agent refuses the job instead of running it without its steps.
  if (proto::job_needs_steps(p.job)) p.job.version = proto::kJobVersionSteps;
  // Without it a scheduler that reads kernel config values fails to load.
  if (spec.uses_bpf_scheduler())
    p.job.kernel_config = kernel_config_for_guest(
        kernel, "the guest has no /boot/config-*, so a scheduler using __kconfig externs cannot load", p.notes);
  p.job.seed = opts.seed;
  return p;
}

void fill_run_result(RunResult& r, const TestSpec& spec, const ResultCollector& collector, const VmOutcome& outcome,
                     const std::vector<std::string>& notes) {
  r.accel = accel_name(outcome.accel);
  r.vm_end = vm_end_name(outcome.end);
  r.vm_exit_code = outcome.qemu_status;
  r.wall_s = outcome.wall_time.count() / 1000.0;
  r.boot_s = outcome.boot_time ? outcome.boot_time->count() / 1000.0 : 0;
  r.restored = outcome.restored;
  r.console_tail = outcome.console_tail;
  r.stage = collector.stage();
  for (auto& [name, t_ms] : collector.stage_times()) r.stage_t_s.emplace_back(name, collector.test_seconds(t_ms));
  if (const auto& setup = collector.probe_setup(); setup.is_object() && setup.contains("t_ms") &&
                                                     setup["t_ms"].is_number_unsigned())
    r.stage_t_s.emplace_back("probe_setup", collector.test_seconds(setup["t_ms"].get<uint64_t>()));
  r.workers = collector.workers();
  r.guest_topology = collector.topology();
  auto diagnostics = collector.diagnostics();
  r.diagnostics.insert(r.diagnostics.end(), diagnostics.begin(), diagnostics.end());
  if (outcome.kvm_abandoned)
    r.diagnostics.push_back("KVM was tried first and abandoned after " +
                            std::to_string(outcome.kvm_abandoned->after.count()) + " ms (" +
                            outcome.kvm_abandoned->evidence + "); the VM ran under TCG");
  r.diagnostics.insert(r.diagnostics.end(), notes.begin(), notes.end());
  if (!outcome.snapshot_note.empty()) r.diagnostics.push_back("snapshot: " + outcome.snapshot_note);
  if (auto sched = collector.sched_run()) {
    sched->name = spec.scheduler;
    sched->args = spec.sched_args;
    r.sched = std::move(*sched);
    r.sched->stopped_by_ktstr = collector.sched_stopped_by_agent();
  }
  r.sched_ext_dump = collector.sched_ext_dump();
  r.dmesg = collector.dmesg();
  r.monitor = collector.monitor();
  r.steps = collector.steps();
  for (auto& st : r.steps)
    if (!st.ok)
      r.diagnostics.push_back("step " + std::to_string(st.index) + " (" + st.action + " at " +
                              std::to_string(st.after_ms) + " ms) was not done: " + st.error);
  r.probe_setup = collector.probe_setup();
  r.probe_events = collector.probe_events();
  for (auto& e : collector.errors()) r.diagnostics.push_back("guest: " + e);
  if (outcome.end == VmEnd::kQemuFailedToStart && !outcome.qemu_log_tail.empty())
    r.diagnostics.push_back("qemu: " + outcome.qemu_log_tail);
  evaluate(r, spec, collector, outcome);
}

VmCallbacks job_callbacks(std::string job_frames, std::function<void(const char*, size_t)> on_results) {
  auto frame = std::make_shared<std::string>(std::move(job_frames));
  auto sent = std::make_shared<bool>(false);
  VmCallbacks cb;
  cb.on_port_connected = [frame, sent](Vm& vm, const std::string& port) {
    if (port == kControlPort && !*sent) *sent = static_cast<bool>(vm.send(kControlPort, *frame));
  };
  cb.on_port_data = [on_results = std::move(on_results)](Vm&, const std::string& port, const char* data, size_t len) {
    if (port == kResultsPort) on_results(data, len);
  };
  return cb;
}

Result<VmOutcome> run_job_vm(const VmRunPlan& plan, std::function<void(const char*, size_t)> on_results) {
  VmCallbacks cb = job_callbacks(plan.file_frames + proto::encode_message(plan.job), std::move(on_results));
  return run_vm(plan.cfg, cb);
}

Result<RunResult> run_test(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                           const PipelineOptions& opts) {
  auto progress = [&](const std::string& s) {
    if (opts.progress) opts.progress(spec.name + ": " + s);
  };
  RunResult r = new_run_result(spec, kernel, opts);
  auto prepared = prepare_run(artifacts_dir, spec, kernel, opts, 1);
  if (!prepared) return tl::unexpected(prepared.error());

  ResultCollector collector;
  progress("booting " + kernel.version + " (" + r.topology + ")");
  auto outcome = run_job_vm(*prepared, [&](const char* data, size_t len) {
    bool had_hello = collector.hello_seen();
    std::string before = collector.stage();
    collector.feed(data, len);
    if (!had_hello && collector.hello_seen()) progress("guest agent up");
    if (collector.stage() != before) progress("stage " + collector.stage());
  });
  if (!outcome) return tl::unexpected(outcome.error());
  collector.finish();
  fill_run_result(r, spec, collector, *outcome, prepared->notes);
  return r;
}

Status record_run(db::Store& store, RunResult& r, int64_t started_at) {
  RunRecord rec;
  rec.test_name = r.test_name;
  rec.kernel_id = r.kernel_id;
  rec.scheduler = r.scheduler;
  rec.topology = r.topology;
  rec.scenario = r.scenario;
  rec.status = r.passed ? "pass" : "fail";
  rec.reason = r.reason;
  rec.started_at = started_at;
  rec.duration_ms = static_cast<int64_t>(r.wall_s * 1000);
  rec.result_json = to_json(r).dump();
  auto id = store.add_run(rec);
  if (!id) return tl::unexpected(id.error());
  r.run_id = *id;
  return {};
}

}  // namespace ktstr::runner
