// guest/agent/work: every work kind really does its behaviour in this
// process and counts it; the latency histogram's percentile arithmetic; the
// scheduling settings; and the wire form of the new plan fields and counters.
#include "guest/agent/work.hpp"
#include "guest/proto/messages.hpp"

#include <gtest/gtest.h>

#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ktstr::agent;
using namespace ktstr::proto;

namespace {

CgroupPlan plan_of(WorkKind kind) {
  CgroupPlan p;
  p.name = "w";
  p.work = kind;
  if (kind == WorkKind::Sleep) p.rate_hz = 1000;
  if (kind == WorkKind::Periodic) p.period_us = 10000, p.runtime_us = 1000;
  if (kind == WorkKind::Affinity) p.interval_us = 1000;
  return p;
}

uint64_t counter(const WorkStats& s, Counter c) {
  EXPECT_TRUE(s.has(c)) << counter_name(c);
  return s.counters[c];
}

}  // namespace

TEST(AgentWork, EveryKindMeasuresItself) {
  for (WorkKind kind : {WorkKind::Spin, WorkKind::Yield, WorkKind::Mixed, WorkKind::Sleep, WorkKind::Futex,
                        WorkKind::Pipe, WorkKind::Fork, WorkKind::Fault, WorkKind::Periodic, WorkKind::Affinity}) {
    SCOPED_TRACE(work_kind_name(kind));
    WorkStats s = run_work(plan_of(kind), 60);
    EXPECT_GE(s.iterations, 1u);
    EXPECT_GT(s.wall_ns, 0u);
    EXPECT_LE(s.wall_ns, 5'000'000'000u);
    EXPECT_LE(s.max_gap_ns, s.wall_ns);
    EXPECT_LE(s.migrations, s.iterations);
    EXPECT_GE(s.cpus_used.count(), 1u);
    if (kind <= WorkKind::Mixed) {
      EXPECT_GE(s.wall_ns, 60'000'000u);
      EXPECT_GT(s.cpu_time_ns, 0u);
      EXPECT_EQ(s.counters_set, 0u);
      EXPECT_LE(s.cpus_used.count(), s.migrations + 1);
    }
  }
}

TEST(AgentWork, SleepCountsWakeupsAndTheirLatency) {
  WorkStats s = run_work(plan_of(WorkKind::Sleep), 100);
  uint64_t wakeups = counter(s, kWakeups);
  EXPECT_GT(wakeups, 0u);
  EXPECT_LE(wakeups, 100u);  // at most one per millisecond of the run
  EXPECT_EQ(wakeups, s.iterations);
  uint64_t p50 = counter(s, kWakeLatencyP50), p99 = counter(s, kWakeLatencyP99), max = counter(s, kWakeLatencyMax);
  EXPECT_LE(p50, p99);
  EXPECT_LE(p99, max);
  EXPECT_GT(max, 0u);  // nothing wakes exactly on the nanosecond
  // Sleeping most of the time: far less CPU than wall time.
  EXPECT_LT(s.cpu_time_ns, s.wall_ns);
}

TEST(AgentWork, PingPongPairsCountRoundTrips) {
  for (WorkKind kind : {WorkKind::Futex, WorkKind::Pipe}) {
    SCOPED_TRACE(work_kind_name(kind));
    WorkStats s = run_work(plan_of(kind), 60);
    EXPECT_GT(counter(s, kRoundTrips), 0u);
    EXPECT_EQ(counter(s, kRoundTrips), s.iterations);
  }
}

TEST(AgentWork, ForkChurnForksAndReapsEveryChild) {
  WorkStats s = run_work(plan_of(WorkKind::Fork), 60);
  EXPECT_GT(counter(s, kForks), 0u);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // no child left behind
  EXPECT_EQ(errno, ECHILD);
}

TEST(AgentWork, FaultChurnCountsTheKernelsFaults) {
  WorkStats s = run_work(plan_of(WorkKind::Fault), 60);
  const uint64_t pages = (1u << 20) / static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  // Every round touches each page of a fresh mapping once.
  EXPECT_GE(counter(s, kPageFaults), s.iterations * pages * 9 / 10);
}

TEST(AgentWork, PeriodicCountsPeriodsAndMisses) {
  CgroupPlan p = plan_of(WorkKind::Periodic);
  p.period_us = 2000;
  p.runtime_us = 200;
  WorkStats s = run_work(p, 100);
  uint64_t periods = counter(s, kPeriods);
  EXPECT_GT(periods, 0u);
  EXPECT_LE(periods, 50u);  // one per 2 ms of the run
  EXPECT_LE(counter(s, kMissedDeadlines), periods);
  EXPECT_LE(counter(s, kWakeLatencyP50), counter(s, kWakeLatencyMax));
  EXPECT_GE(s.cpu_time_ns, s.iterations * 200'000u);  // the runtime was burnt
}

TEST(AgentWork, AffinityChangesAndRestoresTheMask) {
  cpu_set_t before, after;
  ASSERT_EQ(::sched_getaffinity(0, sizeof before, &before), 0);
  WorkStats s = run_work(plan_of(WorkKind::Affinity), 30);
  EXPECT_GT(counter(s, kAffinityChanges), 0u);
  ASSERT_EQ(::sched_getaffinity(0, sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));
}

TEST(AgentWork, AppliesNiceAndPolicyInAChild) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    CgroupPlan p;
    p.nice = 7;
    p.policy = "batch";
    if (!apply_sched_params(p).empty()) ::_exit(2);
    if (::sched_getscheduler(0) != SCHED_BATCH) ::_exit(3);
    errno = 0;
    if (::getpriority(PRIO_PROCESS, 0) != 7) ::_exit(4);
    p.policy = "idle";
    if (!apply_sched_params(p).empty() || ::sched_getscheduler(0) != SCHED_IDLE) ::_exit(5);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(LatencyHistogram, BucketsAreWithinAnEighth) {
  for (uint64_t v : {0ull, 1ull, 7ull, 8ull, 9ull, 15ull, 16ull, 1000ull, 123456ull, 1ull << 40, ~0ull}) {
    unsigned b = LatencyHistogram::bucket_of(v);
    uint64_t upper = LatencyHistogram::bucket_upper(b);
    EXPECT_GE(upper, v) << v;
    EXPECT_LE(upper - v, v / 8) << v;
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::bucket_upper(b - 1), v) << v;  // the first bucket that holds it
    }
  }
}

TEST(LatencyHistogram, Percentiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.percentile(99), 0u);
  for (uint64_t us = 1; us <= 1000; ++us) h.add(us * 1000);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.max(), 1'000'000u);
  uint64_t p50 = h.percentile(50), p99 = h.percentile(99);
  EXPECT_GE(p50, 500'000u);
  EXPECT_LE(p50, 500'000u * 9 / 8);
  EXPECT_GE(p99, 990'000u);
  EXPECT_LE(p99, 1'000'000u);  // capped at the maximum
  EXPECT_EQ(h.percentile(100), 1'000'000u);
  // One outlier moves the maximum, not the median.
  h.add(50'000'000);
  EXPECT_EQ(h.max(), 50'000'000u);
  EXPECT_LE(h.percentile(50), 500'000u * 9 / 8);
}

TEST(AgentWorkWire, CgroupPlanSettingsRoundTripAndOldPlansReadTheSame) {
  CgroupPlan p = plan_of(WorkKind::Periodic);
  p.nice = -3;
  p.policy = "idle";
  nlohmann::json j = p;
  EXPECT_EQ(j["period_us"], 10000);
  EXPECT_EQ(j["policy"], "idle");
  CgroupPlan back = j.get<CgroupPlan>();
  EXPECT_EQ(back.work, WorkKind::Periodic);
  EXPECT_EQ(back.period_us, 10000u);
  EXPECT_EQ(back.runtime_us, 1000u);
  EXPECT_EQ(back.nice, -3);
  EXPECT_EQ(back.policy, "idle");
  // A spin plan writes exactly the version 1 fields.
  nlohmann::json old = CgroupPlan{"a", 2, WorkKind::Spin, "0-1"};
  EXPECT_EQ(old, nlohmann::json::parse(R"({"name":"a","workers":2,"work":"spin","cpus":"0-1"})"));
}

TEST(AgentWorkWire, JobVersionThreeCarriesTheNewKinds) {
  JobMsg job;
  job.scenario.duration_ms = 100;
  job.scenario.cgroups = {plan_of(WorkKind::Sleep)};
  EXPECT_TRUE(job_needs_work_types(job));
  auto refused = validate_job(job);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().msg.find("version 1 job cannot carry"), std::string::npos) << refused.error().msg;
  job.version = kJobVersionWorkTypes;
  EXPECT_TRUE(validate_job(job)) << validate_job(job).error().msg;
  EXPECT_FALSE(is_repeat_job(job));
  job.repeat = 3;
  EXPECT_TRUE(is_repeat_job(job));
  job.scenario.cgroups[0].rate_hz = 0;  // the host resolves defaults; 0 is refused
  EXPECT_FALSE(validate_job(job));
  job.scenario.cgroups = {CgroupPlan{"a", 1, WorkKind::Spin, ""}};
  job.version = 2;
  EXPECT_FALSE(job_needs_work_types(job));
  EXPECT_TRUE(is_repeat_job(job));
}

TEST(AgentWorkWire, WorkerCountersRoundTripAndAreOptional) {
  WorkerMsg w;
  w.cgroup = "c";
  w.cpus_used = {1};
  nlohmann::json plain = w;
  EXPECT_FALSE(plain.contains("counters"));
  w.counters = {{"forks", 12}, {"wake_latency_p99_ns", 40000}};
  nlohmann::json j = w;
  EXPECT_EQ(j.get<WorkerMsg>().counters, w.counters);
  EXPECT_TRUE(plain.get<WorkerMsg>().counters.empty());
  j["counters"]["forks"] = -1;
  EXPECT_THROW(j.get<WorkerMsg>(), std::exception);
}
