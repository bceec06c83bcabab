// The bisect driver's contracts as enums, and their stored spellings: the
// texts below are what db rows and the params/result JSON hold (old stores
// read back, so they never change). Everything else compares the enums; a
// stored text no enum names parses to nothing.
#pragma once

#include <optional>
#include <string>

namespace ktstr::bisectrun {

// What a session bisects over (TargetParams::kind, the session row's kind).
enum class TargetKind {
  Sched,        // "sched": scheduler commits of a git repository
  KernelRange,  // "kernel-range": prebuilt kernel versions A..B
  KernelRepo,   // "kernel-repo": kernel commits of a git repository
};
const char* target_kind_name(TargetKind k);
std::optional<TargetKind> parse_target_kind(const std::string& text);

// Which part of the session a step belongs to (db::BisectStep::phase).
enum class Phase {
  ConfirmBad,   // "confirm-bad": the bad end, before the search
  ConfirmGood,  // "confirm-good": a good end, before the search
  Search,       // "search"
  Verify,       // "verify": the culprit, its parents, the revert
};
const char* phase_name(Phase p);
std::optional<Phase> parse_phase(const std::string& text);

// A session's state (db::BisectSession::state, the result's "state").
enum class SessionState {
  Running,   // "running"
  Found,     // "found": a culprit reached the confidence and verified
  NotFound,  // "not-found"
  Failed,    // "failed": the ends did not confirm
};
const char* session_state_name(SessionState s);
std::optional<SessionState> parse_session_state(const std::string& text);

// A step at the bad end with `culprit` reverted (--verify-culprit) is
// stored under the key "revert-<culprit>".
std::string revert_key(const std::string& culprit);
// The culprit a revert key names; nothing for any other commit key.
std::optional<std::string> reverted_commit(const std::string& key);

}  // namespace ktstr::bisectrun
