// guest/proto: frame encoding, the streaming decoder on good and hostile
// input, and payload decoding that never throws.
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

using namespace ktstr::proto;

namespace {

std::vector<Frame> drain(FrameDecoder& d) {
  std::vector<Frame> out;
  while (auto f = d.next()) out.push_back(std::move(*f));
  return out;
}

std::vector<Frame> decode_all(const std::string& stream, FrameDecoder& d) {
  d.feed(stream);
  return drain(d);
}

bool contains(const std::vector<std::string>& diags, const std::string& needle) {
  for (const auto& s : diags)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

const std::vector<std::pair<MsgType, std::string>> kSample = {
    {MsgType::Hello, R"({"agent_version":"1","kernel_release":"7.3","boot_ms":5})"},
    {MsgType::Stage, R"({"stage":"init","t_ms":7})"},
    {MsgType::Log, ""},
    {MsgType::Done, R"({"ok":true,"error":""})"},
};

std::string sample_stream() {
  std::string s;
  for (auto& [t, p] : kSample) s += encode_frame(t, p);
  return s;
}

void expect_sample(const std::vector<Frame>& frames) {
  ASSERT_EQ(frames.size(), kSample.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].type, kSample[i].first) << i;
    EXPECT_EQ(frames[i].payload, kSample[i].second) << i;
    EXPECT_EQ(frames[i].version, kProtoVersion);
  }
}

}  // namespace

TEST(Crc32, MatchesTheStandardCheckValue) {
  EXPECT_EQ(crc32("123456789"), 0xCBF43926u);  // CRC-32/ISO-HDLC check value
  EXPECT_EQ(crc32(""), 0u);
  EXPECT_NE(crc32("a"), crc32("b"));
}

TEST(EncodeFrame, HeaderIsLittleEndianMagicVersionTypeLengthCrc) {
  std::string f = encode_frame(MsgType::Worker, "xyz");
  ASSERT_EQ(f.size(), kHeaderSize + 3);
  EXPECT_EQ(f.substr(0, 4), "KTSR");
  auto byte = [&](size_t i) { return static_cast<unsigned char>(f[i]); };
  EXPECT_EQ(byte(4) | byte(5) << 8, kProtoVersion);
  EXPECT_EQ(byte(6) | byte(7) << 8, static_cast<int>(MsgType::Worker));
  EXPECT_EQ(byte(8) | byte(9) << 8 | byte(10) << 16 | byte(11) << 24, 3);
  uint32_t crc = uint32_t(byte(12)) | uint32_t(byte(13)) << 8 | uint32_t(byte(14)) << 16 |
                 uint32_t(byte(15)) << 24;
  EXPECT_EQ(crc, crc32("xyz"));
  EXPECT_EQ(f.substr(16), "xyz");
}

TEST(EncodeFrame, RefusesPayloadsAboveTheLimit) {
  EXPECT_FALSE(encode_frame(MsgType::Log, std::string(kMaxPayload, 'a')).empty());
  EXPECT_TRUE(encode_frame(MsgType::Log, std::string(kMaxPayload + 1, 'a')).empty());
}

TEST(FrameDecoder, RoundTrip) {
  FrameDecoder d;
  expect_sample(decode_all(sample_stream(), d));
  EXPECT_TRUE(d.diagnostics().empty()) << join(d.diagnostics());
  EXPECT_TRUE(d.finish());
  EXPECT_EQ(d.stats().frames_ok, kSample.size());
  EXPECT_EQ(d.stats().bytes_skipped, 0u);
}

TEST(FrameDecoder, BinaryAndMaximumSizePayloads) {
  std::string binary("\0KTSR\xff\x01", 7);  // even the magic inside a payload is fine
  std::string big(kMaxPayload, 'z');
  FrameDecoder d;
  auto frames = decode_all(encode_frame(MsgType::Log, binary) + encode_frame(MsgType::Log, big), d);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, binary);
  EXPECT_EQ(frames[1].payload, big);
  EXPECT_TRUE(d.diagnostics().empty()) << join(d.diagnostics());
}

TEST(FrameDecoder, SplitAtEveryByteBoundary) {
  std::string s = sample_stream();
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    FrameDecoder d;
    d.feed(s.data(), cut);
    auto frames = drain(d);
    d.feed(s.data() + cut, s.size() - cut);
    for (auto& f : drain(d)) frames.push_back(std::move(f));
    expect_sample(frames);
    EXPECT_TRUE(d.diagnostics().empty()) << "cut " << cut << ": " << join(d.diagnostics());
  }
}

TEST(FrameDecoder, ByteAtATime) {
  std::string s = sample_stream();
  FrameDecoder d;
  std::vector<Frame> frames;
  for (char c : s) {
    d.feed(&c, 1);
    for (auto& f : drain(d)) frames.push_back(std::move(f));
  }
  expect_sample(frames);
  EXPECT_TRUE(d.finish());
}

TEST(FrameDecoder, SkipsGarbageBeforeAndBetweenFrames) {
  std::string garbage1 = "boot noise\n";
  std::string garbage2 = "KTS KT K";  // magic prefixes but never the magic
  std::string s = garbage1 + encode_frame(MsgType::Hello, "{}") + garbage2 +
                  encode_frame(MsgType::Done, "{}");
  FrameDecoder d;
  auto frames = decode_all(s, d);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, MsgType::Hello);
  EXPECT_EQ(frames[1].type, MsgType::Done);
  auto diags = d.take_diagnostics();
  ASSERT_EQ(diags.size(), 2u) << join(diags);
  EXPECT_EQ(diags[0], "before frame 1: " + std::to_string(garbage1.size()) + " bytes of garbage skipped");
  EXPECT_EQ(diags[1], "before frame 2: " + std::to_string(garbage2.size()) + " bytes of garbage skipped");
  EXPECT_EQ(d.stats().bytes_skipped, garbage1.size() + garbage2.size());
  EXPECT_TRUE(d.take_diagnostics().empty());
}

TEST(FrameDecoder, FlippedPayloadBitIsACheckSumMismatchAndTheNextFrameDecodes) {
  std::string bad = encode_frame(MsgType::Stage, R"({"stage":"init","t_ms":1})");
  bad[kHeaderSize + 3] ^= 0x04;
  std::string s = encode_frame(MsgType::Hello, "{}") + bad + encode_frame(MsgType::Done, "{}");
  FrameDecoder d;
  auto frames = decode_all(s, d);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].type, MsgType::Hello);
  EXPECT_EQ(frames[1].type, MsgType::Done);
  auto diags = d.take_diagnostics();
  ASSERT_EQ(diags.size(), 1u) << join(diags);
  EXPECT_EQ(diags[0], "frame 2: checksum mismatch, " + std::to_string(bad.size()) + " bytes skipped");
  EXPECT_EQ(d.stats().frames_bad, 1u);
}

TEST(FrameDecoder, CorruptedLengthFieldDoesNotHideLaterFrames) {
  // The length grows by 256: the decoder swallows the next frames as
  // "payload", sees the CRC fail, then finds them again by their magic.
  std::string bad = encode_frame(MsgType::Hello, "{}");
  bad[9] ^= 0x01;
  std::string tail;
  for (int i = 0; i < 20; ++i) tail += encode_frame(MsgType::Log, "line " + std::to_string(i));
  ASSERT_GT(tail.size(), 256u + 2);
  FrameDecoder d;
  auto frames = decode_all(bad + tail, d);
  ASSERT_EQ(frames.size(), 20u);
  EXPECT_EQ(frames[19].payload, "line 19");
  EXPECT_TRUE(contains(d.diagnostics(), "frame 1: checksum mismatch")) << join(d.diagnostics());
}

TEST(FrameDecoder, RejectsOversizedLengthAndUnknownVersion) {
  std::string oversized = encode_frame(MsgType::Log, "x");
  oversized[8] = 0x01;  // length 0x00100001 = 1 MiB + 1
  oversized[9] = 0x00;
  oversized[10] = 0x10;
  oversized[11] = 0x00;
  std::string future = encode_frame(MsgType::Log, "y");
  future[4] = 2;
  FrameDecoder d;
  auto frames = decode_all(oversized + future + encode_frame(MsgType::Done, "{}"), d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, MsgType::Done);
  auto diags = d.take_diagnostics();
  ASSERT_EQ(diags.size(), 2u) << join(diags);
  EXPECT_EQ(diags[0], "frame 1: payload length 1048577 exceeds 1048576, " +
                          std::to_string(oversized.size()) + " bytes skipped");
  EXPECT_EQ(diags[1], "frame 2: unsupported version 2, " + std::to_string(future.size()) +
                          " bytes skipped");
  EXPECT_LT(d.buffered_bytes(), kHeaderSize);
}

TEST(FrameDecoder, DeliversUnknownTypesForTheCallerToJudge) {
  FrameDecoder d;
  auto frames = decode_all(encode_frame(static_cast<MsgType>(99), "{}"), d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(msg_type_name(frames[0].type), "type-99");
  EXPECT_FALSE(is_known_msg_type(99));
  EXPECT_TRUE(is_known_msg_type(static_cast<uint16_t>(MsgType::Done)));
}

TEST(FrameDecoder, ReportsATruncatedTrailingFrame) {
  std::string last = encode_frame(MsgType::Done, R"({"ok":true})");
  FrameDecoder d;
  auto frames = decode_all(encode_frame(MsgType::Hello, "{}") + last.substr(0, last.size() - 3), d);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(d.diagnostics().empty());
  EXPECT_FALSE(d.finish());
  ASSERT_EQ(d.diagnostics().size(), 1u);
  EXPECT_EQ(d.diagnostics()[0], "frame 2: truncated, got " + std::to_string(last.size() - 3) +
                                    " of " + std::to_string(last.size()) + " bytes");
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameDecoder, ReportsATruncatedHeaderAndTrailingGarbage) {
  FrameDecoder header;
  header.feed(encode_frame(MsgType::Hello, "{}").substr(0, 10));
  EXPECT_FALSE(header.finish());
  EXPECT_TRUE(contains(header.diagnostics(), "frame 1: truncated header, got 10 of 16 bytes"));

  FrameDecoder garbage;
  garbage.feed(encode_frame(MsgType::Hello, "{}") + "xy");
  EXPECT_EQ(drain(garbage).size(), 1u);
  EXPECT_FALSE(garbage.finish());
  EXPECT_TRUE(contains(garbage.diagnostics(), "2 bytes of garbage skipped")) << join(garbage.diagnostics());
}

TEST(FrameDecoder, BoundsItsBuffer) {
  FrameDecoder d;
  d.feed(std::string(5u << 20, 'g'));  // 5 MiB of garbage in one call
  EXPECT_LE(d.buffered_bytes(), 3u);
  // A header promising a full-size payload holds at most one frame's bytes.
  std::string header = encode_frame(MsgType::Log, std::string(kMaxPayload, 'p')).substr(0, kHeaderSize);
  d.feed(header + std::string(3u << 20, 'q'));
  EXPECT_LE(d.buffered_bytes(), FrameDecoder::kBufferCap);
  EXPECT_TRUE(drain(d).empty());
  // Diagnostics are bounded too.
  FrameDecoder noisy;
  std::string bad = encode_frame(MsgType::Log, "x");
  bad[4] = 9;
  std::string s;
  for (size_t i = 0; i < 2 * FrameDecoder::kMaxDiagnostics; ++i) s += bad;
  noisy.feed(s);
  noisy.finish();
  EXPECT_EQ(noisy.diagnostics().size(), FrameDecoder::kMaxDiagnostics);
  auto taken = noisy.take_diagnostics();
  EXPECT_EQ(taken.back(), std::to_string(FrameDecoder::kMaxDiagnostics) + " more diagnostics dropped");
}

TEST(FrameDecoder, FuzzNeverCrashesAndOnlyDeliversFramesThatWereSent) {
  std::mt19937 rng(12345);
  auto rnd = [&](uint32_t n) { return n == 0 ? 0u : uint32_t(rng() % n); };
  for (int round = 0; round < 300; ++round) {
    std::string stream;
    std::vector<std::string> sent;
    int pieces = 1 + rnd(12);
    for (int p = 0; p < pieces; ++p) {
      switch (rnd(4)) {
        case 0: {  // random garbage, sometimes with magics inside
          std::string g(rnd(64), '\0');
          for (char& c : g) c = static_cast<char>(rng());
          if (rnd(2)) g.insert(rnd(uint32_t(g.size()) + 1), "KTSR");
          stream += g;
          break;
        }
        case 1: {  // a damaged frame
          std::string f = encode_frame(static_cast<MsgType>(1 + rnd(10)), std::string(rnd(100), 'm'));
          int flips = 1 + rnd(3);
          for (int i = 0; i < flips; ++i) f[rnd(uint32_t(f.size()))] ^= static_cast<char>(1 + rnd(255));
          if (rnd(3) == 0) f.resize(rnd(uint32_t(f.size())));
          stream += f;
          break;
        }
        default: {  // a good frame
          std::string payload(rnd(200), '\0');
          for (char& c : payload) c = static_cast<char>('a' + rnd(26));
          std::string f = encode_frame(static_cast<MsgType>(1 + rnd(8)), payload);
          sent.push_back(f);
          stream += f;
        }
      }
    }
    FrameDecoder d;
    std::vector<Frame> frames;
    for (size_t at = 0; at < stream.size();) {
      size_t n = std::min<size_t>(1 + rnd(40), stream.size() - at);
      d.feed(stream.data() + at, n);
      at += n;
      for (auto& f : drain(d)) frames.push_back(std::move(f));
      ASSERT_LE(d.buffered_bytes(), FrameDecoder::kBufferCap);
    }
    d.finish();
    // Whatever came out passed its CRC, so it is byte-identical to a frame
    // in the stream (a damaged one only if the damage kept it valid).
    for (const Frame& f : frames)
      EXPECT_NE(stream.find(encode_frame(f.type, f.payload)), std::string::npos) << "round " << round;
    // Good frames are lost only where damage or garbage overlaps them.
    EXPECT_LE(frames.size(), sent.size() + size_t(pieces));
  }
}

// --- payloads ---------------------------------------------------------------

namespace {

Frame frame_of(MsgType type, const std::string& payload) { return Frame{type, kProtoVersion, payload}; }

template <typename Msg>
Msg through_wire(const Msg& msg) {
  FrameDecoder d;
  d.feed(encode_message(msg));
  auto frame = d.next();
  EXPECT_TRUE(frame.has_value());
  auto decoded = decode_payload<Msg>(*frame);
  EXPECT_TRUE(decoded.has_value()) << decoded.error().msg;
  return *decoded;
}

}  // namespace

TEST(ProtoPayload, EveryMessageRoundTrips) {
  HelloMsg hello{"0.1.0", "7.3.4+deb13-cloud-amd64", 3210};
  auto h = through_wire(hello);
  EXPECT_EQ(h.kernel_release, hello.kernel_release);
  EXPECT_EQ(h.boot_ms, 3210u);

  JobMsg job;
  job.scenario.cgroups = {{"cg0", 2, WorkKind::Spin, "0-1"}, {"cg1", 3, WorkKind::Mixed, ""}};
  job.scenario.duration_ms = 5000;
  job.verbose = true;
  job.topology = "1n2l2c1t";
  auto j = through_wire(job);
  ASSERT_EQ(j.scenario.cgroups.size(), 2u);
  EXPECT_EQ(j.scenario.cgroups[1].name, "cg1");
  EXPECT_EQ(j.scenario.cgroups[1].workers, 3u);
  EXPECT_EQ(j.scenario.cgroups[1].work, WorkKind::Mixed);
  EXPECT_EQ(j.scenario.cgroups[0].cpus, "0-1");
  EXPECT_EQ(j.scenario.duration_ms, 5000u);
  EXPECT_TRUE(j.verbose);
  EXPECT_EQ(j.topology, "1n2l2c1t");

  TopologyMsg topo{"0-3", 4, {"0-1", "2-3"}, {"0-3"}, {"0", "1", "2", "3"}};
  auto t = through_wire(topo);
  EXPECT_EQ(t.llc_groups, topo.llc_groups);
  EXPECT_EQ(t.smt_groups, topo.smt_groups);
  EXPECT_EQ(t.cpus, 4u);

  WorkerMsg w{"cg0", 1, 42, WorkKind::Yield, 100, 2000, 3000, 4, 5000, {0, 3}};
  auto wd = through_wire(w);
  EXPECT_EQ(nlohmann::json(wd), nlohmann::json(w));

  EXPECT_EQ(through_wire(StageMsg{stage::kWorkersDone, 9}).stage, "workers_done");
  EXPECT_EQ(through_wire(LogMsg{"warn", "x"}).text, "x");
  EXPECT_EQ(through_wire(ErrorMsg{"a", "b"}).detail, "b");
  auto done = through_wire(DoneMsg{false, "boom"});
  EXPECT_FALSE(done.ok);
  EXPECT_EQ(done.error, "boom");
}

TEST(ProtoPayload, OptionalFieldsDefault) {
  auto job = decode_payload<JobMsg>(frame_of(
      MsgType::Job, R"({"version":1,"scenario":{"cgroups":[{"name":"a","workers":1,"work":"spin"}],"duration_ms":10}})"));
  ASSERT_TRUE(job) << job.error().msg;
  EXPECT_FALSE(job->verbose);
  EXPECT_EQ(job->topology, "");
  EXPECT_EQ(job->scenario.cgroups[0].cpus, "");
}

TEST(ProtoPayload, BadPayloadsAreErrorsNotExceptions) {
  auto missing = decode_payload<HelloMsg>(frame_of(MsgType::Hello, R"({"agent_version":"1","kernel_release":"k"})"));
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().msg, "decoding 'hello' payload: key 'boot_ms' not found");

  auto mistyped = decode_payload<HelloMsg>(
      frame_of(MsgType::Hello, R"({"agent_version":1,"kernel_release":"k","boot_ms":1})"));
  ASSERT_FALSE(mistyped);
  EXPECT_NE(mistyped.error().msg.find("decoding 'hello' payload: type must be string"), std::string::npos)
      << mistyped.error().msg;

  auto negative = decode_payload<StageMsg>(frame_of(MsgType::Stage, R"({"stage":"init","t_ms":-1})"));
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().msg.find("'t_ms' must be a non-negative integer"), std::string::npos);

  auto fraction = decode_payload<StageMsg>(frame_of(MsgType::Stage, R"({"stage":"init","t_ms":1.5})"));
  EXPECT_FALSE(fraction);

  auto too_big = decode_payload<WorkerMsg>(frame_of(
      MsgType::Worker,
      R"({"cgroup":"a","index":4294967296,"pid":1,"work":"spin","iterations":0,"cpu_time_ns":0,"wall_ns":0,"migrations":0,"max_gap_ns":0,"cpus_used":[]})"));
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().msg.find("'index' is out of range"), std::string::npos);

  auto work = decode_payload<JobMsg>(frame_of(
      MsgType::Job, R"({"version":1,"scenario":{"cgroups":[{"name":"a","workers":1,"work":"snooze"}],"duration_ms":10}})"));
  ASSERT_FALSE(work);
  EXPECT_NE(work.error().msg.find("unknown work kind 'snooze'"), std::string::npos);

  auto not_json = decode_payload<DoneMsg>(frame_of(MsgType::Done, "{\"ok\":tru"));
  ASSERT_FALSE(not_json);
  EXPECT_EQ(not_json.error().msg, "decoding 'done' payload: not valid JSON");

  auto array = decode_payload<DoneMsg>(frame_of(MsgType::Done, "[true]"));
  ASSERT_FALSE(array);
  EXPECT_EQ(array.error().msg, "decoding 'done' payload: not a JSON object");

  auto wrong_type = decode_payload<DoneMsg>(frame_of(MsgType::Hello, "{}"));
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().msg, "expected a 'done' frame, got 'hello'");
}

TEST(ProtoPayload, InvalidUtf8IsReplacedNotThrown) {
  std::string frame;
  EXPECT_NO_THROW(frame = encode_message(LogMsg{"info", std::string("bad \xff\xfe byte")}));
  FrameDecoder d;
  d.feed(frame);
  auto log = decode_payload<LogMsg>(*d.next());
  ASSERT_TRUE(log) << log.error().msg;
  EXPECT_EQ(log->text.find('\xff'), std::string::npos);
  EXPECT_EQ(log->text.substr(0, 4), "bad ");
}

TEST(ProtoValidateJob, RejectsWhatTheAgentCannotRun) {
  JobMsg job;
  job.scenario.duration_ms = 100;
  job.scenario.cgroups = {{"ok-name_1.x", 2, WorkKind::Spin, ""}};
  EXPECT_TRUE(validate_job(job));

  for (const char* name : {"", ".", "..", "a/b", "a b", "../etc"}) {
    job.scenario.cgroups[0].name = name;
    auto r = validate_job(job);
    ASSERT_FALSE(r) << name;
    EXPECT_EQ(r.error().msg, std::string("invalid cgroup name '") + name + "'");
  }
  job.scenario.cgroups = {{"a", 1, WorkKind::Spin, ""}, {"a", 1, WorkKind::Yield, ""}};
  EXPECT_EQ(validate_job(job).error().msg, "duplicate cgroup 'a'");

  job.scenario.cgroups = {{"a", kMaxWorkersPerJob, WorkKind::Spin, ""}, {"b", 1, WorkKind::Spin, ""}};
  EXPECT_FALSE(validate_job(job));

  job.scenario.cgroups = {{"a", 1, WorkKind::Spin, ""}};
  job.scenario.duration_ms = kMaxDurationMs + 1;
  EXPECT_FALSE(validate_job(job));
  job.scenario.duration_ms = 1;
  job.version = 6;  // 2 repeats (test_agent_repeat), 3 adds work types (test_agent_work), 4 verifies
                    // (test_verifier_job), 5 adds steps and weights (below)
  EXPECT_EQ(validate_job(job).error().msg, "unsupported job version 6");
}

TEST(ProtoSteps, Version5CarriesStepsAndWeightsAndOlderVersionsRefuseThem) {
  JobMsg job;
  job.version = 3;
  job.scenario.duration_ms = 3000;
  job.scenario.cgroups = {{"a", 2, WorkKind::Spin, "0-1"}, {"b", 1, WorkKind::Spin, ""}};
  EXPECT_FALSE(job_needs_steps(job));
  std::string v3 = dump_json(nlohmann::json(job));
  EXPECT_EQ(v3.find("steps"), std::string::npos);  // older jobs read byte for byte the same
  EXPECT_EQ(v3.find("weight"), std::string::npos);

  job.scenario.cgroups[1].weight = 300;
  EXPECT_TRUE(job_needs_steps(job));
  EXPECT_EQ(validate_job(job).error().msg, "a version 3 job cannot carry steps or cgroup weights");
  job.version = kJobVersionSteps;
  job.scenario.steps = {{500, "move_workers", "a", 1, "b", "", -1},
                        {1000, "set_cpus", "a", 0, "", "1", -1},
                        {1500, "cpu_offline", "", 0, "", "", 1},
                        {2000, "remove_workers", "b", 1, "", "", -1}};
  ASSERT_TRUE(validate_job(job)) << validate_job(job).error().msg;
  auto j = nlohmann::json(job);
  EXPECT_EQ(j["scenario"]["steps"][0], nlohmann::json::parse(R"({"after_ms":500,"action":"move_workers","cgroup":"a","count":1,"to":"b"})"));
  EXPECT_EQ(j["scenario"]["steps"][2], nlohmann::json::parse(R"({"after_ms":1500,"action":"cpu_offline","cpu":1})"));
  auto back = std::optional<JobMsg>(through_wire(job));
  ASSERT_EQ(back->scenario.steps.size(), 4u);
  EXPECT_EQ(back->scenario.steps[1].cpus, "1");
  EXPECT_EQ(back->scenario.steps[2].cpu, 1);
  EXPECT_EQ(back->scenario.cgroups[1].weight, 300u);

  auto bad = job;
  bad.scenario.steps[0].to = "a";
  EXPECT_FALSE(validate_job(bad));
  bad = job;
  bad.scenario.steps[1].after_ms = 100;  // out of time order
  EXPECT_FALSE(validate_job(bad));
  bad = job;
  bad.scenario.steps[2].cpu = 0;
  EXPECT_FALSE(validate_job(bad));
  bad = job;
  bad.scenario.steps[3].cgroup = "nope";
  EXPECT_FALSE(validate_job(bad));
  bad = job;
  bad.scenario.cgroups[0].weight = 0;
  EXPECT_FALSE(validate_job(bad));
}

TEST(ProtoSteps, StepWorkerAndMonitorFieldsRoundTrip) {
  StepMsg step;
  step.index = 2;
  step.step = {1500, "cpu_offline", "", 0, "", "", 3};
  step.ok = false;
  step.error = "CPU 3 cannot be hot-plugged";
  step.t_ms = 9000;
  auto s = std::optional<StepMsg>(through_wire(step));
  EXPECT_EQ(s->step.cpu, 3);
  EXPECT_EQ(s->error, step.error);
  EXPECT_FALSE(s->ok);

  WorkerMsg w;
  w.cgroup = "a";
  w.cpus_used = {0, 1};
  auto plain = nlohmann::json(w);
  EXPECT_FALSE(plain.contains("moved_to"));
  EXPECT_FALSE(plain.contains("cpus_since_change"));
  w.moved_to = "b";
  w.cpus_changed = true;
  w.cpus_since_change = {1};
  auto back = std::optional<WorkerMsg>(through_wire(w));
  EXPECT_EQ(back->moved_to, "b");
  EXPECT_TRUE(back->cpus_changed);
  EXPECT_EQ(back->cpus_since_change, (std::vector<uint32_t>{1}));

  MonitorMsg m;
  m.nr_running = {1, 2};
  m.nr_switches = {100, 100};
  auto mb = std::optional<MonitorMsg>(through_wire(m));
  EXPECT_EQ(mb->nr_switches, (std::vector<uint64_t>{100, 100}));
}

// --- sched_ext messages (types 32+) -------------------------------------------

TEST(ProtoSched, NewTypesHaveNamesAndKeepTheirNumbers) {
  EXPECT_EQ(static_cast<uint16_t>(MsgType::SchedStarted), 32);
  EXPECT_EQ(static_cast<uint16_t>(MsgType::Monitor), 38);
  EXPECT_EQ(msg_type_name(MsgType::SchedExited), "sched_exited");
  EXPECT_EQ(msg_type_name(MsgType::MapWriteResult), "map_write_result");
  EXPECT_EQ(msg_type_name(MsgType::KernelLog), "kernel_log");
  EXPECT_TRUE(is_known_msg_type(37));
  EXPECT_EQ(static_cast<uint16_t>(MsgType::ProbeSetup), 39);
  EXPECT_EQ(static_cast<uint16_t>(MsgType::ProbeEvents), 40);
  EXPECT_EQ(msg_type_name(MsgType::ProbeEvents), "probe_events");
  EXPECT_EQ(static_cast<uint16_t>(MsgType::RepeatBegin), 41);
  EXPECT_EQ(static_cast<uint16_t>(MsgType::RepeatEnd), 42);
  EXPECT_EQ(msg_type_name(MsgType::RepeatBegin), "repeat_begin");
  EXPECT_EQ(static_cast<uint16_t>(MsgType::VerifierResult), 43);
  EXPECT_EQ(static_cast<uint16_t>(MsgType::Step), 44);
  EXPECT_EQ(msg_type_name(MsgType::Step), "step");
  EXPECT_EQ(static_cast<uint16_t>(MsgType::File), 45);
  EXPECT_EQ(msg_type_name(MsgType::File), "file");
  EXPECT_FALSE(is_known_msg_type(46));
}

TEST(ProtoSched, JobCarriesSchedulerMapWritesAndMonitorInterval) {
  JobMsg job;
  job.scenario.cgroups = {{"light", 2, WorkKind::Spin, ""}};
  job.scenario.duration_ms = 5000;
  job.scheduler = {"/bin/scx-ktstr", {"--timeout-ms", "5000"}, 12000};
  job.map_writes = {{".bss", "crash", 1, 2000}, {".data", "neg", -7, 0}};
  job.monitor_interval_ms = 100;
  auto j = through_wire(job);
  EXPECT_EQ(j.scheduler.path, "/bin/scx-ktstr");
  EXPECT_EQ(j.scheduler.args, job.scheduler.args);
  EXPECT_EQ(j.scheduler.attach_timeout_ms, 12000u);
  ASSERT_EQ(j.map_writes.size(), 2u);
  EXPECT_EQ(j.map_writes[0].var, "crash");
  EXPECT_EQ(j.map_writes[0].after_ms, 2000u);
  EXPECT_EQ(j.map_writes[1].value, -7);
  EXPECT_EQ(j.monitor_interval_ms, 100u);
  EXPECT_TRUE(validate_job(j));

  // An old host's job (no scheduler keys) means EEVDF with the defaults.
  auto old = decode_payload<JobMsg>(frame_of(
      MsgType::Job, R"({"version":1,"scenario":{"cgroups":[],"duration_ms":10}})"));
  ASSERT_TRUE(old) << old.error().msg;
  EXPECT_EQ(old->scheduler.path, "");
  EXPECT_EQ(old->scheduler.attach_timeout_ms, 30000u);
  EXPECT_EQ(old->monitor_interval_ms, 250u);
  EXPECT_TRUE(old->map_writes.empty());
  EXPECT_TRUE(old->kernel_config.empty());
}

TEST(ProtoSeed, TheSeedIsOnTheWireOnlyWhenSetAndJobsWithoutOneStayByteForByte) {
  JobMsg job;
  job.scenario.cgroups = {{"light", 2, WorkKind::Spin, ""}};
  job.scenario.duration_ms = 5000;
  job.scheduler = {"/bin/scx-ktstr", {"--timeout-ms", "5000"}, 12000};
  // A job without a seed encodes exactly as before seeds existed (with the
  // `kind` every JOB carries since: test_job_kind.cpp).
  const std::string before =
      R"({"kind":"run","map_writes":[],"monitor_interval_ms":250,"scenario":{"cgroups":[{"cpus":"","name":"light",)"
      R"("work":"spin","workers":2}],"duration_ms":5000},"scheduler":{"args":["--timeout-ms","5000"],"attach_timeout_ms":12000,)"
      R"("path":"/bin/scx-ktstr"},"topology":"","verbose":false,"version":1})";
  EXPECT_EQ(dump_json(nlohmann::json(job)), before);
  EXPECT_EQ(encode_message(job), encode_frame(MsgType::Job, before));
  EXPECT_FALSE(through_wire(job).seed.has_value());
  // Every value of 64 bits survives, 0 included (set, not absent).
  for (uint64_t seed : {uint64_t{0}, uint64_t{1}, uint64_t{0x8000000000000000ull}, ~uint64_t{0}}) {
    job.seed = seed;
    auto j = nlohmann::json(job);
    EXPECT_EQ(j["seed"], seed);
    auto back = through_wire(job);
    ASSERT_TRUE(back.seed.has_value());
    EXPECT_EQ(*back.seed, seed);
    EXPECT_TRUE(validate_job(back));
  }
  // The seed goes with any scheduler job version, repeats included.
  job.version = 2;
  job.repeat = 3;
  EXPECT_TRUE(validate_job(job));
  EXPECT_EQ(through_wire(job).seed, job.seed);
  // Only an unsigned integer is a seed.
  for (const char* bad : {R"("seed":-1)", R"("seed":"7")", R"("seed":1.5)", R"("seed":18446744073709551616)"}) {
    auto decoded = decode_payload<JobMsg>(frame_of(
        MsgType::Job, std::string(R"({"version":1,"scenario":{"cgroups":[],"duration_ms":10},)") + bad + "}"));
    EXPECT_FALSE(decoded) << bad;
  }
  // A verifier job loads objects and runs no scheduler: nothing to seed.
  JobMsg verifier;
  verifier.kind = JobKind::kVerifier;
  verifier.version = kJobVersionVerifier;
  verifier.verifier = VerifierPlan{{"/bpf/a.bpf.o"}};
  EXPECT_TRUE(validate_job(verifier));
  verifier.seed = 5;
  EXPECT_EQ(validate_job(verifier).error().msg, "a verifier job runs no scheduler to seed");
}

TEST(ProtoSched, JobCarriesTheKernelConfigWithinItsLimit) {
  JobMsg job;
  job.scenario.duration_ms = 100;
  job.scheduler.path = "/sched/scx_hz";
  job.kernel_config = "CONFIG_HZ=250\nCONFIG_SCHED_CLASS_EXT=y\n";
  auto j = through_wire(job);
  EXPECT_EQ(j.kernel_config, job.kernel_config);
  EXPECT_TRUE(validate_job(j));
  // A config as big as the limit still fits in one frame with the rest.
  job.kernel_config.assign(kMaxKernelConfigBytes, 'y');
  EXPECT_TRUE(validate_job(job));
  EXPECT_EQ(through_wire(job).kernel_config.size(), kMaxKernelConfigBytes);
  job.kernel_config.push_back('y');
  EXPECT_FALSE(validate_job(job));
}

TEST(ProtoSched, ValidateJobRejectsBadSchedulerPlans) {
  JobMsg job;
  job.scenario.duration_ms = 100;
  job.map_writes = {{".bss", "crash", 1, 0}};
  auto no_sched = validate_job(job);
  ASSERT_FALSE(no_sched);
  EXPECT_EQ(no_sched.error().msg, "job has map writes but no scheduler");
  job.scheduler.path = "scx-ktstr";
  auto relative = validate_job(job);
  ASSERT_FALSE(relative);
  EXPECT_EQ(relative.error().msg, "scheduler path 'scx-ktstr' is not absolute");
  job.scheduler.path = "/bin/scx-ktstr";
  EXPECT_TRUE(validate_job(job));
  job.map_writes.assign(kMaxMapWrites + 1, MapWritePlan{".bss", "crash", 1, 0});
  EXPECT_FALSE(validate_job(job));
  job.map_writes = {{".bss", "", 1, 0}};
  EXPECT_FALSE(validate_job(job));
  job.map_writes.clear();
  job.monitor_interval_ms = 1;
  EXPECT_FALSE(validate_job(job));
}

TEST(ProtoSched, EveryMessageRoundTrips) {
  auto started = through_wire(SchedStartedMsg{123, 4567});
  EXPECT_EQ(started.pid, 123);
  EXPECT_EQ(started.t_ms, 4567u);

  auto state = through_wire(SchedStateMsg{"enabled", "ktstr", 10});
  EXPECT_EQ(state.state, "enabled");
  EXPECT_EQ(state.ops, "ktstr");

  auto out = through_wire(SchedOutputMsg{"stderr", "DEBUG DUMP\n====\n", true, 11});
  EXPECT_EQ(out.stream, "stderr");
  EXPECT_EQ(out.text, "DEBUG DUMP\n====\n");
  EXPECT_TRUE(out.truncated);

  auto killed = through_wire(SchedExitedMsg{123, -1, 9, true, 12});
  EXPECT_EQ(killed.exit_code, -1);
  EXPECT_EQ(killed.signal, 9);
  EXPECT_TRUE(killed.stopped_by_agent);

  MapWriteResultMsg w{".bss", "crash", -1, false, "", "no map ends with '.bss'", "is it loaded?", 13};
  EXPECT_EQ(nlohmann::json(through_wire(w)), nlohmann::json(w));

  auto log = through_wire(KernelLogMsg{"trace", "a\nb", false, 14});
  EXPECT_EQ(log.source, "trace");
  EXPECT_EQ(log.text, "a\nb");

  MonitorMsg m;
  m.t_ms = 15;
  m.nr_running = {1, 0, 2, 4};
  m.events = {{"SCX_EV_SELECT_CPU_FALLBACK", 3}, {"SCX_EV_BYPASS_DURATION", 0}};
  m.dsq_depth = -1;
  m.sched_state = "enabled";
  EXPECT_EQ(nlohmann::json(through_wire(m)), nlohmann::json(m));
}

TEST(ProtoSched, BadPayloadsAreErrors) {
  auto stream = decode_payload<SchedOutputMsg>(
      frame_of(MsgType::SchedOutput, R"({"stream":"stdin","text":"x","t_ms":1})"));
  ASSERT_FALSE(stream);
  EXPECT_NE(stream.error().msg.find("unknown stream 'stdin'"), std::string::npos);

  auto source = decode_payload<KernelLogMsg>(
      frame_of(MsgType::KernelLog, R"({"source":"console","text":"x","t_ms":1})"));
  ASSERT_FALSE(source);
  EXPECT_NE(source.error().msg.find("unknown kernel log source 'console'"), std::string::npos);

  auto pid = decode_payload<SchedExitedMsg>(
      frame_of(MsgType::SchedExited, R"({"pid":4294967296,"exit_code":0,"signal":0,"t_ms":1})"));
  ASSERT_FALSE(pid);
  EXPECT_NE(pid.error().msg.find("'pid' is out of range"), std::string::npos);

  auto code = decode_payload<SchedExitedMsg>(
      frame_of(MsgType::SchedExited, R"({"pid":1,"exit_code":"1","signal":0,"t_ms":1})"));
  ASSERT_FALSE(code);
  EXPECT_NE(code.error().msg.find("'exit_code' must be an integer"), std::string::npos);

  auto counts = decode_payload<MonitorMsg>(frame_of(
      MsgType::Monitor, R"({"t_ms":1,"nr_running":[-1],"events":{},"dsq_depth":-1,"sched_state":""})"));
  ASSERT_FALSE(counts);
  EXPECT_NE(counts.error().msg.find("'nr_running' must hold counts"), std::string::npos);

  auto events = decode_payload<MonitorMsg>(frame_of(
      MsgType::Monitor, R"({"t_ms":1,"nr_running":[],"events":{"X":"many"},"dsq_depth":-1})"));
  ASSERT_FALSE(events);
  EXPECT_NE(events.error().msg.find("event 'X' must be an integer"), std::string::npos);

  auto value = decode_payload<MapWriteResultMsg>(frame_of(
      MsgType::MapWriteResult, R"({"map":".bss","var":"crash","value":1.5,"ok":true,"t_ms":1})"));
  EXPECT_FALSE(value);

  auto wrong = decode_payload<SchedStateMsg>(frame_of(MsgType::SchedStarted, R"({"pid":1,"t_ms":1})"));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().msg, "expected a 'sched_state' frame, got 'sched_started'");
}
