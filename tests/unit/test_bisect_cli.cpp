// `ktstr bisect` without a VM: the signature matchers and run verdicts, the
// kernel-version ladder, and every bad-input case through the real binary
// (one error line, a hint, status 2, no session written).
#include "bisectrun/session.hpp"
#include "bisectrun/signature.hpp"
#include "bisectrun/target.hpp"
#include "core/fs.hpp"
#include "core/matcher.hpp"
#include "core/subprocess.hpp"
#include "sched/bisect/make_repo.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ktstr::bisectrun {
namespace {

TEST(BisectSeed, TheSessionKeepsItsSeedForResumeAndStepKRunsWithSPlusK) {
  BisectOptions o;
  o.seed = 0xfffffffffffffffeull;
  auto back = BisectOptions::from_json(nlohmann::json::parse(o.to_json().dump()));
  ASSERT_TRUE(back.seed.has_value());
  EXPECT_EQ(*back.seed, *o.seed);
  EXPECT_EQ(back.step_seed(1), 0xffffffffffffffffull);
  EXPECT_EQ(back.step_seed(2), 0u);  // wraps
  o.seed = 7;
  EXPECT_EQ(o.step_seed(40), 47u);
  // A session stored before seeds existed: none, for every step.
  auto old = BisectOptions::from_json(nlohmann::json::parse(R"({"confidence":0.95,"confirm_runs":2})"));
  EXPECT_FALSE(old.seed.has_value());
  EXPECT_FALSE(old.step_seed(3).has_value());
  EXPECT_FALSE(old.to_json().contains("seed"));
}

TEST(BisectSignature, PortableRegexIgnoresLineAndDirectory) {
  std::string re = portable_message_regex("/tmp/wt/a1/scx_tiny.bpf.c:71: bisect: injected crash 3");
  auto rx = Regex::compile(re);
  ASSERT_TRUE(rx) << re;
  EXPECT_TRUE(*rx->is_match("EXIT: scx_bpf_error (scx_tiny.bpf.c:90: bisect: injected crash 7)"));
  EXPECT_TRUE(*rx->is_match("/other/dir/scx_tiny.bpf.c:12: bisect: injected crash 0"));
  EXPECT_FALSE(*rx->is_match("scx_tiny.bpf.c:90: bisect: other crash 7"));
  EXPECT_FALSE(*rx->is_match("scx_other.bpf.c:90: bisect: injected crash 7"));
  // No source location: numbers still generalised.
  auto plain = Regex::compile(portable_message_regex("runnable task stall (kworker[12] failed to run for 5.2s)"));
  ASSERT_TRUE(plain);
  EXPECT_TRUE(*plain->is_match("runnable task stall (kworker[99] failed to run for 30.0s)"));
}

RunResult died_with(const std::string& log, const std::string& kind = "scheduler_died") {
  RunResult r;
  r.passed = false;
  r.failure_kind = kind;
  r.reason = "scheduler process died unexpectedly during workload";
  r.sched = SchedulerRun{};
  r.sched->log = log;
  return r;
}

TEST(BisectSignature, VerdictsBadOtherGoodSkip) {
  BisectSignature sig;
  sig.contains = "bisect: injected crash";
  sig.matches = portable_message_regex("scx_tiny.bpf.c:71: bisect: injected crash");
  EXPECT_EQ(classify_run(died_with("EXIT: scx_bpf_error (scx_tiny.bpf.c:75: bisect: injected crash)"), sig).verdict,
            RunVerdict::Bad);
  EXPECT_EQ(classify_run(died_with("EXIT: scx_bpf_error (scx_tiny.bpf.c:70: bisect: other crash)"), sig).verdict,
            RunVerdict::Other);
  EXPECT_EQ(classify_run(died_with("libbpf: prog 'x': BPF program load failed", "verifier"), sig).verdict,
            RunVerdict::Other);
  RunResult clean;
  clean.passed = true;
  EXPECT_EQ(classify_run(clean, sig).verdict, RunVerdict::Good);
  RunResult starved;
  starved.failure_kind = "check";
  starved.reason = "worker w/0 never ran (starved)";
  EXPECT_EQ(classify_run(starved, sig).verdict, RunVerdict::Good);
  RunResult vm;
  vm.failure_kind = "vm";
  vm.reason = "VM watchdog: the run exceeded its time limit (the guest agent never started)";
  auto v = classify_run(vm, sig);
  EXPECT_EQ(v.verdict, RunVerdict::Skip);
  EXPECT_NE(v.detail.find("agent never started"), std::string::npos);
  // The run spec drops the expectations: the verdict is bisect's.
  TestSpec t;
  t.expect_err = true;
  t.expect_scx_bpf_error_contains = "x";
  TestSpec run = bisect_run_spec(t);
  EXPECT_FALSE(run.expect_err);
  EXPECT_FALSE(run.expect_scx_bpf_error_contains);
  EXPECT_FALSE(run.auto_repro);
}

// Two bisects of one repository at once must not share a checkout
// directory: the second gets the next one, and a released one is reused.
TEST(BisectTarget, ConcurrentBisectsOfOneRepositoryGetTheirOwnWorktrees) {
  auto tmp = TempDir::create("ktstr-worktree-claim");
  ASSERT_TRUE(tmp);
  const std::string base = tmp->path() + "/worktrees/0123456789abcdef";
  auto first = claim_worktree(base);
  ASSERT_TRUE(first) << first.error().msg;
  EXPECT_EQ(first->first, base);
  {
    auto second = claim_worktree(base);
    ASSERT_TRUE(second) << second.error().msg;
    EXPECT_EQ(second->first, base + "-1");
  }
  auto third = claim_worktree(base);
  ASSERT_TRUE(third);
  EXPECT_EQ(third->first, base + "-1");  // the second released its lock
  first = claim_worktree(base + "-x");   // drops the lock on `base`
  ASSERT_TRUE(first);
  auto fourth = claim_worktree(base);
  ASSERT_TRUE(fourth);
  EXPECT_EQ(fourth->first, base);
}

TEST(BisectTarget, KernelVersionLadder) {
  std::vector<std::string> v = {"6.16.3", "6.17.8", "6.17.13", "7.2.1", "7.2.10", "7.3.4"};
  auto r = select_version_range(v, "6.17..7.3");
  ASSERT_TRUE(r) << r.error().msg;
  EXPECT_EQ(r->good, "6.17.13");
  EXPECT_EQ(r->bad, "7.3.4");
  EXPECT_EQ(r->chain, (std::vector<std::string>{"7.2.1", "7.2.10", "7.3.4"}));
  auto exact = select_version_range(v, "6.17.8..7.2.1");
  ASSERT_TRUE(exact);
  EXPECT_EQ(exact->chain, (std::vector<std::string>{"6.17.13", "7.2.1"}));
  EXPECT_FALSE(select_version_range(v, "7.3..6.17"));
  EXPECT_FALSE(select_version_range(v, "5.10..7.3"));
  EXPECT_FALSE(select_version_range(v, "7.3"));
}

// ---- bad input through the binary ----

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";

class BisectBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create("ktstr-bisect-cli");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    repo_ = dir_->path() + "/repo";
    std::vector<testing::FixtureCommit> commits;
    for (int i = 0; i < 4; ++i) commits.push_back({"step " + std::to_string(i), {{"a.txt", std::to_string(i) + "\n"}}});
    ids_ = testing::make_fixture_repo(repo_, commits);
    spec_ = dir_->path() + "/t.toml";
    ASSERT_TRUE(write_file_atomic(spec_, "[[test]]\nname = \"t\"\nscheduler = \"scx-ktstr\"\nduration_s = 1\n"));
  }

  Completed ktstr(std::vector<std::string> args) {
    args.insert(args.begin(), kKtstr);
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path() + "/cache"};
    auto r = run(args, o, std::chrono::seconds(60));
    EXPECT_TRUE(r);
    return r ? *r : Completed{-1, "", ""};
  }

  // Status 2, exactly one error line containing `what`, a hint, and no session.
  void expect_bad_input(const std::vector<std::string>& args, const std::string& what) {
    auto r = ktstr(args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.err.rfind("ktstr: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\nhint: "), std::string::npos) << r.err;
    size_t lines = std::count(r.err.begin(), r.err.end(), '\n');
    EXPECT_EQ(lines, 2u) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    auto list = ktstr({"bisect", "list", "--json"});
    EXPECT_EQ(list.status, 0) << list.err;
    auto j = nlohmann::json::parse(list.out, nullptr, false);
    ASSERT_TRUE(j.is_array()) << list.out;
    EXPECT_TRUE(j.empty()) << list.out;
  }

  std::vector<std::string> sched(const std::string& good, const std::string& bad, const std::string& build = "true") {
    return {"bisect", "--signature", "boom", "--spec", spec_, "--sched-repo", repo_, "--good", good,
            "--bad", bad, "--build", build, "--artifact", "out/sched"};
  }

  std::optional<TempDir> dir_;
  std::string repo_, spec_;
  std::vector<std::string> ids_;
};

TEST_F(BisectBadInput, NotARepository) {
  auto args = sched(ids_[0], ids_[3]);
  args[6] = dir_->path();
  expect_bad_input(args, "is not a git repository");
}

TEST_F(BisectBadInput, UnknownRevision) {
  expect_bad_input(sched(ids_[0], "no-such-branch"), "unknown revision 'no-such-branch'");
  expect_bad_input(sched("v9.9", ids_[3]), "unknown revision 'v9.9'");
}

TEST_F(BisectBadInput, GoodNotAncestorOfBad) {
  expect_bad_input(sched(ids_[3], ids_[1]), "is not an ancestor of bad commit");
}

TEST_F(BisectBadInput, UnknownCrashIdAndUnmatchedSignature) {
  auto args = sched(ids_[0], ids_[3]);
  args[2] = "deadbeef12";
  expect_bad_input(args, "no crash matches 'deadbeef12'");
  // A literal without --spec needs a recorded crash to take the test from.
  std::vector<std::string> no_spec = {"bisect", "--signature", "never seen", "--sched-repo", repo_,
                                      "--good", ids_[0], "--bad", ids_[3], "--build", "true", "--artifact", "x"};
  expect_bad_input(no_spec, "matches no recorded crash");
  args[2] = "/a(/";
  expect_bad_input(args, "--signature");
}

TEST_F(BisectBadInput, BuildFailsAtBothEnds) {
  expect_bad_input(sched(ids_[0], ids_[3], "false"), "the build fails at both ends");
  // The command works but leaves no artifact: the same.
  expect_bad_input(sched(ids_[0], ids_[3], "true"), "the build fails at both ends");
}

TEST_F(BisectBadInput, FlagsAndKernelCommits) {
  expect_bad_input({"bisect", "--signature", "x", "--kernel-repo", repo_, "--good", "a", "--bad", "b", "--build", "make"},
                   "--kernel-repo takes no --build");
  expect_bad_input({"bisect", "--signature", "x", "--kernel-repo", repo_, "--bad", "b"}, "--kernel-repo needs --good and --bad");
  expect_bad_input({"bisect", "--signature", "x", "--kernel-repo", repo_, "--good", "a", "--bad", "b", "--verify-culprit"},
                   "--verify-culprit is not available for kernel commits");
  expect_bad_input({"bisect", "--signature", "x"}, "give exactly one of");
  expect_bad_input({"bisect", "--signature", "x", "--sched-repo", repo_, "--good", ids_[0]}, "needs --good and --bad");
  auto args = sched(ids_[0], ids_[3]);
  args.insert(args.end(), {"--confidence", "1.5"});
  expect_bad_input(args, "--confidence");
  expect_bad_input({"bisect", "--signature", "x", "--kernel-range", "5.10..7.3", "--spec", spec_}, "no kernel version matches '5.10'");
  expect_bad_input({"bisect", "log", "42"}, "no bisect session 42");
  expect_bad_input({"bisect", "resume", "x"}, "is not a bisect session id");
}

}  // namespace
}  // namespace ktstr::bisectrun
