// What `ktstr bisect` bisects over: scheduler commits (a git repository, a
// build command and its artifact), a ladder of prebuilt kernel versions, or
// kernel commits (a git repository, each commit built by kbuild/kernel_build).
// A target lists the candidates as a graph for bisect::CandidateGraph and
// turns one candidate into a runnable test (checkout + build, or a kernel).
#pragma once

#include "bisect/graph.hpp"
#include "bisectrun/names.hpp"
#include "core/file_lock.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"
#include "db/store.hpp"

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

namespace ktstr::bisectrun {

using BisectProgress = std::function<void(const std::string&)>;

struct CommitLabel {
  std::string id;
  std::string short_id;   // 12 digits, or the version itself
  std::string subject;
  std::string author;
  int64_t time = 0;       // unix seconds, 0 unknown
};

struct PreparedRun {
  bool ok = false;        // false: could not build/fetch (a skip)
  std::string build;      // "built" | "cached" | "failed" | "" (none needed)
  std::string detail;     // why it failed (first error lines), or the artifact
  TestSpec spec;          // ready to run
  KernelRecord kernel;
};

// Everything a target needs, kept in the session's params for resume.
struct TargetParams {
  TargetKind kind = TargetKind::Sched;
  // sched (and kernel-repo: repo, good, bad, first_parent)
  std::string repo;
  std::vector<std::string> good;        // as given
  std::string bad;
  std::string build;
  std::string artifact;
  bool first_parent = false;
  std::string kernel;                   // kernel ref for scheduler bisects
  // kernel-range
  std::string range;                    // "A..B"
  std::vector<std::string> versions;    // the versions known when it started (resume uses them)

  nlohmann::json to_json() const;
  // Error: a kind no TargetKind names.
  static Result<TargetParams> from_json(const nlohmann::json& j);
};

class BisectTarget {
 public:
  virtual ~BisectTarget() = default;
  // The candidates (bad end included), newest first, with parent edges.
  virtual const std::vector<bisect::CommitNode>& candidates() const = 0;
  virtual const std::string& bad() const = 0;                 // resolved id
  virtual const std::vector<std::string>& good() const = 0;   // resolved ids
  virtual CommitLabel label(const std::string& id) = 0;
  // Checkout + build (cached), or fetch; `test` is the test to run.
  virtual Result<PreparedRun> prepare(const std::string& id, const TestSpec& test, BisectProgress progress) = 0;
  // The bad end with `culprit` reverted (--verify-culprit); error when the
  // target cannot revert (kernel versions) or the revert conflicts.
  virtual Result<PreparedRun> prepare_revert(const std::string& culprit, const TestSpec& test, BisectProgress progress);
  // Parents of `id` (candidates or good ends) for the culprit's verification.
  virtual std::vector<std::string> parents(const std::string& id) const;
  // The kernel of a scheduler bisect (kernel ranges bring their own).
  void set_kernel(const KernelRecord& k) { kernel_ = k; }
  int builds() const { return builds_; }
  // The next prepare() of each commit reports its build as new again (after
  // the preflight, so the first step says "built", not "cached").
  void reset_reported() { reported_.clear(); }
  std::string range_text() const;      // "good..bad" with short ids

 protected:
  int builds_ = 0;
  std::set<std::string> reported_;
  KernelRecord kernel_;
};

// The directory a scheduler bisect checks commits out into (`base`, else
// `base-1`, ...), held with a lock: a second bisect of the same repository
// running at the same time takes the next free directory instead of emptying
// this one under a build.
Result<std::pair<std::string, FileLock>> claim_worktree(const std::string& base);

// Opens the target, checking the inputs (unknown revision, not a
// repository, good not an ancestor of bad, empty range): those errors are bad
// input.
Result<std::unique_ptr<BisectTarget>> open_target(db::Store& store, const TargetParams& p);

// The kernel versions a range may use: the cached kernels' and, when the
// archive can be asked, the archive's. Sorted, unique.
Result<std::vector<std::string>> known_kernel_versions(db::Store& store);
// "A..B" over `versions`: the good end (newest matching A), the bad end
// (newest matching B) and the chain strictly after the good end up to the bad end.
struct VersionRange { std::string good, bad; std::vector<std::string> chain; };
Result<VersionRange> select_version_range(const std::vector<std::string>& versions, const std::string& range);

}  // namespace ktstr::bisectrun
