// cmd/unit_record: what the submitting ktstr does with a unit's runs (a
// worker's document), on a real store: the run row without the repro, the
// crash with its artifacts, the repro the worker ran recorded against it and
// the crash's report refreshed; a later crash of the same signature names
// the first one's crash instead; each WorkerRun rendered from the recorded run.
#include "run/unit_record.hpp"
#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "db/crashes.hpp"
#include "db/repros.hpp"

#include <gtest/gtest.h>

using namespace ktstr;

namespace {

SchedExit exit73() {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/7.3/crash/sched.log");
  EXPECT_TRUE(text);
  auto e = parse_sched_log(text ? *text : "");
  EXPECT_TRUE(e);
  return e ? *e : SchedExit{};
}

TestSpec spec() {
  auto s = parse_spec_text("[[test]]\nname = \"crashy\"\nscheduler = \"scx-ktstr\"\ntopology = \"1n1l2c1t\"\n"
                           "scenario = \"steady\"\nduration_s = 2\n",
                           "test");
  EXPECT_TRUE(s) << s.error().msg;
  return s->front();
}

RunResult crashed(unsigned repetition) {
  RunResult r;
  r.test_name = "crashy";
  r.scheduler = "scx-ktstr";
  r.topology = "1n1l2c1t";
  r.kernel_id = "k1";
  r.passed = false;
  r.reason = "scheduler died";
  r.failure_kind = "scheduler_died";
  r.repetition = repetition;
  r.seed = 40 + repetition;
  r.exit = exit73();
  r.sched = SchedulerRun{};
  r.sched->log = "EXIT: scx_bpf_error\n";
  return r;
}

TEST(UnitRecord, CrashesAndTheWorkersReprosAreRecordedByTheSubmitter) {
  auto dir = TempDir::create("ktstr-unit-record");
  ASSERT_TRUE(dir);
  auto store = db::Store::open(dir->path());
  ASSERT_TRUE(store) << store.error().msg;
  KernelRecord kernel;
  kernel.id = "k1";
  kernel.version = "7.3.0";

  RunResult first = crashed(1);
  ReproResult repro;
  repro.outcome = "same";
  repro.duration_s = 4.5;
  repro.seed = 41;
  first.repro = repro;
  RunResult passed;
  passed.test_name = "crashy";
  passed.passed = true;
  passed.repetition = 3;
  runner::WorkerOutput out;
  out.runs = {{to_json(first), -1, "", "", {}}, {to_json(crashed(2)), 0, "", "", {}}, {to_json(passed), -1, "", "", {}}};
  std::vector<RunResult> runs;
  auto st = runner::record_worker_output(**store, out, spec(), kernel, 1700000000, false, &runs);
  ASSERT_TRUE(st) << st.error().msg;
  ASSERT_EQ(runs.size(), 3u);

  // Three run rows; the crashed one's as it ended, before its repro.
  auto listed = (*store)->list_runs();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 3u);
  for (const RunRecord& rec : *listed) {
    EXPECT_EQ(rec.started_at, 1700000000);
    EXPECT_EQ(rec.result_json.find("\"repro\""), std::string::npos) << rec.result_json.substr(0, 500);
  }
  // Two crashes (one per crashed run), each with its run id.
  auto crashes = db::list_crashes(**store);
  ASSERT_TRUE(crashes);
  ASSERT_EQ(crashes->size(), 2u);
  ASSERT_FALSE(runs[0].crash_id.empty());
  ASSERT_FALSE(runs[1].crash_id.empty());
  EXPECT_NE(runs[0].crash_id, runs[1].crash_id);
  // The first one's repro, from the worker, is stored against its crash and
  // its stored report shows it; the second names the first's crash.
  auto r0 = db::latest_repro(**store, runs[0].crash_id);
  ASSERT_TRUE(r0 && *r0);
  EXPECT_TRUE((*r0)->reproduced);
  EXPECT_EQ((*r0)->duration_ms, 4500);
  auto c0 = db::find_crash(**store, runs[0].crash_id);
  ASSERT_TRUE(c0 && *c0);
  EXPECT_NE((*c0)->report.find("--- auto-repro ---"), std::string::npos);
  EXPECT_EQ((*c0)->seed, 41u);
  auto r1 = db::latest_repro(**store, runs[1].crash_id);
  ASSERT_TRUE(r1);
  EXPECT_FALSE(*r1);
  ASSERT_FALSE(runs[1].diagnostics.empty());
  EXPECT_EQ(runs[1].diagnostics.back(), "auto-repro: not replayed again, same signature as crash " + runs[0].crash_id);
  EXPECT_TRUE(path_exists((*c0)->artifacts_dir + "/sched.log"));

  // What the parent prints comes from the recorded runs.
  EXPECT_EQ(out.runs[0].result["crash_id"], runs[0].crash_id);
  EXPECT_EQ(out.runs[0].result["repro"]["crash_id"], runs[0].crash_id);
  EXPECT_EQ(out.runs[0].line, render_summary_line(runs[0]));
  EXPECT_NE(out.runs[0].failure.find(runs[0].crash_id), std::string::npos);
  EXPECT_FALSE(out.runs[0].outline.signature_key.empty());
  EXPECT_EQ(out.runs[0].outline.signature_key, out.runs[1].outline.signature_key);
  EXPECT_TRUE(out.runs[2].outline.passed);
  EXPECT_EQ(out.runs[2].failure, "");
}

TEST(UnitRecord, ARunTheStoreCannotTakeIsAnError) {
  auto dir = TempDir::create("ktstr-unit-record");
  ASSERT_TRUE(dir);
  auto store = db::Store::open(dir->path());
  ASSERT_TRUE(store);
  runner::WorkerOutput out;
  out.runs = {{nlohmann::json{{"name", "x"}, {"status", "maybe"}}, -1, "", "", {}}};
  auto st = runner::record_worker_output(**store, out, spec(), KernelRecord{}, 0, false);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().msg.find("'status'"), std::string::npos) << st.error().msg;
  auto listed = (*store)->list_runs();
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());  // nothing half-written
}

}  // namespace
