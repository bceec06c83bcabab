// `ktstr gauntlet SPEC`: a spec's tests over a matrix of topologies x
// kernels x scheduler arguments, one cell = one run in its own VM through
// the `--jobs` workers (cmd/test_jobs.hpp). This file holds the parts that
// are pure logic (unit tested): the axes read from the command line, the
// matrix, a cell's verdict from its run, the grid, the summary and the
// --json document. cmd_gauntlet.cpp resolves kernels and runs the cells.
#pragma once

#include "core/result.hpp"
#include "core/topology.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::runner {

// The values of a comma-separated list option given once or more (--topo
// a,b --topo c): the entries in order, repeats dropped. An empty entry
// ("a,,b", a trailing comma) or no entry at all is an error naming
// `option`.
Result<std::vector<std::string>> parse_axis(const std::string& option, const std::vector<std::string>& values);

// --topo: parse_axis, then each entry as a topology string.
Result<std::vector<Topology>> parse_topology_axis(const std::vector<std::string>& values);

// One --sched-args value split into words the way a shell would, without
// expanding anything: blanks separate words, '...' is literal, "..." keeps
// blanks and takes \" and \\, a backslash outside quotes escapes the next
// character. An unterminated quote is an error. "" gives no words (the
// scheduler runs without arguments).
Result<std::vector<std::string>> split_sched_args(const std::string& text);

// How the grid and the lines print scheduler arguments: the words joined
// by blanks, a word with a blank or a quote in single quotes; "(none)" when
// there are none.
std::string sched_args_text(const std::vector<std::string>& args);

// A cell's place in the matrix: an index into each axis.
struct CellIndex {
  size_t test = 0, args = 0, kernel = 0, topo = 0;
  bool operator==(const CellIndex&) const = default;
};
// Every cell in the grid's order (rows test x sched-args, then columns
// kernel x topology): the order cells start in and the order --json lists
// them. An axis of size 0 gives no cells.
std::vector<CellIndex> expand_matrix(size_t tests, size_t args, size_t kernels, size_t topos);

enum class Verdict { kPass, kFail, kCrash, kSkip };
const char* verdict_name(Verdict v);  // "pass", "fail", "crash", "skip"

// One cell: what it ran (the axes' values after the spec filled the ones
// left out) and how it ended.
struct CellResult {
  CellIndex at;
  std::string test;
  std::string kernel_ref;                // the --kernel entry, "" for the spec's
  std::string kernel_id, kernel_version;
  std::string topology;
  std::vector<std::string> sched_args;
  bool sched_args_from_spec = true;

  Verdict verdict = Verdict::kSkip;
  // FAIL: the failed check, else the failure kind ("verifier", "panicked",
  // ...); CRASH: the crash id; skip: a short why ("boot", "no sched_ext").
  std::string detail;
  std::string reason;                    // the run's reason, or the skip's whole story
  std::vector<std::string> messages;     // the run's diagnostics
  int64_t run_id = 0;
  std::string crash_id;
  double wall_s = 0;
  // For --junit: the run's failure report (render_failure; "" when it
  // passed or did not run) and the scheduler's log.
  std::string report;
  std::string sched_log;
};

// A cell's verdict from its run (to_json(RunResult), as a worker prints
// it): pass; CRASH when a crash was recorded; skip when the VM never got to
// the guest agent (a boot failure: nothing of the test ran); else FAIL with
// the check (`failed_check`) or the failure kind, or for a VM failure how it
// ended.
void judge_cell(CellResult& c, const nlohmann::json& run);

// What a grid cell shows: "pass", "FAIL max_gap_ms", "CRASH 1a2b3c4d" (the
// crash id's first 8 digits, a unique prefix for `ktstr crash show`),
// "skip boot". At most kMaxCellText characters.
inline constexpr size_t kMaxCellText = 28;
std::string cell_text(const CellResult& c);

// The line printed when a cell ends, and after the grid for every cell
// that did not pass: verdict, time, the cell's test and axes, run and
// crash ids, and for a failure its reason.
std::string cell_line(const CellResult& c);

// The grid's labels, one per axis entry. An axis left out is one entry,
// "(spec)" unless every test has the same value there.
struct GridLabels {
  std::vector<std::string> tests, sched_args, kernels, topologies;
  bool show_sched_args = false;  // --sched-args given: rows name them
};

// The grid: rows test x sched-args, columns kernel x topology; each kernel
// heads its group of topology columns. Columns that do not fit in `width`
// go to another block below (the row labels repeat). `cells` are in
// expand_matrix order.
std::string render_grid(const GridLabels& labels, const std::vector<CellResult>& cells, size_t width = 100);

struct GauntletTally {
  size_t cells = 0, passed = 0, failed = 0, crashed = 0, skipped = 0;
};
GauntletTally tally_cells(const std::vector<CellResult>& cells);
// "N cells: P passed, F failed, C crashed, S skipped"
std::string summary_line(const GauntletTally& t);
// 0 when every cell passed, 1 otherwise (a skipped cell did not pass).
int gauntlet_exit_status(const GauntletTally& t);

// --json: {"cells": [...], "summary": {...}}; each cell with its test,
// sched_args (+ sched_args_from_spec), kernel {ref, id, version}, topology,
// verdict, detail, reason, messages, run_id, crash_id (null when none),
// wall_s.
nlohmann::json gauntlet_json(const std::vector<CellResult>& cells);

}  // namespace ktstr::runner
