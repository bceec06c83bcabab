// kbuild/kernel_build around a stand-in kernel tree: its Makefile does what
// kbuild's targets do for this code (allnoconfig writes $(O)/.config from
// KCONFIG_ALLCONFIG; bzImage prints kbuild's quiet lines and puts a real
// bzImage in $(O)/arch/x86/boot), so keys, the cache, sources from a
// directory or a git commit, dirty trees, the required-option check, failed
// builds and rm/gc are tested without a 15-minute kernel build (the `slow`
// VM test builds a real one). Needs a real image: label `kernel`.
#include "core/fs.hpp"
#include "db/kernel_builds.hpp"
#include "git_fixture.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/kernel_build.hpp"
#include "kbuild/kernel_cache.hpp"
#include "tests/vm/vm_env.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace ktstr;
using namespace ktstr::kbuild;
using namespace ktstr::testing;
namespace fs = std::filesystem;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-kernel-build-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

std::string real_image() {
  if (const char* e = std::getenv("KTSTR_TEST_BZIMAGE"); e && *e) return e;
  std::error_code ec;
  for (auto& d : fs::directory_iterator(cache_dir() + "/artifacts/kernels", ec))
    if (fs::exists(d.path() / "bzImage", ec) && bzimage_version((d.path() / "bzImage").string()))
      return (d.path() / "bzImage").string();
  return {};
}

// The stand-in tree. `old` in the tree: kconfig drops SCHED_CLASS_EXT (a
// tree before sched_ext); `broken`: the compile fails. Every bzImage run
// appends to $(COUNT) (outside the tree), so a test sees whether make built.
Files stand_in_tree(const std::string& image, const std::string& count, const std::string& version) {
  const std::string makefile =
      "allnoconfig:\n"
      "\t@mkdir -p $(O)\n"
      "\t@if [ -e old ]; then grep -v SCHED_CLASS_EXT $(KCONFIG_ALLCONFIG); else cat $(KCONFIG_ALLCONFIG); fi"
      " > $(O)/.config\n"
      "\t@echo CONFIG_TRACEPOINTS=y >> $(O)/.config\n"
      "bzImage:\n"
      "\t@echo run >> " + count + "\n"
      "\t@echo '  CC      kernel/sched/build_policy.o'\n"
      "\t@if [ -e broken ]; then echo 'kernel/sched/ext.c:12:3: error: boom'; echo 'make[3]: *** [x] Error 1'; exit 2; fi\n"
      "\t@echo '  LD      vmlinux.o'\n"
      "\t@mkdir -p $(O)/arch/x86/boot && cp " + image + " $(O)/arch/x86/boot/bzImage\n";
  return {{"Makefile", {makefile}}, {"Kconfig", {"# " + version + "\n"}}, {"arch/x86/Kconfig", {"\n"}},
          {"kernel/sched/ext.c", {"int scx;\n"}}};
}

void write_files(const std::string& dir, const Files& files) {
  for (const auto& [path, f] : files) {
    ASSERT_TRUE(make_dirs(fs::path(dir + "/" + path).parent_path().string()));
    ASSERT_TRUE(write_file_atomic(dir + "/" + path, f.content));
  }
}

size_t lines_in(const std::string& path) {
  auto t = read_file(path);
  return t ? static_cast<size_t>(std::count(t->begin(), t->end(), '\n')) : 0;
}

class KernelBuild : public ::testing::Test {
 protected:
  void SetUp() override {
    image_ = real_image();
    KTSTR_VM_REQUIRE(!image_.empty(), "no kernel image: set KTSTR_TEST_BZIMAGE or run 'ktstr kernel fetch'");
    auto s = db::Store::open(tmp_.path() + "/cache");
    ASSERT_TRUE(s) << s.error().msg;
    store_ = std::move(*s);
    count_ = tmp_.path() + "/make-runs";
    files_ = stand_in_tree(image_, count_, "v1");
  }
  Result<KernelBuildResult> build_source(const std::string& dir, const std::string& fragment = "") {
    KernelBuildRequest req;
    req.source_dir = dir;
    req.config_fragment = fragment;
    req.jobs = 1;
    return build_kernel(*store_, req);
  }
  TempDir tmp_ = temp_dir();
  std::string image_, count_;
  Files files_;
  std::unique_ptr<db::Store> store_;
};

}  // namespace

TEST_F(KernelBuild, BuildsOnceRegistersTheKernelWithItsLogAndThenHitsTheCache) {
  const std::string src = tmp_.path() + "/linux";
  write_files(src, files_);
  std::vector<std::string> phases;
  KernelBuildRequest req;
  req.source_dir = src;
  req.name = "mine";
  auto r = build_kernel(*store_, req, [&](const KernelBuildProgress& p) {
    if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
  });
  ASSERT_TRUE(r) << r.error().msg;
  ASSERT_TRUE(r->ok) << r->error_excerpt;
  EXPECT_FALSE(r->cached);
  EXPECT_EQ(lines_in(count_), 1u);
  EXPECT_EQ(r->kernel.source, "build:" + src);
  EXPECT_EQ(r->kernel.name, "mine");
  EXPECT_TRUE(r->kernel.sched_ext);
  EXPECT_EQ(r->build.tree_id.rfind("content:", 0), 0u);
  EXPECT_FALSE(r->build.dirty);
  EXPECT_EQ(phases.front(), "config");
  EXPECT_NE(std::find(phases.begin(), phases.end(), "compile"), phases.end());
  auto log = read_file(kernel_dir(*store_, r->kernel.id) + "/build.log");
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("kernel/sched/build_policy.o"), std::string::npos);
  EXPECT_NE(log->find("allnoconfig"), std::string::npos);
  // The config is the final one: ktstr's fragment went through kconfig.
  auto cfg = read_file(r->kernel.config_path);
  ASSERT_TRUE(cfg);
  EXPECT_NE(cfg->find("CONFIG_SCHED_CLASS_EXT=y"), std::string::npos);
  EXPECT_TRUE(fs::is_directory(build_slot_dir(*store_, src) + "/out"));

  auto again = build_source(src);
  ASSERT_TRUE(again && again->ok);
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(again->kernel.id, r->kernel.id);
  EXPECT_EQ(lines_in(count_), 1u);
  auto found = find_cached_kernel(*store_, "mine");
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->id, r->kernel.id);
}

TEST_F(KernelBuild, ACommitIsCheckedOutUnderTheCacheAndACleanWorkTreeOfItIsTheSameKey) {
  GitFixture git(tmp_.path() + "/repo");
  const std::string c1 = git.commit(files_, {}, "v1", "refs/heads/main");
  Files f2 = files_;
  f2["kernel/sched/ext.c"] = {"int scx = 2;\n"};
  const std::string c2 = git.commit(f2, {c1}, "v2", "refs/heads/main");
  git.checkout_main();
  const std::string before = snapshot(git.dir());

  KernelBuildRequest req;
  req.repo = git.dir();
  req.commit = c1;
  auto r1 = build_kernel(*store_, req);
  ASSERT_TRUE(r1) << r1.error().msg;
  ASSERT_TRUE(r1->ok) << r1->error_excerpt;
  EXPECT_EQ(r1->kernel.source, "build:" + git.dir() + "@" + c1.substr(0, 12));
  EXPECT_EQ(r1->build.commit_id, c1);
  EXPECT_EQ(r1->build.tree_id.size(), 40u);
  auto tree = read_file(r1->build.worktree + "/kernel/sched/ext.c");
  ASSERT_TRUE(tree);
  EXPECT_EQ(*tree, "int scx;\n");

  req.commit = "main";  // c2: another tree, another build in the same build directory
  auto r2 = build_kernel(*store_, req);
  ASSERT_TRUE(r2 && r2->ok);
  EXPECT_FALSE(r2->cached);
  EXPECT_EQ(r2->build.build_dir, r1->build.build_dir);
  EXPECT_EQ(lines_in(count_), 2u);

  // The work tree is at c2 and clean: --source of it is the same tree, a hit.
  auto r3 = build_source(git.dir());
  ASSERT_TRUE(r3) << r3.error().msg;
  EXPECT_TRUE(r3->cached);
  EXPECT_EQ(r3->build.key, r2->build.key);
  EXPECT_EQ(lines_in(count_), 2u);
  EXPECT_EQ(snapshot(git.dir()), before);

  // Dirty: built again, and shown so.
  ASSERT_TRUE(write_file_atomic(git.dir() + "/kernel/sched/ext.c", "int scx = 3;\n"));
  auto r4 = build_source(git.dir());
  ASSERT_TRUE(r4 && r4->ok);
  EXPECT_FALSE(r4->cached);
  EXPECT_TRUE(r4->build.dirty);
  EXPECT_EQ(r4->build.tree_id.rfind("content:", 0), 0u);
  // (The stand-in image is the same bytes every time, so the kernel row keeps
  // its first source; a real build's image differs.)
  EXPECT_EQ(built_kernel_source(r4->build), "build:" + git.dir() + " (dirty)");
}

TEST_F(KernelBuild, TheUserFragmentChangesTheKeyAndCannotDropWhatKtstrNeeds) {
  const std::string src = tmp_.path() + "/linux";
  write_files(src, files_);
  auto base = build_source(src);
  ASSERT_TRUE(base && base->ok);
  ASSERT_TRUE(write_file_atomic(tmp_.path() + "/extra.config", "CONFIG_PRINTK_TIME=n\nCONFIG_LOCALVERSION=\"-x\"\n"));
  auto extra = build_source(src, tmp_.path() + "/extra.config");
  ASSERT_TRUE(extra && extra->ok);
  EXPECT_FALSE(extra->cached);
  EXPECT_NE(extra->build.key, base->build.key);
  EXPECT_NE(extra->build.config_sha256, base->build.config_sha256);

  ASSERT_TRUE(write_file_atomic(tmp_.path() + "/bad.config", "# CONFIG_KPROBES is not set\n"));
  auto bad = build_source(src, tmp_.path() + "/bad.config");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("CONFIG_KPROBES"), std::string::npos) << bad.error().msg;
  ASSERT_TRUE(write_file_atomic(tmp_.path() + "/garbage.config", "KPROBES=y\n"));
  auto garbage = build_source(src, tmp_.path() + "/garbage.config");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().msg.find("garbage.config:1"), std::string::npos) << garbage.error().msg;
  EXPECT_FALSE(build_source(src, tmp_.path() + "/missing.config"));
  EXPECT_EQ(lines_in(count_), 2u);  // none of the refused requests ran make
}

TEST_F(KernelBuild, ATreeWithoutSchedExtIsRefusedNamingTheOption) {
  const std::string src = tmp_.path() + "/linux-6.6";
  write_files(src, files_);
  ASSERT_TRUE(write_file_atomic(src + "/old", ""));
  auto r = build_source(src);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("CONFIG_SCHED_CLASS_EXT"), std::string::npos) << r.error().msg;
  EXPECT_EQ(lines_in(count_), 0u);
  auto kernels = store_->list_kernels();
  ASSERT_TRUE(kernels);
  EXPECT_TRUE(kernels->empty());
}

TEST_F(KernelBuild, AFailedBuildShowsItsFirstErrorsAndKeepsItsLog) {
  const std::string src = tmp_.path() + "/linux";
  write_files(src, files_);
  ASSERT_TRUE(write_file_atomic(src + "/broken", ""));
  auto r = build_source(src);
  ASSERT_TRUE(r) << r.error().msg;
  EXPECT_FALSE(r->ok);
  EXPECT_EQ(r->error_excerpt.find("kernel/sched/ext.c:12:3: error: boom"), 0u) << r->error_excerpt;
  auto log = read_file(r->log_path);
  ASSERT_TRUE(log) << r->log_path;
  EXPECT_NE(log->find("error: boom"), std::string::npos);
  auto kernels = store_->list_kernels();
  ASSERT_TRUE(kernels);
  EXPECT_TRUE(kernels->empty());
  // Fixed: it builds (a failure is not cached).
  std::remove((src + "/broken").c_str());
  auto fixed = build_source(src);
  ASSERT_TRUE(fixed && fixed->ok);
}

TEST_F(KernelBuild, BadRequestsAreErrorsBeforeAnythingIsWritten) {
  EXPECT_FALSE(build_source(tmp_.path() + "/nothing"));
  ASSERT_TRUE(make_dirs(tmp_.path() + "/plain"));
  ASSERT_TRUE(write_file_atomic(tmp_.path() + "/plain/README", "x\n"));
  auto not_kernel = build_source(tmp_.path() + "/plain");
  ASSERT_FALSE(not_kernel);
  EXPECT_NE(not_kernel.error().msg.find("not a Linux source tree"), std::string::npos);
  KernelBuildRequest both;
  both.source_dir = tmp_.path();
  both.repo = tmp_.path();
  EXPECT_FALSE(build_kernel(*store_, both));
  KernelBuildRequest no_commit;
  no_commit.repo = tmp_.path();
  EXPECT_FALSE(build_kernel(*store_, no_commit));
  EXPECT_FALSE(fs::exists(store_->dir() + "/kernel-builds"));
}

TEST_F(KernelBuild, RmAndGcRemoveBuildDirectoriesNoKeptBuildUses) {
  const std::string a = tmp_.path() + "/a", b = tmp_.path() + "/b";
  write_files(a, files_);
  write_files(b, stand_in_tree(image_, count_, "v2"));
  auto ra = build_source(a);
  ASSERT_TRUE(ra && ra->ok);
  auto rb = build_source(b);
  ASSERT_TRUE(rb && rb->ok);
  // Same image bytes, one kernel: two builds point at it.
  ASSERT_EQ(ra->kernel.id, rb->kernel.id);
  const std::string slot_a = build_slot_dir(*store_, a), slot_b = build_slot_dir(*store_, b);
  ASSERT_TRUE(fs::is_directory(slot_a));
  ASSERT_TRUE(fs::is_directory(slot_b));

  auto gone = remove_kernel(*store_, ra->kernel.id);
  ASSERT_TRUE(gone) << gone.error().msg;
  EXPECT_FALSE(fs::exists(slot_a));
  EXPECT_FALSE(fs::exists(slot_b));
  auto rows = db::list_kernel_builds(*store_);
  ASSERT_TRUE(rows);
  EXPECT_TRUE(rows->empty());

  // gc --keep 0 with one built kernel: it and its directory go; --keep 1 keeps it.
  auto again = build_source(a);
  ASSERT_TRUE(again && again->ok);
  EXPECT_FALSE(again->cached);
  auto kept = gc_kernel_builds(*store_, 1);
  ASSERT_TRUE(kept);
  EXPECT_TRUE(fs::is_directory(slot_a));
  auto removed = gc_kernel_builds(*store_, 0);
  ASSERT_TRUE(removed) << removed.error().msg;
  EXPECT_FALSE(removed->empty());
  EXPECT_FALSE(fs::exists(slot_a));
  auto kernels = store_->list_kernels();
  ASSERT_TRUE(kernels);
  EXPECT_TRUE(kernels->empty());
}
