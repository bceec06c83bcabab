// bisectrun/'s pure parts: the stored names of its enums, what --fixed
// inverts (BisectMode), the checks on a `ktstr bisect` request, the stored
// parameters, and the text and JSON of `bisect list`, `bisect log` and a
// result. No store, no VM.
#include "bisectrun/driver.hpp"
#include "bisectrun/mode.hpp"
#include "bisectrun/names.hpp"
#include "bisectrun/params.hpp"
#include "bisectrun/report.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace ktstr::bisectrun {
namespace {

// ---- names ---------------------------------------------------------------------

TEST(BisectNames, StoredTextsAreTheOldOnesAndReadBack) {
  EXPECT_STREQ(target_kind_name(TargetKind::Sched), "sched");
  EXPECT_STREQ(target_kind_name(TargetKind::KernelRange), "kernel-range");
  EXPECT_STREQ(target_kind_name(TargetKind::KernelRepo), "kernel-repo");
  for (TargetKind k : {TargetKind::Sched, TargetKind::KernelRange, TargetKind::KernelRepo})
    EXPECT_EQ(parse_target_kind(target_kind_name(k)), k);
  EXPECT_FALSE(parse_target_kind("kernel-commit"));

  EXPECT_STREQ(phase_name(Phase::ConfirmBad), "confirm-bad");
  EXPECT_STREQ(phase_name(Phase::ConfirmGood), "confirm-good");
  EXPECT_STREQ(phase_name(Phase::Search), "search");
  EXPECT_STREQ(phase_name(Phase::Verify), "verify");
  for (Phase p : {Phase::ConfirmBad, Phase::ConfirmGood, Phase::Search, Phase::Verify})
    EXPECT_EQ(parse_phase(phase_name(p)), p);
  EXPECT_FALSE(parse_phase("confirm"));

  EXPECT_STREQ(session_state_name(SessionState::Running), "running");
  EXPECT_STREQ(session_state_name(SessionState::Found), "found");
  EXPECT_STREQ(session_state_name(SessionState::NotFound), "not-found");
  EXPECT_STREQ(session_state_name(SessionState::Failed), "failed");
  for (SessionState s : {SessionState::Running, SessionState::Found, SessionState::NotFound, SessionState::Failed})
    EXPECT_EQ(parse_session_state(session_state_name(s)), s);
  EXPECT_FALSE(parse_session_state("done"));

  EXPECT_EQ(parse_verdict("bad"), RunVerdict::Bad);
  EXPECT_EQ(parse_verdict("skip"), RunVerdict::Skip);
  EXPECT_FALSE(parse_verdict("maybe"));
}

TEST(BisectNames, RevertKeys) {
  const std::string id = "0123456789abcdef0123456789abcdef01234567";
  EXPECT_EQ(revert_key(id), "revert-" + id);
  EXPECT_EQ(reverted_commit(revert_key(id)), id);
  EXPECT_FALSE(reverted_commit(id));
  EXPECT_FALSE(reverted_commit("rev-" + id));
  EXPECT_EQ(reverted_commit("revert-"), "");
}

// ---- what --fixed inverts --------------------------------------------------------

TEST(BisectMode, NormalModeTheNewSideShowsTheSignature) {
  BisectMode m(false, 2, 8);
  EXPECT_EQ(m.expect(Role::BadEnd), Expect::Shows);
  EXPECT_EQ(m.expect(Role::Culprit), Expect::Shows);
  EXPECT_EQ(m.expect(Role::GoodEnd), Expect::Clean);
  EXPECT_EQ(m.expect(Role::Parent), Expect::Clean);
  EXPECT_EQ(m.showing_end(), Role::BadEnd);
  EXPECT_EQ(m.clean_end(), Role::GoodEnd);
  EXPECT_EQ(confirm_phase(Role::BadEnd), Phase::ConfirmBad);
  EXPECT_EQ(confirm_phase(Role::GoodEnd), Phase::ConfirmGood);

  // The good ends: two clean runs in one boot; a hit ends the bisect.
  Check good = m.check(Role::GoodEnd, Phase::ConfirmGood);
  EXPECT_EQ(good.expect, Expect::Clean);
  EXPECT_EQ(good.runs, 2);
  EXPECT_FALSE(good.one_per_boot);
  EXPECT_TRUE(good.stop_at_hit);
  // The culprit: up to 4x runs one boot each until a hit, its search runs counted.
  Check culprit = m.check(Role::Culprit, Phase::Verify);
  EXPECT_EQ(culprit.expect, Expect::Shows);
  EXPECT_EQ(culprit.runs, 8);
  EXPECT_TRUE(culprit.one_per_boot);
  EXPECT_TRUE(culprit.stop_at_hit);
  EXPECT_TRUE(culprit.counts_search_runs);
  // Its parents: all the clean runs, in one boot.
  Check parent = m.check(Role::Parent, Phase::Verify);
  EXPECT_EQ(parent.expect, Expect::Clean);
  EXPECT_EQ(parent.runs, 2);
  EXPECT_FALSE(parent.one_per_boot);
  EXPECT_FALSE(parent.stop_at_hit);
  EXPECT_FALSE(parent.counts_search_runs);
}

TEST(BisectMode, FixedModeInvertsEveryRole) {
  BisectMode m(true, 3, 12);
  EXPECT_EQ(m.expect(Role::BadEnd), Expect::Clean);
  EXPECT_EQ(m.expect(Role::Culprit), Expect::Clean);
  EXPECT_EQ(m.expect(Role::GoodEnd), Expect::Shows);
  EXPECT_EQ(m.expect(Role::Parent), Expect::Shows);
  EXPECT_EQ(m.showing_end(), Role::GoodEnd);
  EXPECT_EQ(m.clean_end(), Role::BadEnd);

  Check good = m.check(Role::GoodEnd, Phase::ConfirmGood);
  EXPECT_EQ(good.runs, 12);
  EXPECT_TRUE(good.one_per_boot);
  EXPECT_TRUE(good.stop_at_hit);
  Check bad = m.check(Role::BadEnd, Phase::ConfirmBad);
  EXPECT_EQ(bad.runs, 3);
  EXPECT_FALSE(bad.one_per_boot);
  EXPECT_TRUE(bad.stop_at_hit);
  // The fix: every clean run, one boot each; the search's runs there do not count.
  Check fix = m.check(Role::Culprit, Phase::Verify);
  EXPECT_EQ(fix.expect, Expect::Clean);
  EXPECT_EQ(fix.runs, 3);
  EXPECT_TRUE(fix.one_per_boot);
  EXPECT_FALSE(fix.stop_at_hit);
  EXPECT_FALSE(fix.counts_search_runs);
  Check parent = m.check(Role::Parent, Phase::Verify);
  EXPECT_EQ(parent.expect, Expect::Shows);
  EXPECT_EQ(parent.runs, 12);
  EXPECT_TRUE(parent.stop_at_hit);
  EXPECT_FALSE(parent.counts_search_runs);
}

TEST(BisectMode, ACheckPassesOnItsExpectation) {
  Check shows{Expect::Shows, 8, true, true, false};
  EXPECT_FALSE(shows.ok(0));
  EXPECT_TRUE(shows.ok(1));
  Check clean{Expect::Clean, 2, false, false, false};
  EXPECT_TRUE(clean.ok(0));
  EXPECT_FALSE(clean.ok(2));
  BisectOptions o;
  o.fixed = true;
  o.confirm_runs = 5;
  EXPECT_EQ(o.mode().check(Role::GoodEnd, Phase::ConfirmGood).runs, o.reproduce_bound());
}

// ---- the request -----------------------------------------------------------------

BisectRequest sched_request() {
  BisectRequest r;
  r.signature = "boom";
  r.sched_repo = "/r";
  r.good = {"v1"};
  r.bad = "main";
  r.build = "make";
  r.artifact = "out/s";
  return r;
}

std::string error_of(const BisectRequest& r) {
  auto tp = check_request(r);
  return tp ? "" : tp.error().msg;
}

TEST(BisectRequestChecks, EachKindTakesItsFlags) {
  auto tp = check_request(sched_request());
  ASSERT_TRUE(tp) << tp.error().msg;
  EXPECT_EQ(tp->kind, TargetKind::Sched);
  EXPECT_EQ(tp->good, std::vector<std::string>{"v1"});
  EXPECT_EQ(tp->build, "make");

  BisectRequest none = sched_request();
  none.sched_repo.clear();
  EXPECT_EQ(error_of(none), "bisect: give exactly one of --sched-repo, --kernel-range, --kernel-repo");
  BisectRequest two = sched_request();
  two.kernel_range = "6.1..6.2";
  EXPECT_EQ(error_of(two), "bisect: give exactly one of --sched-repo, --kernel-range, --kernel-repo");

  BisectRequest no_build = sched_request();
  no_build.artifact.clear();
  EXPECT_EQ(error_of(no_build), "bisect: --sched-repo needs --build and --artifact");

  BisectRequest repo = sched_request();
  repo.sched_repo.clear();
  repo.kernel_repo = "/k";
  EXPECT_EQ(error_of(repo), "bisect: --kernel-repo takes no --build or --artifact");
  repo.build.clear();
  repo.artifact.clear();
  tp = check_request(repo);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->kind, TargetKind::KernelRepo);
  repo.options.verify_culprit = true;
  EXPECT_EQ(error_of(repo), "--verify-culprit is not available for kernel commits");

  BisectRequest range;
  range.kernel_range = "6.17..7.3";
  tp = check_request(range);
  ASSERT_TRUE(tp);
  EXPECT_EQ(tp->kind, TargetKind::KernelRange);
  EXPECT_EQ(tp->range, "6.17..7.3");
  range.bad = "x";
  EXPECT_EQ(error_of(range), "bisect: --kernel-range takes no --good, --bad, --build or --artifact");
}

TEST(BisectRequestChecks, OptionRangesComeFirst) {
  BisectRequest r = sched_request();
  r.options.confidence = 1.0;
  r.artifact.clear();  // a later error: the options' is said first
  EXPECT_EQ(error_of(r), "--confidence must be between 0 and 1");
  r = sched_request();
  r.options.confirm_runs = 0;
  EXPECT_EQ(error_of(r), "--confirm-runs must be 1 to 100");
  r = sched_request();
  r.options.max_runs = -1;
  EXPECT_EQ(error_of(r), "--max-runs must not be negative");
  r = sched_request();
  r.options.verify_culprit = r.options.fixed = true;
  EXPECT_EQ(error_of(r), "--verify-culprit and --fixed do not go together");
  EXPECT_EQ(check_request(r).error().hint, "verify a fix by hand");
}

TEST(BisectRequestChecks, SessionIds) {
  EXPECT_EQ(parse_session_id("42"), 42);
  EXPECT_FALSE(parse_session_id("0"));
  EXPECT_FALSE(parse_session_id("4x"));
  EXPECT_EQ(parse_session_id("x").error().msg, "'x' is not a bisect session id");
}

// ---- stored parameters ---------------------------------------------------------------

const char* kStoredParams =
    R"({"options":{"confidence":0.95,"confirm_runs":2,"fixed":false,"max_runs":0,"memory_mb":0,)"
    R"("seed":7,"verify_culprit":false},"signature":{"arg":"boom","contains":"boom","crash_id":"",)"
    R"("kernel_ref":"","matches":null,"source":"literal","test_toml":""},"spec_file":"",)"
    R"("target":{"artifact":"","bad":"bbbbbbbbbbbbbbbbbbbb","build":"","first_parent":false,)"
    R"("good":["aaaaaaaaaaaaaaaaaaaa"],"kernel":"","kind":"kernel-repo","range":"","repo":"/k","versions":[]}})";

TEST(BisectParams, StoredParamsReadBackByteIdentical) {
  auto p = SessionParams::from_json(kStoredParams);
  ASSERT_TRUE(p) << p.error().msg;
  EXPECT_EQ(p->target.kind, TargetKind::KernelRepo);
  EXPECT_EQ(p->options.seed, 7u);
  EXPECT_EQ(p->to_json().dump(), kStoredParams);
}

TEST(BisectParams, AnUnknownKindDoesNotReadBack) {
  std::string text = kStoredParams;
  text.replace(text.find("kernel-repo"), 11, "kernel-commit");
  auto p = SessionParams::from_json(text);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().msg, "unknown bisect kind 'kernel-commit'");
}

// ---- list, log, result ---------------------------------------------------------------------

db::BisectSession stored_session() {
  db::BisectSession s;
  s.id = 3;
  s.kind = "kernel-repo";
  s.params_json = kStoredParams;
  s.state = "found";
  s.result_json = R"({"culprit":{"id":"cccccccccccccccccccc"},"message":"culprit cccccccccccc"})";
  s.created_at = 100;
  s.updated_at = 200;
  return s;
}

TEST(BisectReport, ListTableAndJson) {
  EXPECT_EQ(sessions_table({}), "no bisect sessions (start one with 'ktstr bisect --signature ...')\n");
  EXPECT_EQ(sessions_json({}).dump(), "[]");
  std::vector<SessionSummary> rows = {{stored_session(), "cccccccccccccccccccc", 5}};
  db::BisectSession running = stored_session();
  running.id = 12;
  running.state = "running";
  running.params_json = "{";
  rows.push_back({running, "", 0});
  EXPECT_EQ(sessions_table(rows),
            "ID  KIND         RANGE                       STATE    CULPRIT       RUNS\n"
            "3   kernel-repo  aaaaaaaaaaaa..bbbbbbbbbbbb  found    cccccccccccc  5\n"
            "12  kernel-repo  ?                           running  -             0\n");
  nlohmann::json j = sessions_json(rows);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["culprit"], "cccccccccccccccccccc");
  EXPECT_EQ(j[0]["range"], "aaaaaaaaaaaa..bbbbbbbbbbbb");
  EXPECT_EQ(j[0]["runs"], 5);
  EXPECT_TRUE(j[1]["culprit"].is_null());
}

TEST(BisectReport, LogTextAndJson) {
  SessionLog log{stored_session(), {}};
  db::BisectStep st;
  st.session_id = 3;
  st.seq = 1;
  st.commit = "bbbbbbbbbbbbbbbbbbbb";
  st.phase = "confirm-bad";
  st.build = "built";
  st.verdict = "bad";
  st.run_id = 9;
  st.detail = "boom";
  log.steps.push_back(st);
  st.seq = 2;
  st.commit = "aaaaaaaaaaaaaaaaaaaa";
  st.phase = "confirm-good";
  st.build = "";
  st.verdict = "skip";
  st.run_id = 0;
  st.detail = "";
  log.steps.push_back(st);
  EXPECT_EQ(session_log_text(log),
            "# bisect 3 (kernel-repo) aaaaaaaaaaaa..bbbbbbbbbbbb: found\n"
            "# signature: contains 'boom'\n"
            "# seed: 7 (step k runs with seed + k)\n"
            "bad   bbbbbbbbbbbbbbbbbbbb  # 1 confirm-bad, built, seed 8: boom\n"
            "skip  aaaaaaaaaaaaaaaaaaaa  # 2 confirm-good\n"
            "# found: culprit cccccccccccc\n");
  nlohmann::json j = session_log_json(log);
  EXPECT_EQ(j["steps"][0]["seed"], 8);
  EXPECT_FALSE(j["steps"][1].contains("seed"));  // it ran nothing
  EXPECT_EQ(j["params"]["target"]["kind"], "kernel-repo");
  EXPECT_EQ(j["result"]["culprit"]["id"], "cccccccccccccccccccc");
}

TEST(BisectReport, ResultText) {
  nlohmann::json r = {{"state", "found"},
                      {"fixed", false},
                      {"culprit", {{"id", "cccc"}, {"subject", "the culprit"}, {"probability", 0.97}}},
                      {"evidence",
                       {{{"commit", "cccc"}, {"subject", "the culprit"}, {"runs", 2}, {"bad", 2}, {"probability", 0.97}},
                        {{"commit", "revert-0123456789"}, {"runs", 2}, {"good", 2}}}},
                      {"runs", 4},
                      {"session", 1}};
  std::string text = render_bisect_result(r);
  EXPECT_EQ(text.rfind("cccc is the first bad commit (97.0% probability)\n    the culprit\n", 0), 0u) << text;
  EXPECT_NE(text.find("\nrevert-01234      2    0     0    2    0       -  \n"), std::string::npos) << text;
  r["state"] = "not-found";
  r["message"] = "no culprit";
  EXPECT_EQ(render_bisect_result(r).rfind("bisect not-found: no culprit\n", 0), 0u);
}

}  // namespace
}  // namespace ktstr::bisectrun
