// The session's phases: confirm the ends, the search, verify the culprit,
// the revert check. Which commit must show the signature and how each is
// checked is BisectMode's (mode.hpp); the runs themselves are
// session_runs.cpp's, the result session_result.cpp's.
#include "bisectrun/session.hpp"

#include "bisect/batch.hpp"
#include "bisectrun/session_util.hpp"

#include <fmt/format.h>

namespace ktstr::bisectrun {
namespace {

Result<std::optional<BisectOutcome>> ended(Result<BisectOutcome> r) {
  if (!r) return tl::unexpected(r.error());
  return std::optional<BisectOutcome>(std::move(*r));
}

std::string unverified_message(const std::string& culprit) {
  return "culprit " + short_id(culprit) + " reached the confidence but did not verify (see \"verify\")";
}

}  // namespace

BisectSession::BisectSession(db::Store& store, BisectTarget& target, SessionParams params, BisectReporter& out)
    : store_(store), target_(target), params_(std::move(params)), out_(out) {}

Status BisectSession::preflight() {
  const TestSpec& test = *params_.signature.test;
  auto progress = [&](const std::string& s) { out_.progress("preflight: " + s); };
  auto bad = target_.prepare(target_.bad(), test, progress);
  target_.reset_reported();
  if (!bad) return tl::unexpected(bad.error());
  if (bad->ok) return {};
  if (params_.target.kind == TargetKind::KernelRange)
    return fail("kernel " + target_.bad() + " cannot be used: " + bad->detail, "see 'ktstr kernel list'");
  if (params_.target.kind == TargetKind::KernelRepo)
    return fail("the bad end " + short_id(target_.bad()) + " does not build a kernel ktstr can use: " + bad->detail,
                "pick a bad commit that builds (see 'ktstr kernel build --repo ... --commit ...')");
  auto good = target_.prepare(target_.good().front(), test, progress);
  target_.reset_reported();
  if (!good) return tl::unexpected(good.error());
  if (!good->ok)
    return fail("the build fails at both ends (bad " + short_id(target_.bad()) + ", good " +
                    short_id(target_.good().front()) + "): " + bad->detail,
                "check --build and --artifact: run the command by hand in a checkout");
  return fail("the bad end " + short_id(target_.bad()) + " does not build: " + bad->detail,
              "pick a bad commit that builds with --bad");
}

Result<BisectOutcome> BisectSession::start() {
  db::BisectSession s;
  s.kind = target_kind_name(params_.target.kind);
  s.params_json = params_.to_json().dump();
  s.state = session_state_name(SessionState::Running);
  auto id = db::add_bisect(store_, s);
  if (!id) return tl::unexpected(id.error());
  id_ = *id;
  out_.log(fmt::format("bisect {}: {} {} ({} candidates), signature {}{}", id_, target_kind_name(params_.target.kind),
                       target_.range_text(), target_.candidates().size(), params_.signature.describe(),
                       params_.options.seed ? fmt::format(", seed {}", *params_.options.seed) : ""));
  return run_all();
}

Result<BisectOutcome> BisectSession::resume(const db::BisectSession& s, const std::vector<db::BisectStep>& steps) {
  id_ = s.id;
  for (auto& st : steps) {
    replay_.push_back(st);
    seq_ = std::max(seq_, st.seq);
  }
  out_.log(fmt::format("bisect {}: resuming {} {} with {} stored steps", id_, s.kind, target_.range_text(), steps.size()));
  return run_all();
}

Status BisectSession::open_search() {
  auto graph = bisect::CandidateGraph::build(target_.candidates(), target_.bad(), params_.target.first_parent);
  if (!graph) return tl::unexpected(graph.error());
  graph_ = std::move(*graph);
  bisect::SearchOptions so;
  so.confidence = params_.options.confidence;
  so.max_runs = params_.options.max_runs;
  so.fixed = params_.options.fixed;
  so.bad_end_tries = params_.options.reproduce_bound();
  search_.emplace(*graph_, so);
  mode_.emplace(params_.options.mode());
  return {};
}

// Confirm the ends, then search and verify until a culprit verifies, the
// search gives up, or a check fails; then the revert check.
Result<BisectOutcome> BisectSession::run_all() {
  started_ = now_s();
  if (auto st = open_search(); !st) return tl::unexpected(st.error());
  PhaseEnd confirmed = confirm_ends();
  if (!confirmed) return tl::unexpected(confirmed.error());
  if (*confirmed) return std::move(**confirmed);
  // The search, then the verification; verification runs are evidence too,
  // and when they take the best candidate below the confidence (a parent
  // that reproduces, in --fixed a culprit that does), the search goes on.
  for (;;) {
    auto stop = follow_engine(Phase::Search);
    if (!stop) return tl::unexpected(stop.error());
    const bisect::StopReason reason = **stop;
    nlohmann::json extra = {{"reason", bisect::stop_reason_name(reason)}};
    const size_t best = search_->best();
    if (!named(reason))
      return finish(SessionState::NotFound,
                    fmt::format("no culprit reached {:.0f}% confidence ({}); best {} at {:.0f}%",
                                params_.options.confidence * 100, bisect::stop_reason_name(reason),
                                short_id(graph_->id(best)), search_->probability(best) * 100),
                    kExitTestFailed, extra);
    auto verified = verify(best);
    if (!verified) return tl::unexpected(verified.error());
    // The verification's verdicts are in the posterior: a failed check (or
    // runs that took the culprit below the confidence) sends the search
    // back, unless the budget is spent.
    const bisect::Next after = search_->next();
    const bool done = after.kind == bisect::Next::Kind::Done;
    const bool still = done && named(*after.reason) && search_->best() == best;
    if (verified->ok && still) return finish_verified(graph_->id(best), std::move(*verified), std::move(extra));
    if (done) return finish_unverified(best, std::move(*verified), *after.reason, still, std::move(extra));
    out_.log(fmt::format("verification of {} moved the posterior (P={:.2f}): searching again",
                         short_id(graph_->id(best)), search_->probability(best)));
  }
}

// ---- confirm the ends -------------------------------------------------------

// The end that must show the signature first, then the ends that must stay
// clean (BisectMode says which is which).
BisectSession::PhaseEnd BisectSession::confirm_ends() {
  PhaseEnd shown = mode_->showing_end() == Role::BadEnd ? confirm_bad_end() : confirm_showing_good_end();
  if (!shown || *shown) return shown;
  return confirm_clean_ends();
}

// The bad end is a candidate: the engine asks for it until it shows the
// signature (at most bad_end_tries runs, bisect/search.hpp).
BisectSession::PhaseEnd BisectSession::confirm_bad_end() {
  std::string last_detail;
  auto stop = follow_engine(Phase::ConfirmBad, &last_detail);
  if (!stop) return tl::unexpected(stop.error());
  if (!*stop) return std::nullopt;
  const bisect::Evidence& e = search_->evidence(graph_->bad());
  std::string msg =
      e.skip == e.runs
          ? fmt::format("could not test the bad end {} ({} runs: {})", short_id(target_.bad()), e.runs, last_detail)
          : fmt::format("the signature did not appear at the bad end {} in {} runs ({} clean, {} other, {} skipped)",
                        short_id(target_.bad()), e.runs, e.miss, e.other, e.skip);
  return ended(finish(SessionState::Failed, msg, kExitTestFailed, {{"reason", bisect::stop_reason_name(**stop)}}));
}

// A good end is no candidate (the engine cannot ask for it): its runs are
// the session's, fed to the search as the good end's.
BisectSession::PhaseEnd BisectSession::confirm_showing_good_end() {
  const std::string end = target_.good().front();
  const Check c = mode_->check(Role::GoodEnd, Phase::ConfirmGood);
  auto t = run_check(end, Phase::ConfirmGood, c, Tally{});
  if (!t) return tl::unexpected(t.error());
  if (c.ok(t->hits)) return std::nullopt;
  std::string msg = t->skips == c.runs
                        ? fmt::format("could not test the good end {} in {} runs ({})", short_id(end), c.runs,
                                      t->last_detail)
                        : fmt::format("the signature did not appear at the good end {} in {} runs", short_id(end), c.runs);
  return ended(finish(SessionState::Failed, msg, kExitTestFailed));
}

// All of an end's confirmation runs share one boot; a hit ends the bisect.
BisectSession::PhaseEnd BisectSession::confirm_clean_ends() {
  const Role role = mode_->clean_end();
  const Phase phase = confirm_phase(role);
  const Check c = mode_->check(role, phase);
  for (const std::string& end : ends(role)) {
    auto t = run_check(end, phase, c, Tally{});
    if (!t) return tl::unexpected(t.error());
    if (c.ok(t->hits)) continue;
    std::string msg = role == Role::BadEnd ? "the signature still appears at the bad end " + short_id(end)
                                           : "the signature appears at the good end " + short_id(end) + " too";
    return ended(finish(SessionState::Failed, msg, kExitTestFailed));
  }
  return std::nullopt;
}

std::vector<std::string> BisectSession::ends(Role end) const {
  if (end == Role::BadEnd) return {target_.bad()};
  return target_.good();
}

// ---- the search ---------------------------------------------------------------

Result<std::optional<bisect::StopReason>> BisectSession::follow_engine(Phase phase, std::string* last_detail) {
  for (int guard = 0;; ++guard) {
    if (phase == Phase::ConfirmBad && search_->evidence(graph_->bad()).hit > 0) return std::nullopt;
    bisect::Next n = search_->next();
    if (n.kind == bisect::Next::Kind::Done) return n.reason;
    if (guard > 100000) return fail("the bisect engine never finished");
    const std::string commit = graph_->id(n.commit);
    // Runs the engine would ask for here anyway share one boot.
    auto batch = run_batch(commit, phase, bisect::plan_batch(*search_, n.commit));
    if (!batch) return tl::unexpected(batch.error());
    for (const RunOutcome& o : *batch) {
      observe(commit, o.verdict);
      if (last_detail) *last_detail = o.detail;
    }
  }
}

// Named: the search stopped on its confidence, or spent its budget with the
// best there.
bool BisectSession::named(bisect::StopReason why) const {
  return why == bisect::StopReason::ConfidenceReached ||
         search_->probability(search_->best()) >= params_.options.confidence;
}

// ---- verify the culprit ---------------------------------------------------------

// Verify as KernelCI does: the culprit shows the signature, its parents do
// not (--fixed: the reverse). (Normal mode: the search names a culprit only
// once it showed the signature itself, so its runs there are the culprit's
// check.)
Result<BisectSession::Verification> BisectSession::verify(size_t best) {
  const std::string culprit = graph_->id(best);
  Verification v;
  v.json = {{"culprit", nullptr}, {"parents", nlohmann::json::array()}, {"revert", nullptr}};
  const Check cc = mode_->check(Role::Culprit, Phase::Verify);
  Tally from;
  if (cc.counts_search_runs) {
    from.runs = search_->evidence(best).runs;
    from.hits = search_->evidence(best).hit;
  }
  auto t = run_check(culprit, Phase::Verify, cc, from);
  if (!t) return tl::unexpected(t.error());
  v.ok = cc.ok(t->hits);
  v.json["culprit"] = {{"commit", culprit}, {"runs", t->runs}, {"bad", t->hits}, {"ok", v.ok}};
  const Check pc = mode_->check(Role::Parent, Phase::Verify);
  for (auto& parent : target_.parents(culprit)) {
    auto p = run_check(parent, Phase::Verify, pc, Tally{});
    if (!p) return tl::unexpected(p.error());
    const bool ok = pc.ok(p->hits);
    v.json["parents"].push_back({{"commit", parent}, {"runs", p->runs}, {"bad", p->hits}, {"ok", ok}});
    v.ok = v.ok && ok;
  }
  return v;
}

// The verification ended the search without a verified culprit: another
// best (or none at the confidence), or the same one with a failed check.
Result<BisectOutcome> BisectSession::finish_unverified(size_t best, Verification v, bisect::StopReason after,
                                                       bool still, nlohmann::json extra) {
  const std::string culprit = graph_->id(best);
  if (!still) {
    extra = {{"reason", bisect::stop_reason_name(after)}, {"verify", v.json}};
    const size_t now_best = search_->best();
    return finish(SessionState::NotFound,
                  fmt::format("after the verification of {}, no culprit reaches {:.0f}% confidence ({}); best {} at {:.0f}%",
                              short_id(culprit), params_.options.confidence * 100, bisect::stop_reason_name(after),
                              short_id(graph_->id(now_best)), search_->probability(now_best) * 100),
                  kExitTestFailed, extra);
  }
  // Still the culprit at the confidence, yet a check failed (fixed mode's
  // parents, say): report it as before.
  v.json["ok"] = false;
  extra["verify"] = v.json;
  return finish(SessionState::NotFound, unverified_message(culprit), kExitTestFailed, extra);
}

// ---- the revert check -------------------------------------------------------------

Result<BisectOutcome> BisectSession::finish_verified(const std::string& culprit, Verification v, nlohmann::json extra) {
  const bool ok = !params_.options.verify_culprit || check_revert(culprit, &v.json);
  v.json["ok"] = ok;
  extra["verify"] = v.json;
  if (!ok) return finish(SessionState::NotFound, unverified_message(culprit), kExitTestFailed, extra);
  return finish(SessionState::Found, "culprit " + short_id(culprit), kExitOk, extra);
}

// --verify-culprit (not with --fixed): the bad end with the culprit reverted
// must stay clean in confirm_runs runs sharing a boot, and be tested at all.
// The revert is no candidate: its runs are no evidence.
bool BisectSession::check_revert(const std::string& culprit, nlohmann::json* verify) {
  const int confirm = params_.options.confirm_runs;
  int hits = 0, runs = 0, skipped = 0;
  while (runs < confirm) {
    auto batch = run_batch(culprit, Phase::Verify, confirm - runs, true);
    if (!batch) {
      (*verify)["revert"] = {{"ok", false}, {"error", batch.error().msg}};
      return false;
    }
    for (const RunOutcome& o : *batch) {
      ++runs;
      if (o.verdict == RunVerdict::Bad) ++hits;
      if (o.verdict == RunVerdict::Skip) ++skipped;
    }
  }
  const bool ok = hits == 0 && skipped < runs;
  (*verify)["revert"] = {{"runs", runs}, {"bad", hits}, {"ok", ok}};
  return ok;
}

// ---- checks and verdicts ------------------------------------------------------

// Runs `c` at `commit` from `t` (runs already counted) and feeds each verdict
// to the search.
Result<BisectSession::Tally> BisectSession::run_check(const std::string& commit, Phase phase, const Check& c, Tally t) {
  for (int fresh = 0; fresh < c.runs && !(c.stop_at_hit && t.hits > 0);) {
    auto batch = run_batch(commit, phase, c.one_per_boot ? 1 : c.runs - fresh);
    if (!batch) return tl::unexpected(batch.error());
    for (const RunOutcome& o : *batch) {
      ++fresh;
      ++t.runs;
      observe_any(commit, o.verdict);
      t.hits += o.verdict == RunVerdict::Bad;
      t.skips += o.verdict == RunVerdict::Skip;
      t.last_detail = o.detail;
      if (c.stop_at_hit && o.verdict == RunVerdict::Bad) break;
    }
  }
  return t;
}

void BisectSession::observe(const std::string& commit, RunVerdict v) {
  if (auto i = graph_->index_of(commit)) search_->observe(*i, to_outcome(v));
}

// A candidate's verdict, else a good end's.
void BisectSession::observe_any(const std::string& commit, RunVerdict v) {
  if (graph_->index_of(commit)) observe(commit, v);
  else search_->observe_good(to_outcome(v));
}

}  // namespace ktstr::bisectrun
