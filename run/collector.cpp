#include "run/collector.hpp"

#include "guest/proto/messages.hpp"

#include <algorithm>

namespace ktstr::runner {

void ResultCollector::feed(const char* data, size_t len) {
  decoder_.feed(data, len);
  while (auto f = decoder_.next()) handle(*f);
}

void ResultCollector::finish() {
  decoder_.finish();
  while (auto f = decoder_.next()) handle(*f);
}

std::optional<uint64_t> ResultCollector::stage_time_ms(const std::string& stage) const {
  for (auto& [s, t] : stage_times_)
    if (s == stage) return t;
  return std::nullopt;
}

std::vector<std::string> ResultCollector::diagnostics() const {
  std::vector<std::string> out = decoder_.diagnostics();
  out.insert(out.end(), payload_problems_.begin(), payload_problems_.end());
  if (kernel_log_truncated_) out.push_back("the guest's kernel log capture was truncated at its limit");
  if (dropped_) out.push_back(std::to_string(dropped_) + " guest messages over the host's limits were dropped");
  return out;
}

namespace {

constexpr std::string_view kDumpTag = "sched_ext_dump: ";

// Appends `text`'s lines to `lines` within `cap` bytes in total.
bool append_lines(std::vector<std::string>& lines, size_t& bytes, size_t cap, const std::string& text) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? text.size() + 1 : nl + 1;
    if (bytes + line.size() + 1 > cap) return false;
    bytes += line.size() + 1;
    lines.push_back(std::move(line));
  }
  return true;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

}  // namespace

double ResultCollector::test_seconds(uint64_t t_ms) const {
  uint64_t ref = stage_time_ms(proto::stage::kWorkersStarted).value_or(last_t_ms_);
  return (static_cast<double>(t_ms) - static_cast<double>(ref)) / 1000.0;
}

std::optional<SchedulerRun> ResultCollector::sched_run() const {
  if (!sched_started_) return std::nullopt;
  SchedulerRun s;
  s.started = true;
  s.started_t_s = test_seconds(sched_start_ms_);
  s.workload_started = stage_time_ms(proto::stage::kWorkersStarted).has_value();
  for (const TimedState& st : states_) {
    s.states.push_back(SchedStateChange{test_seconds(st.t_ms), st.state});
    if (st.state == "enabled" && !s.attached) {
      s.attached = true;
      s.attach_s = (static_cast<double>(st.t_ms) - static_cast<double>(sched_start_ms_)) / 1000.0;
      s.attached_t_s = test_seconds(st.t_ms);
    }
  }
  if (sched_exited_) {
    s.exited = true;
    s.exit_code = sched_exit_code_;
    s.signal = sched_signal_;
    s.exit_t_s = test_seconds(sched_exit_ms_);
  }
  s.log = sched_log_;
  s.log_truncated = sched_log_truncated_;
  for (const TimedWrite& w : map_writes_) {
    MapWriteEvent e = w.event;
    e.t_s = test_seconds(w.t_ms);
    s.map_writes.push_back(std::move(e));
  }
  return s;
}

std::string ResultCollector::sched_ext_dump() const {
  std::vector<std::string> payloads;
  for (const std::string& line : trace_lines_) {
    size_t at = line.find(kDumpTag);
    if (at != std::string::npos) payloads.push_back(line.substr(at + kDumpTag.size()));
  }
  return join_lines(payloads);
}

std::string ResultCollector::dmesg() const { return join_lines(dmesg_lines_); }

std::vector<StepEvent> ResultCollector::steps() const {
  std::vector<StepEvent> out;
  for (const TimedStep& s : steps_) {
    out.push_back(s.event);
    out.back().t_s = test_seconds(s.t_ms);
  }
  return out;
}

std::vector<MonitorSample> ResultCollector::monitor() const {
  std::vector<MonitorSample> out;
  for (const TimedSample& t : samples_) {
    MonitorSample m = t.sample;
    m.t_s = test_seconds(t.t_ms);
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<uint64_t> ResultCollector::sched_exit_time_ms() const {
  if (!sched_exited_) return std::nullopt;
  return sched_exit_ms_;
}

void ResultCollector::note(const Error& e) {
  if (payload_problems_.size() < 64) payload_problems_.push_back(e.msg);
}

template <typename Msg>
void ResultCollector::decode_and_handle(const proto::Frame& f) {
  auto m = proto::decode_payload<Msg>(f);
  if (!m) return note(m.error());
  on(*m);
}

void ResultCollector::handle(const proto::Frame& f) {
  switch (f.type) {
    case proto::MsgType::Hello: return decode_and_handle<proto::HelloMsg>(f);
    case proto::MsgType::Stage: return decode_and_handle<proto::StageMsg>(f);
    case proto::MsgType::Topology: return decode_and_handle<proto::TopologyMsg>(f);
    case proto::MsgType::Worker: return decode_and_handle<proto::WorkerMsg>(f);
    case proto::MsgType::Log: return decode_and_handle<proto::LogMsg>(f);
    case proto::MsgType::Error: return decode_and_handle<proto::ErrorMsg>(f);
    case proto::MsgType::SchedStarted: return decode_and_handle<proto::SchedStartedMsg>(f);
    case proto::MsgType::SchedState: return decode_and_handle<proto::SchedStateMsg>(f);
    case proto::MsgType::SchedOutput: return decode_and_handle<proto::SchedOutputMsg>(f);
    case proto::MsgType::SchedExited: return decode_and_handle<proto::SchedExitedMsg>(f);
    case proto::MsgType::MapWriteResult: return decode_and_handle<proto::MapWriteResultMsg>(f);
    case proto::MsgType::KernelLog: return decode_and_handle<proto::KernelLogMsg>(f);
    case proto::MsgType::Monitor: return decode_and_handle<proto::MonitorMsg>(f);
    case proto::MsgType::ProbeSetup:
    case proto::MsgType::ProbeEvents: {
      auto j = proto::parse_payload(f, f.type);
      if (!j) return note(j.error());
      (f.type == proto::MsgType::ProbeSetup ? probe_setup_ : probe_events_) = std::move(*j);
      break;
    }
    case proto::MsgType::Step: return decode_and_handle<proto::StepMsg>(f);
    case proto::MsgType::Done: return decode_and_handle<proto::DoneMsg>(f);
    default:
      note(Error("unexpected '" + proto::msg_type_name(f.type) + "' message from the guest"));
  }
}

void ResultCollector::on(const proto::HelloMsg&) { hello_seen_ = true; }

void ResultCollector::on(const proto::StageMsg& m) {
  stage_ = m.stage.substr(0, 64);
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (stage_times_.size() < 64) stage_times_.emplace_back(stage_, m.t_ms);
}

void ResultCollector::on(const proto::TopologyMsg& m) {
  GuestTopology g;
  g.cpus = m.cpus;
  g.llc_groups = m.llc_groups;
  g.numa_nodes = m.numa_nodes;
  g.smt_groups = m.smt_groups;
  topology_ = std::move(g);
}

void ResultCollector::on(const proto::WorkerMsg& m) {
  if (workers_.size() >= kMaxWorkers) {
    ++dropped_;
    return;
  }
  WorkerStats w;
  w.cgroup = m.cgroup;
  w.index = m.index;
  w.work = proto::work_kind_name(m.work);
  w.iterations = m.iterations;
  w.cpu_time_ns = m.cpu_time_ns;
  w.wall_ns = m.wall_ns;
  w.migrations = m.migrations;
  w.max_gap_ns = m.max_gap_ns;
  for (auto c : m.cpus_used) w.cpus_used.push_back(static_cast<int>(c));
  w.counters = m.counters;
  w.moved_to = m.moved_to.substr(0, 64);
  w.cpus_changed = m.cpus_changed;
  for (auto c : m.cpus_since_change) w.cpus_since_change.push_back(static_cast<int>(c));
  workers_.push_back(std::move(w));
}

void ResultCollector::on(const proto::LogMsg& m) {
  if (logs_.size() >= kMaxLogLines) {
    ++dropped_;
    return;
  }
  logs_.push_back(m.level + ": " + m.text);
}

void ResultCollector::on(const proto::ErrorMsg& m) {
  if (errors_.size() < 64) errors_.push_back(m.detail.empty() ? m.what : m.what + ": " + m.detail);
}

void ResultCollector::on(const proto::SchedStartedMsg& m) {
  sched_started_ = true;
  sched_start_ms_ = m.t_ms;
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
}

void ResultCollector::on(const proto::SchedStateMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (states_.size() >= kMaxSchedEvents) {
    ++dropped_;
    return;
  }
  states_.push_back(TimedState{m.t_ms, m.state.substr(0, 64)});
}

void ResultCollector::on(const proto::SchedOutputMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (m.truncated) sched_log_truncated_ = true;
  if (sched_log_.size() + m.text.size() > kMaxSchedLogBytes) {
    sched_log_truncated_ = true;
    sched_log_.append(m.text, 0, kMaxSchedLogBytes - sched_log_.size());
    return;
  }
  sched_log_ += m.text;
}

void ResultCollector::on(const proto::SchedExitedMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (sched_exited_) return note(Error("a second 'sched_exited' message from the guest"));
  sched_exited_ = true;
  sched_exit_ms_ = m.t_ms;
  sched_exit_code_ = m.exit_code;
  sched_signal_ = m.signal;
  sched_stopped_by_agent_ = m.stopped_by_agent;
}

void ResultCollector::on(const proto::MapWriteResultMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (map_writes_.size() >= kMaxSchedEvents) {
    ++dropped_;
    return;
  }
  MapWriteEvent e;
  e.map = m.map;
  e.var = m.var;
  e.value = m.value;
  e.ok = m.ok;
  e.resolved_map = m.resolved_map;
  e.error = m.hint.empty() ? m.error : m.error + " (hint: " + m.hint + ")";
  map_writes_.push_back(TimedWrite{m.t_ms, std::move(e)});
}

void ResultCollector::on(const proto::KernelLogMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (m.truncated) kernel_log_truncated_ = true;
  bool kept = m.source == "trace" ? append_lines(trace_lines_, trace_bytes_, kMaxTraceBytes, m.text)
                                  : append_lines(dmesg_lines_, dmesg_bytes_, kMaxDmesgBytes, m.text);
  if (!kept) {
    ++dropped_;
    kernel_log_truncated_ = true;
  }
}

void ResultCollector::on(const proto::MonitorMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (samples_.size() >= kMaxMonitorSamples) {
    ++dropped_;
    return;
  }
  MonitorSample s;
  s.nr_running.assign(m.nr_running.begin(), m.nr_running.end());
  s.nr_switches = m.nr_switches;
  for (auto& [name, value] : m.events) s.events.emplace_back(name, value);
  s.dsq_depth = m.dsq_depth;
  s.sched_state = m.sched_state.substr(0, 64);
  samples_.push_back(TimedSample{m.t_ms, std::move(s)});
}

void ResultCollector::on(const proto::StepMsg& m) {
  last_t_ms_ = std::max(last_t_ms_, m.t_ms);
  if (steps_.size() >= kMaxSchedEvents) {
    ++dropped_;
    return;
  }
  StepEvent e;
  e.index = m.index;
  e.after_ms = static_cast<uint32_t>(std::min<uint64_t>(m.step.after_ms, UINT32_MAX));
  e.action = m.step.action.substr(0, 64);
  e.cgroup = m.step.cgroup.substr(0, 64);
  e.count = m.step.count;
  e.to = m.step.to.substr(0, 64);
  e.cpus = m.step.cpus.substr(0, 256);
  e.cpu = m.step.cpu;
  e.ok = m.ok;
  e.detail = m.detail.substr(0, 1024);
  e.error = m.error.substr(0, 1024);
  steps_.push_back(TimedStep{m.t_ms, std::move(e)});
}

void ResultCollector::on(const proto::DoneMsg& m) {
  done_ = true;
  done_ok_ = m.ok;
  done_error_ = m.error;
}

}  // namespace ktstr::runner
