// JUnit XML for CI (`ktstr test --junit FILE`, `ktstr gauntlet --junit
// FILE`): the Ant/Jenkins dialect that GitLab, GitHub Actions' test
// reporters, Jenkins and buildbot read. One <testsuite> per spec file, one
// <testcase> per run: a test, each repetition of --repeat ("name#3"), each
// gauntlet cell ("name [7.3 1n2l4c2t --arg]"). A failed run is a <failure>
// whose message is the report's first line (its BUG SUMMARY when the
// scheduler died, else the header) and whose text is the whole report; the
// scheduler's log is the case's <system-out>. A repetition that never ran
// and a skipped cell are <skipped/>; a cell whose worker failed is an
// <error>. tests/data/junit/junit.xsd is the schema the output keeps to.
#pragma once

#include "run/gauntlet.hpp"
#include "run/units.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr::runner {

enum class CaseOutcome { kPassed, kFailed, kError, kSkipped };

struct JunitCase {
  std::string name;        // unique in its suite
  std::string classname;   // the spec file's name without directory and .toml
  double time_s = 0;
  CaseOutcome outcome = CaseOutcome::kPassed;
  std::string message;     // failed/error: the report's first line; skipped: why
  std::string type;        // failed/error: what failed ("scheduler_died", "max_gap_ms", ...)
  std::string report;      // failed/error: the whole report
  std::string system_out;  // the scheduler's log ("" for EEVDF, or when nothing ran)
};

struct JunitSuite {
  std::string name;        // the spec file, as named on the command line
  std::vector<JunitCase> cases;
};

struct JunitReport {
  int64_t timestamp = 0;   // unix seconds when the run started; 0 writes none
  std::vector<JunitSuite> suites;
  // The suite of `spec_file`, appended when it is new.
  JunitSuite& suite(const std::string& spec_file);
};

// A test's runs (as recorded: WorkerRun::failure set), one case each: the
// test's name alone, or with --repeat "name#i" for repetition i; each of
// the `repeat` repetitions without a run is a skipped case.
void add_test_runs(JunitReport& report, const TestSpec& spec, const std::vector<WorkerRun>& runs, unsigned repeat);

// A gauntlet started at `started`: its cells (expand_matrix order), one
// case each in its test's spec file's suite. `specs`: the gauntlet's tests
// (CellIndex::test).
JunitReport gauntlet_junit(int64_t started, const std::vector<TestSpec>& specs,
                           const std::vector<CellResult>& cells);

// "name [KERNEL TOPOLOGY]", with " ARGS" before the ']' when the cell's
// scheduler arguments are not the spec's. KERNEL: the --kernel entry, else
// the test's kernel reference, else its upstream version.
std::string cell_case_name(const CellResult& c);

// The scheduler's log in a run's result (to_json(RunResult)); "" when none.
std::string scheduler_log_of(const nlohmann::json& result);

// `text` escaped for XML 1.0 character data (attribute = false) or a
// double-quoted attribute value: & < > " ' as entities, in attributes also
// tab, newline and carriage return as character references (a parser would
// turn them into blanks), in text carriage return (a parser would drop it).
// Characters XML 1.0 forbids (C0 controls but tab, newline and carriage
// return; U+FFFE, U+FFFF) and bytes that are not UTF-8 become U+FFFD.
std::string xml_escape(std::string_view text, bool attribute);

// The whole document.
std::string render_junit(const JunitReport& report);

// `--junit FILE`, checked before anything runs: FILE's directory exists and
// is writable, and FILE is not a directory.
Status check_junit_path(const std::string& path);

// render_junit, written atomically (core/fs.hpp).
Status write_junit(const std::string& path, const JunitReport& report);

}  // namespace ktstr::runner
