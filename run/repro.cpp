#include "run/repro.hpp"

#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "core/run_result_json.hpp"
#include "core/spec.hpp"
#include "db/crashes.hpp"
#include "db/repros.hpp"
#include "kbuild/btf_args.hpp"
#include "kbuild/kernel_cache.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace ktstr::runner {
namespace {

// Bounds the guest enforces on a plan (guest/proto validate_probe_plan).
constexpr size_t kMaxPlanFunctions = 255;
constexpr size_t kMaxPlanPrograms = 128;
constexpr size_t kMaxPlanName = 128;
constexpr size_t kDiagnosticTailLines = 20;

std::string tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  if (pos && text.back() == '\n') --pos;
  for (size_t n = 0; pos > 0; --pos)
    if (text[pos - 1] == '\n' && ++n == lines) break;
  return text.substr(pos);
}

std::string read_or_empty(const std::string& path) {
  auto t = read_file(path);
  return t ? *t : "";
}

}  // namespace

Result<SchedExit> recorded_exit(const CrashRecord& crash) {
  auto j = nlohmann::json::parse(crash.result_json, nullptr, false);
  if (j.is_object() && j.contains("exit") && j["exit"].is_object()) {
    const auto& e = j["exit"];
    SchedExit x;
    x.kind = e.value("kind", int64_t{-1});
    x.reason = e.value("reason", "");
    x.msg = e.value("msg", "");
    x.trigger = e.value("trigger", "");
    x.failing_prog = e.value("failing_prog", "");
    x.source_location = e.value("source_location", "");
    if (e.contains("backtrace") && e["backtrace"].is_array())
      for (const auto& f : e["backtrace"])
        if (f.is_object())
          x.backtrace.push_back({f.value("function", ""), f.value("offset", ""), f.value("bpf_tag", ""),
                                 f.value("bpf_prog", "")});
    if (!x.backtrace.empty()) return x;
  }
  const std::string dir = crash.artifacts_dir;
  if (dir.empty()) return fail("crash '" + crash.id + "' has no recorded exit");
  auto x = exit_from_captures(read_or_empty(dir + "/sched.log"), read_or_empty(dir + "/dump.txt"),
                              read_or_empty(dir + "/dmesg.txt"));
  if (!x) return fail(x.error().context("crash '" + crash.id + "'"));
  return x;
}

ProbePlan build_probe_plan(const ProbeTargets& targets, const KernelRecord& kernel, std::vector<std::string>& notes) {
  ProbePlan plan;
  // A plan function: its name and, as far as BTF says, its arguments' kinds and names.
  auto plan_function = [](const std::string& name, const std::vector<kbuild::BtfArg>* btf_args) {
    ProbeFunction pf{name, {}, {}};
    for (size_t i = 0; btf_args && i < btf_args->size() && i < kMaxProbeArgs; ++i) {
      pf.args.push_back((*btf_args)[i].kind);
      pf.arg_names.push_back((*btf_args)[i].name);
    }
    return pf;
  };
  std::map<std::string, std::vector<kbuild::BtfArg>> args;
  if (kernel.vmlinux_path.empty()) {
    notes.push_back("kernel " + kernel.id + " has no vmlinux: probe arguments are not decoded");
  } else if (auto a = kbuild::btf_probe_args(kernel.vmlinux_path, targets.kernel_functions); !a) {
    notes.push_back(a.error().msg + ": probe arguments are not decoded");
  } else {
    args = std::move(a->functions);
    // The guest needs these only for programs whose BTF lost the inner
    // function; sending them spares it parsing its vmlinux BTF.
    for (const auto& [member, member_args] : a->ops)
      if (plan.ops_args.size() < kMaxPlanFunctions && member.size() <= kMaxPlanName)
        plan.ops_args.push_back(plan_function(member, &member_args));
  }
  for (const auto& f : targets.kernel_functions) {
    if (plan.kernel_functions.size() >= kMaxPlanFunctions || f.size() > kMaxPlanName) continue;
    auto it = args.find(f);
    plan.kernel_functions.push_back(plan_function(f, it == args.end() ? nullptr : &it->second));
  }
  for (const auto& p : targets.bpf_programs)
    if (plan.bpf_programs.size() < kMaxPlanPrograms && p.size() <= kMaxPlanName) plan.bpf_programs.push_back(p);
  plan.trigger_tracepoint = "sched_ext_exit";
  plan.fallback_kprobe = targets.fallback_trigger.size() <= kMaxPlanName ? targets.fallback_trigger : "";
  return plan;
}

void account_repro_run(ReproResult& rr, const RunResult& run, const std::string& crash_signature_key) {
  std::vector<std::string> problems;
  if (!run.probe_setup.is_null()) rr.setup = parse_probe_setup(run.probe_setup, &problems);
  if (!run.probe_events.is_null()) rr.events = parse_probe_events(run.probe_events, &problems);
  for (auto& p : problems) rr.notes.push_back("guest: " + p);
  if (!rr.setup) rr.notes.push_back("the guest reported no probe setup (agent without probe support?)");
  size_t per_task = rr.plan.history_per_task ? rr.plan.history_per_task : 64;
  auto t0 = std::chrono::steady_clock::now();
  if (rr.events) rr.stitched = stitch_events(rr.events->events, rr.events->trigger_pid, per_task);
  rr.timing.stitch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rr.timing.boot_s = run.boot_s;
  if (!run.probe_events.is_null()) rr.timing.events_bytes = run.probe_events.dump().size();
  if (run.probe_setup.is_object() && run.probe_setup.contains("timing_ms") && run.probe_setup["timing_ms"].is_object())
    for (auto& [name, ms] : run.probe_setup["timing_ms"].items())
      if (ms.is_number_unsigned() && name.size() <= 32 && rr.timing.guest_ms.size() < 16)
        rr.timing.guest_ms.emplace_back(name, ms.get<uint64_t>());
  auto stage_at = [&](const std::string& name) -> std::optional<double> {
    for (auto& [n, t] : run.stage_t_s)
      if (n == name) return t;
    return std::nullopt;
  };
  auto job_at = stage_at("job_received"), setup_at = stage_at("probe_setup");
  std::optional<double> spawned_at = run.sched ? run.sched->started_t_s : std::nullopt;
  if (job_at && spawned_at) rr.timing.kernel_probes_s = *spawned_at - *job_at;
  if (spawned_at && setup_at) rr.timing.program_probes_s = *setup_at - *spawned_at;
  if (setup_at) rr.timing.probes_set_s = *setup_at;  // stage times count from the workload's start
  // Probes set while the workload ran: say so if this crash beat them.
  if (rr.plan.probes_during_workload && setup_at && run.sched && run.sched->exited && run.sched->workload_started &&
      run.sched->exit_t_s < *setup_at)
    rr.notes.push_back(fmt::format(
        "the scheduler died {:.2f}s into the workload, before the probes were all set ({:.2f}s): events before "
        "then are missing",
        run.sched->exit_t_s, *setup_at));
  rr.accounting = account_probes(rr.targets, rr.setup, rr.events, rr.stitched.size());
  rr.duration_s = run.wall_s;
  if (!run.exit) {
    rr.outcome = "no_crash";
  } else if (signature_of(*run.exit).key() == crash_signature_key) {
    rr.outcome = "same";
  } else {
    rr.outcome = "different";
    rr.different_summary = run.exit->summary();
  }
  if (!run.passed) rr.repro_reason = run.reason;
  if (run.sched) rr.sched_log_tail = tail(run.sched->log, kDiagnosticTailLines);
  rr.dump_tail = tail(run.sched_ext_dump, kDiagnosticTailLines);
  rr.dmesg_tail = tail(run.dmesg, kDiagnosticTailLines);
  for (const auto& d : run.diagnostics)
    if (rr.notes.size() < 32) rr.notes.push_back("repro run: " + d);
}

std::optional<SchedulerRun> crashed_scheduler(const CrashRecord& crash) {
  auto j = nlohmann::json::parse(crash.result_json, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  auto run = run_result_from_json(j);
  if (!run) return std::nullopt;
  return run->sched;
}

double probe_headroom_s(const SchedulerRun& crashed) {
  return std::max(kMinProbeHeadroomS, kProbeMarginS + kProbeAttachFactor * std::max(0.0, crashed.attach_s));
}

void plan_probe_timing(ProbePlan& plan, const std::optional<SchedulerRun>& crashed) {
  // A crash after the workload began: the kernel probes attach while the
  // scheduler loads, so they cost no time of their own. A crash well into
  // the workload: the scheduler loads and the workload starts as in the
  // crashed run, and the probes attach meanwhile (under TCG they are set
  // about 1 s into it), well before the crash. A crash while the scheduler
  // loaded or attached keeps them all first.
  bool after_start = crashed && crashed->workload_started && crashed->exit_t_s > 0;
  plan.kernel_probes_parallel = after_start;
  plan.probes_during_workload = after_start && crashed->exit_t_s >= probe_headroom_s(*crashed);
}

std::optional<uint64_t> recorded_seed(const CrashRecord& crash) {
  // The seed column reads 0 for crashes recorded before seeds were sent;
  // the run's result JSON has "seed" only when one was.
  auto j = nlohmann::json::parse(crash.result_json, nullptr, false);
  if (!j.is_object() || !j.contains("seed")) return std::nullopt;
  return crash.seed;
}

Result<ReproResult> run_repro(db::Store& store, const CrashRecord& crash, const PipelineOptions& opts) {
  const std::string what = "replaying crash '" + crash.id + "'";
  auto specs = parse_spec_text(crash.spec_toml, "crash " + crash.id);
  if (!specs) return fail(specs.error().context(what));
  if (specs->size() != 1) return fail(what + ": its spec holds " + std::to_string(specs->size()) + " tests, not 1");
  const TestSpec& spec = specs->front();
  if (crash.kernel_id.empty()) return fail(what + ": the crash names no kernel");
  // By id only: resolve_kernel would take an unknown id for a version to fetch.
  auto cached = store.get_kernel(crash.kernel_id);
  if (!cached) return fail(cached.error().context(what));
  if (!*cached)
    return fail(Error(what + ": kernel " + crash.kernel_id + " is no longer in the kernel cache",
                      "add it back with 'ktstr kernel add' or 'ktstr kernel fetch'"));
  auto kernel = kbuild::resolve_kernel(store, crash.kernel_id, opts.progress);
  if (!kernel)
    return fail(Error(kernel.error().msg, "the crash ran on kernel " + crash.kernel_id +
                                              "; add it back with 'ktstr kernel add' or 'ktstr kernel fetch'")
                    .context(what));
  auto exit = recorded_exit(crash);
  if (!exit) return fail(exit.error().context(what));
  auto rr = replay_crash(store.artifacts_dir(), spec, *kernel, *exit, recorded_seed(crash),
                         crashed_scheduler(crash), crash.signature_key, opts);
  if (!rr) return fail(rr.error().context(what));
  rr->crash_id = crash.id;
  return rr;
}

Result<ReproResult> replay_crash(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                 const SchedExit& exit, std::optional<uint64_t> seed,
                                 const std::optional<SchedulerRun>& crashed, const std::string& signature_key,
                                 const PipelineOptions& opts) {
  ReproResult rr;
  rr.kernel_id = kernel.id;
  rr.kernel_version = kernel.version;
  rr.targets = probe_targets_from_exit(exit);
  auto btf_start = std::chrono::steady_clock::now();
  rr.plan = build_probe_plan(rr.targets, kernel, rr.notes);
  plan_probe_timing(rr.plan, crashed);
  // A kernel without the trigger's tracepoint (6.17 has no sched_ext_exit)
  // costs the replay a refused tp_btf load before its fallback kprobe, an
  // attach the crashed run's scheduler load does not foresee: the probes
  // are set before the workload starts, as for an early crash.
  const auto& tps = kernel.tracepoints;
  if (std::find(tps.begin(), tps.end(), rr.plan.trigger_tracepoint) == tps.end())
    rr.plan.probes_during_workload = false;
  rr.timing.btf_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - btf_start).count();

  PipelineOptions popt = opts;
  popt.probes = rr.plan;
  // The scheduler gets the crashed run's seed again: a crash that depends
  // on the scheduler's random draws replays faithfully.
  popt.seed = seed;
  rr.seed = popt.seed;
  auto run = run_test(artifacts_dir, spec, kernel, popt);
  if (!run) return fail(run.error());
  account_repro_run(rr, *run, signature_key);
  return rr;
}

Status record_repro(db::Store& store, RunResult& result) {
  if (result.crash_id.empty() || !result.repro) return {};
  auto found = db::find_crash(store, result.crash_id);
  if (!found) return fail(found.error());
  if (!*found) return fail("crash '" + result.crash_id + "' is not in the store");
  CrashRecord crash = **found;
  result.repro->crash_id = crash.id;

  db::ReproRecord rec;
  rec.crash_id = crash.id;
  rec.created_at = std::time(nullptr);
  rec.reproduced = result.repro->reproduced();
  rec.duration_ms = static_cast<int64_t>(result.repro->duration_s * 1000);
  rec.result_json = to_json(*result.repro).dump();
  rec.report = render_repro(*result.repro);
  if (auto id = db::put_repro(store, rec); !id) return fail(id.error());

  // The stored report is what `crash show` prints: refresh it with the
  // auto-repro section (and the artifact copy with it).
  crash.report = render_failure(result, ReportOptions{});
  crash.result_json = to_json(result).dump();
  if (auto st = db::put_crash(store, crash); !st) return st;
  if (!crash.artifacts_dir.empty()) {
    (void)write_file_atomic(crash.artifacts_dir + "/report.txt", crash.report);
    (void)write_file_atomic(crash.artifacts_dir + "/repro.json", rec.result_json);
  }
  return {};
}

}  // namespace ktstr::runner
