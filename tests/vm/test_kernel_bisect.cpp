// `ktstr bisect --kernel-repo` end to end (labels vm;slow): on the imported
// linux-source repository (tests/vm/kernel_repo.hpp), a branch of kCommits
// commits on the import commit, each a harmless one-line change under
// kernel/sched/, except commit kCulprit: it makes scx_bpf_dsq_move_to_local()
// (which the fixture scheduler's ops.dispatch calls on every dispatch) refuse
// with scx_error(), so the fixture dies at once with that message. The bisect
// builds each candidate in the shared build directory, must name the culprit,
// and a second bisect of the same range must build nothing. Prints runs,
// builds and wall time of both.
//
// KTSTR_KBUILD_TEST_DIR: as for test_kernel_build (the same repository and
// store: a whole build of the import commit is found there).
#include "vm/kernel_repo.hpp"
#include "vm/vm_env.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace ktstr::testing {
namespace {

constexpr int kCommits = 6;  // ids[0] is the import (good); ids[1..6] the branch
constexpr int kCulprit = 4;
const char* const kMessage = "ktstr bisect: refused to move tasks from dsq";

// The culprit's change: after the scheduler lookup in the kfunc, refuse.
// Empty when this tree's ext.c does not have the expected shape.
std::string with_culprit(const std::string& ext_c) {
  const std::string fn = "__bpf_kfunc bool scx_bpf_dsq_move_to_local___v2(";
  size_t at = ext_c.find(fn);
  if (at == std::string::npos) return "";
  const std::string check = "\tif (unlikely(!sch))\n\t\treturn false;\n";
  size_t pos = ext_c.find(check, at);
  if (pos == std::string::npos || ext_c.find("\n}\n", at) < pos) return "";
  pos += check.size();
  return ext_c.substr(0, pos) + "\tscx_error(sch, \"" + kMessage + " 0x%llx\", dsq_id);\n\treturn false;\n" +
         ext_c.substr(pos);
}

const char* const kHarmless[] = {"kernel/sched/loadavg.c", "kernel/sched/clock.c", "kernel/sched/cputime.c",
                                 "kernel/sched/stats.c", "kernel/sched/wait.c", "kernel/sched/completion.c"};

nlohmann::json parse(const Completed& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << "no JSON result (status " << r.status << ")\nstdout: " << r.out << "\nstderr: " << r.err;
    return nlohmann::json::object();
  }
  return j;
}

}  // namespace

TEST(KernelBisectSlow, NamesTheKernelCommitAndRebuildsNothingTheSecondTime) {
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
    auto t = TempDir::create("ktstr-kbisect-slow");
    ASSERT_TRUE(t);
    tmp.emplace(std::move(*t));
    root = tmp->path();
  }
  const std::string cache = root + "/cache", repo_dir = root + "/linux";
  auto ktstr = [&](std::vector<std::string> args, std::chrono::minutes limit) {
    args.insert(args.begin(), kKtstrBin);
    SpawnOptions o;
    o.env_extra = {"KTSTR_CACHE_DIR=" + cache};
    auto r = run(args, o, limit);
    return r ? *r : Completed{-1, "", r.error().msg};
  };

  git_libgit2_init();
  const std::string imported = import_linux_source(cache, series, repo_dir, root);
  ASSERT_TRUE(imported.empty()) << imported;
  git_repository* repo = nullptr;
  check_git(git_repository_open(&repo, repo_dir.c_str()), "git_repository_open");

  // The history: the same trees on every run (the import commit plus fixed
  // edits), so a rerun finds every kernel in the cache.
  std::vector<std::string> ids = {root_commit(repo)};
  const std::string ext = "kernel/sched/ext/ext.c";
  const std::string culprit_ext = with_culprit(file_at(repo, ids[0], ext));
  ASSERT_FALSE(culprit_ext.empty()) << "'" << ext << "' of " << series
                                    << " has no scx_bpf_dsq_move_to_local___v2() with a scheduler check";
  std::vector<std::pair<std::string, std::string>> culprit_files;
  for (int i = 1; i <= kCommits; ++i) {
    std::vector<std::pair<std::string, std::string>> files;
    std::string subject;
    if (i == kCulprit) {
      files = {{ext, culprit_ext}};
      subject = "sched_ext: refuse scx_bpf_dsq_move_to_local()";
    } else {
      const std::string path = kHarmless[i - 1];
      std::string text = file_at(repo, ids.back(), path);
      ASSERT_FALSE(text.empty()) << path;
      files = {{path, text + "/* ktstr bisect fixture: step " + std::to_string(i) + " */\n"}};
      subject = "sched: a harmless change " + std::to_string(i);
    }
    ids.push_back(commit_files_on(repo, ids.back(), files, subject, "refs/heads/ktstr-bisect"));
  }
  git_repository_free(repo);

  const std::string spec = root + "/kernel_bisect.toml";
  ASSERT_TRUE(write_file_atomic(spec,
                                "[[test]]\nname = \"kernel_bisect\"\nscheduler = \"scx-ktstr\"\n"
                                "topology = \"1n1l2c1t\"\nscenario = \"custom_crash_light\"\nduration_s = 3\n"));
  const std::vector<std::string> args = {"bisect",      "--json",         "--signature", kMessage, "--spec", spec,
                                         "--kernel-repo", repo_dir,       "--good",      ids[0],   "--bad",  ids.back(),
                                         "--confirm-runs", "1"};

  struct Figures {
    nlohmann::json res;
    double wall = 0;
  };
  auto bisect = [&](const char* what) {
    Figures f;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = ktstr(args, std::chrono::minutes(300));
    f.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    f.res = parse(r);
    EXPECT_EQ(r.status, 0) << what << ": " << r.err;
    EXPECT_EQ(f.res.value("state", ""), "found") << what << ": " << f.res.dump(2) << "\n" << r.err;
    EXPECT_TRUE(f.res.contains("culprit") && f.res["culprit"].is_object()) << f.res.dump(2);
    if (f.res.contains("culprit") && f.res["culprit"].is_object()) {
      EXPECT_EQ(f.res["culprit"].value("id", ""), ids[kCulprit]) << what << ": " << f.res.dump(2);
      EXPECT_EQ(f.res["culprit"].value("subject", ""), "sched_ext: refuse scx_bpf_dsq_move_to_local()");
    }
    // No commit before the culprit ever showed the signature.
    for (auto& e : f.res.value("evidence", nlohmann::json::array()))
      for (int i = 0; i < kCulprit; ++i)
        if (e.value("commit", "") == ids[i]) {
          EXPECT_EQ(e.value("bad", 0), 0) << e.dump();
        }
    std::printf("[kernel bisect figures] %s: runs %d, builds %d, wall %.0f s\n", what, f.res.value("runs", 0),
                f.res.value("builds", 0), f.wall);
    return f;
  };

  Figures first = bisect("first bisect");
  EXPECT_GE(first.res.value("builds", 0), 0);
  Figures second = bisect("second bisect");
  EXPECT_EQ(second.res.value("builds", -1), 0) << "every kernel of the range is cached: " << second.res.dump(2);
  // The steps of the second session say so too.
  auto log = nlohmann::json::parse(ktstr({"bisect", "log", std::to_string(second.res.value("session", 0)), "--json"},
                                         std::chrono::minutes(1)).out, nullptr, false);
  ASSERT_TRUE(log.is_object() && log.contains("steps")) << log.dump();
  for (auto& st : log["steps"]) EXPECT_NE(st.value("build", ""), "built") << st.dump();
  RecordProperty("first_runs", std::to_string(first.res.value("runs", 0)));
  RecordProperty("first_builds", std::to_string(first.res.value("builds", 0)));
  RecordProperty("first_wall_s", std::to_string(first.wall));
  RecordProperty("second_runs", std::to_string(second.res.value("runs", 0)));
  RecordProperty("second_wall_s", std::to_string(second.wall));
}

}  // namespace ktstr::testing
