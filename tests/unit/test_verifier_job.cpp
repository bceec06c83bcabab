// The verifier job's wire side: JOB version 4 and VERIFIER_RESULT payloads
// (guest/proto/verifier_messages.cpp) and the agent's log trimming
// (guest/agent/verifier_job.*). The load itself runs in the VM test.
#include "guest/agent/verifier_job.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

namespace ktstr {
namespace {

using namespace ktstr::proto;

Frame frame_of(const std::string& bytes) {
  FrameDecoder d;
  d.feed(bytes);
  auto f = d.next();
  EXPECT_TRUE(f);
  return f ? *f : Frame{};
}

JobMsg verifier_job() {
  JobMsg job;
  job.kind = JobKind::kVerifier;
  job.version = proto::kJobVersionVerifier;
  job.verifier = VerifierPlan{{"/verifier/a0.bpf.o", "/verifier/b0.bpf.o"}};
  return job;
}

TEST(VerifierJob, JobRoundTripAndValidation) {
  JobMsg job = verifier_job();
  EXPECT_TRUE(validate_job(job));
  auto back = decode_payload<JobMsg>(frame_of(encode_message(job)));
  ASSERT_TRUE(back) << back.error().msg;
  ASSERT_TRUE(back->verifier);
  EXPECT_EQ(back->version, 4u);
  EXPECT_EQ(back->verifier->objects, job.verifier->objects);

  JobMsg no_plan = job;
  no_plan.verifier.reset();
  EXPECT_FALSE(validate_job(no_plan));
  JobMsg old_version = job;
  old_version.version = 1;
  EXPECT_FALSE(validate_job(old_version));
  JobMsg with_sched = job;
  with_sched.scheduler.path = "/bin/scx-ktstr";
  EXPECT_FALSE(validate_job(with_sched));
  JobMsg relative = job;
  relative.verifier->objects = {"a.bpf.o"};
  EXPECT_FALSE(validate_job(relative));
  JobMsg empty = job;
  empty.verifier->objects.clear();
  EXPECT_FALSE(validate_job(empty));
  JobMsg too_many = job;
  too_many.verifier->objects.assign(kMaxVerifierObjects + 1, "/v.bpf.o");
  EXPECT_FALSE(validate_job(too_many));
  JobMsg work_types = job;  // version 3 carries work types, not a verifier plan
  work_types.version = kJobVersionWorkTypes;
  EXPECT_FALSE(validate_job(work_types));
  JobMsg v5 = job;
  v5.version = 5;
  EXPECT_FALSE(validate_job(v5));
  JobMsg repeated = job;
  repeated.repeat = 2;
  EXPECT_FALSE(validate_job(repeated));
  // Version 1 and 2 jobs are unchanged.
  EXPECT_TRUE(validate_job(JobMsg{}));
}

TEST(VerifierJob, ResultRoundTrip) {
  VerifierResultMsg m;
  m.object = 1;
  m.path = "/verifier/b0.bpf.o";
  m.opened = true;
  m.loaded = false;
  m.error = "loading '/verifier/b0.bpf.o': Permission denied";
  VerifierProgramMsg p;
  p.name = "ktstr_enqueue";
  p.section = "struct_ops/ktstr_enqueue";
  p.type = "struct_ops";
  p.attach = "enqueue";
  p.loaded = true;
  p.log = "processed 85 insns (limit 1000000) max_states_per_insn 0 total_states 6 peak_states 6 mark_read 3\n";
  p.verified_insns = 85;
  p.xlated_bytes = 1024;
  m.programs = {p, VerifierProgramMsg{}};
  m.programs[1].name = "ktstr_dispatch";
  m.programs[1].error = "BPF program load failed: Permission denied";
  auto back = decode_payload<VerifierResultMsg>(frame_of(encode_message(m)));
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(back->object, 1u);
  ASSERT_EQ(back->programs.size(), 2u);
  EXPECT_EQ(back->programs[0].verified_insns, 85u);
  EXPECT_EQ(back->programs[0].xlated_bytes, 1024u);
  EXPECT_FALSE(back->programs[0].jited_bytes);
  EXPECT_EQ(back->programs[0].attach, "enqueue");
  EXPECT_EQ(back->programs[1].error, m.programs[1].error);
  EXPECT_EQ(msg_type_name(MsgType::VerifierResult), "verifier_result");
  EXPECT_EQ(static_cast<uint16_t>(MsgType::VerifierResult), 43);
}

TEST(VerifierJob, BadResultsAreErrors) {
  auto bad = [](const char* json) {
    return decode_payload<VerifierResultMsg>(frame_of(encode_frame(MsgType::VerifierResult, json)));
  };
  EXPECT_FALSE(bad(R"({"object":0})"));
  EXPECT_FALSE(bad(R"({"object":-1,"opened":true,"loaded":true,"programs":[]})"));
  EXPECT_FALSE(bad(R"({"object":0,"opened":true,"loaded":true,"programs":[{"name":"x","loaded":true,"verified_insns":-5}]})"));
  EXPECT_TRUE(bad(R"({"object":0,"opened":true,"loaded":true,"programs":[{"name":"x","loaded":true}]})"));
}

TEST(VerifierJob, LogTailCutsAtALine) {
  EXPECT_EQ(agent::log_tail("short", 100), "short");
  std::string log = std::string(50, 'a') + "\nline two\nprocessed 5 insns\n";
  std::string tail = agent::log_tail(log, 25);
  EXPECT_EQ(tail, "processed 5 insns\n");
}

TEST(VerifierJob, PayloadFitsInOneFrame) {
  VerifierResultMsg m;
  m.libbpf_log = std::string(kMaxVerifierLogBytes, 'l');
  for (int i = 0; i < 200; ++i) {
    VerifierProgramMsg p;
    p.name = "p" + std::to_string(i);
    p.log = std::string(kMaxVerifierLogBytes - 100, 'x') + "\nprocessed 5 insns (limit 1000000) total_states 1\n";
    m.programs.push_back(p);
  }
  agent::fit_payload(m);
  EXPECT_LT(dump_json(nlohmann::json(m)).size(), kMaxPayload);
  // The summary at the end survives.
  EXPECT_NE(m.programs[0].log.find("processed 5 insns"), std::string::npos);
  EXPECT_TRUE(decode_payload<VerifierResultMsg>(frame_of(encode_message(m))));
}

}  // namespace
}  // namespace ktstr
