// A repeat job's result stream (JOB version 2) cut into repetitions: every
// frame between REPEAT_BEGIN and REPEAT_END goes to that repetition's own
// ResultCollector, which first gets the boot's preamble (HELLO, TOPOLOGY,
// the first stages and logs), so each one reads like a whole single run.
// REPEAT_END becomes the repetition's DONE. Untrusted input, bounded like
// ResultCollector.
#pragma once

#include "run/collector.hpp"
#include "guest/proto/messages.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

class RepeatSplitter {
 public:
  static constexpr size_t kMaxRepetitions = proto::kMaxRepeat;
  static constexpr size_t kMaxPreambleFrames = 256;

  struct Repetition {
    uint32_t index = 0;                      // within this boot, as the guest numbered it
    uint64_t begin_ms = 0;                   // guest CLOCK_BOOTTIME at REPEAT_BEGIN
    std::optional<proto::RepeatEndMsg> end;  // absent: the VM ended during it
    std::unique_ptr<ResultCollector> collector;
    std::vector<std::string> problems;       // stream problems seen during it
  };

  void feed(const char* data, size_t len);
  void finish();

  bool hello_seen() const { return preamble_.hello_seen(); }
  // The stage of the repetition running, else of the boot.
  const std::string& stage() const;
  // Everything outside the repetitions: the boot, and the agent's DONE.
  const ResultCollector& boot() const { return preamble_; }
  const std::vector<Repetition>& repetitions() const { return reps_; }
  std::vector<Repetition>& repetitions() { return reps_; }
  size_t finished() const;  // repetitions with their REPEAT_END
  // The guest said it runs no more repetitions in this boot.
  bool no_more() const { return no_more_; }
  // Problems outside any repetition (decoder, misplaced frames).
  std::vector<std::string> problems() const;

 private:
  void handle(const proto::Frame& f);
  void note(std::string what);

  proto::FrameDecoder decoder_;
  ResultCollector preamble_;
  std::vector<proto::Frame> preamble_frames_;
  std::vector<Repetition> reps_;
  bool in_rep_ = false;
  bool no_more_ = false;
  std::vector<std::string> problems_;
};

}  // namespace ktstr::runner
