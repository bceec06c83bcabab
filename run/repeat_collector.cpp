#include "run/repeat_collector.hpp"

namespace ktstr::runner {

void RepeatSplitter::feed(const char* data, size_t len) {
  decoder_.feed(data, len);
  while (auto f = decoder_.next()) handle(*f);
}

void RepeatSplitter::finish() {
  decoder_.finish();
  while (auto f = decoder_.next()) handle(*f);
  for (std::string& d : decoder_.take_diagnostics()) note(std::move(d));
}

const std::string& RepeatSplitter::stage() const {
  if (in_rep_ && !reps_.empty() && !reps_.back().collector->stage().empty()) return reps_.back().collector->stage();
  return preamble_.stage();
}

size_t RepeatSplitter::finished() const {
  size_t n = 0;
  for (const Repetition& r : reps_) n += r.end.has_value();
  return n;
}

std::vector<std::string> RepeatSplitter::problems() const {
  std::vector<std::string> out = problems_;
  for (const std::string& d : preamble_.diagnostics()) out.push_back(d);
  return out;
}

void RepeatSplitter::note(std::string what) {
  if (in_rep_ && !reps_.empty()) {
    if (reps_.back().problems.size() < 64) reps_.back().problems.push_back(std::move(what));
  } else if (problems_.size() < 64) {
    problems_.push_back(std::move(what));
  }
}

void RepeatSplitter::handle(const proto::Frame& f) {
  for (std::string& d : decoder_.take_diagnostics()) note(std::move(d));
  switch (f.type) {
    case proto::MsgType::RepeatBegin: {
      auto m = proto::decode_payload<proto::RepeatBeginMsg>(f);
      if (!m) return note(m.error().msg);
      if (in_rep_) note("repetition " + std::to_string(reps_.back().index) + " never ended before repetition " +
                        std::to_string(m->index) + " began");
      if (reps_.size() >= kMaxRepetitions) {
        in_rep_ = false;
        return note("more than " + std::to_string(kMaxRepetitions) + " repetitions from the guest");
      }
      Repetition r;
      r.index = m->index;
      r.begin_ms = m->t_ms;
      r.collector = std::make_unique<ResultCollector>();
      for (const proto::Frame& p : preamble_frames_) r.collector->feed_frame(p);
      reps_.push_back(std::move(r));
      in_rep_ = true;
      return;
    }
    case proto::MsgType::RepeatEnd: {
      auto m = proto::decode_payload<proto::RepeatEndMsg>(f);
      if (!m) return note(m.error().msg);
      if (!in_rep_ || reps_.back().index != m->index)
        return note("repeat_end for repetition " + std::to_string(m->index) + ", which is not running");
      // What DONE says for a single run.
      reps_.back().collector->feed_frame(
          proto::Frame{proto::MsgType::Done, proto::kProtoVersion,
                       proto::dump_json(nlohmann::json(proto::DoneMsg{m->ok, m->error}))});
      reps_.back().end = std::move(*m);
      in_rep_ = false;
      if (!reps_.back().end->next) no_more_ = true;
      return;
    }
    default: break;
  }
  if (in_rep_) {
    reps_.back().collector->feed_frame(f);
    return;
  }
  // The boot's own frames: each repetition starts from them.
  bool boot_frame = f.type == proto::MsgType::Hello || f.type == proto::MsgType::Topology ||
                    f.type == proto::MsgType::Stage || f.type == proto::MsgType::Log;
  if (reps_.empty() && boot_frame && preamble_frames_.size() < kMaxPreambleFrames) preamble_frames_.push_back(f);
  preamble_.feed_frame(f);
}

}  // namespace ktstr::runner
