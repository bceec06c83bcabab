// Rendering a RunResult the way the recipe shows it: a header line, then
// sections, each present only when relevant. Text comes from captured data.
#pragma once

#include "core/run_result.hpp"

#include <string>

namespace ktstr {

struct ReportOptions {
  bool verbose = false;          // -v / KTSTR_VERBOSE=1: diagnostics on every failure
  size_t console_lines = 40;     // tail length in --- diagnostics ---
};

// "ktstr_test 'name' [sched=..] [topo=..] failed: reason (2.2s into test)"
std::string render_header(const RunResult& r);
std::string render_stats(const RunResult& r);
std::string render_diagnostics(const RunResult& r, const ReportOptions& o);
// The whole failure report (header + relevant sections); empty for a pass.
std::string render_failure(const RunResult& r, const ReportOptions& o);
// sched_ext sections (report_sched.cpp); each is empty when not relevant.
std::string render_bug_summary(const RunResult& r);
std::string render_timeline(const RunResult& r);
std::string render_scheduler_log(const RunResult& r, size_t max_lines = 400);
std::string render_monitor(const RunResult& r);
std::string render_sched_ext_dump(const RunResult& r, size_t max_lines = 400);
std::string render_crash_footer(const RunResult& r);

// One line per test: "PASS [   4.2s] name (topo=1n1l2c1t)".
std::string render_summary_line(const RunResult& r);

}  // namespace ktstr
