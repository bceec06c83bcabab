// The session's runs: a batch at one commit (stored steps replayed first,
// then fresh runs in one boot), each stored as a step the moment it ends.
#include "bisectrun/session.hpp"

#include "bisectrun/session_util.hpp"
#include "run/pipeline.hpp"
#include "run/repeat_run.hpp"

#include <fmt/format.h>

#include <ctime>

namespace ktstr::bisectrun {

Result<std::vector<BisectSession::RunOutcome>> BisectSession::run_batch(const std::string& commit, Phase phase,
                                                                       int wanted, bool revert) {
  Batch b;
  b.commit = commit;
  b.key = revert ? revert_key(commit) : commit;
  b.phase = phase;
  // Stored steps first (resume): a batch cut short by a kill continues fresh.
  if (replay(b, wanted) || static_cast<int>(b.out.size()) == wanted) return std::move(b.out);
  b.replayed = b.out.size();
  const unsigned left = static_cast<unsigned>(wanted - static_cast<int>(b.out.size()));
  if (auto st = run_fresh(b, left, revert); !st) return tl::unexpected(st.error());
  return std::move(b.out);
}

bool BisectSession::replay(Batch& b, int wanted) {
  while (!replay_.empty() && static_cast<int>(b.out.size()) < wanted) {
    db::BisectStep st = replay_.front();
    if (st.commit != b.key || parse_phase(st.phase) != b.phase) {
      // A batch that came back short (its commit could not be tested) ends
      // where the next commit's steps begin.
      if (!b.out.empty()) return true;
      out_.log(fmt::format("stored step {} ({} {}) does not follow the replay ({} {}); running from here", st.seq,
                           st.phase, short_id(st.commit), phase_name(b.phase), short_id(b.key)));
      replay_.clear();
      return false;
    }
    replay_.pop_front();
    RunOutcome o;
    o.verdict = parse_verdict(st.verdict).value_or(RunVerdict::Skip);
    o.detail = st.detail;
    o.replayed = true;
    ++runs_;
    ++replayed_;
    // A fresh build says "built" on its commit's first step; a failed one
    // says "failed" on every step of that commit.
    if (st.build == "built" || (st.build == "failed" && replayed_failed_.insert(st.commit).second))
      ++replayed_builds_;
    show_step(st.seq, b.key, b.phase, o);
    b.out.push_back(std::move(o));
  }
  return false;
}

// `left` runs of `b` after its replayed ones: prepare the commit (a commit
// that cannot be tested is one skip), then one VM, or one boot for them all.
Status BisectSession::run_fresh(Batch& b, unsigned left, bool revert) {
  const TestSpec& test = *params_.signature.test;
  auto progress = [&](const std::string& s) {
    out_.progress(fmt::format("step {}  {} {}: {}", seq_ + 1, phase_name(b.phase), short_id(b.key), s));
  };
  auto prep = revert ? target_.prepare_revert(b.commit, test, progress) : target_.prepare(b.commit, test, progress);
  if (!prep) return tl::unexpected(prep.error());
  // Only the batch's first step carries a fresh build ("built" is counted).
  auto build_of = [&](bool first) { return first || prep->build != "built" ? prep->build : std::string("cached"); };
  if (!prep->ok) {
    // A commit that cannot be tested is one skip, whatever the batch.
    RunOutcome o;
    o.verdict = RunVerdict::Skip;
    o.detail = prep->detail;
    return store_step(b, o, build_of(true), 0, "");
  }
  runner::PipelineOptions popt;
  popt.verbose = params_.options.verbose;
  if (params_.options.memory_mb) popt.memory_mb = params_.options.memory_mb;
  popt.progress = progress;
  // The next step's seed; a batch's further runs are the next steps, and
  // the agent gives its repetitions the next seeds (seed_at).
  popt.seed = params_.options.step_seed(seq_ + 1);
  int64_t started = std::time(nullptr);
  // One run: its record, its crash if it is another one, its step.
  auto take = [&](RunResult& r) -> Status {
    if (auto st = runner::record_run(store_, r, started); !st) return st;
    VerdictInfo v = classify_run(r, params_.signature);
    RunOutcome o;
    o.verdict = v.verdict;
    o.detail = v.detail;
    std::string crash_id;
    if (v.verdict == RunVerdict::Other && r.exit) {
      if (auto st = runner::record_crash(store_, r, prep->spec, prep->kernel); st) {
        crash_id = r.crash_id;
        o.detail += " (crash " + r.crash_id + ")";
        others_.push_back({{"commit", b.key}, {"crash_id", r.crash_id}, {"summary", r.exit->summary()}});
      }
    }
    return store_step(b, o, build_of(b.out.size() == b.replayed), r.run_id, crash_id);
  };
  if (left == 1) {
    auto r = runner::run_test(store_.artifacts_dir(), prep->spec, prep->kernel, popt);
    if (!r) return tl::unexpected(r.error());
    return take(*r);
  }
  // The batch's runs share one boot (--repeat's machinery); each one is
  // stored the moment its repetition ends, while the VM runs the next, so a
  // kill loses at most the run in flight.
  auto rr = runner::run_test_repeated(store_.artifacts_dir(), prep->spec, prep->kernel, popt, left, {}, 0, take);
  if (!rr) return tl::unexpected(rr.error());
  if (rr->runs.empty()) {
    RunOutcome o;
    o.detail = "no run of the batch started";
    return store_step(b, o, build_of(true), 0, "");
  }
  return {};
}

// One step per run, stored the moment the run ends.
Status BisectSession::store_step(Batch& b, RunOutcome o, const std::string& build, int64_t run_id,
                                 const std::string& crash_id) {
  // Never more than one line of detail in the log.
  if (auto nl = o.detail.find('\n'); nl != std::string::npos) o.detail = o.detail.substr(0, nl);
  db::BisectStep step;
  step.session_id = id_;
  step.commit = b.key;
  step.phase = phase_name(b.phase);
  step.build = build;
  step.run_id = run_id;
  step.crash_id = crash_id;
  step.verdict = verdict_name(o.verdict);
  step.detail = o.detail;
  step.seq = ++seq_;
  step.at = std::time(nullptr);
  if (auto st = db::add_bisect_step(store_, step); !st) return st;
  ++runs_;
  ++fresh_;
  show_step(step.seq, b.key, b.phase, o);
  b.out.push_back(std::move(o));
  return {};
}

void BisectSession::show_step(int64_t seq, const std::string& key, Phase phase, const RunOutcome& o) {
  const auto reverted = reverted_commit(key);
  CommitLabel l = target_.label(reverted ? *reverted : key);
  std::string name = reverted ? "revert of " + l.short_id : l.short_id;
  auto ev = [&]() -> std::string {
    auto i = graph_->index_of(key);
    if (!i) return "";
    auto& e = search_->evidence(*i);
    return fmt::format("  (runs {}, hits {} here)", e.runs, e.hit);
  };
  out_.log(fmt::format("{:>3} {:<12} {:<12} {:<5} {}{}{}", seq, phase_name(phase), name, verdict_name(o.verdict),
                       l.subject.empty() ? "" : "'" + l.subject + "' ", o.detail.empty() ? "" : "- " + o.detail,
                       o.replayed ? " [stored]" : ""));
  size_t best = search_->best();
  out_.progress(fmt::format("step {}  {} {}{}  best {} P={:.2f}  runs {}", seq, name, l.subject, ev(),
                            short_id(graph_->id(best)), search_->probability(best), runs_));
}

}  // namespace ktstr::bisectrun
