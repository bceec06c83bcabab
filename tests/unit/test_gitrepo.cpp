// gitrepo::Repo on real repositories written with libgit2, cross-checked
// against the git CLI: revisions, ancestry, ranges (with merges and
// --first-parent), checkouts and reverts that leave the user's repository
// byte for byte as it was.
#include "gitrepo/repo.hpp"

#include "git_fixture.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

using namespace ktstr;
using namespace ktstr::testing;
using gitrepo::Repo;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-gitrepo-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

// c0 - c1 - c2 ----- m - c4 - c5 - c6      (main)
//         \- s1 - s2 /
// c4 changes src/a.c; c5 changes src/b.c (reverting c4 on c5 is clean);
// c6 changes the line c4 changed (reverting c4 on c6 conflicts).
struct History {
  std::string c0, c1, c2, s1, s2, m, c4, c5, c6;
  Files at_c5;
};

History make_history(GitFixture& g) {
  History h;
  Files f = {{"README", {"hello\n"}},
             {"src/a.c", {"int a;\n"}},
             {"tools/run.sh", {"#!/bin/sh\necho run\n", GIT_FILEMODE_BLOB_EXECUTABLE}},
             {"link-to-readme", {"README", GIT_FILEMODE_LINK}}};
  h.c0 = g.commit(f, {}, "c0: initial\n\nwith a body\n");
  f["src/a.c"] = {"int a = 1;\n"};
  h.c1 = g.commit(f, {h.c0}, "c1: a = 1");
  Files main_f = f;
  main_f["src/b.c"] = {"int b;\n"};
  h.c2 = g.commit(main_f, {h.c1}, "c2: add b");
  Files side = f;
  side["docs/x.txt"] = {"x\n"};
  h.s1 = g.commit(side, {h.c1}, "s1: docs");
  side["docs/x.txt"] = {"x2\n"};
  h.s2 = g.commit(side, {h.s1}, "s2: docs again");
  main_f["docs/x.txt"] = {"x2\n"};
  h.m = g.commit(main_f, {h.c2, h.s2}, "m: merge side");
  main_f["src/a.c"] = {"int a = 4;\n"};
  main_f["src/c.txt"] = {"c\n"};
  h.c4 = g.commit(main_f, {h.m}, "c4: a = 4, add c");
  main_f["src/b.c"] = {"int b = 5;\n"};
  h.c5 = g.commit(main_f, {h.c4}, "c5: b = 5");
  h.at_c5 = main_f;
  main_f["src/a.c"] = {"int a = 6;\n"};
  h.c6 = g.commit(main_f, {h.c5}, "c6: a = 6", "refs/heads/main");
  return h;
}

std::unique_ptr<Repo> open_repo(const std::string& path) {
  auto r = Repo::open(path);
  if (!r) throw std::runtime_error(r.error().msg);
  return std::move(*r);
}

std::vector<std::string> ids(const std::vector<gitrepo::CommitInfo>& commits) {
  std::vector<std::string> out;
  for (const auto& c : commits) out.push_back(c.id);
  return out;
}

// "id parent..." lines as `git rev-list --parents` prints them.
std::vector<std::string> parent_lines(const std::vector<gitrepo::CommitInfo>& commits) {
  std::vector<std::string> out;
  for (const auto& c : commits) {
    std::string line = c.id;
    for (const auto& p : c.parents) line += " " + p;
    out.push_back(line);
  }
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Every commit is listed before each of its parents that is listed.
void expect_topological(const std::vector<gitrepo::CommitInfo>& commits) {
  for (size_t i = 0; i < commits.size(); ++i)
    for (const auto& p : commits[i].parents)
      for (size_t j = 0; j < i; ++j) EXPECT_NE(commits[j].id, p) << "parent " << p << " listed before its child";
}

// The files of a tree as `git ls-tree -r` reports them: "mode type id\tpath".
std::vector<std::string> ls_tree(const std::string& repo_dir, const std::string& treeish) {
  return lines_of(git_cli(repo_dir, {"ls-tree", "-r", treeish}).out);
}

// The same lines for a directory on disk, hashing blobs as git does.
std::vector<std::string> ls_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    const auto st = fs::symlink_status(it->path());
    if (fs::is_directory(st)) continue;
    const std::string rel = it->path().lexically_relative(dir).string();
    git_oid oid;
    std::string mode;
    if (fs::is_symlink(st)) {
      const std::string target = fs::read_symlink(it->path()).string();
      git_odb_hash(&oid, target.data(), target.size(), GIT_OBJECT_BLOB);
      mode = "120000";
    } else {
      git_odb_hashfile(&oid, it->path().c_str(), GIT_OBJECT_BLOB);
      mode = (static_cast<int>(st.permissions()) & 0100) ? "100755" : "100644";
    }
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &oid);
    out.push_back(mode + " blob " + hex + "\t" + rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Snapshot of the whole repository directory, .git included.
std::string repo_snapshot(const std::string& dir) { return snapshot(dir); }

class GitRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<GitFixture>(tmp_.path() + "/repo");
    h_ = make_history(*fixture_);
    fixture_->checkout_main();
    repo_ = open_repo(fixture_->dir());
  }
  TempDir tmp_ = temp_dir();
  std::unique_ptr<GitFixture> fixture_;
  History h_;
  std::unique_ptr<Repo> repo_;
};

}  // namespace

TEST_F(GitRepoTest, OpensFromTheTopOrASubdirectoryAndRefusesOtherDirectories) {
  EXPECT_EQ(repo_->path(), std::filesystem::canonical(fixture_->dir()).string());
  auto sub = Repo::open(fixture_->dir() + "/src");
  ASSERT_TRUE(sub) << sub.error().msg;
  EXPECT_EQ((*sub)->path(), repo_->path());

  const std::string plain = tmp_.path() + "/plain";
  ASSERT_TRUE(make_dirs(plain));
  auto none = Repo::open(plain);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().msg, "'" + plain + "' is not a git repository");
  EXPECT_FALSE(none.error().hint.empty());

  auto missing = Repo::open(tmp_.path() + "/missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().msg, "'" + tmp_.path() + "/missing' is not a git repository");
  EXPECT_NE(missing.error().hint.find("does not exist"), std::string::npos) << missing.error().hint;
}

TEST_F(GitRepoTest, ResolvesWhatGitResolves) {
  for (const std::string& rev : std::vector<std::string>{"HEAD", "main", "HEAD~2", "HEAD^", "main~3^2", h_.c4.substr(0, 7), h_.m}) {
    auto ours = repo_->resolve(rev);
    ASSERT_TRUE(ours) << rev << ": " << ours.error().msg;
    auto theirs = git_cli(fixture_->dir(), {"rev-parse", "--verify", rev + "^{commit}"});
    ASSERT_TRUE(theirs.ok()) << theirs.err;
    EXPECT_EQ(*ours + "\n", theirs.out) << rev;
  }
  // An annotated tag peels to its commit.
  ASSERT_TRUE(git_cli(fixture_->dir(), {"tag", "-a", "-m", "v1", "v1", h_.c2}).ok());
  auto tag = repo_->resolve("v1");
  ASSERT_TRUE(tag) << tag.error().msg;
  EXPECT_EQ(*tag, h_.c2);

  auto unknown = repo_->resolve("no-such-branch");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().msg, "unknown revision 'no-such-branch'");
  EXPECT_FALSE(unknown.error().hint.empty());
  auto beyond = repo_->resolve(h_.c0 + "~1");
  ASSERT_FALSE(beyond);
  EXPECT_EQ(beyond.error().msg, "unknown revision '" + h_.c0 + "~1'");

  auto tree = git_cli(fixture_->dir(), {"rev-parse", "HEAD^{tree}"}).out;
  tree.pop_back();
  auto not_commit = repo_->resolve(tree);
  ASSERT_FALSE(not_commit);
  EXPECT_EQ(not_commit.error().msg, "revision '" + tree + "' is not a commit");
}

TEST_F(GitRepoTest, InfoHasParentsTreeSubjectAuthorTime) {
  auto m = repo_->info(h_.m);
  ASSERT_TRUE(m) << m.error().msg;
  EXPECT_EQ(m->id, h_.m);
  EXPECT_EQ(m->parents, (std::vector<std::string>{h_.c2, h_.s2}));
  EXPECT_EQ(m->subject, "m: merge side");
  EXPECT_EQ(m->author, "A U Thor <author@example.com>");
  auto fmt = git_cli(fixture_->dir(), {"log", "-1", "--format=%T%n%s%n%at", h_.c0});
  auto c0 = repo_->info(h_.c0);
  ASSERT_TRUE(c0) << c0.error().msg;
  EXPECT_EQ(c0->tree + "\n" + c0->subject + "\n" + std::to_string(c0->time) + "\n", fmt.out);
  EXPECT_TRUE(c0->parents.empty());
}

TEST_F(GitRepoTest, AncestryMatchesGit) {
  const std::vector<std::string> all = {h_.c0, h_.c1, h_.c2, h_.s1, h_.s2, h_.m, h_.c4, h_.c5, h_.c6};
  int ancestors = 0;
  for (const auto& a : all)
    for (const auto& d : all) {
      auto ours = repo_->is_ancestor(a, d);
      ASSERT_TRUE(ours) << ours.error().msg;
      const bool theirs = git_cli(fixture_->dir(), {"merge-base", "--is-ancestor", a, d}).status == 0;
      EXPECT_EQ(*ours, theirs) << a << " ancestor of " << d;
      ancestors += *ours;
    }
  EXPECT_GT(ancestors, 9);   // not all false
  EXPECT_LT(ancestors, 81);  // not all true
  EXPECT_FALSE(*repo_->is_ancestor(h_.s1, h_.c2));  // a good end that is not an ancestor
  EXPECT_FALSE(repo_->is_ancestor("nope", h_.c2));
}

TEST_F(GitRepoTest, RangeIsRevListParents) {
  struct Case {
    std::string bad;
    std::vector<std::string> good;
  };
  const std::vector<Case> cases = {
      {h_.c6, {h_.c1}}, {h_.c6, {h_.s1}}, {h_.c6, {h_.s1, h_.c2}}, {h_.m, {h_.c0}}, {h_.c6, {}}, {h_.c4, {h_.c4}},
  };
  for (const auto& c : cases) {
    auto ours = repo_->range(c.bad, c.good, false);
    ASSERT_TRUE(ours) << ours.error().msg;
    std::vector<std::string> args = {"rev-list", "--parents", c.bad};
    if (!c.good.empty()) args.push_back("--not");
    args.insert(args.end(), c.good.begin(), c.good.end());
    auto theirs = git_cli(fixture_->dir(), args);
    ASSERT_TRUE(theirs.ok()) << theirs.err;
    // Same commits with the same parents; the order is topological (git's
    // default order differs only among unrelated commits).
    EXPECT_EQ(sorted(parent_lines(*ours)), sorted(lines_of(theirs.out))) << "bad " << c.bad;
    expect_topological(*ours);
    if (!ours->empty()) {
      EXPECT_EQ(ours->front().id, *repo_->resolve(c.bad));
    }
  }
  auto full = repo_->range(h_.c6, {h_.c1}, false);
  EXPECT_EQ(full->size(), 7u);  // c2 s1 s2 m c4 c5 c6
}

TEST_F(GitRepoTest, FirstParentRangeIsRevListFirstParent) {
  const std::vector<std::vector<std::string>> goods = {{h_.c1}, {h_.s1}, {h_.s2}, {h_.c0}};
  for (const auto& good : goods) {
    auto ours = repo_->range("main", good, true);
    ASSERT_TRUE(ours) << ours.error().msg;
    std::vector<std::string> args = {"rev-list", "--first-parent", "main", "--not"};
    args.insert(args.end(), good.begin(), good.end());
    auto theirs = git_cli(fixture_->dir(), args);
    ASSERT_TRUE(theirs.ok()) << theirs.err;
    EXPECT_EQ(ids(*ours), lines_of(theirs.out)) << "good " << good.front();
  }
  auto chain = repo_->range("main", {h_.c1}, true);
  EXPECT_EQ(ids(*chain), (std::vector<std::string>{h_.c6, h_.c5, h_.c4, h_.m, h_.c2}));
  EXPECT_EQ(chain->at(3).parents, (std::vector<std::string>{h_.c2, h_.s2}));  // all parents, first first
}

TEST_F(GitRepoTest, LinearRangeMatchesGitOrderExactly) {
  auto ours = repo_->range(h_.c6, {h_.m}, false);
  ASSERT_TRUE(ours);
  auto theirs = git_cli(fixture_->dir(), {"rev-list", "--parents", h_.c6, "--not", h_.m});
  EXPECT_EQ(parent_lines(*ours), lines_of(theirs.out));
  auto bad_rev = repo_->range("nope", {h_.c0}, false);
  ASSERT_FALSE(bad_rev);
  EXPECT_EQ(bad_rev.error().msg, "unknown revision 'nope'");
  auto bad_good = repo_->range(h_.c6, {"v9"}, false);
  ASSERT_FALSE(bad_good);
  EXPECT_EQ(bad_good.error().msg, "unknown revision 'v9'");
}

TEST_F(GitRepoTest, CheckoutMaterialisesExactlyTheTreeAndLeavesTheRepositoryAlone) {
  // A dirty repository: a modified tracked file, a staged change, an untracked file.
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/src/a.c", "int a = 99; /* local edit */\n"));
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/staged.txt", "staged\n"));
  ASSERT_TRUE(git_cli(fixture_->dir(), {"add", "staged.txt"}).ok());
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/untracked.txt", "mine\n"));
  // (git status refreshes the index's stat data: run it before the snapshot.)
  const std::string status_before = git_cli(fixture_->dir(), {"status", "--porcelain"}).out;
  const std::string before = repo_snapshot(fixture_->dir());

  const std::string out = tmp_.path() + "/cache/checkout";
  ASSERT_TRUE(repo_->checkout_to(h_.c5, out));
  EXPECT_EQ(ls_dir(out), sorted(ls_tree(fixture_->dir(), h_.c5)));
  EXPECT_EQ(std::filesystem::read_symlink(out + "/link-to-readme"), "README");
  EXPECT_NE(std::filesystem::status(out + "/tools/run.sh").permissions() & std::filesystem::perms::owner_exec,
            std::filesystem::perms::none);

  // Refreshing: build outputs and files of the old tree go, the new tree is exact.
  ASSERT_TRUE(write_file_atomic(out + "/build-output.o", "obj"));
  ASSERT_TRUE(repo_->checkout_to(h_.s1, out));
  EXPECT_EQ(ls_dir(out), sorted(ls_tree(fixture_->dir(), h_.s1)));
  EXPECT_FALSE(path_exists(out + "/build-output.o"));
  EXPECT_FALSE(path_exists(out + "/src/b.c"));

  EXPECT_EQ(repo_snapshot(fixture_->dir()), before);
  EXPECT_EQ(git_cli(fixture_->dir(), {"status", "--porcelain"}).out, status_before);
  EXPECT_NE(status_before, "");
}

TEST_F(GitRepoTest, CheckoutRefusesTheRepositoryItself) {
  const std::string before = repo_snapshot(fixture_->dir());
  for (const std::string& dir : std::vector<std::string>{fixture_->dir(), tmp_.path(), fixture_->dir() + "/.git",
                                 fixture_->dir() + "/.git/objects", fixture_->dir() + "/src/.."}) {
    auto st = repo_->checkout_to(h_.c0, dir);
    ASSERT_FALSE(st) << dir;
    EXPECT_NE(st.error().msg.find("repository"), std::string::npos) << st.error().msg;
  }
  EXPECT_EQ(repo_snapshot(fixture_->dir()), before);
  // Inside the work tree is allowed (git sees untracked files).
  EXPECT_TRUE(repo_->checkout_to(h_.c0, fixture_->dir() + "/build/src"));
  EXPECT_EQ(ls_dir(fixture_->dir() + "/build/src"), sorted(ls_tree(fixture_->dir(), h_.c0)));
}

TEST_F(GitRepoTest, RevertMatchesGitRevertAndWritesNothingToTheRepository) {
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/untracked.txt", "mine\n"));
  const std::string before = repo_snapshot(fixture_->dir());
  const std::string out = tmp_.path() + "/cache/verify";

  // git revert in a clone, for the expected trees.
  const std::string clone = tmp_.path() + "/clone";
  ASSERT_TRUE(git_cli(tmp_.path(), {"clone", "-q", fixture_->dir(), clone}).ok());
  auto git_revert_tree = [&](const std::string& onto, const std::string& commit, bool merge) {
    EXPECT_TRUE(git_cli(clone, {"checkout", "-q", "--detach", onto}).ok());
    std::vector<std::string> args = {"revert", "--no-edit"};
    if (merge) args.insert(args.end(), {"-m", "1"});
    args.push_back(commit);
    auto r = git_cli(clone, args);
    EXPECT_TRUE(r.ok()) << r.err;
    auto t = git_cli(clone, {"rev-parse", "HEAD^{tree}"}).out;
    return t.substr(0, t.size() - 1);
  };

  auto tree = repo_->revert_to(h_.c4, h_.c5, out);
  ASSERT_TRUE(tree) << tree.error().msg;
  const std::string expected = git_revert_tree(h_.c5, h_.c4, false);
  EXPECT_EQ(*tree, expected);
  EXPECT_EQ(ls_dir(out), sorted(ls_tree(clone, expected)));
  EXPECT_EQ(*read_file(out + "/src/a.c"), "int a = 1;\n");  // c4's change undone
  EXPECT_EQ(*read_file(out + "/src/b.c"), "int b = 5;\n");  // c5's kept
  EXPECT_FALSE(path_exists(out + "/src/c.txt"));

  // A merge reverts against its first parent (the side branch goes away).
  auto merge_tree = repo_->revert_to(h_.m, h_.c6, out);
  ASSERT_TRUE(merge_tree) << merge_tree.error().msg;
  EXPECT_EQ(*merge_tree, git_revert_tree(h_.c6, h_.m, true));
  EXPECT_FALSE(path_exists(out + "/docs/x.txt"));

  // c6 rewrote the line c4 changed: a conflict, reported with its path.
  auto conflict = repo_->revert_to(h_.c4, h_.c6, out);
  ASSERT_FALSE(conflict);
  EXPECT_NE(conflict.error().msg.find("conflicts in src/a.c"), std::string::npos) << conflict.error().msg;
  EXPECT_FALSE(conflict.error().hint.empty());

  auto root = repo_->revert_to(h_.c0, h_.c6, out);
  EXPECT_FALSE(root);

  // No loose object, ref, index or work tree change in the user's repository.
  EXPECT_EQ(repo_snapshot(fixture_->dir()), before);
}

namespace {

std::vector<std::string> ls_dir_without_marker(const std::string& dir) {
  auto rows = ls_dir(dir);
  rows.erase(std::remove_if(rows.begin(), rows.end(),
                            [](const std::string& r) { return r.size() >= 12 && r.substr(r.size() - 12) == "\t.ktstr-tree"; }),
             rows.end());
  return rows;
}

std::filesystem::file_time_type mtime(const std::string& p) { return std::filesystem::last_write_time(p); }

}  // namespace

TEST_F(GitRepoTest, UpdateCheckoutRewritesOnlyWhatDiffers) {
  namespace fs = std::filesystem;
  const std::string out = tmp_.path() + "/cache/tree";
  auto first = repo_->update_checkout(h_.c4, out);
  ASSERT_TRUE(first) << first.error().msg;
  EXPECT_EQ(*first, git_cli(fixture_->dir(), {"rev-parse", h_.c4 + "^{tree}"}).out.substr(0, 40));
  EXPECT_EQ(ls_dir_without_marker(out), sorted(ls_tree(fixture_->dir(), h_.c4)));

  // Age every file, then move c4 -> c5 (only src/b.c changes) -> s1 (files go and come).
  const auto old_time = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const char* f : {"README", "src/a.c", "src/b.c", "src/c.txt"}) fs::last_write_time(out + "/" + f, old_time);
  ASSERT_TRUE(repo_->update_checkout(h_.c5, out));
  EXPECT_EQ(ls_dir_without_marker(out), sorted(ls_tree(fixture_->dir(), h_.c5)));
  EXPECT_EQ(mtime(out + "/README"), old_time);
  EXPECT_EQ(mtime(out + "/src/a.c"), old_time);
  EXPECT_GT(mtime(out + "/src/b.c"), old_time);

  ASSERT_TRUE(repo_->update_checkout(h_.s1, out));
  EXPECT_EQ(ls_dir_without_marker(out), sorted(ls_tree(fixture_->dir(), h_.s1)));
  EXPECT_FALSE(path_exists(out + "/src/b.c"));
  EXPECT_EQ(mtime(out + "/README"), old_time);

  // Without the marker (or with one naming an unknown tree) it is a whole checkout.
  ASSERT_TRUE(write_file_atomic(out + "/.ktstr-tree", std::string(40, 'a') + "\n"));
  ASSERT_TRUE(write_file_atomic(out + "/stray.o", "obj"));
  ASSERT_TRUE(repo_->update_checkout(h_.c5, out));
  EXPECT_EQ(ls_dir_without_marker(out), sorted(ls_tree(fixture_->dir(), h_.c5)));
  EXPECT_FALSE(path_exists(out + "/stray.o"));
  EXPECT_GT(mtime(out + "/README"), old_time);

  EXPECT_FALSE(repo_->update_checkout(h_.c5, fixture_->dir()));
}

TEST_F(GitRepoTest, WorkTreeStateSeesHeadAndDirt) {
  auto clean = repo_->work_tree_state();
  ASSERT_TRUE(clean) << clean.error().msg;
  EXPECT_EQ(clean->head, git_cli(fixture_->dir(), {"rev-parse", "HEAD"}).out.substr(0, 40));
  EXPECT_EQ(clean->tree, git_cli(fixture_->dir(), {"rev-parse", "HEAD^{tree}"}).out.substr(0, 40));
  EXPECT_FALSE(clean->dirty);
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/untracked.txt", "mine\n"));
  auto untracked = repo_->work_tree_state();
  ASSERT_TRUE(untracked);
  EXPECT_TRUE(untracked->dirty);
  std::remove((fixture_->dir() + "/untracked.txt").c_str());
  ASSERT_TRUE(write_file_atomic(fixture_->dir() + "/src/a.c", "int a = 99;\n"));
  auto modified = repo_->work_tree_state();
  ASSERT_TRUE(modified);
  EXPECT_TRUE(modified->dirty);
  EXPECT_EQ(modified->tree, clean->tree);
}
