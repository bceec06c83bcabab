// The run pipeline every subcommand shares: resolve kernel → initramfs →
// boot → collect → evaluate → store → report. `test` drives it today;
// `repro`, `pin` and `bisect` reuse these functions, never re-implement them.
#pragma once

#include "run/collector.hpp"
#include "core/probe_targets.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/run_result.hpp"
#include "core/spec.hpp"
#include "db/store.hpp"
#include "guest/initramfs/initramfs.hpp"
#include "guest/proto/messages.hpp"
#include "guest/vm/vm.hpp"

#include <functional>
#include <optional>
#include <string>

namespace ktstr::runner {

using ProgressFn = std::function<void(const std::string&)>;

struct PipelineOptions {
  bool verbose = false;              // verbose guest console, diagnostics on every failure
  std::optional<unsigned> memory_mb; // overrides the spec
  ProgressFn progress;
  std::optional<ProbePlan> probes;   // crash probes (auto-repro runs); absent = none
  // The run's seed (core/seed.hpp): KTSTR_SEED for the scheduler, kept in
  // the RunResult. With --repeat, the first repetition's; repetition i
  // (1-based) runs with seed_at(seed, i - 1). Absent: none is sent.
  std::optional<uint64_t> seed;
};

// The spec's scheduler can go into a VM: the binary exists, is executable
// and its shared libraries are found. Checked before any kernel is resolved.
Status check_scheduler(const TestSpec& spec);

// The guest agent binary: $KTSTR_AGENT, else beside ktstr, else libexec.
Result<std::string> find_agent_binary();

// The fixture scheduler's loader, built beside ktstr like the agent.
Result<std::string> find_fixture_scheduler();

// The cached initramfs holding the agent as /init, and nothing else: one
// image per agent build serves every run (the scheduler travels as FILE
// frames).
Result<std::string> agent_initramfs(const std::string& artifacts_dir);

// A file the host sends the guest before the JOB (FILE frames).
struct GuestFile {
  std::string guest_path;  // absolute, under the agent's allowed roots
  std::string host_path;   // where to read it; unused with `content`
  uint32_t mode = 0755;
  // Bytes the host holds already (a verifier job's objects cut out of a
  // binary): sent as they are instead of host_path's.
  std::optional<std::string> content;
};
// The FILE frames of `files`, in order (read now: a file that changed since
// it was checked still goes with its own size and hash).
Result<std::string> encode_guest_files(const std::vector<GuestFile>& files);

// The VM of a job: `kernel` booting the agent's initramfs, with the control
// and results ports, snapshotted where the agent waits for its job. The
// caller adds what its job needs (ports, timeouts, snapshot command line).
VmConfig job_vm_config(const KernelRecord& kernel, const std::string& initramfs, const Topology& topology,
                       unsigned memory_mb, bool verbose);

// The kernel's .config for the JOB (`kernel_config`: the agent puts it at
// the guest's /boot/config-<release>, where libbpf reads `__kconfig`
// externs), when the cache has one. Without it a note in `notes` says why,
// ending in `without_it` (what cannot load then).
std::string kernel_config_for_guest(const KernelRecord& kernel, const std::string& without_it,
                                    std::vector<std::string>& notes);

// Boot one VM for `spec` on `kernel` and return what happened. Host-side
// problems (no agent, QEMU missing) are errors; anything the guest does is a
// RunResult, passed or failed. A VM run needs no store, only its artifact
// directory (the initramfs cache under it): a worker on another node runs
// tests without ever opening the SQLite database.
Result<RunResult> run_test(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                           const PipelineOptions& opts);

// The parts of run_test a repeat run (repeat_run.hpp) shares with it.
inline constexpr const char* kControlPort = "ktstr.control";
inline constexpr const char* kResultsPort = "ktstr.results";
// Callbacks for a VM that runs one job: the encoded FILE frames and the job
// frame go out once per boot, when QEMU connects the control port (a repeat
// job's repetitions share them); the results port's bytes go to `on_results`.
VmCallbacks job_callbacks(std::string job_frames, std::function<void(const char* data, size_t len)> on_results);
// How long sched_ext may take to read "disabled" again between repetitions.
inline constexpr uint32_t kRepeatSettleMs = 5000;

// What to boot and what to send: the VM config and the JOB with the files
// it needs. prepare_run makes a test's (timeouts sized for `repeat`
// repetitions, JOB version 2 when repeat > 1); `ktstr verifier` its own
// (verifier_run.hpp).
struct VmRunPlan {
  VmConfig cfg;
  std::string file_frames;  // the files the job needs (FILE frames), sent before the job
  proto::JobMsg job;
  std::vector<std::string> notes;  // for the run's diagnostics (a missing kernel config, ...)
};
RunResult new_run_result(const TestSpec& spec, const KernelRecord& kernel, const PipelineOptions& opts);
Result<VmRunPlan> prepare_run(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                const PipelineOptions& opts, unsigned repeat);
// Boots `plan`: its FILE frames and JOB go out when the control port
// connects, the results port's bytes to `on_results`, as they come.
Result<VmOutcome> run_job_vm(const VmRunPlan& plan, std::function<void(const char* data, size_t len)> on_results);
// Fills `r` from one run's collected stream and its VM's outcome, then
// evaluates it.
void fill_run_result(RunResult& r, const TestSpec& spec, const ResultCollector& collector, const VmOutcome& outcome,
                     const std::vector<std::string>& notes);

// Decide pass/fail from what was collected and how the VM ended. Pure: unit
// tested on captured streams.
void evaluate(RunResult& r, const TestSpec& spec, const ResultCollector& c, const VmOutcome& vm);
// The verdict before expect_err is applied.
void evaluate_run(RunResult& r, const TestSpec& spec, const ResultCollector& c, const VmOutcome& vm);

// Record the run in the store (fills r.run_id).
Status record_run(db::Store& store, RunResult& r, int64_t started_at);

// Record a scheduler crash (r.exit set, the test failed): artifacts under
// <artifacts>/crashes/<id>/ and a row in the crashes table; fills r.crash_id.
// `report` is the rendered report to keep with it.
Status record_crash(db::Store& store, RunResult& r, const TestSpec& spec, const KernelRecord& kernel);

}  // namespace ktstr::runner
