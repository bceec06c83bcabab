#include "bisectrun/session.hpp"

#include "bisect/batch.hpp"
#include "run/pipeline.hpp"
#include "run/repeat_run.hpp"
#include "core/seed.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>

namespace ktstr::bisectrun {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string short_id(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

std::string iso_date(int64_t t) {
  if (t <= 0) return "";
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000", &tm);
  return buf;
}

bisect::Outcome to_outcome(RunVerdict v) {
  switch (v) {
    case RunVerdict::Bad: return bisect::Outcome::Hit;
    case RunVerdict::Good: return bisect::Outcome::Miss;
    case RunVerdict::Other: return bisect::Outcome::Other;
    case RunVerdict::Skip: return bisect::Outcome::Skip;
  }
  return bisect::Outcome::Skip;
}

RunVerdict verdict_from_name(const std::string& s) {
  if (s == "bad") return RunVerdict::Bad;
  if (s == "good") return RunVerdict::Good;
  if (s == "other") return RunVerdict::Other;
  return RunVerdict::Skip;
}

struct Tally { int runs = 0, bad = 0, other = 0, good = 0, skip = 0; };

}  // namespace

nlohmann::json BisectOptions::to_json() const {
  nlohmann::json j = {{"confidence", confidence},     {"max_runs", max_runs},
                      {"fixed", fixed},               {"confirm_runs", confirm_runs},
                      {"verify_culprit", verify_culprit}, {"memory_mb", memory_mb}};
  if (seed) j["seed"] = *seed;
  return j;
}

std::optional<uint64_t> BisectOptions::step_seed(int64_t seq) const {
  if (!seed) return std::nullopt;
  return seed_at(*seed, static_cast<uint64_t>(seq));
}

BisectOptions BisectOptions::from_json(const nlohmann::json& j) {
  BisectOptions o;
  o.confidence = j.value("confidence", o.confidence);
  o.max_runs = j.value("max_runs", o.max_runs);
  o.fixed = j.value("fixed", o.fixed);
  o.confirm_runs = j.value("confirm_runs", o.confirm_runs);
  o.verify_culprit = j.value("verify_culprit", o.verify_culprit);
  o.memory_mb = j.value("memory_mb", o.memory_mb);
  if (j.contains("seed") && j["seed"].is_number_unsigned()) o.seed = j["seed"].get<uint64_t>();
  return o;
}

nlohmann::json SessionParams::to_json() const {
  return {{"target", target.to_json()}, {"signature", signature.to_json()}, {"options", options.to_json()},
          {"spec_file", spec_file}};
}

Result<SessionParams> SessionParams::from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("target") || !j.contains("signature"))
    return fail("the bisect session's parameters are not readable");
  SessionParams p;
  p.target = TargetParams::from_json(j["target"]);
  auto sig = BisectSignature::from_json(j["signature"]);
  if (!sig) return tl::unexpected(sig.error());
  p.signature = *sig;
  p.options = BisectOptions::from_json(j.value("options", nlohmann::json::object()));
  p.spec_file = j.value("spec_file", "");
  return p;
}

BisectReporter::BisectReporter(bool json) : tty_(::isatty(STDERR_FILENO) != 0 && !json), json_(json) {}

BisectReporter::~BisectReporter() {
  if (shown_) std::fprintf(stderr, "\r\033[K");
}

void BisectReporter::progress(const std::string& line) {
  if (!tty_) return;
  std::string text = line.size() > 150 ? line.substr(0, 150) : line;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void BisectReporter::log(const std::string& line) {
  if (shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = false;
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

BisectSession::BisectSession(db::Store& store, BisectTarget& target, SessionParams params, BisectReporter& out)
    : store_(store), target_(target), params_(std::move(params)), out_(out) {}

Status BisectSession::preflight() {
  const TestSpec& test = *params_.signature.test;
  auto progress = [&](const std::string& s) { out_.progress("preflight: " + s); };
  auto bad = target_.prepare(target_.bad(), test, progress);
  target_.reset_reported();
  if (!bad) return tl::unexpected(bad.error());
  if (bad->ok) return {};
  if (params_.target.kind == "kernel-range")
    return fail("kernel " + target_.bad() + " cannot be used: " + bad->detail, "see 'ktstr kernel list'");
  if (params_.target.kind == "kernel-repo")
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
  s.kind = params_.target.kind;
  s.params_json = params_.to_json().dump();
  s.state = "running";
  auto id = db::add_bisect(store_, s);
  if (!id) return tl::unexpected(id.error());
  id_ = *id;
  out_.log(fmt::format("bisect {}: {} {} ({} candidates), signature {}{}", id_, params_.target.kind,
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

void BisectSession::observe(const std::string& commit, RunVerdict v) {
  if (auto i = graph_->index_of(commit)) search_->observe(*i, to_outcome(v));
}

void BisectSession::show_step(int64_t seq, const std::string& commit, const std::string& phase, const RunOutcome& o) {
  CommitLabel l = target_.label(commit.rfind("revert-", 0) == 0 ? commit.substr(7) : commit);
  std::string name = commit.rfind("revert-", 0) == 0 ? "revert of " + l.short_id : l.short_id;
  auto ev = [&]() -> std::string {
    auto i = graph_->index_of(commit);
    if (!i) return "";
    auto& e = search_->evidence(*i);
    return fmt::format("  (runs {}, hits {} here)", e.runs, e.hit);
  };
  out_.log(fmt::format("{:>3} {:<12} {:<12} {:<5} {}{}{}", seq, phase, name, verdict_name(o.verdict),
                       l.subject.empty() ? "" : "'" + l.subject + "' ", o.detail.empty() ? "" : "- " + o.detail,
                       o.replayed ? " [stored]" : ""));
  size_t best = search_->best();
  out_.progress(fmt::format("step {}  {} {}{}  best {} P={:.2f}  runs {}", seq, name, l.subject, ev(),
                            short_id(graph_->id(best)), search_->probability(best), runs_));
}

Result<BisectSession::RunOutcome> BisectSession::run_once(const std::string& commit, const std::string& phase,
                                                          bool revert) {
  auto runs = run_batch(commit, phase, 1, revert);
  if (!runs) return tl::unexpected(runs.error());
  return runs->front();
}

Result<std::vector<BisectSession::RunOutcome>> BisectSession::run_batch(const std::string& commit,
                                                                       const std::string& phase, int wanted,
                                                                       bool revert) {
  std::vector<RunOutcome> out;
  std::string key = revert ? "revert-" + commit : commit;
  // Stored steps first (resume): a batch cut short by a kill continues fresh.
  while (!replay_.empty() && static_cast<int>(out.size()) < wanted) {
    db::BisectStep st = replay_.front();
    if (st.commit != key || st.phase != phase) {
      // A batch that came back short (its commit could not be tested) ends
      // where the next commit's steps begin.
      if (!out.empty()) return out;
      out_.log(fmt::format("stored step {} ({} {}) does not follow the replay ({} {}); running from here", st.seq,
                           st.phase, short_id(st.commit), phase, short_id(key)));
      replay_.clear();
      break;
    }
    replay_.pop_front();
    RunOutcome o;
    o.verdict = verdict_from_name(st.verdict);
    o.detail = st.detail;
    o.replayed = true;
    ++runs_;
    ++replayed_;
    // A fresh build says "built" on its commit's first step; a failed one
    // says "failed" on every step of that commit.
    if (st.build == "built" || (st.build == "failed" && replayed_failed_.insert(st.commit).second))
      ++replayed_builds_;
    show_step(st.seq, key, phase, o);
    out.push_back(std::move(o));
  }
  if (static_cast<int>(out.size()) == wanted) return out;
  const size_t replayed_here = out.size();
  const unsigned left = static_cast<unsigned>(wanted - static_cast<int>(out.size()));

  const TestSpec& test = *params_.signature.test;
  auto progress = [&](const std::string& s) {
    out_.progress(fmt::format("step {}  {} {}: {}", seq_ + 1, phase, short_id(key), s));
  };
  auto prep = revert ? target_.prepare_revert(commit, test, progress) : target_.prepare(commit, test, progress);
  if (!prep) return tl::unexpected(prep.error());
  // One step per run, stored the moment the run ends.
  auto store_step = [&](RunOutcome o, int64_t run_id, const std::string& crash_id, bool first) -> Status {
    // Never more than one line of detail in the log.
    if (auto nl = o.detail.find('\n'); nl != std::string::npos) o.detail = o.detail.substr(0, nl);
    db::BisectStep step;
    step.session_id = id_;
    step.commit = key;
    step.phase = phase;
    // Only the batch's first step carries a fresh build ("built" is counted).
    step.build = first || prep->build != "built" ? prep->build : "cached";
    step.run_id = run_id;
    step.crash_id = crash_id;
    step.verdict = verdict_name(o.verdict);
    step.detail = o.detail;
    step.seq = ++seq_;
    step.at = std::time(nullptr);
    if (auto st = db::add_bisect_step(store_, step); !st) return st;
    ++runs_;
    ++fresh_;
    show_step(step.seq, key, phase, o);
    out.push_back(std::move(o));
    return {};
  };
  if (!prep->ok) {
    // A commit that cannot be tested is one skip, whatever the batch.
    RunOutcome o;
    o.verdict = RunVerdict::Skip;
    o.detail = prep->detail;
    if (auto st = store_step(o, 0, "", true); !st) return tl::unexpected(st.error());
    return out;
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
        others_.push_back({{"commit", key}, {"crash_id", r.crash_id}, {"summary", r.exit->summary()}});
      }
    }
    return store_step(o, r.run_id, crash_id, out.size() == replayed_here);
  };
  if (left == 1) {
    auto r = runner::run_test(store_.artifacts_dir(), prep->spec, prep->kernel, popt);
    if (!r) return tl::unexpected(r.error());
    if (auto st = take(*r); !st) return tl::unexpected(st.error());
    return out;
  }
  // The batch's runs share one boot (--repeat's machinery); each one is
  // stored the moment its repetition ends, while the VM runs the next, so a
  // kill loses at most the run in flight.
  auto rr = runner::run_test_repeated(store_.artifacts_dir(), prep->spec, prep->kernel, popt, left, {}, 0, take);
  if (!rr) return tl::unexpected(rr.error());
  if (rr->runs.empty()) {
    RunOutcome o;
    o.detail = "no run of the batch started";
    if (auto st = store_step(o, 0, "", true); !st) return tl::unexpected(st.error());
  }
  return out;
}

Result<BisectOutcome> BisectSession::run_all() {
  started_ = now_s();
  auto graph = bisect::CandidateGraph::build(target_.candidates(), target_.bad(), params_.target.first_parent);
  if (!graph) return tl::unexpected(graph.error());
  graph_ = std::move(*graph);
  bisect::SearchOptions so;
  so.confidence = params_.options.confidence;
  so.max_runs = params_.options.max_runs;
  so.fixed = params_.options.fixed;
  so.bad_end_tries = params_.options.reproduce_bound();
  search_.emplace(*graph_, so);
  const bool fixed = params_.options.fixed;
  const int bound = params_.options.reproduce_bound();
  const int confirm = params_.options.confirm_runs;

  // Normal mode: the engine asks for the bad end until it shows the
  // signature (at most bad_end_tries runs); once it has, the good ends get
  // `confirm` runs that must stay clean. --fixed: the old (good) end must
  // show it (the engine cannot ask for it) and the new (bad) end must not.
  if (fixed) {
    std::string end = target_.good().front();
    int hits = 0, skips = 0;
    std::string last;
    for (int i = 0; i < bound && hits == 0; ++i) {
      auto o = run_once(end, "confirm-good");
      if (!o) return tl::unexpected(o.error());
      search_->observe_good(to_outcome(o->verdict));
      hits += o->verdict == RunVerdict::Bad;
      skips += o->verdict == RunVerdict::Skip;
      last = o->detail;
    }
    if (hits == 0)
      return finish("failed",
                    skips == bound ? fmt::format("could not test the good end {} in {} runs ({})", short_id(end), bound, last)
                                   : fmt::format("the signature did not appear at the good end {} in {} runs", short_id(end), bound),
                    kExitTestFailed);
    for (int done = 0; done < confirm;) {
      auto batch = run_batch(target_.bad(), "confirm-bad", confirm - done);
      if (!batch) return tl::unexpected(batch.error());
      for (const RunOutcome& o : *batch) {
        ++done;
        observe(target_.bad(), o.verdict);
        if (o.verdict == RunVerdict::Bad)
          return finish("failed", "the signature still appears at the bad end " + short_id(target_.bad()), kExitTestFailed);
      }
    }
  }
  const size_t bad_index = graph_->bad();
  bool good_confirmed = fixed;
  std::string reason, last_bad_detail;
  // The search, then the verification; verification runs are evidence too,
  // and when they take the best candidate below the confidence (a parent
  // that reproduces, in --fixed a culprit that does), the search goes on.
  std::string culprit;
  nlohmann::json verify;
  nlohmann::json extra;
  for (;;) {
    for (int guard = 0;; ++guard) {
      if (!good_confirmed && search_->evidence(bad_index).hit > 0) {
        // All of an end's confirmation runs share one boot.
        for (auto& end : target_.good())
          for (int done = 0; done < confirm;) {
            auto batch = run_batch(end, "confirm-good", confirm - done);
            if (!batch) return tl::unexpected(batch.error());
            for (const RunOutcome& o : *batch) {
              ++done;
              search_->observe_good(to_outcome(o.verdict));
              if (o.verdict == RunVerdict::Bad)
                return finish("failed", "the signature appears at the good end " + short_id(end) + " too",
                              kExitTestFailed);
            }
          }
        good_confirmed = true;
      }
      bisect::Next n = search_->next();
      if (n.kind == bisect::Next::Kind::Done) {
        reason = bisect::stop_reason_name(*n.reason);
        break;
      }
      if (guard > 100000) return fail("the bisect engine never finished");
      std::string commit = graph_->id(n.commit);
      bool confirming = !fixed && n.commit == bad_index && search_->evidence(bad_index).hit == 0;
      // Runs the engine would ask for here anyway share one boot.
      auto batch = run_batch(commit, confirming ? "confirm-bad" : "search", bisect::plan_batch(*search_, n.commit));
      if (!batch) return tl::unexpected(batch.error());
      for (const RunOutcome& o : *batch) {
        observe(commit, o.verdict);
        if (confirming) last_bad_detail = o.detail;
      }
    }
    if (!fixed && search_->evidence(bad_index).hit == 0) {
      const auto& e = search_->evidence(bad_index);
      std::string msg =
          e.skip == e.runs
              ? fmt::format("could not test the bad end {} ({} runs: {})", short_id(target_.bad()), e.runs, last_bad_detail)
              : fmt::format("the signature did not appear at the bad end {} in {} runs ({} clean, {} other, {} skipped)",
                            short_id(target_.bad()), e.runs, e.miss, e.other, e.skip);
      return finish("failed", msg, kExitTestFailed, {{"reason", reason}});
    }
    size_t best = search_->best();
    double p = search_->probability(best);
    extra = {{"reason", reason}};
    // Named: the search stopped on its confidence, or spent its budget with
    // the best there.
    auto named = [&](const std::string& why) {
      return why == bisect::stop_reason_name(bisect::StopReason::ConfidenceReached) || search_->probability(search_->best()) >= params_.options.confidence;
    };
    if (!named(reason))
      return finish("not-found",
                    fmt::format("no culprit reached {:.0f}% confidence ({}); best {} at {:.0f}%",
                                params_.options.confidence * 100, reason, short_id(graph_->id(best)), p * 100),
                    kExitTestFailed, extra);

    // Verify as KernelCI does: the culprit shows it, its parents do not.
    // (Normal mode: the search names a culprit only once it showed the
    // signature itself, so its runs there are the culprit's check.)
    culprit = graph_->id(best);
    verify = {{"culprit", nullptr}, {"parents", nlohmann::json::array()}, {"revert", nullptr}};
    auto observe_any = [&](const std::string& commit, RunVerdict v) {
      if (graph_->index_of(commit)) observe(commit, v);
      else search_->observe_good(to_outcome(v));
    };
    bool ok = true;
    {
      const auto& e = search_->evidence(best);
      int h = fixed ? 0 : e.hit, runs = fixed ? 0 : e.runs;
      int want_runs = fixed ? confirm : bound;
      for (int i = 0; i < want_runs && (fixed || h == 0); ++i, ++runs) {
        auto o = run_once(culprit, "verify");
        if (!o) return tl::unexpected(o.error());
        observe_any(culprit, o->verdict);
        if (o->verdict == RunVerdict::Bad) ++h;
      }
      bool culprit_ok = fixed ? h == 0 : h > 0;
      verify["culprit"] = {{"commit", culprit}, {"runs", runs}, {"bad", h}, {"ok", culprit_ok}};
      ok = ok && culprit_ok;
    }
    for (auto& parent : target_.parents(culprit)) {
      int h = 0, runs = 0;
      int want_runs = fixed ? bound : confirm;
      while (runs < want_runs && (!fixed || h == 0)) {
        // Normal mode: all `confirm` clean runs are needed, so they share a boot.
        auto batch = run_batch(parent, "verify", fixed ? 1 : want_runs - runs);
        if (!batch) return tl::unexpected(batch.error());
        for (const RunOutcome& o : *batch) {
          ++runs;
          observe_any(parent, o.verdict);
          if (o.verdict == RunVerdict::Bad) ++h;
        }
      }
      bool parent_ok = fixed ? h > 0 : h == 0;
      verify["parents"].push_back({{"commit", parent}, {"runs", runs}, {"bad", h}, {"ok", parent_ok}});
      ok = ok && parent_ok;
    }
    // The verification's verdicts are in the posterior: a failed check (or
    // runs that took the culprit below the confidence) sends the search
    // back, unless the budget is spent.
    bisect::Next after = search_->next();
    bool still = after.kind == bisect::Next::Kind::Done && named(bisect::stop_reason_name(*after.reason)) && search_->best() == best;
    if (ok && still) break;
    if (after.kind == bisect::Next::Kind::Done && !still) {
      reason = bisect::stop_reason_name(*after.reason);
      extra = {{"reason", reason}, {"verify", verify}};
      return finish("not-found",
                    fmt::format("after the verification of {}, no culprit reaches {:.0f}% confidence ({}); best {} at {:.0f}%",
                                short_id(culprit), params_.options.confidence * 100, reason,
                                short_id(graph_->id(search_->best())), search_->probability(search_->best()) * 100),
                    kExitTestFailed, extra);
    }
    if (after.kind == bisect::Next::Kind::Done) {
      // Still the culprit at the confidence, yet a check failed (fixed mode's
      // parents, say): report it as before.
      verify["ok"] = false;
      extra["verify"] = verify;
      return finish("not-found",
                    "culprit " + short_id(culprit) + " reached the confidence but did not verify (see \"verify\")",
                    kExitTestFailed, extra);
    }
    out_.log(fmt::format("verification of {} moved the posterior (P={:.2f}): searching again", short_id(culprit),
                         search_->probability(best)));
  }
  bool ok = true;
  if (params_.options.verify_culprit) {
    int h = 0, runs = 0, skipped = 0;
    while (runs < confirm) {
      auto batch = run_batch(culprit, "verify", confirm - runs, true);
      if (!batch) {
        verify["revert"] = {{"ok", false}, {"error", batch.error().msg}};
        ok = false;
        break;
      }
      for (const RunOutcome& o : *batch) {
        ++runs;
        if (o.verdict == RunVerdict::Bad) ++h;
        if (o.verdict == RunVerdict::Skip) ++skipped;
      }
    }
    if (verify["revert"].is_null()) {
      bool revert_ok = h == 0 && skipped < runs;
      verify["revert"] = {{"runs", runs}, {"bad", h}, {"ok", revert_ok}};
      ok = ok && revert_ok;
    }
  }
  verify["ok"] = ok;
  extra["verify"] = verify;
  if (!ok)
    return finish("not-found",
                  "culprit " + short_id(culprit) + " reached the confidence but did not verify (see \"verify\")",
                  kExitTestFailed, extra);
  return finish("found", "culprit " + short_id(culprit), kExitOk, extra);
}

nlohmann::json BisectSession::evidence_json() {
  // Counted from the stored steps (confirm and verify runs included), in
  // candidate order (newest first), then the good ends.
  auto steps = db::bisect_steps(store_, id_);
  std::map<std::string, Tally> tally;
  if (steps)
    for (auto& s : *steps) {
      Tally& t = tally[s.commit];
      ++t.runs;
      if (s.verdict == "bad") ++t.bad;
      else if (s.verdict == "good") ++t.good;
      else if (s.verdict == "other") ++t.other;
      else ++t.skip;
    }
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&](const std::string& id, const Tally& t) {
    CommitLabel l = target_.label(id.rfind("revert-", 0) == 0 ? id.substr(7) : id);
    nlohmann::json r = {{"commit", id},   {"subject", l.subject}, {"runs", t.runs}, {"bad", t.bad},
                        {"other", t.other}, {"good", t.good},     {"skip", t.skip}};
    if (auto i = graph_->index_of(id)) r["probability"] = search_->probability(*i);
    rows.push_back(r);
  };
  for (auto& n : target_.candidates())
    if (auto it = tally.find(n.id); it != tally.end()) row(n.id, it->second);
  for (auto& [id, t] : tally)
    if (!graph_->index_of(id)) row(id, t);
  return rows;
}

Result<BisectOutcome> BisectSession::finish(const std::string& state, const std::string& message, int exit_code,
                                            nlohmann::json extra) {
  BisectOutcome out;
  out.state = state;
  out.exit_code = exit_code;
  nlohmann::json& r = out.result;
  r = extra;
  r["session"] = id_;
  r["kind"] = params_.target.kind;
  r["state"] = state;
  r["message"] = message;
  r["range"] = target_.range_text();
  r["signature"] = params_.signature.describe();
  r["confidence"] = params_.options.confidence;
  r["fixed"] = params_.options.fixed;
  if (params_.options.seed) r["seed"] = *params_.options.seed;
  size_t best = search_->best();
  double p = search_->probability(best);
  r["no_culprit_probability"] = search_->no_culprit_probability();
  auto commit_json = [&](const std::string& id) {
    CommitLabel l = target_.label(id);
    return nlohmann::json{{"id", l.id},         {"short", l.short_id}, {"subject", l.subject},
                          {"author", l.author}, {"date", iso_date(l.time)}};
  };
  nlohmann::json best_json = commit_json(graph_->id(best));
  best_json["probability"] = p;
  r["best"] = best_json;
  r["culprit"] = state == "found" ? best_json : nlohmann::json(nullptr);
  nlohmann::json amb = nlohmann::json::array();
  for (size_t i : search_->ambiguous()) amb.push_back(commit_json(graph_->id(i)));
  r["ambiguous"] = amb;
  r["runs"] = runs_;
  r["runs_replayed"] = replayed_;
  r["runs_this_time"] = fresh_;
  r["builds"] = replayed_builds_ + target_.builds();
  r["wall_s"] = now_s() - started_;
  r["evidence"] = evidence_json();
  r["other_crashes"] = others_;
  if (auto st = db::finish_bisect(store_, id_, state, r.dump()); !st) return tl::unexpected(st.error());
  out_.progress("");
  return out;
}

std::string render_bisect_result(const nlohmann::json& r) {
  std::string out;
  std::string state = r.value("state", "");
  auto culprit = r.value("culprit", nlohmann::json());
  if (state == "found" && culprit.is_object()) {
    out += fmt::format("{} is the first {} commit ({:.1f}% probability)\n", culprit.value("id", ""),
                       r.value("fixed", false) ? "fixed" : "bad", culprit.value("probability", 0.0) * 100);
    out += fmt::format("    {}\n", culprit.value("subject", ""));
    if (!culprit.value("author", "").empty())
      out += fmt::format("    Author: {}\n    Date:   {}\n", culprit.value("author", ""), culprit.value("date", ""));
  } else {
    out += fmt::format("bisect {}: {}\n", state, r.value("message", ""));
  }
  auto amb = r.value("ambiguous", nlohmann::json::array());
  if (!amb.empty()) {
    out += "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n";
    for (auto& c : amb) out += fmt::format("{} {}\n", c.value("id", ""), c.value("subject", ""));
  }
  out += fmt::format("\n{:<14} {:>4} {:>4} {:>5} {:>4} {:>4} {:>7}  {}\n", "COMMIT", "RUNS", "BAD", "OTHER", "GOOD",
                     "SKIP", "P", "SUBJECT");
  for (auto& e : r.value("evidence", nlohmann::json::array())) {
    std::string p = e.contains("probability") ? fmt::format("{:.3f}", e["probability"].get<double>()) : "-";
    std::string id = e.value("commit", "");
    if (id.rfind("revert-", 0) == 0) id = "revert-" + id.substr(7, 5);
    out += fmt::format("{:<14} {:>4} {:>4} {:>5} {:>4} {:>4} {:>7}  {}\n", id.substr(0, 14), e.value("runs", 0),
                       e.value("bad", 0), e.value("other", 0), e.value("good", 0), e.value("skip", 0), p,
                       e.value("subject", ""));
  }
  for (auto& o : r.value("other_crashes", nlohmann::json::array()))
    out += fmt::format("other crash at {}: {} (crash {})\n", o.value("commit", "").substr(0, 12),
                       o.value("summary", ""), o.value("crash_id", ""));
  out += fmt::format("{} runs ({} this time), {} builds, {:.0f} s; session {}\n", r.value("runs", 0),
                     r.value("runs_this_time", 0), r.value("builds", 0), r.value("wall_s", 0.0), r.value("session", 0));
  return out;
}

}  // namespace ktstr::bisectrun
