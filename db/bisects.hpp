// Bisect sessions and their steps, and the scheduler build cache's index
// (schema version 4: tables bisect_sessions, bisect_steps, sched_builds).
// A session's params_json holds everything needed to resume it; its steps
// are appended one at a time, each committed at once, so a killed bisect
// loses at most the step in flight.
#pragma once

#include "core/result.hpp"
#include "db/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::db {

struct BisectSession {
  int64_t id = 0;                // rowid, set by add_bisect
  std::string kind;              // "sched" | "kernel-range" | "kernel-repo"
  std::string params_json;       // repo, good, bad, build, artifact, spec, signature, options
  std::string state;             // "running" | "found" | "not-found" | "failed"
  std::string result_json;
  int64_t created_at = 0;        // unix seconds; 0: now
  int64_t updated_at = 0;        // last step or finish; 0: created_at
};

struct BisectStep {
  int64_t session_id = 0;
  int64_t seq = 0;               // unique within the session
  std::string commit;            // commit id or kernel version
  std::string phase;             // "confirm-bad" | "confirm-good" | "search" | "verify"
  std::string build;             // "built" | "cached" | "failed" | "" (none needed)
  std::string verdict;           // "bad" | "good" | "other" | "skip"
  std::string crash_id;
  int64_t run_id = 0;
  std::string detail;
  int64_t at = 0;                // unix seconds; 0: now
};

// Inserts a session (state "running" when empty); returns its id.
Result<int64_t> add_bisect(Store& store, const BisectSession& session);
// Sets state and result_json and updated_at = now. Error when no such session.
Status finish_bisect(Store& store, int64_t id, const std::string& state, const std::string& result_json);
Result<std::optional<BisectSession>> get_bisect(Store& store, int64_t id);
// Newest first.
Result<std::vector<BisectSession>> list_bisects(Store& store);
// Appends a step in its own transaction (committed when this returns) and
// moves the session's updated_at. Errors: no such session, seq already taken.
Status add_bisect_step(Store& store, const BisectStep& step);
// The session's steps in seq order.
Result<std::vector<BisectStep>> bisect_steps(Store& store, int64_t session_id);

// One scheduler build (schedbuild/), keyed by the hash of what determines it.
struct SchedBuildRecord {
  std::string key;               // hex cache key
  std::string tree;              // source tree id
  std::vector<std::string> command;  // argv (a JSON array in the column)
  std::string artifact;          // relative to the source tree
  std::string compiler;          // compiler_version() at build time
  bool ok = false;
  int64_t duration_ms = 0;
  std::string binary_name;       // file name of the artifact in the entry ("" when !ok)
  std::string error_excerpt;     // when !ok
  int64_t created_at = 0;        // unix seconds
};

// Inserts or replaces by key.
Status put_sched_build(Store& store, const SchedBuildRecord& build);
Result<std::optional<SchedBuildRecord>> get_sched_build(Store& store, const std::string& key);
Status remove_sched_build(Store& store, const std::string& key);

}  // namespace ktstr::db
