// `ktstr gauntlet` logic (cmd/gauntlet.hpp): the axes from the command line,
// the matrix, a cell's verdict from recorded runs (RunResults rendered with
// to_json, as workers print them), the grid, the summary and the JSON; and
// bad input through the real binary (status 2, one error and a hint,
// nothing stored).
#include "run/gauntlet.hpp"
#include "core/fs.hpp"
#include "core/report.hpp"
#include "core/subprocess.hpp"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

namespace ktstr::runner {
namespace {

using Words = std::vector<std::string>;

TEST(GauntletAxis, CommaListsAddUpInOrderWithoutRepeats) {
  auto v = parse_axis("--kernel", {"6.17,7.3", "7.2, 6.17"});
  ASSERT_TRUE(v) << v.error().msg;
  EXPECT_EQ(*v, (Words{"6.17", "7.3", "7.2"}));
}

TEST(GauntletAxis, EmptyEntriesAndEmptyAxesAreErrorsWithHints) {
  for (const Words& bad : {Words{""}, Words{"6.17,,7.3"}, Words{"6.17,"}, Words{",7.3"}, Words{"7.3", " "}}) {
    auto v = parse_axis("--kernel", bad);
    ASSERT_FALSE(v) << bad.back();
    EXPECT_NE(v.error().msg.find("--kernel"), std::string::npos) << v.error().msg;
    EXPECT_FALSE(v.error().hint.empty()) << v.error().msg;
  }
  auto none = parse_axis("--topo", {});
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().msg.find("no entries"), std::string::npos) << none.error().msg;
}

TEST(GauntletAxis, TopologiesParseAndBadOnesNameTheOption) {
  auto t = parse_topology_axis({"1n1l2c1t,1n2l4c2t", "2n4l2c1t,1n1l2c1t"});
  ASSERT_TRUE(t) << t.error().msg;
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[0].to_string(), "1n1l2c1t");
  EXPECT_EQ((*t)[1].cpus(), 16u);
  EXPECT_EQ((*t)[2].nodes, 2u);
  for (auto* bad : {"1n1l2c", "2n3l2c1t", "fast", "1n1l2c1t,x"}) {
    auto r = parse_topology_axis({bad});
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().msg.rfind("--topo", 0), 0u) << r.error().msg;
  }
}

TEST(GauntletAxis, SchedArgsSplitLikeAShell) {
  auto s = [](const std::string& text) {
    auto r = split_sched_args(text);
    EXPECT_TRUE(r) << text << ": " << (r ? "" : r.error().msg);
    return r ? *r : Words{"<error>"};
  };
  EXPECT_EQ(s("--slice-us 500"), (Words{"--slice-us", "500"}));
  EXPECT_EQ(s("  -a   b\t"), (Words{"-a", "b"}));
  EXPECT_EQ(s(""), Words{});
  EXPECT_EQ(s("   "), Words{});
  EXPECT_EQ(s("--name 'a b' \"c \\\"d\\\"\""), (Words{"--name", "a b", "c \"d\""}));
  EXPECT_EQ(s("a\\ b c"), (Words{"a b", "c"}));
  EXPECT_EQ(s("x'y z'w"), (Words{"xy zw"}));
  EXPECT_EQ(s("''"), (Words{""}));  // an empty argument, as a shell gives
  EXPECT_EQ(s("'\\'"), (Words{"\\"}));  // nothing escapes inside '...'
  for (auto* bad : {"'open", "--x \"open", "a 'b"}) {
    auto r = split_sched_args(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().msg.find("unterminated quote"), std::string::npos);
  }
}

TEST(GauntletAxis, SchedArgsTextReadsBackAsTheSameWords) {
  for (const Words& w : {Words{}, Words{"--slice-us", "500"}, Words{"a b", "it's", "\"q\"", "back\\slash", ""}}) {
    std::string text = sched_args_text(w);
    if (w.empty()) {
      EXPECT_EQ(text, "(none)");
      continue;
    }
    auto back = split_sched_args(text);
    ASSERT_TRUE(back) << text;
    EXPECT_EQ(*back, w) << text;
  }
  EXPECT_EQ(sched_args_text({"--fail-after-ms", "300"}), "--fail-after-ms 300");
}

TEST(GauntletMatrix, EveryCombinationOnceInGridOrder) {
  auto m = expand_matrix(2, 3, 2, 3);
  ASSERT_EQ(m.size(), 36u);
  std::set<std::tuple<size_t, size_t, size_t, size_t>> seen;
  for (size_t i = 0; i < m.size(); ++i) {
    const CellIndex& c = m[i];
    // Row-major: test, sched-args, kernel, topology.
    EXPECT_EQ(i, ((c.test * 3 + c.args) * 2 + c.kernel) * 3 + c.topo);
    seen.insert({c.test, c.args, c.kernel, c.topo});
  }
  EXPECT_EQ(seen.size(), 36u);
  EXPECT_EQ(m.front(), (CellIndex{0, 0, 0, 0}));
  EXPECT_EQ(m.back(), (CellIndex{1, 2, 1, 2}));
  EXPECT_TRUE(expand_matrix(1, 1, 0, 2).empty());
  EXPECT_EQ(expand_matrix(1, 1, 1, 1).size(), 1u);
}

// A recorded run as a worker prints it.
RunResult base_run() {
  RunResult r;
  r.test_name = "t";
  r.scheduler = "/x/scx_tiny";
  r.topology = "1n2l2c1t";
  r.kernel_id = "7435b9178e91998f";
  r.kernel_version = "7.3.4+deb13-cloud-amd64";
  r.stage = "workers_done";
  r.vm_end = "powered_off";
  r.wall_s = 11.5;
  r.run_id = 42;
  SchedulerRun s;
  s.name = "/x/scx_tiny";
  s.args = {"--slice-us", "500"};
  r.sched = s;
  return r;
}

CellResult judged(const RunResult& r) {
  CellResult c;
  c.test = "t";
  c.topology = "1n1l2c1t";  // what was asked; the run's record wins
  judge_cell(c, to_json(r));
  return c;
}

TEST(GauntletVerdict, PassTakesWhatRanFromTheRun) {
  RunResult r = base_run();
  r.passed = true;
  CellResult c = judged(r);
  EXPECT_EQ(c.verdict, Verdict::kPass);
  EXPECT_EQ(c.run_id, 42);
  EXPECT_EQ(c.topology, "1n2l2c1t");
  EXPECT_EQ(c.kernel_id, "7435b9178e91998f");
  EXPECT_EQ(c.kernel_version, "7.3.4+deb13-cloud-amd64");
  EXPECT_EQ(c.sched_args, (Words{"--slice-us", "500"}));
  EXPECT_DOUBLE_EQ(c.wall_s, 11.5);
  EXPECT_EQ(cell_text(c), "pass");
}

TEST(GauntletVerdict, RecordedCrashIsCrashWithItsId) {
  RunResult r = base_run();
  r.failure_kind = "scheduler_died";
  r.reason = "scheduler process died unexpectedly during workload";
  r.crash_id = "1a2b3c4d5e6f";
  CellResult c = judged(r);
  EXPECT_EQ(c.verdict, Verdict::kCrash);
  EXPECT_EQ(c.crash_id, "1a2b3c4d5e6f");
  EXPECT_EQ(cell_text(c), "CRASH 1a2b3c4d");
  std::string line = cell_line(c);
  EXPECT_NE(line.find("crash 1a2b3c4d5e6f"), std::string::npos) << line;
  EXPECT_NE(line.find("run 42"), std::string::npos) << line;
  EXPECT_NE(line.find("on 7.3.4 1n2l2c1t"), std::string::npos) << line;
}

TEST(GauntletVerdict, FailedCheckNamesTheCheck) {
  RunResult r = base_run();
  r.failure_kind = "check";
  r.failed_check = "max_gap_ms";
  r.reason = "worker w/0 waited 812 ms to run (max_gap_ms = 500)";
  CellResult c = judged(r);
  EXPECT_EQ(c.verdict, Verdict::kFail);
  EXPECT_EQ(cell_text(c), "FAIL max_gap_ms");
  EXPECT_EQ(c.reason, r.reason);
  EXPECT_NE(cell_line(c).find("812 ms"), std::string::npos) << cell_line(c);
}

TEST(GauntletVerdict, OtherFailuresNameTheirKind) {
  RunResult r = base_run();
  r.failure_kind = "verifier";
  r.reason = "scheduler failed to load";
  EXPECT_EQ(cell_text(judged(r)), "FAIL verifier");
  // A scheduler death without a recorded crash (its exit was not parsed).
  r.failure_kind = "scheduler_died";
  EXPECT_EQ(judged(r).verdict, Verdict::kFail);
  EXPECT_EQ(cell_text(judged(r)), "FAIL scheduler_died");
  // The guest got going and then the kernel panicked: the test's doing.
  r.failure_kind = "vm";
  r.vm_end = "panicked";
  EXPECT_EQ(cell_text(judged(r)), "FAIL panicked");
  // A long check name is cut to the cell's width.
  r.failure_kind = "check";
  r.failed_check = std::string(40, 'x');
  EXPECT_EQ(cell_text(judged(r)).size(), kMaxCellText);
}

TEST(GauntletVerdict, NoGuestAgentIsABootSkip) {
  RunResult r = base_run();
  r.failure_kind = "vm";
  r.stage = "";
  r.vm_end = "watchdog_no_output";
  r.reason = "VM watchdog: the guest stopped producing output (the guest agent never started)";
  CellResult c = judged(r);
  EXPECT_EQ(c.verdict, Verdict::kSkip);
  EXPECT_EQ(cell_text(c), "skip boot");
  EXPECT_NE(cell_line(c).find("agent never started"), std::string::npos);
}

TEST(GauntletVerdict, MalformedRunIsAFailureNotACrashOfKtstr) {
  CellResult c;
  judge_cell(c, nlohmann::json{{"status", 3}, {"vm", "x"}, {"diagnostics", "y"}});
  EXPECT_EQ(c.verdict, Verdict::kFail);
  EXPECT_EQ(c.run_id, 0);
}

// A crash id (12 hex digits) whose first 8 differ from cell to cell.
std::string fake_crash_id(const CellIndex& at) {
  return std::to_string(at.test) + std::to_string(at.args) + std::to_string(at.kernel) + std::to_string(at.topo) +
         "c0ffee00";
}

// A grid of 1 test x 2 argument sets x 2 kernels x 2 topologies.
std::vector<CellResult> grid_cells() {
  std::vector<CellResult> cells;
  for (auto at : expand_matrix(1, 2, 2, 2)) {
    CellResult c;
    c.at = at;
    c.verdict = at.args == 0 ? Verdict::kPass : Verdict::kCrash;
    if (at.args == 1) c.detail = c.crash_id = fake_crash_id(at);
    if (at.kernel == 1 && at.topo == 1) {
      c.verdict = Verdict::kSkip;
      c.detail = "no sched_ext";
    }
    cells.push_back(c);
  }
  return cells;
}

GridLabels grid_labels() {
  GridLabels l;
  l.tests = {"tiny"};
  l.sched_args = {"(none)", "--fail-after-ms 300"};
  l.kernels = {"7.3.4", "6.17.13"};
  l.topologies = {"1n1l2c1t", "1n2l4c2t"};
  l.show_sched_args = true;
  return l;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(GauntletGrid, RowsAreTestAndArgsColumnsKernelAndTopology) {
  auto cells = grid_cells();
  std::string grid = render_grid(grid_labels(), cells);
  auto lines = lines_of(grid);
  ASSERT_EQ(lines.size(), 4u) << grid;
  // Each kernel heads its topologies; the first header line names kernels.
  EXPECT_EQ(lines[0].rfind("kernel", 0), 0u) << grid;
  size_t k1 = lines[0].find("7.3.4"), k2 = lines[0].find("6.17.13");
  ASSERT_NE(k1, std::string::npos) << grid;
  ASSERT_NE(k2, std::string::npos) << grid;
  EXPECT_EQ(lines[1].rfind("test", 0), 0u) << grid;
  EXPECT_NE(lines[1].find("sched-args"), std::string::npos) << grid;
  // Topology headers: 1n1l2c1t starts each kernel's group, under its kernel.
  EXPECT_EQ(lines[1].find("1n1l2c1t"), k1) << grid;
  EXPECT_EQ(lines[1].find("1n1l2c1t", k1 + 1), k2) << grid;
  // Row 1: (none) passes everywhere but the skipped cell.
  EXPECT_EQ(lines[2].rfind("tiny", 0), 0u);
  EXPECT_NE(lines[2].find("(none)"), std::string::npos);
  EXPECT_EQ(lines[2].find("pass", k1), k1) << grid;
  EXPECT_EQ(lines[2].find("skip no sched_ext"), lines[1].find("1n2l4c2t", k2)) << grid;
  // Row 2: crash ids under their columns.
  EXPECT_EQ(lines[3].find("CRASH " + cells[4].crash_id.substr(0, 8)), k1) << grid;
  EXPECT_EQ(lines[3].find("CRASH " + cells[6].crash_id.substr(0, 8)), k2) << grid;
  for (auto& l : lines) {
    EXPECT_LE(l.size(), 100u) << l;
    EXPECT_NE(l.back(), ' ') << "trailing blank: '" << l << "'";
  }
}

TEST(GauntletGrid, TooWideGridsContinueInBlocksThatKeepEveryCellOnce) {
  auto cells = grid_cells();
  std::string grid = render_grid(grid_labels(), cells, 60);
  auto lines = lines_of(grid);
  size_t blocks = 0, crashes = 0, passes = 0;
  for (auto& l : lines) {
    EXPECT_LE(l.size(), 60u) << l;
    if (l.rfind("kernel", 0) == 0) ++blocks;
    for (size_t at = l.find("CRASH"); at != std::string::npos; at = l.find("CRASH", at + 1)) ++crashes;
    for (size_t at = l.find("pass"); at != std::string::npos; at = l.find("pass", at + 1)) ++passes;
  }
  EXPECT_GE(blocks, 2u) << grid;
  EXPECT_EQ(crashes, 3u) << grid;
  EXPECT_EQ(passes, 3u) << grid;
  // The second kernel's name heads a block or a group in one.
  EXPECT_NE(grid.find("6.17.13"), std::string::npos);
  // Without --sched-args there is no arguments column.
  GridLabels l = grid_labels();
  l.show_sched_args = false;
  l.sched_args = {"(spec)"};
  std::vector<CellResult> two(cells.begin(), cells.begin() + 4);
  std::string plain = render_grid(l, two);
  EXPECT_EQ(plain.find("sched-args"), std::string::npos) << plain;
  EXPECT_EQ(lines_of(plain).size(), 3u) << plain;
}

TEST(GauntletSummary, CountsExitStatusAndJson) {
  auto cells = grid_cells();
  GauntletTally t = tally_cells(cells);
  EXPECT_EQ(summary_line(t), "8 cells: 3 passed, 0 failed, 3 crashed, 2 skipped");
  EXPECT_EQ(gauntlet_exit_status(t), 1);
  std::vector<CellResult> passed(cells.begin(), cells.begin() + 3);
  EXPECT_EQ(gauntlet_exit_status(tally_cells(passed)), 0);
  EXPECT_EQ(summary_line(tally_cells({cells[0]})), "1 cell: 1 passed, 0 failed, 0 crashed, 0 skipped");

  cells[4].test = "tiny";
  cells[4].kernel_ref = "7.3";
  cells[4].kernel_id = "7435b9178e91998f";
  cells[4].kernel_version = "7.3.4+deb13-cloud-amd64";
  cells[4].topology = "1n1l2c1t";
  cells[4].sched_args = {"--fail-after-ms", "300"};
  cells[4].sched_args_from_spec = false;
  cells[4].run_id = 7;
  auto doc = gauntlet_json(cells);
  ASSERT_EQ(doc["cells"].size(), 8u);
  auto& c = doc["cells"][4];
  EXPECT_EQ(c["verdict"], "crash");
  EXPECT_EQ(c["crash_id"], cells[4].crash_id);
  EXPECT_EQ(c["run_id"], 7);
  EXPECT_EQ(c["kernel"]["ref"], "7.3");
  EXPECT_EQ(c["kernel"]["id"], "7435b9178e91998f");
  EXPECT_EQ(c["topology"], "1n1l2c1t");
  EXPECT_EQ(c["sched_args"], nlohmann::json({"--fail-after-ms", "300"}));
  EXPECT_EQ(c["sched_args_from_spec"], false);
  EXPECT_TRUE(doc["cells"][0]["crash_id"].is_null());
  EXPECT_TRUE(doc["cells"][0]["run_id"].is_null());
  EXPECT_EQ(doc["summary"]["crashed"], 3);
  EXPECT_EQ(doc["summary"]["skipped"], 2);
  EXPECT_EQ(doc["summary"]["cells"], 8);
}

// Bad input through the real binary: status 2, a git-style error and a
// hint, and no store written (the store is opened only once the command
// line and the spec are known good).
class GauntletCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create("ktstr-gauntlet-cli");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    spec_ = dir_->path() + "/g.toml";
    ASSERT_TRUE(write_file_atomic(spec_,
                                  "[[test]]\nname = \"g_eevdf\"\nduration_s = 1\n\n"
                                  "[[test]]\nname = \"g_fixture\"\nscheduler = \"scx-ktstr\"\nduration_s = 1\n"));
  }
  Completed gauntlet(std::vector<std::string> args) {
    args.insert(args.begin(), {std::string(KTSTR_BINARY_DIR) + "/bin/ktstr", "gauntlet"});
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path() + "/cache"};
    auto r = run(args, o, std::chrono::seconds(30));
    EXPECT_TRUE(r.has_value());
    return r ? *r : Completed{};
  }
  void expect_bad(const std::vector<std::string>& args, const std::string& says) {
    auto r = gauntlet(args);
    std::string what;
    for (auto& a : args) what += a + " ";
    EXPECT_EQ(r.status, 2) << what << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("ktstr: error: ", 0), 0u) << what << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << what << "\n" << r.err;
    EXPECT_NE(r.err.find("\nhint: "), std::string::npos) << what << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_FALSE(path_exists(dir_->path() + "/cache/ktstr.db")) << what;
  }
  std::optional<TempDir> dir_;
  std::string spec_;
};

TEST_F(GauntletCli, BadInputIsStatus2WithAHintAndStoresNothing) {
  expect_bad({spec_, "--topo", "1n1l2c1t,2n3l2c1t"}, "--topo");
  expect_bad({spec_, "--topo", "1n1l2c1t,"}, "empty entry");
  expect_bad({spec_, "--topo", ""}, "empty entry");
  expect_bad({spec_, "--kernel", "7.3,,6.17"}, "--kernel");
  expect_bad({spec_, "--test", "g_fixtur"}, "no test named 'g_fixtur'");
  expect_bad({spec_, "--sched-args", "--slice 'x"}, "unterminated quote");
  // Scheduler arguments for a test that runs EEVDF.
  expect_bad({spec_, "--sched-args=-v"}, "eevdf");
  expect_bad({spec_, "--test", "g_fixture", "--jobs", "0"}, "--jobs");
  expect_bad({dir_->path() + "/missing.toml"}, "missing.toml");
  expect_bad({}, "spec");
}

TEST_F(GauntletCli, UnknownKernelIsStatus2AndNothingRuns) {
  auto r = gauntlet({spec_, "--test", "g_fixture", "--kernel", "no-such-kernel"});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("no cached kernel matches 'no-such-kernel'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint: "), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // The store exists now (kernels are looked up in it) but holds no run.
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path() + "/cache"};
  auto runs = run({std::string(KTSTR_BINARY_DIR) + "/bin/ktstr", "runs", "list", "--json"}, o);
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->out, "[]\n") << runs->out << runs->err;
}

TEST_F(GauntletCli, HelpNamesTheAxes) {
  auto r = gauntlet({"--help"});
  EXPECT_EQ(r.status, 0);
  for (auto* opt : {"--topo", "--kernel", "--sched-args", "--jobs", "--json", "--test"})
    EXPECT_NE(r.out.find(opt), std::string::npos) << opt << "\n" << r.out;
}

}  // namespace
}  // namespace ktstr::runner
