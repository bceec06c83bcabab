// `ktstr kernel build` for real (labels vm;slow): Debian's linux-source for
// the default kernel's series, imported into a git repository with libgit2;
// a whole build from a commit, the crash demo (with auto-repro: probes on
// the crash chain) on the built kernel, then a one-line commit under
// kernel/sched/ rebuilt incrementally in the shared build directory, and the
// same commit again: a cache hit. Prints the three times.
//
// KTSTR_KBUILD_TEST_DIR: keep the repository and the store there (reused by
// a later run, by test_kernel_bisect and by the boot benchmark) instead of a
// temporary directory. On a shared host, KTSTR_BUILD_LOCK and KTSTR_VM_LOCK
// (inherited by every ktstr this test runs) serialize the builds and the VMs.
#include "vm/kernel_repo.hpp"
#include "vm/vm_env.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace ktstr::testing {
namespace {

namespace fs = std::filesystem;

const std::string kDemo = std::string(KTSTR_SOURCE_DIR) + "/tests/demo/crash_demo.toml";

struct Built {
  nlohmann::json doc;
  int status = -1;
  double wall = 0;
  std::string err;
};

}  // namespace

TEST(KernelBuildSlow, BuildsBootsRebuildsIncrementallyAndHitsTheCache) {
  const std::string image = newest_kernel_image();
  KTSTR_VM_REQUIRE(!image.empty() && !find_in_path("qemu-system-x86_64").empty(),
                   "no cached sched_ext kernel or no qemu-system-x86_64");
  KTSTR_VM_REQUIRE(!find_in_path("apt-get").empty() && !find_in_path("flex").empty() &&
                       !find_in_path("bison").empty() && !find_in_path("pahole").empty(),
                   "apt-get or a kernel build tool (flex, bison, pahole) is missing: run scripts/setup.sh");
  auto release = kbuild::bzimage_version(image);
  ASSERT_TRUE(release) << release.error().msg;
  const std::string series = series_of(*release);

  std::optional<TempDir> tmp;
  std::string root;
  if (const char* keep = std::getenv("KTSTR_KBUILD_TEST_DIR"); keep && *keep) {
    root = keep;
  } else {
    auto t = TempDir::create("ktstr-kbuild-slow");
    ASSERT_TRUE(t);
    tmp.emplace(std::move(*t));
    root = tmp->path();
  }
  const std::string cache = root + "/cache", repo_dir = root + "/linux";
  auto ktstr = [&](std::vector<std::string> args, std::chrono::minutes limit = std::chrono::minutes(15)) {
    args.insert(args.begin(), kKtstrBin);
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + cache};
    auto r = run(args, o, limit);
    return r ? *r : Completed{-1, "", r.error().msg};
  };
  auto build = [&](const std::string& rev) {
    Built b;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = ktstr({"kernel", "build", "--repo", repo_dir, "--commit", rev, "--json"}, std::chrono::minutes(240));
    b.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    b.status = r.status;
    b.err = r.err;
    b.doc = nlohmann::json::parse(r.out, nullptr, false);
    return b;
  };
  ASSERT_EQ(ktstr({"kernel", "add", image}).status, 0);

  // The source, imported once.
  git_libgit2_init();
  const std::string imported = import_linux_source(cache, series, repo_dir, root);
  ASSERT_TRUE(imported.empty()) << imported;
  git_repository* repo = nullptr;
  check_git(git_repository_open(&repo, repo_dir.c_str()), "git_repository_open");

  // 1. The whole build (the first of this repository; later runs with
  // KTSTR_KBUILD_TEST_DIR find it cached).
  Built full = build("HEAD");
  ASSERT_EQ(full.status, 0) << full.err << full.doc.dump(2);
  ASSERT_TRUE(full.doc.value("ok", false)) << full.doc.dump(2);
  const std::string kernel_id = full.doc["kernel"].value("id", "");
  EXPECT_TRUE(full.doc["kernel"].value("sched_ext", false));
  EXPECT_NE(full.doc["kernel"].value("source", "").find("build:" + repo_dir + "@"), std::string::npos);
  auto listed = nlohmann::json::parse(ktstr({"kernel", "list", "--json"}).out, nullptr, false);
  ASSERT_TRUE(listed.is_array());
  bool in_list = false;
  for (const auto& k : listed) in_list = in_list || (k.value("id", "") == kernel_id && !k.value("corrupt", true));
  EXPECT_TRUE(in_list) << listed.dump(2);

  // 2. It boots and the crash demo crashes as on the Debian kernel, with the
  // auto-repro's probes firing on the crash chain.
  auto test = ktstr({"test", "--json", kDemo, "--kernel", kernel_id}, std::chrono::minutes(30));
  auto doc = nlohmann::json::parse(test.out, nullptr, false);
  ASSERT_TRUE(doc.is_object() && doc.contains("tests") && !doc["tests"].empty()) << test.err;
  const auto& t = doc["tests"][0];
  EXPECT_EQ(t.value("kernel_id", kernel_id), kernel_id);
  auto crashes = nlohmann::json::parse(ktstr({"crash", "list", "--json"}).out, nullptr, false);
  ASSERT_TRUE(crashes.is_array() && crashes.size() >= 1) << crashes.dump() << "\n" << test.err;
  bool demo_crash = false;
  for (const auto& c : crashes)
    demo_crash = demo_crash || c.value("message", "").find("host-triggered crash") != std::string::npos;
  EXPECT_TRUE(demo_crash) << crashes.dump(2);
  ASSERT_TRUE(t.contains("repro")) << t.dump(2);
  EXPECT_TRUE(t["repro"].value("trigger_fired", false)) << t["repro"].dump(2);

  // 3. A one-line change under kernel/sched/, committed: an incremental build.
  const std::string file = fs::exists(repo_dir + "/kernel/sched/ext/ext.c") ? "kernel/sched/ext/ext.c"
                                                                              : "kernel/sched/ext.c";
  {
    std::ofstream out(repo_dir + "/" + file, std::ios::app);
    out << "/* ktstr incremental build " << std::time(nullptr) << " */\n";
  }
  const std::string changed = commit_paths(repo, repo_dir, {file}, "sched_ext: a one-line change");
  Built incremental = build(changed);
  ASSERT_EQ(incremental.status, 0) << incremental.err << incremental.doc.dump(2);
  EXPECT_FALSE(incremental.doc.value("cached", true));
  EXPECT_EQ(incremental.doc.value("commit", ""), changed);
  EXPECT_EQ(incremental.doc.value("build_dir", ""), full.doc.value("build_dir", "x"));
  EXPECT_NE(incremental.doc["kernel"].value("id", ""), kernel_id);

  // 4. The same commit again: nothing is built.
  Built hit = build(changed);
  ASSERT_EQ(hit.status, 0) << hit.err;
  EXPECT_TRUE(hit.doc.value("cached", false));
  EXPECT_EQ(hit.doc["kernel"].value("id", ""), incremental.doc["kernel"].value("id", "x"));
  git_repository_free(repo);

  std::printf("kernel build figures (%s, %s):\n", series.c_str(), file.c_str());
  std::printf("  whole build   %8.1f s%s\n", full.wall, full.doc.value("cached", false) ? " (cached by an earlier run)" : "");
  std::printf("  incremental   %8.1f s\n", incremental.wall);
  std::printf("  cache hit     %8.1f s\n", hit.wall);
  RecordProperty("full_build_s", std::to_string(full.wall));
  RecordProperty("incremental_build_s", std::to_string(incremental.wall));
  RecordProperty("cache_hit_s", std::to_string(hit.wall));
}

}  // namespace ktstr::testing
