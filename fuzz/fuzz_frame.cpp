// libFuzzer target: the host's view of a guest's serial port. The input is a
// raw byte stream fed to FrameDecoder in chunks chosen by the input itself;
// every frame that comes out is decoded as the payload its type announces
// (decode_payload<T>, as cmd/collector.cpp does), plus parse_payload for the
// probe frames. Oracle besides ASan/UBSan: the frames and statistics must not
// depend on how the stream was chunked, and the buffer stays bounded.
#include "guest/proto/file_messages.hpp"
#include "guest/proto/frame.hpp"
#include "guest/proto/messages.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

using namespace ktstr::proto;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

template <typename Msg>
void decode_as(const Frame& f) {
  auto m = decode_payload<Msg>(f);
  if (m) (void)dump_json(nlohmann::json(*m));  // re-encoding a decoded message must work
}

void decode(const Frame& f) {
  switch (f.type) {
    case MsgType::Hello: return decode_as<HelloMsg>(f);
    case MsgType::Job: {
      auto m = decode_payload<JobMsg>(f);
      if (m) (void)validate_job(*m);
      return;
    }
    case MsgType::Stage: return decode_as<StageMsg>(f);
    case MsgType::Topology: return decode_as<TopologyMsg>(f);
    case MsgType::Worker: return decode_as<WorkerMsg>(f);
    case MsgType::Log: return decode_as<LogMsg>(f);
    case MsgType::Error: return decode_as<ErrorMsg>(f);
    case MsgType::Done: return decode_as<DoneMsg>(f);
    case MsgType::SchedStarted: return decode_as<SchedStartedMsg>(f);
    case MsgType::SchedState: return decode_as<SchedStateMsg>(f);
    case MsgType::SchedOutput: return decode_as<SchedOutputMsg>(f);
    case MsgType::SchedExited: return decode_as<SchedExitedMsg>(f);
    case MsgType::MapWriteResult: return decode_as<MapWriteResultMsg>(f);
    case MsgType::KernelLog: return decode_as<KernelLogMsg>(f);
    case MsgType::Monitor: return decode_as<MonitorMsg>(f);
    case MsgType::ProbeSetup: return decode_as<ProbeSetupMsg>(f);
    case MsgType::ProbeEvents: return decode_as<ProbeEventsMsg>(f);
    case MsgType::VerifierResult: return decode_as<VerifierResultMsg>(f);
    case MsgType::File: {  // host -> guest, but the agent decodes it the same way
      auto m = decode_payload<FileMsg>(f);
      if (m) (void)validate_file_msg(*m);
      return;
    }
  }
  (void)msg_type_name(f.type);  // unknown type: delivered, the caller decides
}

struct Outcome {
  std::vector<Frame> frames;
  FrameDecoder::Stats stats;
  bool clean = false;
};

// Feeds `stream` in chunks of the sizes in `chunks` (cycled; 0 = the rest).
Outcome run(std::string_view stream, const std::vector<size_t>& chunks) {
  FrameDecoder dec;
  Outcome out;
  size_t at = 0, i = 0;
  while (at < stream.size()) {
    size_t n = chunks.empty() ? 0 : chunks[i++ % chunks.size()];
    if (n == 0 || n > stream.size() - at) n = stream.size() - at;
    dec.feed(stream.substr(at, n));
    at += n;
    check(dec.buffered_bytes() <= FrameDecoder::kBufferCap);
    while (auto f = dec.next()) out.frames.push_back(std::move(*f));
  }
  out.clean = dec.finish();
  check(dec.buffered_bytes() == 0);
  check(dec.diagnostics().size() <= FrameDecoder::kMaxDiagnostics);
  (void)dec.take_diagnostics();
  out.stats = dec.stats();
  return out;
}

bool same(const Outcome& a, const Outcome& b) {
  if (a.frames.size() != b.frames.size() || a.clean != b.clean) return false;
  if (a.stats.frames_ok != b.stats.frames_ok || a.stats.frames_bad != b.stats.frames_bad ||
      a.stats.bytes_skipped != b.stats.bytes_skipped)
    return false;
  for (size_t i = 0; i < a.frames.size(); ++i)
    if (a.frames[i].type != b.frames[i].type || a.frames[i].payload != b.frames[i].payload) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // First byte: chunk sizes for the second pass (1..8 bytes, or 0 = whole).
  if (size == 0) return 0;
  size_t chunk = data[0] % 9;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  Outcome whole = run(stream, {});
  for (const Frame& f : whole.frames) {
    decode(f);
    check(f.payload.size() <= kMaxPayload);
    // A delivered frame re-encodes to bytes that decode to itself.
    std::string again = encode_frame(f.type, f.payload);
    Outcome one = run(again, {});
    check(one.frames.size() == 1 && one.frames[0].payload == f.payload && one.clean);
  }
  Outcome pieces = run(stream, {chunk, chunk + 3, 1});
  check(same(whole, pieces));
  return 0;
}
