// One bisect session: confirm the ends, search with bisect::Search, verify
// the culprit; every run is a db::BisectStep the moment it ends, so `resume`
// replays the stored steps (no VM) and continues with the run in flight.
#pragma once

#include "bisect/search.hpp"
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

struct BisectOptions {
  double confidence = 0.95;
  int max_runs = 0;             // 0: the engine's default
  bool fixed = false;
  int confirm_runs = 2;         // clean runs asked of the good end (and of the culprit's parents)
  bool verify_culprit = false;  // also revert the culprit on the bad end
  bool verbose = false;
  unsigned memory_mb = 0;
  // The session's seed S: the run of step `seq` gets seed_at(S, seq)
  // (core/seed.hpp) as KTSTR_SEED. Absent in sessions stored before seeds
  // existed: their runs get none.
  std::optional<uint64_t> seed;
  // The seed of step `seq`'s run, if the session has one.
  std::optional<uint64_t> step_seed(int64_t seq) const;

  // The bad end (or the culprit) must show the signature within this many runs.
  int reproduce_bound() const { return 4 * confirm_runs; }
  nlohmann::json to_json() const;
  static BisectOptions from_json(const nlohmann::json& j);
};

// Everything `resume` needs, stored as the session's params_json.
struct SessionParams {
  TargetParams target;
  BisectSignature signature;
  BisectOptions options;
  std::string spec_file;        // as given (the test itself is in the signature)
  nlohmann::json to_json() const;
  static Result<SessionParams> from_json(const std::string& text);
};

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

struct BisectOutcome {
  std::string state;            // "found" | "not-found" | "failed"
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
  Result<BisectOutcome> run_all();
  Result<RunOutcome> run_once(const std::string& commit, const std::string& phase, bool revert = false);
  // Up to `wanted` runs at one commit in one boot (stored steps replayed
  // first); fewer come back when the commit cannot be tested or the VM
  // stopped early. Never empty.
  Result<std::vector<RunOutcome>> run_batch(const std::string& commit, const std::string& phase, int wanted,
                                            bool revert = false);
  void observe(const std::string& commit, RunVerdict v);
  void show_step(int64_t seq, const std::string& commit, const std::string& phase, const RunOutcome& o);
  Result<BisectOutcome> finish(const std::string& state, const std::string& message, int exit_code,
                               nlohmann::json extra = nlohmann::json::object());
  nlohmann::json evidence_json();

  db::Store& store_;
  BisectTarget& target_;
  SessionParams params_;
  BisectReporter& out_;
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

// The culprit and evidence as text (the main result when not --json).
std::string render_bisect_result(const nlohmann::json& result);

}  // namespace ktstr::bisectrun
