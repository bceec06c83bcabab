// Test helper: a git repository made with libgit2, one commit per entry,
// each writing some files on top of the previous commit's tree. Used by
// ktstr bisect's tests (tests/vm/test_bisect.cpp, tests/unit/test_bisect_cli.cpp).
#pragma once

#include <git2.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace ktstr::testing {

struct FixtureCommit {
  std::string message;
  std::map<std::string, std::string> files;  // path (no subdirectories) -> content
};

class GitInit {
 public:
  GitInit() { git_libgit2_init(); }
  ~GitInit() { git_libgit2_shutdown(); }
};

inline void git_check(int rc, const char* what) {
  if (rc < 0) {
    const git_error* e = git_error_last();
    throw std::runtime_error(std::string(what) + ": " + (e && e->message ? e->message : "libgit2 error"));
  }
}

// Creates `dir` as a repository with the commits, in order (the first is the
// root). Returns the commit ids (hex), oldest first. HEAD is the last.
inline std::vector<std::string> make_fixture_repo(const std::string& dir, const std::vector<FixtureCommit>& commits) {
  GitInit init;
  ::mkdir(dir.c_str(), 0755);
  git_repository* repo = nullptr;
  git_check(git_repository_init(&repo, dir.c_str(), 0), "git_repository_init");
  std::vector<std::string> ids;
  git_oid parent{};
  bool has_parent = false;
  int64_t when = 1700000000;
  for (auto& c : commits) {
    git_index* index = nullptr;
    git_check(git_repository_index(&index, repo), "git_repository_index");
    for (auto& [path, text] : c.files) {
      std::ofstream(dir + "/" + path, std::ios::binary | std::ios::trunc) << text;
      git_check(git_index_add_bypath(index, path.c_str()), "git_index_add_bypath");
    }
    git_check(git_index_write(index), "git_index_write");
    git_oid tree_id{};
    git_check(git_index_write_tree(&tree_id, index), "git_index_write_tree");
    git_index_free(index);
    git_tree* tree = nullptr;
    git_check(git_tree_lookup(&tree, repo, &tree_id), "git_tree_lookup");
    git_signature* sig = nullptr;
    git_check(git_signature_new(&sig, "Bisect Fixture", "fixture@example.org", when += 60, 0), "git_signature_new");
    git_commit* parent_commit = nullptr;
    if (has_parent) git_check(git_commit_lookup(&parent_commit, repo, &parent), "git_commit_lookup");
    const git_commit* parents[] = {parent_commit};
    git_oid id{};
    git_check(git_commit_create(&id, repo, "HEAD", sig, sig, nullptr, c.message.c_str(), tree, has_parent ? 1 : 0,
                                has_parent ? parents : nullptr),
              "git_commit_create");
    if (parent_commit) git_commit_free(parent_commit);
    git_signature_free(sig);
    git_tree_free(tree);
    char hex[GIT_OID_HEXSZ + 1] = {};
    git_oid_tostr(hex, sizeof hex, &id);
    ids.push_back(hex);
    parent = id;
    has_parent = true;
  }
  git_repository_free(repo);
  return ids;
}

}  // namespace ktstr::testing
