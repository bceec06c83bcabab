// `ktstr runs list|show|compare` through the real binary on a store this test
// fills with runs (the same rows `ktstr test` writes).
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace ktstr {
namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
constexpr uint64_t kRunFiveSeed = 18446744073709551557ull;  // above INT64_MAX

class RunsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create("ktstr-runs-cli");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    auto store = db::Store::open(dir_->path());
    ASSERT_TRUE(store) << store.error().msg;
    // Runs 1-4 on 7.3 at ~1000 iterations/s per worker, 5-8 on 6.17 at ~1300.
    int jitter[] = {-3, 2, 0, 1};
    for (int i = 0; i < 8; ++i) {
      bool old = i >= 4;
      double rate = (old ? 1300 : 1000) + jitter[i % 4];
      nlohmann::json w = nlohmann::json::array();
      for (unsigned k = 0; k < 2; ++k)
        w.push_back({{"cgroup", "steady"}, {"index", k}, {"work", "spin"}, {"iterations", uint64_t(rate * 2)},
                     {"cpu_time_ns", 1'950'000'000}, {"wall_ns", 2'000'000'000}, {"migrations", 0},
                     {"max_gap_ns", 4'000'000}});
      RunRecord r;
      r.test_name = "steady_1n1l2c1t";
      r.kernel_id = old ? "bfb355690f89491e" : "7435b9178e91998f";
      r.scheduler = "scx-ktstr";
      r.topology = "1n1l2c1t";
      r.status = "pass";
      r.started_at = 1'700'000'000 + i;
      nlohmann::json result = {{"kernel", {{"id", r.kernel_id},
                                           {"version", old ? "6.17.13+deb13-cloud-amd64" : "7.3.4+deb13-cloud-amd64"}}},
                               {"workers", w}};
      if (i == 4) result["seed"] = kRunFiveSeed;  // runs 1-4 were stored before seeds existed
      r.result_json = result.dump();
      ASSERT_TRUE((*store)->add_run(r));
    }
    RunRecord crashed;
    crashed.test_name = "crash_demo";
    crashed.status = "fail";
    crashed.started_at = 1'700'000'100;
    crashed.result_json = "{}";
    ASSERT_TRUE((*store)->add_run(crashed));
  }

  Completed ktstr(std::vector<std::string> args) {
    args.insert(args.begin(), kKtstr);
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path()};
    auto r = run(args, o, std::chrono::seconds(60));
    EXPECT_TRUE(r);
    return r ? *r : Completed{-1, "", ""};
  }

  void expect_bad_input(const std::vector<std::string>& args, const std::string& what) {
    auto r = ktstr(args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_EQ(r.err.rfind("ktstr: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("\nhint: "), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }

  std::optional<TempDir> dir_;
};

TEST_F(RunsCli, ListNewestFirstWithFilters) {
  auto all = ktstr({"runs", "list", "--json"});
  ASSERT_EQ(all.status, 0) << all.err;
  auto j = nlohmann::json::parse(all.out);
  ASSERT_EQ(j.size(), 9u);
  EXPECT_EQ(j[0].value("test", ""), "crash_demo");
  auto old = nlohmann::json::parse(ktstr({"runs", "list", "kernel=6.17", "--json"}).out);
  ASSERT_EQ(old.size(), 4u);
  for (auto& r : old) EXPECT_GE(r.value("id", 0), 5);
  auto text = ktstr({"runs", "list", "--limit", "2"});
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 3) << text.out;  // header + 2
}

TEST_F(RunsCli, CompareTwoKernelsOverRepeats) {
  auto r = ktstr({"runs", "compare", "kernel=7.3", "kernel=6.17", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["a_runs"], (nlohmann::json{1, 2, 3, 4}));
  EXPECT_EQ(j["b_runs"], (nlohmann::json{5, 6, 7, 8}));
  bool seen = false;
  for (auto& m : j["metrics"]) {
    if (m.value("metric", "") == "iterations_per_s") {
      seen = true;
      EXPECT_NEAR(m.value("delta_pct", 0.0), 30, 0.5) << m.dump();
      EXPECT_TRUE(m.value("significant", false)) << m.dump();
      EXPECT_LT(m.value("p_value", 1.0), 0.001) << m.dump();
    }
    if (m.value("metric", "") == "cpu_pct") {
      EXPECT_FALSE(m.value("significant", true)) << m.dump();
    }
  }
  EXPECT_TRUE(seen) << r.out;
  auto text = ktstr({"runs", "compare", "1..4", "5,6,7,8"});
  EXPECT_NE(text.out.find("iterations_per_s"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("significant"), std::string::npos) << text.out;
}

TEST_F(RunsCli, ShowOneRun) {
  auto r = ktstr({"runs", "show", "5"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("6.17.13+deb13-cloud-amd64"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("iterations_per_s"), std::string::npos) << r.out;
  auto j = nlohmann::json::parse(ktstr({"runs", "show", "5", "--json"}).out);
  EXPECT_EQ(j.value("run_id", 0), 5);
  EXPECT_EQ(j["workers"].size(), 2u);
  // The run's seed, and how to run it again.
  EXPECT_NE(r.out.find("\nseed 18446744073709551557 (replay: ktstr test --seed 18446744073709551557)\n"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(j["seed"].get<uint64_t>(), kRunFiveSeed);
  auto unseeded = ktstr({"runs", "show", "1"});
  ASSERT_EQ(unseeded.status, 0) << unseeded.err;
  EXPECT_EQ(unseeded.out.find("seed"), std::string::npos) << unseeded.out;
}

TEST_F(RunsCli, BadInput) {
  expect_bad_input({"runs", "compare", "1..x", "2"}, "'x' is not a run id");
  expect_bad_input({"runs", "compare", "1", "42"}, "no run 42 in the store");
  expect_bad_input({"runs", "compare", "kernel=9.9", "1"}, "no stored run matches 'kernel=9.9'");
  expect_bad_input({"runs", "compare", "colour=red", "1"}, "unknown filter 'colour'");
  expect_bad_input({"runs", "show", "77"}, "no run 77");
  expect_bad_input({"runs", "frobnicate"}, "'frobnicate' is not a runs command");
}

}  // namespace
}  // namespace ktstr
