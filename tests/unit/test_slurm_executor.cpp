// executor/: the work-unit files and `ktstr run-unit` on this machine, then
// SlurmExecutor against a real one-node Slurm started by the test
// (tests/slurm/one_node_slurm.hpp): a job array's results, exit statuses and
// hosts come back in unit order, a task cancelled behind ktstr's back is
// reported as lost, and a job past its timeout is cancelled.
#include "core/fs.hpp"
#include "executor/slurm.hpp"
#include "slurm/one_node_slurm.hpp"
#include "vm/vm_env.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ktstr::executor {
namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";

TEST(SlurmQueue, TasksRangesAndAReasonThatNeverStarts) {
  auto q = parse_squeue_tasks("0|RUNNING|None\n2-4%2|PENDING|JobArrayTaskLimit\n", 4);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->indices, (std::vector<size_t>{0, 2, 3}));  // 4 is past the units
  EXPECT_EQ(q->never_starts, "");
  q = parse_squeue_tasks("0-1|PENDING|PartitionConfig\n", 2);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->indices, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(q->never_starts, "PartitionConfig");
  // Waiting for resources or a down node may end: not "never".
  for (const char* reason : {"Resources", "Priority", "ReqNodeNotAvail, UnavailableNodes:n1"})
    EXPECT_EQ(parse_squeue_tasks(std::string("0|PENDING|") + reason + "\n", 1)->never_starts, "") << reason;
  EXPECT_EQ(parse_squeue_tasks("0|RUNNING|PartitionConfig\n", 1)->never_starts, "");
  EXPECT_FALSE(parse_squeue_tasks("x|PENDING|None\n", 1));
  EXPECT_TRUE(parse_squeue_tasks("", 3)->indices.empty());
}

TEST(SlurmJobId, ParsableOutputWithAndWithoutCluster) {
  EXPECT_EQ(parse_sbatch_job_id("1234\n").value(), "1234");
  EXPECT_EQ(parse_sbatch_job_id("77;ktstr\n").value(), "77");
  EXPECT_FALSE(parse_sbatch_job_id("Submitted batch job 5\n"));
  EXPECT_FALSE(parse_sbatch_job_id(""));
}

TEST(SlurmTaskScript, TakesPathsAsArgumentsNotAsShellText) {
  std::string s = slurm_task_script();
  EXPECT_EQ(s.rfind("#!/bin/sh\n", 0), 0u);
  EXPECT_NE(s.find("exec \"$1\" run-unit \"$2\" \"$SLURM_ARRAY_TASK_ID\""), std::string::npos);
}

TEST(RunUnit, OutputLogAndStatusLandInTheJobDirectory) {
  auto dir = TempDir::create("ktstr-unit");
  ASSERT_TRUE(dir);
  const std::string d = dir->path();
  // An argument with spaces and quotes stays one argument: no shell between.
  std::vector<WorkUnit> units = {{"echo", {"/bin/echo", "it's \"one\" arg"}},
                                 {"fails", {"/bin/false"}},
                                 {"missing", {d + "/no-such-program"}}};
  ASSERT_TRUE(write_units(d, units));
  EXPECT_FALSE(read_outcome(d, 0).value().has_value());  // not run yet
  auto st = run({kKtstr, "run-unit", d, "0"});
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, 0) << st->err;
  auto o = read_outcome(d, 0).value();
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, 0);
  EXPECT_EQ(o->result, "it's \"one\" arg\n");
  EXPECT_GE(o->ended_ms, o->started_ms);
  EXPECT_FALSE(o->host.empty());

  EXPECT_EQ(run_unit(d, 1).value(), 1);
  EXPECT_EQ(read_outcome(d, 1).value()->status, 1);
  EXPECT_EQ(run_unit(d, 2).value(), 127);
  EXPECT_NE(read_file(log_path(d, 2)).value().find("no-such-program"), std::string::npos);
}

TEST(RunUnit, AnUnreadableUnitIsAnErrorWithStatus2) {
  auto dir = TempDir::create("ktstr-unit");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(make_dirs(dir->path() + "/units"));
  ASSERT_TRUE(write_file_atomic(unit_path(dir->path(), 0), "{\"argv\": []}"));
  auto r = run({kKtstr, "run-unit", dir->path(), "0"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 2);
  EXPECT_NE(r->err.find("is not a work unit"), std::string::npos);
  EXPECT_FALSE(path_exists(status_path(dir->path(), 0)));  // nothing half-written
  r = run({kKtstr, "run-unit", dir->path(), "7"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 2);
}

class SlurmExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = testing::slurm_missing();
    KTSTR_VM_REQUIRE(missing.empty(), missing);
    slurm_.emplace();
    ASSERT_TRUE(slurm_->ok()) << slurm_->error();
    auto d = TempDir::create("ktstr-slurm-job");
    ASSERT_TRUE(d);
    job_.emplace(std::move(*d));
  }
  void TearDown() override {
    // Stopping the cluster leaves no job step of it running on the host.
    if (!slurm_) return;
    std::string conf = slurm_->conf();
    std::vector<pid_t> before = slurm_->steps();
    slurm_.reset();
    for (pid_t p : before) {
      auto environ = read_file("/proc/" + std::to_string(p) + "/environ");
      auto stat = read_file("/proc/" + std::to_string(p) + "/stat");
      bool gone = !environ || !stat || stat->find(") Z ") != std::string::npos;
      EXPECT_TRUE(gone || environ->find("SLURM_CONF=" + conf + '\0') == std::string::npos)
          << "slurmstepd " << p << " of the stopped cluster still runs";
    }
  }
  SlurmOptions options() const {
    SlurmOptions o;
    o.job_dir = job_->path() + "/job";
    o.runner = kKtstr;
    o.env_extra = slurm_->env();
    o.queue_every = std::chrono::milliseconds(500);
    return o;
  }
  std::optional<testing::OneNodeSlurm> slurm_;
  std::optional<TempDir> job_;
};

TEST_F(SlurmExecutorTest, AJobArrayBringsBackEachUnitsResultInOrder) {
  SlurmExecutor ex(options());
  std::vector<WorkUnit> units = {{"a", {"/bin/echo", "first unit"}},
                                 {"b", {"/bin/false"}},
                                 {"c", {"/usr/bin/printf", "%s|%s", "two words", "$HOME"}}};
  auto id = ex.submit(units);
  ASSERT_TRUE(id) << id.error().msg;
  std::set<size_t> seen;
  auto out = ex.wait([&](const UnitOutcome& o) { EXPECT_TRUE(seen.insert(o.index).second); },
                     std::chrono::minutes(2));
  ASSERT_TRUE(out) << out.error().msg;
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ(seen.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*out)[i].index, i);
    EXPECT_EQ((*out)[i].error, "") << (*out)[i].error;
    EXPECT_EQ((*out)[i].host, slurm_->node());  // it ran on the cluster's node
  }
  EXPECT_EQ((*out)[0].status, 0);
  EXPECT_EQ((*out)[0].result, "first unit\n");
  EXPECT_EQ((*out)[1].status, 1);
  EXPECT_EQ((*out)[2].result, "two words|$HOME");  // no shell expanded it
}

TEST_F(SlurmExecutorTest, ATaskCancelledBehindOurBackIsReportedLost) {
  SlurmExecutor ex(options());
  auto id = ex.submit({{"long", {"/bin/sleep", "600"}}});
  ASSERT_TRUE(id) << id.error().msg;
  auto c = slurm_->client({"scancel", *id});
  ASSERT_TRUE(c && c->ok()) << (c ? c->err : c.error().msg);
  auto out = ex.wait({}, std::chrono::minutes(2));
  ASSERT_TRUE(out) << out.error().msg;
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].status, -1);
  EXPECT_NE((*out)[0].error.find("left the queue without a result"), std::string::npos) << (*out)[0].error;
}

TEST_F(SlurmExecutorTest, PastItsTimeoutTheJobIsCancelled) {
  SlurmExecutor ex(options());
  auto id = ex.submit({{"long", {"/bin/sleep", "600"}}, {"quick", {"/bin/echo", "done"}}});
  ASSERT_TRUE(id) << id.error().msg;
  auto out = ex.wait({}, std::chrono::seconds(3));
  ASSERT_TRUE(out) << out.error().msg;
  EXPECT_NE((*out)[0].error.find("timed out"), std::string::npos) << (*out)[0].error;
  // The job is gone from the queue: nothing keeps running on the node.
  auto q = slurm_->client({"squeue", "--noheader", "--jobs=" + *id});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->out.find("sleep"), std::string::npos);
}

TEST_F(SlurmExecutorTest, AJobNoNodeCanRunEndsInsteadOfWaitingForever) {
  SlurmExecutor ex(options());
  WorkUnit big{"big", {"/bin/echo", "never"}};
  big.cpus = 512;  // more than the one node has: pending with reason PartitionConfig
  auto id = ex.submit({big});
  ASSERT_TRUE(id) << id.error().msg;
  auto started = std::chrono::steady_clock::now();
  auto out = ex.wait({}, std::chrono::minutes(2));
  ASSERT_TRUE(out) << out.error().msg;
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(60));  // not the 2 min timeout
  ASSERT_EQ(out->size(), 1u);
  EXPECT_EQ((*out)[0].status, -1);
  EXPECT_NE((*out)[0].error.find("will never start"), std::string::npos) << (*out)[0].error;
  EXPECT_NE((*out)[0].error.find("PartitionConfig"), std::string::npos) << (*out)[0].error;
  auto q = slurm_->client({"squeue", "--noheader", "--jobs=" + *id});
  ASSERT_TRUE(q);
  EXPECT_EQ(q->out.find(*id), std::string::npos) << q->out;  // cancelled
}

}  // namespace
}  // namespace ktstr::executor
