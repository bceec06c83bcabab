#include "run/repeat_run.hpp"

#include "core/crash_parse.hpp"
#include "core/seed.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ktstr::runner {

std::vector<RunResult> boot_results(const RunResult& base, const TestSpec& spec, const RepeatSplitter& splitter,
                                    const VmOutcome& vm, const std::vector<std::string>& notes, unsigned vm_number,
                                    unsigned first, unsigned wanted) {
  std::vector<RunResult> out;
  auto numbered = [&](RunResult& r, unsigned in_vm) {
    r.repetition = first + in_vm - 1;
    r.repeat_vm = vm_number;
    r.vm_repetition = in_vm;
    // base.seed is the run's (its first repetition's); the agent gave this
    // repetition the same offset (prepare_run sends each VM its first one's).
    if (base.seed) r.seed = seed_at(*base.seed, r.repetition - 1);
  };
  if (splitter.repetitions().empty()) {
    // The VM never began a repetition: the boot itself is the verdict.
    RunResult r = base;
    fill_run_result(r, spec, splitter.boot(), vm, notes);
    for (const std::string& p : splitter.problems()) r.diagnostics.push_back(p);
    numbered(r, 1);
    out.push_back(std::move(r));
    return out;
  }
  const double boot_s = vm.boot_time ? vm.boot_time->count() / 1000.0 : 0;
  double used_s = boot_s;
  for (const RepeatSplitter::Repetition& rep : splitter.repetitions()) {
    if (out.size() >= wanted) break;
    RunResult r = base;
    VmOutcome o = vm;
    if (rep.end) {
      // Ended in a VM still up: only the repetition's own time counts.
      uint64_t ms = rep.end->t_ms > rep.begin_ms ? rep.end->t_ms - rep.begin_ms : 0;
      o.wall_time = std::chrono::milliseconds(ms);
      o.end = VmEnd::kPoweredOff;
    } else {
      // The VM ended during it: what is left of the VM's time.
      double left = std::max(0.0, vm.wall_time.count() / 1000.0 - used_s);
      o.wall_time = std::chrono::milliseconds(static_cast<int64_t>(left * 1000));
    }
    if (!out.empty()) o.boot_time.reset();
    fill_run_result(r, spec, *rep.collector, o, notes);
    if (out.empty()) r.boot_s = boot_s;
    used_s += o.wall_time.count() / 1000.0;
    for (const std::string& p : rep.problems) r.diagnostics.push_back(p);
    if (rep.end && !rep.end->next && rep.end->ok && !rep.end->sched_state.empty() &&
        rep.end->sched_state != "disabled")
      r.diagnostics.push_back("sched_ext state read '" + rep.end->sched_state +
                              "' after this repetition, not 'disabled': the guest ended this VM");
    numbered(r, static_cast<unsigned>(out.size()) + 1);
    out.push_back(std::move(r));
  }
  if (!out.empty())
    for (const std::string& p : splitter.problems()) out.back().diagnostics.push_back(p);
  return out;
}

unsigned repetitions_for_next_vm(const VmOutcome& vm, unsigned ran, unsigned left) {
  (void)ran;  // every boot accounts for at least one repetition, so this ends
  if (left == 0) return 0;
  if (vm.end == VmEnd::kQemuFailedToStart || vm.end == VmEnd::kInterrupted) return 0;
  return left;
}

Result<RepeatRun> run_test_repeated(const std::string& artifacts_dir, const TestSpec& spec, const KernelRecord& kernel,
                                    const PipelineOptions& opts, unsigned repeat, const RepeatSlice& slice,
                                    unsigned total, const RepeatRunSink& on_run) {
  if (total == 0) total = repeat;
  RepeatRun out;
  RunResult base = new_run_result(spec, kernel, opts);
  unsigned left = repeat;
  Status sink_error;
  while (left > 0) {
    // This VM's job carries the seed of its first repetition.
    PipelineOptions vm_opts = opts;
    const unsigned first_here = slice.first + static_cast<unsigned>(out.runs.size());
    if (opts.seed) vm_opts.seed = seed_at(*opts.seed, first_here - 1);
    auto prepared = prepare_run(artifacts_dir, spec, kernel, vm_opts, left);
    if (!prepared) {
      if (out.runs.empty()) return tl::unexpected(prepared.error());
      break;
    }
    ++out.vms;
    const unsigned done_before = static_cast<unsigned>(out.runs.size());
    const unsigned vm_number = slice.vm_number(out.vms);
    auto progress = [&](const std::string& s) {
      if (opts.progress) opts.progress(spec.name + ": " + s);
    };
    RepeatSplitter splitter;
    // Repetitions of this VM already handed to on_run (the leading ones
    // that ended while it ran).
    unsigned delivered = 0;
    VmCallbacks cb = job_callbacks(prepared->file_frames + proto::encode_message(prepared->job), [&](const char* data, size_t len) {
      size_t reps = splitter.repetitions().size();
      std::string before = splitter.stage();
      splitter.feed(data, len);
      if (splitter.repetitions().size() != reps || splitter.stage() != before)
        progress(fmt::format("run {}/{} (vm {}): {}",
                             slice.first - 1 + done_before + std::max<size_t>(splitter.repetitions().size(), 1),
                             total, vm_number, splitter.stage()));
    });
    if (on_run) {
      auto feed = std::move(cb.on_port_data);
      cb.on_port_data = [&, feed](Vm& vm, const std::string& port, const char* data, size_t len) {
        feed(vm, port, data, len);
        if (!sink_error) return;
        // The leading repetitions with their REPEAT_END, as the VM stands now.
        unsigned ended = 0;
        for (const auto& rep : splitter.repetitions()) {
          if (!rep.end) break;
          ++ended;
        }
        ended = std::min(ended, left);
        if (ended <= delivered) return;
        VmOutcome now = vm.so_far();
        now.end = VmEnd::kPoweredOff;
        auto results = boot_results(base, spec, splitter, now, prepared->notes, vm_number,
                                    slice.first + done_before, ended);
        for (unsigned i = delivered; i < results.size() && i < ended; ++i) {
          sink_error = on_run(results[i]);
          if (!sink_error) {
            vm.request_stop();
            return;
          }
          out.runs.push_back(std::move(results[i]));
          ++delivered;
        }
      };
    }
    progress(fmt::format("booting {} ({}) for {} of {} runs", kernel.version, base.topology, left, total));
    auto outcome = run_vm(prepared->cfg, cb);
    if (!sink_error) return tl::unexpected(sink_error.error());
    if (!outcome) {
      if (out.runs.empty()) return tl::unexpected(outcome.error());
      break;
    }
    splitter.finish();
    auto results = boot_results(base, spec, splitter, *outcome, prepared->notes, vm_number,
                                slice.first + done_before, left);
    unsigned ran = static_cast<unsigned>(results.size());
    for (unsigned i = delivered; i < ran; ++i) {
      if (on_run)
        if (auto st = on_run(results[i]); !st) return tl::unexpected(st.error());
      out.runs.push_back(std::move(results[i]));
    }
    ran = std::max(ran, delivered);
    left -= std::min(left, ran);
    unsigned next = repetitions_for_next_vm(*outcome, ran, left);
    if (next == 0) break;
    left = next;
  }
  out.skipped = repeat - static_cast<unsigned>(out.runs.size());
  return out;
}

RunOutline outline_of(const RunResult& r) {
  RunOutline o;
  o.passed = r.passed;
  if (r.passed) return o;
  if (r.exit) {
    o.signature_key = signature_of(*r.exit).key();
    o.signature_summary = r.exit->summary();
  } else {
    o.other_key = r.failure_kind + ":" + r.reason;
  }
  return o;
}

namespace {
std::vector<RunOutline> outlines(const std::vector<RunResult>& runs) {
  std::vector<RunOutline> out;
  out.reserve(runs.size());
  for (const RunResult& r : runs) out.push_back(outline_of(r));
  return out;
}
}  // namespace

RepeatTally tally_repeat(const std::vector<RunResult>& runs, unsigned skipped) {
  return tally_repeat(outlines(runs), skipped);
}

RepeatTally tally_repeat(const std::vector<RunOutline>& runs, unsigned skipped) {
  RepeatTally t;
  t.runs = static_cast<unsigned>(runs.size()) + skipped;
  t.skipped = skipped;
  std::vector<std::string> keys;
  for (const RunOutline& r : runs) {
    if (r.passed) {
      ++t.passed;
    } else if (!r.signature_key.empty()) {
      ++t.failed;
      auto at = std::find(keys.begin(), keys.end(), r.signature_key);
      if (at == keys.end()) {
        keys.push_back(r.signature_key);
        t.signatures.emplace_back(r.signature_summary, 1);
      } else {
        ++t.signatures[static_cast<size_t>(at - keys.begin())].second;
      }
    } else {
      ++t.other;
    }
  }
  return t;
}

std::string RepeatTally::line() const {
  std::string sigs;
  for (const auto& [summary, n] : signatures)
    sigs += (sigs.empty() ? "" : "; ") + (signatures.size() > 1 ? fmt::format("{} x ", n) : "") + summary;
  return fmt::format("{} runs: {} failed{}, {} other, {} passed, {} skipped", runs, failed,
                     sigs.empty() ? "" : " (signature " + sigs + ")", other, passed, skipped);
}

std::vector<size_t> distinct_failures(const std::vector<RunResult>& runs) {
  return distinct_failures(outlines(runs));
}

std::vector<size_t> distinct_failures(const std::vector<RunOutline>& runs) {
  std::vector<size_t> out;
  std::vector<std::string> seen;
  for (size_t i = 0; i < runs.size(); ++i) {
    const RunOutline& r = runs[i];
    if (r.passed) continue;
    std::string key = !r.signature_key.empty() ? "sig:" + r.signature_key : "other:" + r.other_key;
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
    seen.push_back(key);
    out.push_back(i);
  }
  return out;
}

}  // namespace ktstr::runner
