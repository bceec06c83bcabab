// `ktstr kernel build` for real (labels vm;slow): Debian's linux-source for
// the default kernel's series, imported into a git repository with libgit2;
// a whole build from a commit, the crash demo (with auto-repro: probes on
// the crash chain) on the built kernel, then a one-line commit under
// kernel/sched/ rebuilt incrementally in the shared build directory, and the
// same commit again: a cache hit. Prints the three times.
//
// KTSTR_KBUILD_TEST_DIR: keep the repository and the store there (reused by
// a later run, and by the boot benchmark) instead of a temporary directory.
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "vm/vm_env.hpp"
#include "vm/vm_store.hpp"

#include <git2.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace ktstr::testing {
namespace {

namespace fs = std::filesystem;

const std::string kDemo = std::string(KTSTR_SOURCE_DIR) + "/tests/demo/crash_demo.toml";

void check_git(int rc, const char* what) {
  if (rc != 0) {
    const git_error* e = git_error_last();
    throw std::runtime_error(std::string(what) + ": " + (e && e->message ? e->message : "libgit2 error"));
  }
}

// `paths` (every file of the work tree when empty, .gitignore files or not)
// into the index, then a commit on HEAD. Returns the commit id.
std::string commit_paths(git_repository* repo, const std::string& work_tree, std::vector<std::string> paths,
                         const std::string& message) {
  if (paths.empty()) {
    for (auto it = fs::recursive_directory_iterator(work_tree); it != fs::recursive_directory_iterator(); ++it) {
      if (it.depth() == 0 && it->path().filename() == ".git") {
        it.disable_recursion_pending();
        continue;
      }
      if (it->is_symlink() || it->is_regular_file()) paths.push_back(it->path().lexically_relative(work_tree).string());
    }
  }
  git_index* index = nullptr;
  check_git(git_repository_index(&index, repo), "git_repository_index");
  for (const auto& p : paths) check_git(git_index_add_bypath(index, p.c_str()), ("git_index_add_bypath " + p).c_str());
  check_git(git_index_write(index), "git_index_write");
  git_oid tree_id;
  check_git(git_index_write_tree(&tree_id, index), "git_index_write_tree");
  git_index_free(index);
  git_tree* tree = nullptr;
  check_git(git_tree_lookup(&tree, repo, &tree_id), "git_tree_lookup");
  git_signature* sig = nullptr;
  check_git(git_signature_now(&sig, "ktstr test", "test@ktstr.invalid"), "git_signature_now");
  git_oid parent_id;
  git_commit* parent = nullptr;
  if (git_reference_name_to_id(&parent_id, repo, "HEAD") == 0)
    check_git(git_commit_lookup(&parent, repo, &parent_id), "git_commit_lookup");
  const git_commit* parents[] = {parent};
  git_oid id;
  check_git(git_commit_create(&id, repo, "HEAD", sig, sig, nullptr, message.c_str(), tree, parent ? 1 : 0, parents),
            "git_commit_create");
  if (parent) git_commit_free(parent);
  git_signature_free(sig);
  git_tree_free(tree);
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &id);
  return hex;
}

std::string series_of(const std::string& release) {
  std::string v = kbuild::upstream_version(release);
  return v.substr(0, v.find('.', v.find('.') + 1));
}

// The kernel `ktstr test` uses by default: the newest cached version with sched_ext.
std::string newest_kernel_image() {
  auto r = run({kKtstrBin, "kernel", "list", "--json"});
  if (!r || !r->ok()) return "";
  auto j = nlohmann::json::parse(r->out, nullptr, false);
  if (!j.is_array()) return "";
  std::string image, version;
  for (auto& k : j) {
    if (!k.value("sched_ext", false) || k.value("corrupt", true)) continue;
    std::string v = kbuild::upstream_version(k.value("version", ""));
    if (image.empty() || kbuild::compare_versions(v, version) > 0) image = k.value("image", ""), version = v;
  }
  return image;
}

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
  if (!path_exists(repo_dir + "/.git")) {
    auto store = db::Store::open(cache);
    ASSERT_TRUE(store) << store.error().msg;
    auto tarball = kbuild::fetch_debian_linux_source(**store, series, root + "/deb");
    ASSERT_TRUE(tarball) << tarball.error().msg << "\nhint: " << tarball.error().hint;
    ASSERT_TRUE(make_dirs(repo_dir));
    auto tar = run({"tar", "-xJf", *tarball, "-C", repo_dir, "--strip-components=1"}, {}, std::chrono::minutes(20));
    ASSERT_TRUE(tar && tar->ok()) << (tar ? tar->err : tar.error().msg);
    (void)remove_tree(root + "/deb");
    git_repository* repo = nullptr;
    check_git(git_repository_init(&repo, repo_dir.c_str(), 0), "git_repository_init");
    commit_paths(repo, repo_dir, {}, "linux-source-" + series + " from Debian");
    git_repository_free(repo);
  }
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
