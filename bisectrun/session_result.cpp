// The session's result: the JSON stored as result_json (and printed by
// `ktstr bisect --json`), with the evidence counted from the stored steps.
#include "bisectrun/session.hpp"

#include "bisectrun/session_util.hpp"

#include <map>

namespace ktstr::bisectrun {
namespace {

struct StepTally { int runs = 0, bad = 0, other = 0, good = 0, skip = 0; };

}  // namespace

nlohmann::json BisectSession::evidence_json() {
  // Counted from the stored steps (confirm and verify runs included), in
  // candidate order (newest first), then the good ends.
  auto steps = db::bisect_steps(store_, id_);
  std::map<std::string, StepTally> tally;
  if (steps)
    for (auto& s : *steps) {
      StepTally& t = tally[s.commit];
      ++t.runs;
      switch (parse_verdict(s.verdict).value_or(RunVerdict::Skip)) {
        case RunVerdict::Bad: ++t.bad; break;
        case RunVerdict::Good: ++t.good; break;
        case RunVerdict::Other: ++t.other; break;
        case RunVerdict::Skip: ++t.skip; break;
      }
    }
  nlohmann::json rows = nlohmann::json::array();
  auto row = [&](const std::string& id, const StepTally& t) {
    const auto reverted = reverted_commit(id);
    CommitLabel l = target_.label(reverted ? *reverted : id);
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

Result<BisectOutcome> BisectSession::finish(SessionState state, const std::string& message, int exit_code,
                                            nlohmann::json extra) {
  BisectOutcome out;
  out.state = state;
  out.exit_code = exit_code;
  nlohmann::json& r = out.result;
  r = extra;
  r["session"] = id_;
  r["kind"] = target_kind_name(params_.target.kind);
  r["state"] = session_state_name(state);
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
  r["culprit"] = state == SessionState::Found ? best_json : nlohmann::json(nullptr);
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
  if (auto st = db::finish_bisect(store_, id_, session_state_name(state), r.dump()); !st)
    return tl::unexpected(st.error());
  out_.progress("");
  return out;
}

}  // namespace ktstr::bisectrun
