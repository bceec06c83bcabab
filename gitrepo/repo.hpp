// A git repository read through libgit2 (never the git CLI): revisions,
// ancestry, the commit range a bisect searches, and trees materialised in a
// directory of ktstr's own. Nothing here writes to the repository: not its
// work tree, index, HEAD, refs or object database (the objects a revert
// creates live in an in-memory object store).
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct git_repository;
struct git_tree;

namespace ktstr::gitrepo {

struct CommitInfo {
  std::string id;                     // full hex id
  std::string tree;                   // the commit's tree id
  std::string subject;                // first paragraph of the message on one line (git's %s)
  std::string author;                 // "Name <email>"
  int64_t time = 0;                   // author time, unix seconds
  std::vector<std::string> parents;   // all parents, first parent first
};

class Repo {
 public:
  // A work tree (or any directory inside one), a .git directory or a bare
  // repository. Error: "'X' is not a git repository" with a hint.
  static Result<std::unique_ptr<Repo>> open(const std::string& path);
  ~Repo();
  Repo(const Repo&) = delete;
  Repo& operator=(const Repo&) = delete;

  // The work tree's top directory, or the repository directory when bare;
  // absolute, without a trailing slash.
  const std::string& path() const { return path_; }

  // Any revision git accepts (id, unique prefix, branch, tag, HEAD~3, v1^{}, ...)
  // peeled to a commit: its full id. Errors: "unknown revision 'X'",
  // "revision 'X' is not a commit".
  Result<std::string> resolve(const std::string& rev);

  // True when `ancestor` is `descendant` or one of its ancestors.
  Result<bool> is_ancestor(const std::string& ancestor, const std::string& descendant);

  Result<CommitInfo> info(const std::string& commit);

  // `git rev-list --parents bad --not good...` (with --first-parent when
  // asked: only first parents are followed from `bad`), newest first in
  // topological order (every commit before its parents). Revisions are
  // resolved like resolve().
  Result<std::vector<CommitInfo>> range(const std::string& bad, const std::vector<std::string>& good,
                                        bool first_parent);

  // Materialise `commit`'s tree in `dir`: created, or emptied and rewritten,
  // so it holds exactly the tree (modes, symlinks; submodules as empty
  // directories; blobs as stored, without checkout filters such as CRLF
  // conversion). Refuses a `dir` that is or contains the repository.
  Status checkout_to(const std::string& commit, const std::string& dir);

  // The tree of `onto` with `commit` reverted (as `git revert` would merge it;
  // a merge commit is reverted against its first parent), materialised in
  // `dir` like checkout_to. Returns the new tree's id. Error when the revert
  // conflicts (the message lists the conflicting paths).
  Result<std::string> revert_to(const std::string& commit, const std::string& onto, const std::string& dir);

  // Like checkout_to, but a directory that already holds a tree this call
  // wrote (its id is kept in <dir>/.ktstr-tree) only gets the files that
  // differ between the two trees rewritten: unchanged files keep their
  // mtimes, so an out-of-tree kernel build of `dir` rebuilds incrementally.
  // Without a usable marker it is a full checkout_to. Returns the tree id.
  Result<std::string> update_checkout(const std::string& commit, const std::string& dir);

  // The work tree's HEAD commit and tree, and whether the work tree differs
  // from HEAD (modified, staged, deleted or untracked files; ignored ones
  // do not count). Error for a bare repository or an unborn HEAD.
  struct WorkTreeState {
    std::string head;
    std::string tree;
    bool dirty = false;
  };
  Result<WorkTreeState> work_tree_state();

 private:
  Repo(git_repository* repo, std::string path) : repo_(repo), path_(std::move(path)) {}
  Status materialise(git_tree* tree, const std::string& dir);
  Status refuse_repository_dir(const std::string& dir);
  Status apply_tree_diff(git_tree* from, git_tree* to, const std::string& dir);
  Status use_memory_odb();

  git_repository* repo_ = nullptr;
  std::string path_;
  bool memory_odb_ = false;
};

}  // namespace ktstr::gitrepo
