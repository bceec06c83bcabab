// `ktstr bisect --kernel-range` on a ladder of at least three prebuilt kernel
// versions: a scheduler (tests/sched/bisect/ with CRASH_FROM_KERNEL) that
// crashes only on kernels of a given version or newer (libbpf's
// LINUX_KERNEL_VERSION), so the culprit is the first version at or above it.
// Slow: it may fetch a kernel series the default store lacks.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace ktstr::testing {
namespace {

const std::string kFixtureDir = std::string(KTSTR_SOURCE_DIR) + "/tests/sched/bisect";
const std::string kTinyDir = std::string(KTSTR_SOURCE_DIR) + "/tests/sched";

std::vector<int> parts(const std::string& v) {
  std::vector<int> out;
  std::stringstream in(v);
  std::string p;
  while (std::getline(in, p, '.')) out.push_back(std::atoi(p.c_str()));
  return out;
}

std::string upstream(const std::string& release) {
  size_t n = release.find_first_not_of("0123456789.");
  return release.substr(0, n == std::string::npos ? release.size() : n);
}

TEST(BisectKernels, FirstVersionWithTheFeature) {
  KTSTR_VM_STORE(store);
  auto env = [&] {
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + store.path() + "/cache"};
    return o;
  };
  auto ktstr = [&](std::vector<std::string> a, std::chrono::minutes limit) {
    a.insert(a.begin(), kKtstrBin);
    auto r = run(a, env(), limit);
    EXPECT_TRUE(r);
    return r ? *r : Completed{-1, "", ""};
  };
  // Every sched_ext kernel of the default store, then the series still missing.
  auto all = run({kKtstrBin, "kernel", "list", "--json"});
  ASSERT_TRUE(all);
  auto j = nlohmann::json::parse(all->out, nullptr, false);
  if (j.is_array())
    for (auto& k : j)
      if (k.value("sched_ext", false) && !k.value("corrupt", true)) ktstr({"kernel", "add", k.value("image", "")}, std::chrono::minutes(5));
  auto versions_now = [&] {
    std::vector<std::string> v;
    auto l = ktstr({"kernel", "list", "--json"}, std::chrono::minutes(1));
    auto lj = nlohmann::json::parse(l.out, nullptr, false);
    if (lj.is_array())
      for (auto& k : lj)
        if (k.value("sched_ext", false)) v.push_back(upstream(k.value("version", "")));
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) { return parts(a) < parts(b); });
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  };
  for (const char* series : {"6.17", "7.2", "7.3"}) {
    auto v = versions_now();
    if (std::any_of(v.begin(), v.end(), [&](auto& x) { return x.rfind(std::string(series) + ".", 0) == 0; })) continue;
    auto f = ktstr({"kernel", "fetch", series}, std::chrono::minutes(20));
    if (f.status != 0) std::fprintf(stderr, "kernel fetch %s failed: %s\n", series, f.err.c_str());
  }
  auto versions = versions_now();
  KTSTR_VM_REQUIRE(versions.size() >= 3, "fewer than three sched_ext kernel versions could be cached");

  // The ladder: first .. last, every sched_ext cloud kernel the archive
  // offers in between (more than are cached); the crash arms from the second
  // cached version's series on, so the culprit is the first offered version
  // of that series, which may be older than the cached one.
  auto p = parts(versions[1]);
  const std::vector<int> threshold = {p[0], p[1]};
  std::string build = store.path() + "/ladder";
  ASSERT_TRUE(make_dirs(build));
  for (auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {kFixtureDir + "/scx_tiny.bpf.c", "scx_tiny.bpf.c"}, {kFixtureDir + "/build.sh", "build.sh"},
           {kTinyDir + "/scx_tiny.cpp", "scx_tiny.cpp"}, {kTinyDir + "/scx_tiny_common.h", "scx_tiny_common.h"}})
    ASSERT_TRUE(write_file_atomic(build + "/" + to, read_file(from).value_or("")));
  ASSERT_TRUE(write_file_atomic(build + "/bisect_knobs.h",
                                "#define CRASH_PCT 0\n#define OTHER_CRASH 0\n#define BROKEN 0\n"
                                "#define CRASH_FROM_KERNEL KERNEL_VERSION(" +
                                    std::to_string(p[0]) + ", " + std::to_string(p[1]) + ", 0)\n"));
  SpawnOptions bo;
  bo.cwd = build;
  auto b = run({"sh", "build.sh", KTSTR_TEST_CLANG, KTSTR_TEST_BPFTOOL, KTSTR_TEST_BPF_INCLUDE,
                KTSTR_TEST_LIBBPF_INCLUDE, KTSTR_TEST_LIBBPF_A},
               bo, std::chrono::minutes(10));
  ASSERT_TRUE(b && b->ok()) << (b ? b->err : b.error().msg);
  std::string spec = store.path() + "/ladder.toml";
  ASSERT_TRUE(write_file_atomic(spec, "[[test]]\nname = \"ladder\"\nscheduler = \"" + build +
                                          "/build/scx_bisect\"\ntopology = \"1n1l2c1t\"\nduration_s = 2\n"));

  auto t0 = std::chrono::steady_clock::now();
  auto r = ktstr({"bisect", "--json", "--signature", "bisect: injected crash", "--spec", spec, "--kernel-range",
                  versions.front() + ".." + versions.back()},
                 std::chrono::minutes(40));
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 0) << r.err;
  auto res = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(res.is_object()) << r.out << r.err;
  EXPECT_EQ(res.value("state", ""), "found") << res.dump(2);
  ASSERT_TRUE(res["culprit"].is_object()) << res.dump(2);
  // The first version at or above the threshold: it is, and the version
  // before it on the ladder (its "parent", verified good) is not.
  const std::string culprit = res["culprit"].value("id", "");
  EXPECT_GE(parts(culprit), threshold) << res.dump(2);
  ASSERT_TRUE(res["verify"]["parents"].is_array() && res["verify"]["parents"].size() == 1) << res.dump(2);
  const std::string parent = res["verify"]["parents"][0].value("commit", "");
  EXPECT_LT(parts(parent), threshold) << res.dump(2);
  EXPECT_EQ(res["verify"]["parents"][0].value("bad", -1), 0) << res.dump(2);
  EXPECT_TRUE(res["verify"].value("ok", false)) << res.dump(2);
  auto log = ktstr({"bisect", "log", std::to_string(res.value("session", 0)), "--json"}, std::chrono::minutes(1));
  auto lj = nlohmann::json::parse(log.out, nullptr, false);
  ASSERT_TRUE(lj.is_object());
  for (auto& s : lj["steps"]) {
    std::string v = s.value("commit", "");
    bool has = parts(v) >= threshold;
    EXPECT_EQ(s.value("verdict", ""), has ? "bad" : "good") << s.dump();
  }
  std::printf("[bisect figures] kernel ladder %s..%s: runs %d, wall %.0f s\n", versions.front().c_str(),
              versions.back().c_str(), res.value("runs", 0), wall);
}

}  // namespace
}  // namespace ktstr::testing
