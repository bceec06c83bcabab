#include "bisectrun/report.hpp"

#include "bisectrun/names.hpp"
#include "bisectrun/params.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace ktstr::bisectrun {

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

std::string render_bisect_result(const nlohmann::json& r) {
  std::string out;
  std::string state = r.value("state", "");
  auto culprit = r.value("culprit", nlohmann::json());
  if (parse_session_state(state) == SessionState::Found && culprit.is_object()) {
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
    if (auto reverted = reverted_commit(id)) id = revert_key(reverted->substr(0, 5));
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

std::string session_range(const db::BisectSession& s) {
  auto p = SessionParams::from_json(s.params_json);
  if (!p) return "?";
  if (p->target.kind == TargetKind::KernelRange) return p->target.range;
  std::string g;
  for (auto& x : p->target.good) g += (g.empty() ? "" : ",") + x.substr(0, 12);
  return g + ".." + p->target.bad.substr(0, 12);
}

nlohmann::json sessions_json(const std::vector<SessionSummary>& sessions) {
  nlohmann::json arr = nlohmann::json::array();
  for (auto& [s, culprit, runs] : sessions)
    arr.push_back({{"id", s.id}, {"kind", s.kind}, {"range", session_range(s)}, {"state", s.state},
                   {"culprit", culprit.empty() ? nlohmann::json(nullptr) : nlohmann::json(culprit)},
                   {"runs", runs}, {"created_at", s.created_at}, {"updated_at", s.updated_at}});
  return arr;
}

std::string sessions_table(const std::vector<SessionSummary>& sessions) {
  if (sessions.empty()) return "no bisect sessions (start one with 'ktstr bisect --signature ...')\n";
  std::vector<std::vector<std::string>> rows = {{"ID", "KIND", "RANGE", "STATE", "CULPRIT", "RUNS"}};
  for (auto& [s, culprit, runs] : sessions)
    rows.push_back({std::to_string(s.id), s.kind, session_range(s), s.state, culprit.empty() ? "-" : culprit.substr(0, 12),
                    std::to_string(runs)});
  std::vector<size_t> w(rows[0].size(), 0);
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  std::string out;
  for (auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) out += i + 1 == row.size() ? row[i] : fmt::format("{:<{}}  ", row[i], w[i]);
    out += "\n";
  }
  return out;
}

nlohmann::json session_log_json(const SessionLog& log) {
  const db::BisectSession& s = log.session;
  nlohmann::json j = {{"id", s.id}, {"kind", s.kind}, {"state", s.state}, {"created_at", s.created_at},
                      {"updated_at", s.updated_at}};
  j["params"] = nlohmann::json::parse(s.params_json, nullptr, false);
  j["result"] = s.result_json.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(s.result_json, nullptr, false);
  j["steps"] = nlohmann::json::array();
  auto p = SessionParams::from_json(s.params_json);
  for (auto& st : log.steps) {
    j["steps"].push_back({{"seq", st.seq}, {"commit", st.commit}, {"phase", st.phase}, {"build", st.build},
                          {"verdict", st.verdict}, {"crash_id", st.crash_id}, {"run_id", st.run_id},
                          {"detail", st.detail}, {"at", st.at}});
    // A step that ran (it has a run) ran with its seed.
    if (auto seed = p ? p->options.step_seed(st.seq) : std::nullopt; seed && st.run_id > 0)
      j["steps"].back()["seed"] = *seed;
  }
  return j;
}

std::string session_log_text(const SessionLog& log) {
  const db::BisectSession& s = log.session;
  auto p = SessionParams::from_json(s.params_json);
  std::string out = fmt::format("# bisect {} ({}) {}: {}\n", s.id, s.kind, session_range(s), s.state);
  if (p) out += fmt::format("# signature: {}\n", p->signature.describe());
  if (p && p->options.seed) out += fmt::format("# seed: {} (step k runs with seed + k)\n", *p->options.seed);
  for (auto& st : log.steps) {
    auto seed = p && st.run_id > 0 ? p->options.step_seed(st.seq) : std::nullopt;
    out += fmt::format("{:<5} {}  # {} {}{}{}{}\n", st.verdict, st.commit, st.seq, st.phase,
                       st.build.empty() ? "" : ", " + st.build, seed ? fmt::format(", seed {}", *seed) : "",
                       st.detail.empty() ? "" : ": " + st.detail);
  }
  auto r = nlohmann::json::parse(s.result_json.empty() ? "{}" : s.result_json, nullptr, false);
  if (r.is_object() && r.contains("message")) out += fmt::format("# {}: {}\n", s.state, r.value("message", ""));
  return out;
}

}  // namespace ktstr::bisectrun
