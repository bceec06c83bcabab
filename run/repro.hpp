// Auto-repro: replay a recorded crash in a second VM (same kernel, scheduler
// build, spec, topology and map writes) with probes on the crash chain, and
// account for what the probes saw. Used by `ktstr repro` and by `ktstr test`
// after it records a crash.
#pragma once

#include "run/pipeline.hpp"
#include "core/records.hpp"
#include "core/repro.hpp"
#include "core/result.hpp"
#include "db/store.hpp"

#include <optional>
#include <string>

namespace ktstr::runner {

// The crash's exit as recorded: from its result JSON, else parsed again
// from its artifacts (sched.log, dump.txt, dmesg.txt).
Result<SchedExit> recorded_exit(const CrashRecord& crash);

// The probe plan for a crash's targets; arg kinds from the kernel's vmlinux
// BTF when it has one (else every arg "none", noted in `notes`).
ProbePlan build_probe_plan(const ProbeTargets& targets, const KernelRecord& kernel, std::vector<std::string>& notes);

// Fills the repro fields from the repro run: guest probe payloads, stitched
// events, accounting, whether the crash reproduced, diagnostics tails.
void account_repro_run(ReproResult& rr, const RunResult& run, const std::string& crash_signature_key);

// The seed the crashed run's scheduler got; none for a crash recorded before
// runs had seeds.
std::optional<uint64_t> recorded_seed(const CrashRecord& crash);

// Runs the replay, with the crash's seed (`opts.seed` is not used). Errors: the crash's spec does not parse, its kernel is
// gone, or the VM could not be run at all; a replay that does not crash is
// a result ("reproduced: no").
Result<ReproResult> run_repro(db::Store& store, const CrashRecord& crash, const PipelineOptions& opts);

// The replay itself, needing no store (a `ktstr test` worker runs it on its
// node, right after the crashed run): probe targets from `exit`, the plan
// from the kernel's BTF, one VM with `seed`, the outcome judged against
// `signature_key`. The result's crash_id is left empty: the crash is
// recorded (and named) by whoever writes the store.
// `crashed`: the crashed run's scheduler, which sets when the probes
// attach (plan_probe_timing); none for a crash record without one.
Result<ReproResult> replay_crash(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                 const SchedExit& exit, std::optional<uint64_t> seed,
                                 const std::optional<SchedulerRun>& crashed, const std::string& signature_key,
                                 const PipelineOptions& opts);

// How far into the workload a crash must come for the replay to start the
// workload as soon as the scheduler is enabled, with the probes attaching
// meanwhile (ProbePlan::probes_during_workload): their work is about
// kProbeAttachFactor times what the scheduler's own load and attach took in
// the crashed run (a measure of this host and its load), plus a margin.
inline constexpr double kProbeAttachFactor = 2.5;
inline constexpr double kProbeMarginS = 0.5;
inline constexpr double kMinProbeHeadroomS = 1.0;
double probe_headroom_s(const SchedulerRun& crashed);
// Sets the plan's kernel_probes_parallel (the crashed run's scheduler died
// after its workload began) and probes_during_workload (that far into it).
void plan_probe_timing(ProbePlan& plan, const std::optional<SchedulerRun>& crashed);

// Stores `result.repro`, the auto-repro of the crash just recorded as
// `result.crash_id` (repros table), and refreshes the crash's stored report
// and result to include it. Nothing to do without both.
Status record_repro(db::Store& store, RunResult& result);

}  // namespace ktstr::runner
