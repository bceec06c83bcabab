#include "cmd/collector.hpp"

#include "guest/proto/messages.hpp"

namespace ktstr::cmd {

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
  if (dropped_) out.push_back(std::to_string(dropped_) + " guest messages over the host's limits were dropped");
  return out;
}

void ResultCollector::handle(const proto::Frame& f) {
  auto note = [&](const Error& e) {
    if (payload_problems_.size() < 64) payload_problems_.push_back(e.msg);
  };
  switch (f.type) {
    case proto::MsgType::Hello: {
      auto m = proto::decode_payload<proto::HelloMsg>(f);
      if (!m) return note(m.error());
      hello_seen_ = true;
      break;
    }
    case proto::MsgType::Stage: {
      auto m = proto::decode_payload<proto::StageMsg>(f);
      if (!m) return note(m.error());
      stage_ = m->stage.substr(0, 64);
      if (stage_times_.size() < 64) stage_times_.emplace_back(stage_, m->t_ms);
      break;
    }
    case proto::MsgType::Topology: {
      auto m = proto::decode_payload<proto::TopologyMsg>(f);
      if (!m) return note(m.error());
      GuestTopology g;
      g.cpus = m->cpus;
      g.llc_groups = m->llc_groups;
      g.numa_nodes = m->numa_nodes;
      g.smt_groups = m->smt_groups;
      topology_ = std::move(g);
      break;
    }
    case proto::MsgType::Worker: {
      auto m = proto::decode_payload<proto::WorkerMsg>(f);
      if (!m) return note(m.error());
      if (workers_.size() >= kMaxWorkers) {
        ++dropped_;
        return;
      }
      WorkerStats w;
      w.cgroup = m->cgroup;
      w.index = m->index;
      w.work = proto::work_kind_name(m->work);
      w.iterations = m->iterations;
      w.cpu_time_ns = m->cpu_time_ns;
      w.wall_ns = m->wall_ns;
      w.migrations = m->migrations;
      w.max_gap_ns = m->max_gap_ns;
      for (auto c : m->cpus_used) w.cpus_used.push_back(static_cast<int>(c));
      workers_.push_back(std::move(w));
      break;
    }
    case proto::MsgType::Log: {
      auto m = proto::decode_payload<proto::LogMsg>(f);
      if (!m) return note(m.error());
      if (logs_.size() >= kMaxLogLines) {
        ++dropped_;
        return;
      }
      logs_.push_back(m->level + ": " + m->text);
      break;
    }
    case proto::MsgType::Error: {
      auto m = proto::decode_payload<proto::ErrorMsg>(f);
      if (!m) return note(m.error());
      if (errors_.size() < 64) errors_.push_back(m->detail.empty() ? m->what : m->what + ": " + m->detail);
      break;
    }
    case proto::MsgType::Done: {
      auto m = proto::decode_payload<proto::DoneMsg>(f);
      if (!m) return note(m.error());
      done_ = true;
      done_ok_ = m->ok;
      done_error_ = m->error;
      break;
    }
    default:
      note(Error("unexpected '" + proto::msg_type_name(f.type) + "' message from the guest"));
  }
}

}  // namespace ktstr::cmd
