#include "guest/agent/probe_history.hpp"

#include <algorithm>
#include <cstring>

namespace ktstr::agent {

std::string cpumask_to_cpulist(uint64_t mask) {
  std::string out;
  for (int cpu = 0; cpu < 64;) {
    if (!(mask >> cpu & 1)) {
      ++cpu;
      continue;
    }
    int end = cpu;
    while (end + 1 < 64 && (mask >> (end + 1) & 1)) ++end;
    if (!out.empty()) out += ',';
    out += std::to_string(cpu);
    if (end > cpu) out += '-' + std::to_string(end);
    cpu = end + 1;
  }
  return out;
}

const char* probe_arg_kind_name(uint32_t kind) {
  switch (kind) {
    case KTSTR_ARG_SCALAR: return "scalar";
    case KTSTR_ARG_TASK: return "task";
    case KTSTR_ARG_RQ: return "rq";
    case KTSTR_ARG_DSQ: return "dsq";
    case KTSTR_ARG_EXIT_INFO: return "exit_info";
    default: return "none";
  }
}

uint32_t probe_arg_kind_from_name(const std::string& name) {
  for (uint32_t k : {KTSTR_ARG_SCALAR, KTSTR_ARG_TASK, KTSTR_ARG_RQ, KTSTR_ARG_DSQ, KTSTR_ARG_EXIT_INFO})
    if (name == probe_arg_kind_name(k)) return k;
  return KTSTR_ARG_NONE;
}

namespace {

template <size_t N>
std::string bounded_string(const char (&chars)[N]) {
  return std::string(chars, strnlen(chars, N));
}

const char* event_kind_name(uint32_t kind) {
  switch (kind) {
    case KTSTR_EV_FENTRY: return "fentry";
    case KTSTR_EV_FEXIT: return "fexit";
    case KTSTR_EV_TRIGGER: return "trigger";
    default: return "kprobe";
  }
}

}  // namespace

proto::ProbeEvent to_proto_event(const ktstr_probe_event& raw, const std::string& func,
                                 const std::string& source) {
  proto::ProbeEvent ev;
  ev.t_ns = raw.t_ns;
  ev.cpu = raw.cpu;
  ev.pid = raw.pid;
  ev.comm = bounded_string(raw.comm);
  ev.func = func;
  ev.kind = event_kind_name(raw.kind);
  ev.ip = raw.ip;
  ev.source = source;
  ev.ret = raw.kind == KTSTR_EV_FEXIT ? raw.ret : 0;
  uint32_t n = std::min<uint32_t>(raw.nr_args, KTSTR_PROBE_MAX_ARGS);
  std::string reason = bounded_string(raw.reason);
  for (uint32_t i = 0; i < n; ++i) {
    const ktstr_probe_arg& a = raw.args[i];
    proto::ProbeArg arg;
    arg.kind = probe_arg_kind_name(a.kind);
    arg.raw = a.raw;
    if (a.decoded) {
      switch (a.kind) {
        case KTSTR_ARG_TASK: {
          proto::ProbeTask t;
          t.pid = a.task.pid;
          t.comm = bounded_string(a.task.comm);
          t.cpus = cpumask_to_cpulist(a.task.cpus_mask);
          t.dsq_id = a.task.dsq_id;
          t.slice = a.task.slice;
          t.vtime = a.task.vtime;
          t.weight = a.task.weight;
          t.flags = a.task.flags;
          arg.task = std::move(t);
          break;
        }
        case KTSTR_ARG_RQ: arg.cpu = a.cpu; break;
        case KTSTR_ARG_DSQ: arg.dsq_id = a.dsq_id; break;
        case KTSTR_ARG_EXIT_INFO:
          arg.exit_kind = a.exit_kind;
          arg.exit_reason = reason;
          break;
        default: break;
      }
    }
    ev.args.push_back(std::move(arg));
  }
  return ev;
}

ProbeHistory::ProbeHistory(uint32_t per_task, uint32_t max_events)
    : per_task_(std::max<uint32_t>(per_task, 1)), max_events_(std::max<uint32_t>(max_events, 1)) {}

size_t ProbeHistory::kept_for(int32_t pid) const {
  auto it = by_pid_.find(pid);
  return it == by_pid_.end() ? 0 : it->second.size();
}

void ProbeHistory::add(proto::ProbeEvent event) {
  ++total_;
  int32_t pid = event.pid;
  std::deque<Kept>& mine = by_pid_[pid];
  if (mine.size() >= per_task_) {
    mine.pop_front();  // its entry in order_ goes stale
    --kept_;
    ++dropped_;
  }
  while (kept_ >= max_events_) evict_oldest();
  uint64_t seq = next_seq_++;
  mine.push_back({seq, std::move(event)});
  order_.emplace_back(seq, pid);
  ++kept_;
  if (order_.size() > 4 * size_t(max_events_) + 64) compact_order();
}

void ProbeHistory::evict_oldest() {
  while (!order_.empty()) {
    auto [seq, pid] = order_.front();
    order_.pop_front();
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end() || it->second.empty() || it->second.front().seq != seq) continue;  // stale
    it->second.pop_front();
    if (it->second.empty()) by_pid_.erase(it);
    --kept_;
    ++dropped_;
    return;
  }
}

void ProbeHistory::compact_order() {
  std::vector<std::pair<uint64_t, int32_t>> live;
  live.reserve(kept_);
  for (const auto& [pid, events] : by_pid_)
    for (const Kept& k : events) live.emplace_back(k.seq, pid);
  std::sort(live.begin(), live.end());
  order_.assign(live.begin(), live.end());
}

proto::ProbeEventsMsg ProbeHistory::report(const std::optional<TriggerHit>& trigger) const {
  proto::ProbeEventsMsg msg;
  if (trigger) {
    msg.trigger_fired = true;
    msg.trigger_t_ns = trigger->t_ns;
    msg.trigger_pid = trigger->pid;
    msg.trigger_cpu = trigger->cpu;
    msg.exit_kind = trigger->exit_kind;
    msg.exit_reason = trigger->exit_reason;
  }
  auto by_time = [](const proto::ProbeEvent& a, const proto::ProbeEvent& b) { return a.t_ns < b.t_ns; };
  std::vector<proto::ProbeEvent> first, rest;
  for (const auto& [pid, events] : by_pid_) {
    if (events.empty()) continue;
    msg.per_task_history[std::to_string(pid)] = events.size();
    auto& into = trigger && pid == trigger->pid ? first : rest;
    for (const Kept& k : events) into.push_back(k.event);
  }
  std::stable_sort(first.begin(), first.end(), by_time);
  std::stable_sort(rest.begin(), rest.end(), by_time);
  msg.events = std::move(first);
  msg.events.insert(msg.events.end(), std::make_move_iterator(rest.begin()),
                    std::make_move_iterator(rest.end()));
  msg.events_total = total_;
  msg.events_dropped = dropped_;
  msg.unmatched_ips = unmatched_;
  return msg;
}

}  // namespace ktstr::agent
