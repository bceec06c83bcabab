#include "guest/proto/frame.hpp"

#include <array>
#include <cstring>

namespace ktstr::proto {

namespace {

constexpr std::string_view kMagic(kFrameMagic, sizeof kFrameMagic);

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kCrcTable = make_crc_table();

void put_u16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint16_t get_u16(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}
uint32_t get_u32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}

}  // namespace

std::string msg_type_name(MsgType type) {
  switch (type) {
    case MsgType::Hello: return "hello";
    case MsgType::Job: return "job";
    case MsgType::Stage: return "stage";
    case MsgType::Topology: return "topology";
    case MsgType::Worker: return "worker";
    case MsgType::Log: return "log";
    case MsgType::Error: return "error";
    case MsgType::Done: return "done";
    case MsgType::SchedStarted: return "sched_started";
    case MsgType::SchedState: return "sched_state";
    case MsgType::SchedOutput: return "sched_output";
    case MsgType::SchedExited: return "sched_exited";
    case MsgType::MapWriteResult: return "map_write_result";
    case MsgType::KernelLog: return "kernel_log";
    case MsgType::Monitor: return "monitor";
    case MsgType::ProbeSetup: return "probe_setup";
    case MsgType::ProbeEvents: return "probe_events";
    case MsgType::RepeatBegin: return "repeat_begin";
    case MsgType::RepeatEnd: return "repeat_end";
    case MsgType::VerifierResult: return "verifier_result";
    case MsgType::Step: return "step";
    case MsgType::File: return "file";
  }
  return "type-" + std::to_string(static_cast<uint16_t>(type));
}

bool is_known_msg_type(uint16_t raw) {
  return msg_type_name(static_cast<MsgType>(raw)).rfind("type-", 0) != 0;
}

uint32_t crc32(std::string_view data) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char byte : data) c = kCrcTable[(c ^ byte) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

std::string encode_frame(MsgType type, std::string_view payload) {
  if (payload.size() > kMaxPayload) return {};
  std::string out;
  out.reserve(kHeaderSize + payload.size());
  out.append(kMagic);
  put_u16(out, kProtoVersion);
  put_u16(out, static_cast<uint16_t>(type));
  put_u32(out, static_cast<uint32_t>(payload.size()));
  put_u32(out, crc32(payload));
  out.append(payload);
  return out;
}

void FrameDecoder::feed(const char* data, size_t size) {
  while (size > 0) {
    // Drop consumed bytes once they are the larger part of the buffer, so
    // byte-by-byte feeding stays linear.
    if (pos_ > 0 && pos_ >= buf_.size() - pos_) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    size_t room = kBufferCap - buffered_bytes();
    if (room == 0) {  // cannot happen (a full buffer always parses); stay safe
      skip(1);
      continue;
    }
    size_t n = size < room ? size : room;
    buf_.append(data, n);
    data += n;
    size -= n;
    parse();
  }
}

void FrameDecoder::parse() {
  while (parse_one()) {
  }
}

bool FrameDecoder::parse_one() {
  std::string_view view(buf_);
  view.remove_prefix(pos_);
  size_t at = view.find(kMagic);
  if (at == std::string_view::npos) {
    // Keep a tail that may be the start of a split magic.
    if (view.size() > kMagic.size() - 1) skip(view.size() - (kMagic.size() - 1));
    return false;
  }
  if (at > 0) {
    skip(at);
    view.remove_prefix(at);
  }
  if (view.size() < kHeaderSize) return false;

  uint64_t number = headers_seen_ + 1;
  uint16_t version = get_u16(view.data() + 4);
  uint16_t type = get_u16(view.data() + 6);
  uint32_t length = get_u32(view.data() + 8);
  uint32_t checksum = get_u32(view.data() + 12);
  if (version != kProtoVersion) {
    reject("frame " + std::to_string(number) + ": unsupported version " + std::to_string(version));
    return true;
  }
  if (length > kMaxPayload) {
    reject("frame " + std::to_string(number) + ": payload length " + std::to_string(length) +
           " exceeds " + std::to_string(kMaxPayload));
    return true;
  }
  if (view.size() < kHeaderSize + length) return false;
  std::string_view payload = view.substr(kHeaderSize, length);
  if (crc32(payload) != checksum) {
    reject("frame " + std::to_string(number) + ": checksum mismatch");
    return true;
  }
  flush_skipped();
  ++headers_seen_;
  ++stats_.frames_ok;
  ready_.push_back(Frame{static_cast<MsgType>(type), version, std::string(payload)});
  pos_ += kHeaderSize + length;
  return true;
}

void FrameDecoder::skip(size_t n) {
  pos_ += n;
  skip_run_ += n;
  stats_.bytes_skipped += n;
}

// A rejected header starts a new skip run: the bytes up to the next magic
// are counted against it. Only the magic is skipped, so a good frame hidden
// behind a corrupted length field is still found.
void FrameDecoder::reject(std::string reason) {
  flush_skipped();
  ++headers_seen_;
  ++stats_.frames_bad;
  skip_reason_ = std::move(reason);
  skip(kMagic.size());
}

void FrameDecoder::flush_skipped() {
  if (skip_run_ == 0) return;
  if (skip_reason_.empty())
    diagnose("before frame " + std::to_string(headers_seen_ + 1) + ": " +
             std::to_string(skip_run_) + " bytes of garbage skipped");
  else
    diagnose(skip_reason_ + ", " + std::to_string(skip_run_) + " bytes skipped");
  skip_run_ = 0;
  skip_reason_.clear();
}

void FrameDecoder::diagnose(std::string msg) {
  if (diagnostics_.size() < kMaxDiagnostics)
    diagnostics_.push_back(std::move(msg));
  else
    ++diagnostics_dropped_;
}

std::optional<Frame> FrameDecoder::next() {
  if (ready_.empty()) return std::nullopt;
  Frame f = std::move(ready_.front());
  ready_.pop_front();
  return f;
}

bool FrameDecoder::finish() {
  std::string_view rest(buf_);
  rest.remove_prefix(pos_);
  bool clean = rest.empty() && skip_run_ == 0;
  if (rest.substr(0, kMagic.size()) == kMagic) {
    flush_skipped();
    std::string number = std::to_string(headers_seen_ + 1);
    if (rest.size() < kHeaderSize)
      diagnose("frame " + number + ": truncated header, got " + std::to_string(rest.size()) +
               " of " + std::to_string(kHeaderSize) + " bytes");
    else
      diagnose("frame " + number + ": truncated, got " + std::to_string(rest.size()) + " of " +
               std::to_string(kHeaderSize + get_u32(rest.data() + 8)) + " bytes");
    ++headers_seen_;
    ++stats_.frames_bad;
    stats_.bytes_skipped += rest.size();
  } else if (!rest.empty()) {
    skip(rest.size());
  }
  flush_skipped();
  buf_.clear();
  pos_ = 0;
  return clean;
}

std::vector<std::string> FrameDecoder::take_diagnostics() {
  std::vector<std::string> out = std::move(diagnostics_);
  diagnostics_.clear();
  if (diagnostics_dropped_ > 0) {
    out.push_back(std::to_string(diagnostics_dropped_) + " more diagnostics dropped");
    diagnostics_dropped_ = 0;
  }
  return out;
}

}  // namespace ktstr::proto
