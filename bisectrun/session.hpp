// One bisect session, in phases: confirm the ends, search with
// bisect::Search, verify the culprit (its parents), and with --verify-culprit
// check the revert; every run is a db::BisectStep the moment it ends, so
// `resume` replays the stored steps (no VM) and continues with the run in
// flight. What --fixed inverts is BisectMode's (mode.hpp), not the phases'.
#pragma once

#include "bisect/search.hpp"
#include "bisectrun/mode.hpp"
#include "bisectrun/names.hpp"
#include "bisectrun/params.hpp"
#include "bisectrun/report.hpp"
#include "bisectrun/signature.hpp"
#include "bisectrun/target.hpp"
#include "db/bisects.hpp"
#include "db/store.hpp"

#include <nlohmann/json.hpp>

#include <deque>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ktstr::bisectrun {

struct BisectOutcome {
  SessionState state = SessionState::Failed;  // Found | NotFound | Failed
  int exit_code = 1;
  nlohmann::json result;        // also stored as result_json
};

class BisectSession {
 public:
  BisectSession(db::Store& store, BisectTarget& target, SessionParams params, BisectReporter& out);

  // Bad input checks that need builds: the bad end must build; both ends
  // failing means the build command is wrong. Runs before any row exists.
  Status preflight();
  void set_params(const SessionParams& p) { params_ = p; }
  // A new session row, then the whole bisect.
  Result<BisectOutcome> start();
  // An existing session: replay its steps, continue.
  Result<BisectOutcome> resume(const db::BisectSession& s, const std::vector<db::BisectStep>& steps);

 private:
  struct RunOutcome {
    RunVerdict verdict = RunVerdict::Skip;
    std::string detail;
    bool replayed = false;
  };
  // The runs of one check (BisectMode::check) at one commit.
  struct Tally {
    int runs = 0, hits = 0, skips = 0;
    std::string last_detail;
  };
  // The culprit's and its parents' checks: the result's "verify".
  struct Verification {
    nlohmann::json json;
    bool ok = true;
  };
  // One run_batch call: where its steps go.
  struct Batch {
    std::string commit;           // the candidate (or the culprit, reverted)
    std::string key;              // what its steps store: the commit, or its revert key
    Phase phase = Phase::Search;
    std::vector<RunOutcome> out;
    size_t replayed = 0;          // leading steps of `out` that were stored ones
  };
  // A phase lets the bisect go on (nothing) or ends it with an outcome.
  using PhaseEnd = Result<std::optional<BisectOutcome>>;

  // The phases (session.cpp).
  Result<BisectOutcome> run_all();
  Status open_search();
  PhaseEnd confirm_ends();
  PhaseEnd confirm_bad_end();
  PhaseEnd confirm_showing_good_end();
  PhaseEnd confirm_clean_ends();
  std::vector<std::string> ends(Role end) const;
  // Runs where the engine asks until it stops: the stop's reason; confirming
  // the bad end (Phase::ConfirmBad), nothing once that shows the signature.
  Result<std::optional<bisect::StopReason>> follow_engine(Phase phase, std::string* last_detail = nullptr);
  bool named(bisect::StopReason why) const;
  Result<Verification> verify(size_t best);
  Result<BisectOutcome> finish_unverified(size_t best, Verification v, bisect::StopReason after, bool still,
                                          nlohmann::json extra);
  Result<BisectOutcome> finish_verified(const std::string& culprit, Verification v, nlohmann::json extra);
  bool check_revert(const std::string& culprit, nlohmann::json* verify);
  Result<Tally> run_check(const std::string& commit, Phase phase, const Check& c, Tally t);
  void observe(const std::string& commit, RunVerdict v);
  void observe_any(const std::string& commit, RunVerdict v);

  // The runs (session_runs.cpp).
  // Up to `wanted` runs at one commit in one boot (stored steps replayed
  // first); fewer come back when the commit cannot be tested or the VM
  // stopped early. Never empty.
  Result<std::vector<RunOutcome>> run_batch(const std::string& commit, Phase phase, int wanted, bool revert = false);
  // Stored steps of `b` (resume); true when the batch ends there.
  bool replay(Batch& b, int wanted);
  Status run_fresh(Batch& b, unsigned left, bool revert);
  Status store_step(Batch& b, RunOutcome o, const std::string& build, int64_t run_id, const std::string& crash_id);
  void show_step(int64_t seq, const std::string& key, Phase phase, const RunOutcome& o);

  // The result (session_result.cpp).
  Result<BisectOutcome> finish(SessionState state, const std::string& message, int exit_code,
                               nlohmann::json extra = nlohmann::json::object());
  nlohmann::json evidence_json();

  db::Store& store_;
  BisectTarget& target_;
  SessionParams params_;
  BisectReporter& out_;
  std::optional<BisectMode> mode_;
  std::optional<bisect::CandidateGraph> graph_;
  std::optional<bisect::Search> search_;
  int64_t id_ = 0;
  int64_t seq_ = 0;
  std::deque<db::BisectStep> replay_;
  int runs_ = 0, replayed_ = 0, fresh_ = 0;
  // Builds that stored steps record (a resumed session counts them too).
  int replayed_builds_ = 0;
  std::set<std::string> replayed_failed_;
  double started_ = 0;
  nlohmann::json others_ = nlohmann::json::array();   // other crashes seen
};

}  // namespace ktstr::bisectrun
