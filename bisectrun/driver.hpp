// `ktstr bisect` below its option parsing: check the request, open the
// target and the session, preflight, start; resume a stored session; load
// the sessions `bisect list` and `bisect log` print. Errors are bad input
// (the command exits 2); a bisect that ran comes back as its outcome.
#pragma once

#include "bisectrun/params.hpp"
#include "bisectrun/report.hpp"
#include "bisectrun/session.hpp"
#include "core/records.hpp"
#include "core/result.hpp"
#include "db/store.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace ktstr::bisectrun {

// What `ktstr bisect` was asked, as given on its command line.
struct BisectRequest {
  std::string signature;
  std::string sched_repo, kernel_repo, kernel_range;  // exactly one
  std::vector<std::string> good;
  std::string bad, build, artifact;
  std::string kernel;                // --kernel (scheduler bisects)
  std::string spec;                  // --spec
  std::vector<std::string> filters;  // -E
  bool first_parent = false;
  BisectOptions options;             // seed included
};

// The checks on the request alone (nothing opened or written): one target,
// the options' ranges, the flags each kind takes. The target's parameters
// as given (the revisions resolve when it opens).
Result<TargetParams> check_request(const BisectRequest& req);

// The rest: the signature, the kernel, the target (its resolved ends kept
// for resume), the preflight, the scheduler kernel, then the whole bisect.
// `tp` is check_request's.
Result<BisectOutcome> start_bisect(db::Store& store, const BisectRequest& req, TargetParams tp, BisectReporter& out);

// `bisect resume ID`: a running session's steps replayed, then continued.
Result<BisectOutcome> resume_bisect(db::Store& store, const std::string& id, BisectReporter& out);

// The session `id` (as given: a positive number) names.
Result<int64_t> parse_session_id(const std::string& id);
Result<db::BisectSession> get_session(db::Store& store, const std::string& id);

// The kernel of a scheduler bisect: `ref` resolved (its progress on
// stderr); error unless it has sched_ext.
Result<KernelRecord> scheduler_kernel(db::Store& store, const std::string& ref);

// Newest first, with their culprits and step counts.
Result<std::vector<SessionSummary>> list_sessions(db::Store& store);
Result<SessionLog> session_log(db::Store& store, const std::string& id);

}  // namespace ktstr::bisectrun
