// Between the repetitions of a repeat job (JOB version 2): put the guest
// back to where a fresh boot would have it. The workers' cgroups go (the
// next repetition makes fresh ones) and sched_ext must read "disabled"
// again (a scheduler death leaves the kernel on EEVDF); a state stuck
// elsewhere ends this VM, since the next load would fail or run on a
// half-torn-down kernel.
#pragma once

#include "guest/proto/messages.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ktstr::agent {

struct SettleClock {
  std::function<uint64_t()> now_ms;
  std::function<void(unsigned ms)> sleep_ms;
};

struct SettleOutcome {
  bool settled = false;
  std::string state;  // the last state read; "" without sched_ext
};

// Polls `read_state` (nullopt: no sched_ext in this kernel, settled) until
// it reads "disabled" or `bound_ms` pass.
SettleOutcome wait_sched_disabled(const std::function<std::optional<std::string>()>& read_state,
                                  unsigned bound_ms, const SettleClock& clock);

// The real clock (CLOCK_MONOTONIC, 10 ms polls).
SettleClock real_settle_clock();

// Empties the ftrace ring buffer (<tracing>/trace opened with O_TRUNC), so
// a repetition's trace_pipe never starts with the previous one's late
// sched_ext_dump lines. Returns the error text, empty on success.
std::string clear_trace_buffer(const std::string& tracing_dir);

// Removes the job's cgroups under `root` and `root` itself; what could not
// be removed is returned as one message per directory (empty: all gone).
std::vector<std::string> remove_job_cgroups(const std::string& root, const proto::JobMsg& job);

}  // namespace ktstr::agent
