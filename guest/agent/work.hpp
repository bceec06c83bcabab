// What one worker does and measures: the work kinds of a CgroupPlan, run in
// the calling process until the duration passes or the stop signal comes.
// Every kind counts iterations, CPU and wall time, migrations, the longest
// gap between iterations and the CPUs it ran on; most also count what their
// behaviour is about (wakeups and their latency, round trips, forks, page
// faults, periods and missed deadlines, affinity changes).
#pragma once

#include "guest/proto/messages.hpp"

#include <array>
#include <bitset>
#include <csignal>
#include <cstdint>

namespace ktstr::agent {

inline constexpr unsigned kMaxTrackedCpus = 1024;

// The per-kind counters, in wire order of WorkerRecord (workers.cpp); the
// names are the keys of WorkerMsg.counters.
enum Counter : unsigned {
  kWakeups,
  kWakeLatencyP50,
  kWakeLatencyP99,
  kWakeLatencyMax,
  kRoundTrips,
  kForks,
  kPageFaults,
  kPeriods,
  kMissedDeadlines,
  kAffinityChanges,
  kCounterCount
};
const char* counter_name(Counter c);

struct WorkStats {
  uint64_t iterations = 0;
  uint64_t cpu_time_ns = 0;
  uint64_t wall_ns = 0;
  uint64_t migrations = 0;
  uint64_t max_gap_ns = 0;
  std::bitset<kMaxTrackedCpus> cpus_used;
  // Steps: whether the agent changed this worker's cpuset during the run
  // (work_cpuset_epoch), and the CPUs used after the last change.
  bool cpus_changed = false;
  std::bitset<kMaxTrackedCpus> cpus_since_change;
  std::array<uint64_t, kCounterCount> counters{};
  uint32_t counters_set = 0;  // bit per Counter the kind measured

  void set(Counter c, uint64_t value) {
    counters[c] = value;
    counters_set |= 1u << c;
  }
  bool has(Counter c) const { return (counters_set >> c) & 1u; }
};

// Wakeup latencies in log-linear buckets (8 per power of two, so a
// percentile is within 12.5% of the true value); the maximum is exact.
// Fixed size: a worker may wake millions of times.
class LatencyHistogram {
 public:
  void add(uint64_t ns);
  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }
  // The smallest bucket bound below which `pct` percent of the samples lie,
  // capped at the maximum; 0 with no samples.
  uint64_t percentile(double pct) const;

  static unsigned bucket_of(uint64_t ns);
  static uint64_t bucket_upper(unsigned bucket);

 private:
  static constexpr unsigned kBuckets = 64 * 8;
  std::array<uint32_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

// Set by the stop signal (SIGUSR1, workers.hpp): the loop ends and the
// worker still reports what it did.
volatile std::sig_atomic_t& work_stop_flag();

// Where the agent counts this worker's cpuset changes (shared memory the
// agent bumps after a set_cpus or a move took effect); null: none. Read
// before each sched_getcpu, so the CPUs after a change are told apart.
const uint32_t*& work_cpuset_epoch();

// The measured loop of one worker of `plan`. Runs at least one iteration.
// futex and pipe workers are a pair: this thread and a partner thread that
// answers it (CPU time is this thread's).
WorkStats run_work(const proto::CgroupPlan& plan, uint64_t duration_ms);

// The plan's nice level and scheduling policy for the calling process;
// empty on success, else what failed.
std::string apply_sched_params(const proto::CgroupPlan& plan);

}  // namespace ktstr::agent
