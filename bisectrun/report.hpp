// What `ktstr bisect` prints: the progress and step lines while it runs
// (BisectReporter), the result as text, and `bisect list` / `bisect log`
// from stored sessions. Pure formatting: the loading is driver.hpp's.
#pragma once

#include "db/bisects.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ktstr::bisectrun {

// Where lines go: a progress line rewritten in place on a terminal, else
// plain log lines on stderr; nothing but the result under --json.
class BisectReporter {
 public:
  BisectReporter(bool json);
  ~BisectReporter();
  void progress(const std::string& line);   // transient
  void log(const std::string& line);        // kept
 private:
  bool tty_;
  bool json_;
  bool shown_ = false;
};

// The culprit and evidence as text (the main result when not --json).
std::string render_bisect_result(const nlohmann::json& result);

// A stored session's range: "A..B" of a kernel range, else the good ends
// and the bad end by short id; "?" when its parameters do not read back.
std::string session_range(const db::BisectSession& s);

// One row of `ktstr bisect list`.
struct SessionSummary {
  db::BisectSession session;
  std::string culprit;  // the found culprit's id, "" when none
  size_t runs = 0;      // stored steps
};
nlohmann::json sessions_json(const std::vector<SessionSummary>& sessions);
// The table (or, with no session, a line saying how to start one).
std::string sessions_table(const std::vector<SessionSummary>& sessions);

// `ktstr bisect log`: one session and its steps.
struct SessionLog {
  db::BisectSession session;
  std::vector<db::BisectStep> steps;
};
nlohmann::json session_log_json(const SessionLog& log);
// One line a step, git bisect log style, between "# " lines.
std::string session_log_text(const SessionLog& log);

}  // namespace ktstr::bisectrun
