// Repeat jobs (JOB version 2) in the agent and on the wire: the job's
// repeat fields, the REPEAT_BEGIN/REPEAT_END payloads, settling back to
// "disabled" (with a fake state and clock, so a stuck state is seen without
// waiting), and removing a repetition's cgroups.
#include "guest/agent/repeat.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace ktstr::agent;
using namespace ktstr::proto;

namespace {

Frame frame_of(const std::string& encoded) {
  FrameDecoder d;
  d.feed(encoded.data(), encoded.size());
  auto f = d.next();
  EXPECT_TRUE(f.has_value());
  return f ? *f : Frame{};
}

TEST(AgentRepeatProto, AVersion2JobCarriesItsRepeatAndVersion1StaysAsItWas) {
  JobMsg job;
  job.scenario.duration_ms = 1000;
  auto one = decode_payload<JobMsg>(frame_of(encode_message(job)));
  ASSERT_TRUE(one) << one.error().msg;
  EXPECT_EQ(one->version, 1u);
  EXPECT_EQ(one->repeat, 1u);
  EXPECT_EQ(nlohmann::json::parse(frame_of(encode_message(job)).payload).count("repeat"), 0u);

  job.version = 2;
  job.repeat = 10;
  job.settle_ms = 1234;
  auto two = decode_payload<JobMsg>(frame_of(encode_message(job)));
  ASSERT_TRUE(two) << two.error().msg;
  EXPECT_EQ(two->version, 2u);
  EXPECT_EQ(two->repeat, 10u);
  EXPECT_EQ(two->settle_ms, 1234u);
  EXPECT_TRUE(validate_job(*two));
}

TEST(AgentRepeatProto, ValidationBoundsTheRepeat) {
  JobMsg job;
  job.repeat = 3;
  EXPECT_FALSE(validate_job(job));  // version 1 cannot repeat
  job.version = 2;
  EXPECT_TRUE(validate_job(job));
  job.repeat = 0;
  EXPECT_FALSE(validate_job(job));
  job.repeat = kMaxRepeat + 1;
  EXPECT_FALSE(validate_job(job));
  job.repeat = 2;
  job.settle_ms = kMaxSettleMs + 1;
  EXPECT_FALSE(validate_job(job));
  job.version = 5;  // 3 adds work types (test_agent_work), 4 verifies (test_verifier_job), 5 steps
  job.settle_ms = 10;
  EXPECT_TRUE(validate_job(job));  // a version 5 job repeats like version 3
  EXPECT_TRUE(is_repeat_job(job));
  job.version = 6;  // unknown
  EXPECT_FALSE(validate_job(job));
}

TEST(AgentRepeatProto, RepeatFramesRoundTripAndRejectMissingFields) {
  auto begin = decode_payload<RepeatBeginMsg>(frame_of(encode_message(RepeatBeginMsg{4, 777})));
  ASSERT_TRUE(begin);
  EXPECT_EQ(begin->index, 4u);
  EXPECT_EQ(begin->t_ms, 777u);
  RepeatEndMsg end{4, false, "creating cgroup: EBUSY", "enabled", false, 900};
  auto back = decode_payload<RepeatEndMsg>(frame_of(encode_message(end)));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->index, 4u);
  EXPECT_FALSE(back->ok);
  EXPECT_EQ(back->error, "creating cgroup: EBUSY");
  EXPECT_EQ(back->sched_state, "enabled");
  EXPECT_FALSE(back->next);
  EXPECT_EQ(msg_type_name(MsgType::RepeatEnd), "repeat_end");
  EXPECT_FALSE(decode_payload<RepeatEndMsg>(frame_of(encode_frame(MsgType::RepeatEnd, R"({"index":1})"))));
  EXPECT_FALSE(decode_payload<RepeatBeginMsg>(frame_of(encode_frame(MsgType::RepeatBegin, R"({"index":-1,"t_ms":0})"))));
}

// A clock that advances only when the agent sleeps.
struct FakeClock {
  uint64_t now = 1000;
  unsigned sleeps = 0;
  SettleClock clock() {
    return SettleClock{[this] { return now; }, [this](unsigned ms) {
                         now += ms;
                         ++sleeps;
                       }};
  }
};

TEST(AgentRepeatSettle, DisabledAfterAFewPollsSettles) {
  FakeClock fc;
  std::vector<std::string> states = {"enabled", "disabling", "disabling", "disabled"};
  size_t at = 0;
  auto out = wait_sched_disabled([&] { return std::optional<std::string>(states[std::min(at++, states.size() - 1)]); },
                                 5000, fc.clock());
  EXPECT_TRUE(out.settled);
  EXPECT_EQ(out.state, "disabled");
  EXPECT_EQ(fc.sleeps, 3u);
}

TEST(AgentRepeatSettle, AStuckStateGivesUpAtTheBound) {
  FakeClock fc;
  auto out = wait_sched_disabled([] { return std::optional<std::string>("disabling"); }, 5000, fc.clock());
  EXPECT_FALSE(out.settled);
  EXPECT_EQ(out.state, "disabling");
  EXPECT_GE(fc.now, 1000u + 5000u);
  EXPECT_LE(fc.now, 1000u + 5000u + 10u);
}

TEST(AgentRepeatSettle, NoSchedExtIsSettled) {
  FakeClock fc;
  auto out = wait_sched_disabled([] { return std::optional<std::string>(); }, 5000, fc.clock());
  EXPECT_TRUE(out.settled);
  EXPECT_EQ(out.state, "");
  EXPECT_EQ(fc.sleeps, 0u);
}

TEST(AgentRepeatCgroups, RemovesTheJobsDirectoriesAndSaysWhatStayed) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("ktstr-repeat-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "a");
  fs::create_directories(root / "b" / "busy");  // not empty: rmdir fails, like a cgroup with tasks
  JobMsg job;
  job.scenario.cgroups = {CgroupPlan{"a", 1, WorkKind::Spin, ""}, CgroupPlan{"b", 1, WorkKind::Spin, ""},
                          CgroupPlan{"gone", 1, WorkKind::Spin, ""}};
  auto problems = remove_job_cgroups(root.string(), job);
  EXPECT_FALSE(fs::exists(root / "a"));
  ASSERT_EQ(problems.size(), 2u);  // b, and root (b is still in it); "gone" never existed
  EXPECT_NE(problems[0].find("/b'"), std::string::npos) << problems[0];
  fs::remove_all(root);
}

}  // namespace

namespace {

TEST(AgentProbeTiming, SetupTimingRoundTripsAndIsOptional) {
  ProbeSetupMsg setup;
  setup.timing_ms = {{"filter_scan", 1200}, {"kprobes", 30}};
  auto back = decode_payload<ProbeSetupMsg>(frame_of(encode_message(setup)));
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(back->timing_ms.at("filter_scan"), 1200u);
  ProbeSetupMsg none;
  EXPECT_EQ(nlohmann::json(none).count("timing_ms"), 0u);
  auto bad = nlohmann::json(setup);
  bad["timing_ms"]["kprobes"] = -1;
  EXPECT_FALSE(decode_payload<ProbeSetupMsg>(frame_of(encode_frame(MsgType::ProbeSetup, bad.dump()))));
}

}  // namespace
