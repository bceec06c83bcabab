// Comparing stored runs (`ktstr runs compare A B`): the per-cgroup metrics of
// two sets of runs side by side, their deltas, and over repeats whether each
// difference is significant (Welch's t-test); per worker when both sides are
// one run. Also the run selectors A and B. Pure logic on RunRecords: the
// store and the printing of lists live in cmd/.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "core/run_result.hpp"
#include "core/stats.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ktstr {

// A side of a comparison: run ids ("17", "12..17", "12,14,15") or filters
// ("kernel=7.3", "scheduler=scx_simple,test=steady"; keys test, kernel
// (version or id prefix), scheduler (name, path or basename), topology, status).
struct RunSelector {
  std::vector<int64_t> ids;
  std::vector<std::pair<std::string, std::string>> filters;
  std::string text;  // as given
};

Result<RunSelector> parse_run_selector(const std::string& text);

// The stats of one stored run, read back from its result JSON.
struct RunStats {
  int64_t run_id = 0;
  std::string test_name, scheduler, topology, status, kernel_id, kernel_version;
  std::vector<WorkerStats> workers;
};

Result<RunStats> run_stats(const RunRecord& r);
bool selector_matches(const RunSelector& s, const RunStats& r);

struct MetricComparison {
  std::string cgroup;
  std::string metric;                 // "iterations_per_s", "cpu_pct", ...
  SampleSummary a, b;                 // over the runs of each side
  double delta = 0;                   // b.mean - a.mean
  std::optional<double> delta_pct;    // relative to a.mean (none when a.mean is 0)
  std::optional<WelchResult> test;    // with >= 2 runs on both sides
  bool significant = false;           // test && p < alpha
};

struct WorkerComparison {
  std::string cgroup;
  unsigned index = 0;
  std::string work;
  std::optional<WorkerStats> a, b;
};

struct RunComparison {
  std::vector<int64_t> a_runs, b_runs;
  double alpha = 0.05;
  std::vector<MetricComparison> metrics;   // cgroups in name order, metrics in a fixed order
  std::vector<WorkerComparison> workers;   // only when both sides are one run
  std::vector<std::string> notes;          // e.g. different tests on the two sides
};

// The metrics of one cgroup in one run (name, value), in display order:
// workers, iterations_per_s, cpu_pct, max_gap_ms, migrations, spread_pct,
// then the work type's counters when the workers have any: "<counter>_per_s"
// (summed over the workers) and "wake_latency_{max,p50,p99}_us" (the worst).
std::vector<std::pair<std::string, double>> cgroup_metrics(const std::vector<const WorkerStats*>& workers);

RunComparison compare_runs(const std::vector<RunStats>& a, const std::vector<RunStats>& b, double alpha = 0.05);
std::string render_comparison(const RunComparison& c, const std::string& a_label, const std::string& b_label);
nlohmann::json to_json(const RunComparison& c);

}  // namespace ktstr
