// The JOB's `kind` next to its `version` (guest/proto/messages.hpp): a JOB
// from an older host (versions 1-5, no `kind`) reads as the kind its version
// meant, with every field; a JOB from this host carries its kind and round
// trips; a version an older agent would read as another kind is refused.
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

namespace ktstr {
namespace {

using namespace ktstr::proto;

// What the agent does with a JOB frame's payload (Agent::receive_job, then
// Agent::run's check): decode, then validate.
JobMsg agent_reads(const std::string& payload) {
  auto job = decode_payload<JobMsg>(Frame{MsgType::Job, kProtoVersion, payload});
  EXPECT_TRUE(job) << job.error().msg << "\n" << payload;
  if (!job) return JobMsg{};
  auto valid = validate_job(*job);
  EXPECT_TRUE(valid) << valid.error().msg << "\n" << payload;
  return *job;
}

JobMsg through_wire(const JobMsg& job) {
  FrameDecoder d;
  d.feed(encode_message(job));
  auto f = d.next();
  EXPECT_TRUE(f);
  auto back = decode_payload<JobMsg>(f ? *f : Frame{});
  EXPECT_TRUE(back) << back.error().msg;
  return back ? *back : JobMsg{};
}

// The JOBs older hosts sent, as they sent them: no `kind`.
constexpr const char* kOldV1 =
    R"({"version":1,"scenario":{"cgroups":[{"name":"a","workers":2,"work":"spin","cpus":"0-1"}],"duration_ms":1000},)"
    R"("verbose":false,"topology":"1n1l2c1t","scheduler":{"path":"/bin/scx-ktstr","args":["--slice-us","500"],)"
    R"("attach_timeout_ms":30000},"map_writes":[{"map":".bss","var":"crash","value":1,"after_ms":500}],)"
    R"("monitor_interval_ms":250,"kernel_config":"CONFIG_HZ=250\n","seed":7})";
constexpr const char* kOldV2 =
    R"({"version":2,"repeat":4,"settle_ms":3000,"scenario":{"cgroups":[{"name":"a","workers":1,"work":"yield",)"
    R"("cpus":""}],"duration_ms":500},"verbose":false,"topology":"","scheduler":{"path":"","args":[],)"
    R"("attach_timeout_ms":30000},"map_writes":[],"monitor_interval_ms":250})";
constexpr const char* kOldV3 =
    R"({"version":3,"repeat":1,"settle_ms":5000,"scenario":{"cgroups":[{"name":"s","workers":1,"work":"sleep",)"
    R"("cpus":"","rate_hz":100,"nice":5,"policy":"batch"}],"duration_ms":500},"verbose":true,"topology":"",)"
    R"("scheduler":{"path":"","args":[],"attach_timeout_ms":30000},"map_writes":[],"monitor_interval_ms":100})";
constexpr const char* kOldV4 =
    R"({"version":4,"scenario":{"cgroups":[],"duration_ms":0},"verbose":false,"topology":"1n1l2c1t",)"
    R"("scheduler":{"path":"","args":[],"attach_timeout_ms":30000},"map_writes":[],"monitor_interval_ms":250,)"
    R"("verifier":{"objects":["/verifier/a0.bpf.o","/verifier/b0.bpf.o"]},"kernel_config":"CONFIG_BPF=y\n"})";
constexpr const char* kOldV5 =
    R"({"version":5,"repeat":3,"settle_ms":5000,"scenario":{"cgroups":[{"name":"a","workers":2,"work":"spin",)"
    R"("cpus":"0-1","weight":300},{"name":"b","workers":1,"work":"spin","cpus":""}],"duration_ms":3000,)"
    R"("steps":[{"after_ms":500,"action":"move_workers","cgroup":"a","count":1,"to":"b"}]},"verbose":false,)"
    R"("topology":"","scheduler":{"path":"/bin/scx-ktstr","args":[],"attach_timeout_ms":30000},)"
    R"("map_writes":[],"monitor_interval_ms":250,"seed":42})";

TEST(JobKind, OldVersion1IsOneRun) {
  JobMsg job = agent_reads(kOldV1);
  EXPECT_EQ(job.kind, JobKind::kRun);
  EXPECT_EQ(job.version, 1u);
  EXPECT_FALSE(is_repeat_job(job));
  EXPECT_EQ(job.repeat, 1u);
  ASSERT_EQ(job.scenario.cgroups.size(), 1u);
  EXPECT_EQ(job.scenario.cgroups[0].cpus, "0-1");
  EXPECT_EQ(job.scenario.duration_ms, 1000u);
  EXPECT_EQ(job.scheduler.path, "/bin/scx-ktstr");
  EXPECT_EQ(job.scheduler.args, (std::vector<std::string>{"--slice-us", "500"}));
  ASSERT_EQ(job.map_writes.size(), 1u);
  EXPECT_EQ(job.map_writes[0].var, "crash");
  EXPECT_EQ(job.kernel_config, "CONFIG_HZ=250\n");
  EXPECT_EQ(job.seed, 7u);
  EXPECT_FALSE(job.verifier);
  EXPECT_FALSE(job.probes);
}

TEST(JobKind, OldVersion2IsARepeatedRun) {
  JobMsg job = agent_reads(kOldV2);
  EXPECT_EQ(job.kind, JobKind::kRun);
  EXPECT_EQ(job.version, 2u);
  EXPECT_TRUE(is_repeat_job(job));
  EXPECT_EQ(job.repeat, 4u);
  EXPECT_EQ(job.settle_ms, 3000u);
  ASSERT_EQ(job.scenario.cgroups.size(), 1u);
  EXPECT_EQ(job.scenario.cgroups[0].work, WorkKind::Yield);
  EXPECT_TRUE(job.scheduler.path.empty());
}

TEST(JobKind, OldVersion3IsARunWithWorkTypes) {
  JobMsg job = agent_reads(kOldV3);
  EXPECT_EQ(job.kind, JobKind::kRun);
  EXPECT_EQ(job.version, 3u);
  EXPECT_FALSE(is_repeat_job(job));  // repeat 1
  ASSERT_EQ(job.scenario.cgroups.size(), 1u);
  const CgroupPlan& cg = job.scenario.cgroups[0];
  EXPECT_EQ(cg.work, WorkKind::Sleep);
  EXPECT_EQ(cg.rate_hz, 100u);
  EXPECT_EQ(cg.nice, 5);
  EXPECT_EQ(cg.policy, "batch");
  EXPECT_TRUE(job.verbose);
  EXPECT_EQ(job.monitor_interval_ms, 100u);
}

TEST(JobKind, OldVersion4IsAVerifierJob) {
  JobMsg job = agent_reads(kOldV4);
  EXPECT_EQ(job.kind, JobKind::kVerifier);
  EXPECT_EQ(job.version, 4u);
  EXPECT_FALSE(is_repeat_job(job));
  ASSERT_TRUE(job.verifier);
  EXPECT_EQ(job.verifier->objects, (std::vector<std::string>{"/verifier/a0.bpf.o", "/verifier/b0.bpf.o"}));
  EXPECT_EQ(job.kernel_config, "CONFIG_BPF=y\n");
  EXPECT_TRUE(job.scenario.cgroups.empty());
  EXPECT_FALSE(job.seed);
}

TEST(JobKind, OldVersion5IsARunWithSteps) {
  JobMsg job = agent_reads(kOldV5);
  EXPECT_EQ(job.kind, JobKind::kRun);
  EXPECT_EQ(job.version, 5u);
  EXPECT_TRUE(is_repeat_job(job));  // repeat 3
  EXPECT_EQ(job.repeat, 3u);
  ASSERT_EQ(job.scenario.cgroups.size(), 2u);
  EXPECT_EQ(job.scenario.cgroups[0].weight, 300u);
  EXPECT_EQ(job.scenario.cgroups[1].weight, 100u);
  ASSERT_EQ(job.scenario.steps.size(), 1u);
  EXPECT_EQ(job.scenario.steps[0].action, "move_workers");
  EXPECT_EQ(job.scenario.steps[0].to, "b");
  EXPECT_EQ(job.seed, 42u);
}

TEST(JobKind, AProbeReplayIsARun) {
  JobMsg job = agent_reads(
      R"({"version":1,"scenario":{"cgroups":[],"duration_ms":100},"scheduler":{"path":"/bin/scx-ktstr"},)"
      R"("probes":{"kernel_functions":[{"name":"scx_exit","args":["exit_info"]}]}})");
  EXPECT_EQ(job.kind, JobKind::kRun);
  ASSERT_TRUE(job.probes);
  EXPECT_EQ(job.probes->kernel_functions[0].name, "scx_exit");
}

// Every JOB this host sends: each kind with the version it goes with.
std::vector<JobMsg> new_jobs() {
  std::vector<JobMsg> jobs;
  JobMsg run;
  run.scenario.duration_ms = 100;
  run.scenario.cgroups = {{"a", 1, WorkKind::Spin, ""}};
  jobs.push_back(run);
  JobMsg repeat = run;
  repeat.version = 2;
  repeat.repeat = 3;
  jobs.push_back(repeat);
  JobMsg work_types = run;
  work_types.version = kJobVersionWorkTypes;
  work_types.scenario.cgroups[0].work = WorkKind::Fork;
  jobs.push_back(work_types);
  JobMsg verifier;
  verifier.kind = JobKind::kVerifier;
  verifier.version = kJobVersionVerifier;
  verifier.verifier = VerifierPlan{{"/verifier/a0.bpf.o"}};
  jobs.push_back(verifier);
  JobMsg steps = run;
  steps.version = kJobVersionSteps;
  steps.scenario.cgroups[0].weight = 50;
  jobs.push_back(steps);
  return jobs;
}

TEST(JobKind, NewJobsCarryTheirKindAndRoundTrip) {
  for (const JobMsg& job : new_jobs()) {
    ASSERT_TRUE(validate_job(job)) << validate_job(job).error().msg;
    nlohmann::json j = job;
    EXPECT_EQ(j.at("kind"), job_kind_name(job.kind)) << j.dump();
    EXPECT_EQ(j.at("version"), job.version);
    JobMsg back = through_wire(job);
    EXPECT_EQ(back.kind, job.kind) << j.dump();
    EXPECT_EQ(back.version, job.version);
    EXPECT_EQ(back.repeat, job.repeat);
    EXPECT_EQ(back.verifier.has_value(), job.verifier.has_value());
    EXPECT_EQ(is_repeat_job(back), is_repeat_job(job));
    EXPECT_EQ(dump_json(nlohmann::json(back)), dump_json(j));
  }
  EXPECT_EQ(std::string(job_kind_name(JobKind::kRun)), "run");
  EXPECT_EQ(std::string(job_kind_name(JobKind::kVerifier)), "verifier");
}

// An older agent ignores `kind` and goes by the version: read without it, a
// new JOB means what it means with it.
TEST(JobKind, WithoutItsKindANewJobReadsTheSame) {
  for (const JobMsg& job : new_jobs()) {
    nlohmann::json j = job;
    j.erase("kind");
    JobMsg old_reading = agent_reads(j.dump());
    EXPECT_EQ(old_reading.kind, job.kind) << j.dump();
    EXPECT_EQ(is_repeat_job(old_reading), is_repeat_job(job)) << j.dump();
  }
}

TEST(JobKind, AKindItsVersionDoesNotMeanIsRefused) {
  JobMsg verifier_as_run;
  verifier_as_run.kind = JobKind::kVerifier;  // version 1: an older agent would run workers
  verifier_as_run.verifier = VerifierPlan{{"/verifier/a0.bpf.o"}};
  auto refused = validate_job(verifier_as_run);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().msg, "a 'verifier' job cannot be version 1");

  JobMsg run_as_verifier;
  run_as_verifier.version = kJobVersionVerifier;  // an older agent would verify
  run_as_verifier.verifier = VerifierPlan{{"/verifier/a0.bpf.o"}};
  EXPECT_EQ(validate_job(run_as_verifier).error().msg, "a 'run' job cannot be version 4");

  JobMsg no_plan;
  no_plan.kind = JobKind::kVerifier;
  no_plan.version = kJobVersionVerifier;
  EXPECT_EQ(validate_job(no_plan).error().msg, "a verifier job needs a verifier plan");
}

TEST(JobKind, AnUnknownOrMistypedKindIsAnError) {
  auto decode = [](const std::string& kind) {
    return decode_payload<JobMsg>(Frame{MsgType::Job, kProtoVersion,
                                        R"({"kind":)" + kind + R"(,"version":1,"scenario":{"cgroups":[],"duration_ms":10}})"});
  };
  auto replay = decode(R"("replay")");
  ASSERT_FALSE(replay);
  EXPECT_EQ(replay.error().msg, "decoding 'job' payload: unknown job kind 'replay'");
  EXPECT_FALSE(decode("1"));
  EXPECT_FALSE(decode("null"));
  ASSERT_TRUE(decode(R"("run")"));
  EXPECT_EQ(decode(R"("run")")->kind, JobKind::kRun);
}

}  // namespace
}  // namespace ktstr
