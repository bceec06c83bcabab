// Pure bookkeeping of the probe runner (no BPF): converting ring buffer
// records to proto events, the bounded per-task history, and the order of
// the final PROBE_EVENTS report. Unit-tested in tests/unit/test_probe_runner.cpp.
#pragma once

#include "guest/proto/messages.hpp"
#include "probes_common.h"

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>

namespace ktstr::agent {

// 0b1111 -> "0-3", 0b101 -> "0,2", 0 -> "".
std::string cpumask_to_cpulist(uint64_t mask);

// "task", "rq", ... for enum ktstr_probe_arg_kind; "none" for unknown values.
const char* probe_arg_kind_name(uint32_t kind);
// Inverse; KTSTR_ARG_NONE for unknown names.
uint32_t probe_arg_kind_from_name(const std::string& name);

// One ring buffer record as a proto event. Strings from the kernel are cut
// at their first NUL and bounded by their array size.
proto::ProbeEvent to_proto_event(const ktstr_probe_event& raw, const std::string& func,
                                 const std::string& source);

struct TriggerHit {
  uint64_t t_ns = 0;
  int32_t pid = 0;
  uint32_t cpu = 0;
  uint32_t exit_kind = 0;
  std::string exit_reason;
};

class ProbeHistory {
 public:
  ProbeHistory(uint32_t per_task, uint32_t max_events);

  // Keeps the newest `per_task` events of each pid and at most `max_events`
  // in all (the globally oldest goes first); counts what it evicts.
  void add(proto::ProbeEvent event);
  void count_dropped(uint64_t n) { dropped_ += n; }
  void count_unmatched() { ++unmatched_; }

  size_t size() const { return kept_; }
  uint64_t total() const { return total_; }
  uint64_t dropped() const { return dropped_; }
  size_t kept_for(int32_t pid) const;

  // The report: the trigger's task's whole kept history first (by time),
  // then everyone else's events by time. `trigger` absent: trigger_fired false.
  proto::ProbeEventsMsg report(const std::optional<TriggerHit>& trigger) const;

 private:
  struct Kept {
    uint64_t seq;
    proto::ProbeEvent event;
  };
  void evict_oldest();
  void compact_order();

  uint32_t per_task_;
  uint32_t max_events_;
  std::map<int32_t, std::deque<Kept>> by_pid_;
  std::deque<std::pair<uint64_t, int32_t>> order_;  // (seq, pid) of adds; may hold stale entries
  uint64_t next_seq_ = 0;
  size_t kept_ = 0;
  uint64_t total_ = 0;
  uint64_t dropped_ = 0;
  uint64_t unmatched_ = 0;
};

}  // namespace ktstr::agent
