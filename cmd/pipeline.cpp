#include "cmd/pipeline.hpp"

#include "core/fs.hpp"
#include "core/scenario.hpp"
#include "guest/initramfs/initramfs.hpp"
#include "guest/proto/messages.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>

namespace ktstr::cmd {
namespace {

constexpr const char* kControlPort = "ktstr.control";
constexpr const char* kResultsPort = "ktstr.results";
constexpr const char* kSchedPort = "ktstr.sched";

proto::WorkKind work_kind(const std::string& w) {
  if (w == "yield") return proto::WorkKind::Yield;
  if (w == "mixed") return proto::WorkKind::Mixed;
  return proto::WorkKind::Spin;
}

proto::JobMsg make_job(const ScenarioPlan& plan, const TestSpec& spec, bool verbose) {
  proto::JobMsg job;
  job.verbose = verbose;
  job.topology = spec.topology.to_string();
  job.scenario.duration_ms = plan.duration_ms;
  for (auto& cg : plan.cgroups) {
    proto::CgroupPlan p;
    p.name = cg.name;
    p.workers = cg.workers;
    p.work = work_kind(cg.work);
    p.cpus = cg.cpus;
    job.scenario.cgroups.push_back(std::move(p));
  }
  return job;
}

}  // namespace

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

Result<std::string> agent_initramfs(db::Store& store) {
  auto agent = find_agent_binary();
  if (!agent) return tl::unexpected(agent.error());
  std::vector<InitramfsEntry> entries = {
      InitramfsEntry::file_from_host("init", *agent, 0755),
      InitramfsEntry::directory("dev"),
      InitramfsEntry::directory("proc"),
      InitramfsEntry::directory("sys"),
      InitramfsEntry::directory("tmp", 01777),
      InitramfsEntry::char_device("dev/console", 5, 1),
  };
  std::string dir = store.artifacts_dir() + "/initramfs";
  if (auto st = make_dirs(dir); !st) return tl::unexpected(st.error());
  return build_initramfs_cached(entries, dir);
}

Result<RunResult> run_test(db::Store& store, const TestSpec& spec, const KernelRecord& kernel,
                           const PipelineOptions& opts) {
  auto progress = [&](const std::string& s) {
    if (opts.progress) opts.progress(spec.name + ": " + s);
  };
  RunResult r;
  r.test_name = spec.name;
  r.scheduler = spec.scheduler;
  r.topology = spec.topology.to_string();
  r.scenario = spec.scenario.empty() ? "custom" : spec.scenario;
  r.kernel_id = kernel.id;
  r.kernel_version = kernel.version;
  r.memory_mb = opts.memory_mb.value_or(spec.memory_mb);

  if (spec.uses_bpf_scheduler())
    return fail("test '" + spec.name + "' uses scheduler '" + spec.scheduler +
                    "', but only 'eevdf' runs in this version",
                "set scheduler = \"eevdf\" (sched_ext schedulers land with the crash-path issue)");

  auto plan = plan_scenario(spec, spec.topology);
  if (!plan) return tl::unexpected(plan.error().context("test '" + spec.name + "'"));

  progress("preparing initramfs");
  auto initrd = agent_initramfs(store);
  if (!initrd) return tl::unexpected(initrd.error());

  VmConfig cfg;
  cfg.kernel_image = kernel.image_path;
  cfg.initramfs = *initrd;
  cfg.topology = spec.topology;
  cfg.memory_mb = r.memory_mb;
  cfg.verbose_console = opts.verbose;
  cfg.ports = {kControlPort, kResultsPort, kSchedPort};
  // The agent is quiet while workers run, so the no-output watchdog must
  // outlast the scenario; a spec can tighten it.
  unsigned duration_s = (plan->duration_ms + 999) / 1000;
  cfg.no_output_timeout = std::chrono::seconds(spec.watchdog_timeout_s.value_or(duration_s + 60));
  cfg.overall_timeout = std::chrono::seconds(duration_s + 180);

  ResultCollector collector;
  std::string job_frame = proto::encode_message(make_job(*plan, spec, opts.verbose));
  bool sent = false;
  VmCallbacks cb;
  cb.on_port_connected = [&](Vm& vm, const std::string& port) {
    if (port == kControlPort && !sent) {
      sent = static_cast<bool>(vm.send(kControlPort, job_frame));
    }
  };
  cb.on_port_data = [&](Vm&, const std::string& port, const char* data, size_t len) {
    if (port != kResultsPort) return;
    bool had_hello = collector.hello_seen();
    std::string before = collector.stage();
    collector.feed(data, len);
    if (!had_hello && collector.hello_seen()) progress("guest agent up");
    if (collector.stage() != before) progress("stage " + collector.stage());
  };

  progress("booting " + kernel.version + " (" + r.topology + ")");
  auto outcome = run_vm(cfg, cb);
  if (!outcome) return tl::unexpected(outcome.error());
  collector.finish();

  r.accel = accel_name(outcome->accel);
  r.vm_end = vm_end_name(outcome->end);
  r.vm_exit_code = outcome->qemu_status;
  r.wall_s = outcome->wall_time.count() / 1000.0;
  r.boot_s = outcome->boot_time ? outcome->boot_time->count() / 1000.0 : 0;
  r.console_tail = outcome->console_tail;
  r.stage = collector.stage();
  r.workers = collector.workers();
  r.guest_topology = collector.topology();
  r.diagnostics = collector.diagnostics();
  for (auto& e : collector.errors()) r.diagnostics.push_back("guest: " + e);
  if (outcome->end == VmEnd::kQemuFailedToStart && !outcome->qemu_log_tail.empty())
    r.diagnostics.push_back("qemu: " + outcome->qemu_log_tail);
  evaluate(r, spec, collector, *outcome);
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

}  // namespace ktstr::cmd
