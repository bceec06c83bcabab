// Wire framing between the guest agent and the host: every message is one
// frame, "KTSR" + u16 version + u16 type + u32 payload length + u32 CRC-32 of
// the payload, then the payload (JSON text). All integers little endian.
// Everything the host reads from a guest is untrusted: FrameDecoder resyncs
// on garbage, bounds its buffer and never throws on any input.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr::proto {

inline constexpr char kFrameMagic[4] = {'K', 'T', 'S', 'R'};
inline constexpr uint16_t kProtoVersion = 1;
inline constexpr size_t kHeaderSize = 16;
inline constexpr uint32_t kMaxPayload = 1u << 20;  // 1 MiB

// Message kinds. Values are wire format: never renumber, only append.
// Ranges: 1-31 run control and results, 32-63 scheduler events (exit info,
// map writes, probes), 64+ free.
enum class MsgType : uint16_t {
  Hello = 1,     // guest -> host: agent is up
  Job = 2,       // host -> guest: what to run
  Stage = 3,     // guest -> host: progress marker
  Topology = 4,  // guest -> host: CPU topology the guest kernel sees
  Worker = 5,    // guest -> host: one worker's measurements
  Log = 6,       // guest -> host: a log line
  Error = 7,     // guest -> host: something failed
  Done = 8,      // guest -> host: last frame of a run
  SchedStarted = 32,    // guest -> host: scheduler process spawned
  SchedState = 33,      // guest -> host: /sys/kernel/sched_ext/state changed
  SchedOutput = 34,     // guest -> host: a chunk of the scheduler's stdout/stderr
  SchedExited = 35,     // guest -> host: scheduler process ended
  MapWriteResult = 36,  // guest -> host: outcome of one BPF map write
  KernelLog = 37,       // guest -> host: trace_pipe / dmesg lines
  Monitor = 38,         // guest -> host: one monitor sample
  ProbeSetup = 39,      // guest -> host: which crash probes attached
  ProbeEvents = 40,     // guest -> host: captured probe events (once per run)
  RepeatBegin = 41,     // guest -> host: repetition N of a repeat job starts (JOB version 2)
  RepeatEnd = 42,       // guest -> host: repetition N ended; whether another follows in this VM
  VerifierResult = 43,  // guest -> host: one BPF object's load, per program (JOB version 4)
  Step = 44,            // guest -> host: one step of the scenario done, or why not (JOB version 5)
  File = 45,            // host -> guest: a chunk of a file (the scheduler, its libraries), before the JOB
};

// "hello", "job", ...; "type-<n>" for values this build does not know.
std::string msg_type_name(MsgType type);
bool is_known_msg_type(uint16_t raw);

struct Frame {
  MsgType type{};
  uint16_t version = kProtoVersion;
  std::string payload;
};

// IEEE 802.3 CRC-32 (reflected, poly 0xEDB88320), as zlib's crc32().
uint32_t crc32(std::string_view data);

// Header + payload. A payload longer than kMaxPayload cannot be framed:
// returns an empty string (a sender bug; truncating would hide it).
std::string encode_frame(MsgType type, std::string_view payload);

// Streaming decoder: feed() raw bytes in any chunking, then pull frames with
// next(). Bad frames are skipped and described in diagnostics().
class FrameDecoder {
 public:
  struct Stats {
    uint64_t frames_ok = 0;      // frames delivered
    uint64_t frames_bad = 0;     // headers found but rejected
    uint64_t bytes_skipped = 0;  // garbage and rejected frames
  };

  // At most this many raw bytes are buffered, however large a chunk is fed.
  static constexpr size_t kBufferCap = kHeaderSize + kMaxPayload;
  // Diagnostics kept until taken; later ones are only counted.
  static constexpr size_t kMaxDiagnostics = 64;

  void feed(const char* data, size_t size);
  void feed(std::string_view data) { feed(data.data(), data.size()); }
  std::optional<Frame> next();

  // End of stream: reports a truncated trailing frame or trailing garbage
  // as a diagnostic and clears the buffer. Returns true if nothing was left.
  bool finish();

  // Human-readable problems, e.g. "frame 12: checksum mismatch, 37 bytes
  // skipped". take_diagnostics() returns and clears them.
  const std::vector<std::string>& diagnostics() const { return diagnostics_; }
  std::vector<std::string> take_diagnostics();
  const Stats& stats() const { return stats_; }
  size_t buffered_bytes() const { return buf_.size() - pos_; }

 private:
  void parse();
  bool parse_one();  // false when more input is needed
  void skip(size_t n);
  void reject(std::string reason);
  void flush_skipped();
  void diagnose(std::string msg);

  std::string buf_;
  size_t pos_ = 0;               // start of unparsed bytes in buf_
  std::deque<Frame> ready_;
  uint64_t headers_seen_ = 0;    // numbering for "frame N" in diagnostics
  uint64_t skip_run_ = 0;        // bytes skipped since the last good sync
  std::string skip_reason_;      // why the current skip run started
  std::vector<std::string> diagnostics_;
  uint64_t diagnostics_dropped_ = 0;
  Stats stats_;
};

}  // namespace ktstr::proto
