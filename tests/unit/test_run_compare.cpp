// core/run_compare: run selectors, per-cgroup metrics from stored results,
// and the comparison of two sets of runs (deltas, significance, per worker).
#include "core/run_compare.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ktstr {
namespace {

// A stored run whose cgroup "cg" has workers running at the given
// iterations per second over 2 s (and one worker of cgroup "other").
RunRecord stored_run(int64_t id, std::vector<double> rates, const std::string& kernel = "7.3.4+deb13-cloud-amd64",
                     const std::string& status = "pass", uint64_t max_gap_ns = 5'000'000) {
  nlohmann::json workers = nlohmann::json::array();
  unsigned i = 0;
  for (double r : rates)
    workers.push_back({{"cgroup", "cg"}, {"index", i++}, {"work", "spin"}, {"iterations", uint64_t(r * 2)},
                       {"cpu_time_ns", 1'900'000'000}, {"wall_ns", 2'000'000'000}, {"migrations", 1},
                       {"max_gap_ns", max_gap_ns}, {"cpus_used", {0}}});
  workers.push_back({{"cgroup", "other"}, {"index", 0}, {"work", "yield"}, {"iterations", 100},
                     {"cpu_time_ns", 1'000'000'000}, {"wall_ns", 2'000'000'000}, {"migrations", 0},
                     {"max_gap_ns", 1'000'000}});
  RunRecord r;
  r.id = id;
  r.test_name = "steady";
  r.scheduler = "/home/u/scx/build/scx_simple";
  r.topology = "1n1l2c1t";
  r.status = status;
  r.kernel_id = "abcdef0123456789";
  r.result_json = nlohmann::json{{"kernel", {{"id", r.kernel_id}, {"version", kernel}}}, {"workers", workers}}.dump();
  return r;
}

RunStats stats(const RunRecord& r) {
  auto s = run_stats(r);
  EXPECT_TRUE(s) << s.error().msg;
  return *s;
}

const MetricComparison* metric(const RunComparison& c, const std::string& cg, const std::string& name) {
  for (const auto& m : c.metrics)
    if (m.cgroup == cg && m.metric == name) return &m;
  return nullptr;
}

TEST(RunSelector, IdsRangesListsAndFilters) {
  auto s = parse_run_selector("12..14,3,13");
  ASSERT_TRUE(s) << s.error().msg;
  EXPECT_EQ(s->ids, (std::vector<int64_t>{3, 12, 13, 14}));
  auto f = parse_run_selector("kernel=7.3,scheduler=scx_simple");
  ASSERT_TRUE(f);
  ASSERT_EQ(f->filters.size(), 2u);
  EXPECT_EQ(f->filters[1], (std::pair<std::string, std::string>{"scheduler", "scx_simple"}));
}

TEST(RunSelector, BadSelectorsSayWhatIsWrong) {
  EXPECT_NE(parse_run_selector("").error().msg.find("empty"), std::string::npos);
  EXPECT_NE(parse_run_selector("12..x").error().msg.find("'x' is not a run id"), std::string::npos);
  EXPECT_NE(parse_run_selector("9..3").error().msg.find("is empty"), std::string::npos);
  EXPECT_NE(parse_run_selector("colour=red").error().msg.find("unknown filter 'colour'"), std::string::npos);
  EXPECT_NE(parse_run_selector("kernel=").error().msg.find("has no value"), std::string::npos);
  EXPECT_NE(parse_run_selector("3,kernel=7.3").error().msg.find("mixes"), std::string::npos);
  EXPECT_NE(parse_run_selector("1,,2").error().msg.find("empty item"), std::string::npos);
  EXPECT_FALSE(parse_run_selector("1..100000"));
}

TEST(RunSelector, FiltersMatchKernelPrefixAndSchedulerBasename) {
  auto r = stats(stored_run(5, {100}));
  EXPECT_TRUE(selector_matches(*parse_run_selector("kernel=7.3"), r));
  EXPECT_TRUE(selector_matches(*parse_run_selector("kernel=abcdef"), r));  // id prefix
  EXPECT_FALSE(selector_matches(*parse_run_selector("kernel=7.2"), r));
  EXPECT_TRUE(selector_matches(*parse_run_selector("scheduler=scx_simple,test=steady"), r));
  EXPECT_FALSE(selector_matches(*parse_run_selector("scheduler=scx_simple,test=other"), r));
  EXPECT_TRUE(selector_matches(*parse_run_selector("4..6"), r));
  EXPECT_FALSE(selector_matches(*parse_run_selector("6"), r));
}

TEST(RunCompare, CgroupMetricsFromWorkers) {
  auto r = stats(stored_run(1, {100, 300}, "7.3", "pass", 7'000'000));
  std::vector<const WorkerStats*> cg;
  for (auto& w : r.workers)
    if (w.cgroup == "cg") cg.push_back(&w);
  auto m = cgroup_metrics(cg);
  ASSERT_EQ(m.size(), 6u);
  EXPECT_EQ(m[0], (std::pair<std::string, double>{"workers", 2}));
  EXPECT_NEAR(m[1].second, 400, 1e-9);   // iterations_per_s: the sum
  EXPECT_NEAR(m[2].second, 95, 1e-9);    // cpu_pct: mean of 1.9 s / 2 s
  EXPECT_NEAR(m[3].second, 7, 1e-9);     // max_gap_ms
  EXPECT_NEAR(m[4].second, 2, 1e-9);     // migrations: the sum
  EXPECT_NEAR(m[5].second, 100, 1e-9);   // spread_pct: (300 - 100) / 200
}

TEST(RunCompare, CounterMetricsAreRatesAndWorstLatencies) {
  WorkerStats a, b;
  a.cgroup = b.cgroup = "sleepers";
  a.wall_ns = b.wall_ns = 2'000'000'000;
  a.counters = {{"wakeups", 1000}, {"wake_latency_p99_ns", 250'000}, {"wake_latency_max_ns", 900'000}};
  b.counters = {{"wakeups", 600}, {"wake_latency_p99_ns", 1'500'000}, {"wake_latency_max_ns", 2'000'000}};
  auto m = cgroup_metrics({&a, &b});
  ASSERT_EQ(m.size(), 9u);
  EXPECT_EQ(m[6], (std::pair<std::string, double>{"wakeups_per_s", 800}));  // (1000 + 600) / 2 s
  EXPECT_EQ(m[7], (std::pair<std::string, double>{"wake_latency_max_us", 2000}));
  EXPECT_EQ(m[8], (std::pair<std::string, double>{"wake_latency_p99_us", 1500}));
}

TEST(RunCompare, RepeatsGiveSignificanceOnlyWhereTheRunsDiffer) {
  std::vector<RunStats> a, b;
  double jitter[] = {-2, 1, 0, 2, -1};
  for (int i = 0; i < 5; ++i) {
    a.push_back(stats(stored_run(i + 1, {1000 + jitter[i], 1000 - jitter[i]})));
    b.push_back(stats(stored_run(i + 10, {1200 + jitter[i], 1200 + jitter[(i + 2) % 5]}, "6.17.13")));
  }
  auto c = compare_runs(a, b);
  auto* rate = metric(c, "cg", "iterations_per_s");
  ASSERT_NE(rate, nullptr);
  EXPECT_EQ(rate->a.n, 5u);
  EXPECT_NEAR(rate->delta, 400, 5);
  ASSERT_TRUE(rate->delta_pct);
  EXPECT_NEAR(*rate->delta_pct, 20, 0.3);
  ASSERT_TRUE(rate->test);
  EXPECT_TRUE(rate->significant) << rate->test->p;
  auto* other = metric(c, "other", "iterations_per_s");  // the same on both sides
  ASSERT_NE(other, nullptr);
  EXPECT_FALSE(other->significant);
  EXPECT_TRUE(c.workers.empty());  // per worker only for one run per side
  auto text = render_comparison(c, "A: x", "B: y");
  EXPECT_NE(text.find("significant"), std::string::npos) << text;
  auto j = to_json(c);
  EXPECT_EQ(j["b_runs"].size(), 5u);
  EXPECT_TRUE(j["metrics"][0].contains("p_value"));
}

TEST(RunCompare, SingleRunsCompareWorkersAndSayWhySignificanceIsMissing) {
  auto c = compare_runs({stats(stored_run(1, {100, 200}))}, {stats(stored_run(2, {150}))});
  ASSERT_EQ(c.workers.size(), 3u);  // cg/0, cg/1 (only in A), other/0
  EXPECT_EQ(c.workers[1].cgroup, "cg");
  EXPECT_EQ(c.workers[1].index, 1u);
  EXPECT_TRUE(c.workers[1].a);
  EXPECT_FALSE(c.workers[1].b);
  for (const auto& m : c.metrics) EXPECT_FALSE(m.test) << m.metric;
  ASSERT_FALSE(c.notes.empty());
  EXPECT_NE(c.notes.back().find("at least 2 runs"), std::string::npos);
  EXPECT_NE(render_comparison(c, "A", "B").find("absent"), std::string::npos);
}

TEST(RunCompare, UnreadableResultIsAnError) {
  RunRecord r;
  r.id = 9;
  r.result_json = "not json";
  EXPECT_FALSE(run_stats(r));
}

}  // namespace
}  // namespace ktstr
