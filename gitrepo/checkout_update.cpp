// Repo::update_checkout and Repo::work_tree_state: moving a checkout of
// ktstr's own from one tree to another by rewriting only what differs (so
// make sees unchanged files as unchanged), and whether a user's work tree
// is clean.
#include "core/fs.hpp"
#include "gitrepo/libgit2_util.hpp"
#include "gitrepo/repo.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

namespace ktstr::gitrepo {

using namespace detail;

namespace {

constexpr const char* kTreeMarker = ".ktstr-tree";

using DiffPtr = std::unique_ptr<git_diff, Deleter<git_diff, git_diff_free>>;
using StatusListPtr = std::unique_ptr<git_status_list, Deleter<git_status_list, git_status_list_free>>;

// The tree id the marker names, when it is one this repository has.
std::optional<git_oid> marked_tree(git_repository* repo, const std::string& dir) {
  auto text = read_file(dir + "/" + kTreeMarker, 256);
  if (!text) return std::nullopt;
  std::string hex = *text;
  while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) hex.pop_back();
  git_oid oid;
  if (hex.size() != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex.c_str()) != 0) return std::nullopt;
  git_tree* t = nullptr;
  if (git_tree_lookup(&t, repo, &oid) != 0) return std::nullopt;
  git_tree_free(t);
  return oid;
}

Status remove_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return {};  // already gone
  if (S_ISDIR(st.st_mode)) return remove_tree(path);
  if (::unlink(path.c_str()) != 0)
    return fail("cannot remove '" + path + "': " + std::strerror(errno));
  return {};
}

bool unsafe_relative_path(const std::string& p) {
  if (p.empty() || p[0] == '/') return true;
  for (const auto& part : std::filesystem::path(p))
    if (part == ".." || part == "." || part == ".git") return true;
  return false;
}

}  // namespace

Status Repo::apply_tree_diff(git_tree* from, git_tree* to, const std::string& dir) {
  git_diff_options opts = GIT_DIFF_OPTIONS_INIT;
  opts.flags |= GIT_DIFF_IGNORE_SUBMODULES;
  git_diff* raw = nullptr;
  if (int rc = git_diff_tree_to_tree(&raw, repo_, from, to, &opts); rc != 0)
    return fail("cannot compare the trees: " + git_error_text(rc));
  DiffPtr diff(raw);
  const size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    const char* rel = d->status == GIT_DELTA_DELETED ? d->old_file.path : d->new_file.path;
    if (!rel || unsafe_relative_path(rel)) return fail("the tree holds an unsafe path '" + std::string(rel ? rel : "") + "'");
    const std::string path = dir + "/" + rel;
    switch (d->status) {
      case GIT_DELTA_DELETED:
        if (auto st = remove_path(path); !st) return st;
        break;
      case GIT_DELTA_ADDED:
      case GIT_DELTA_MODIFIED:
      case GIT_DELTA_TYPECHANGE: {
        if (auto st = remove_path(path); !st) return st;
        if (auto st = make_dirs(std::filesystem::path(path).parent_path().string()); !st) return st;
        const auto mode = static_cast<git_filemode_t>(d->new_file.mode);
        if (mode == GIT_FILEMODE_COMMIT) {
          if (::mkdir(path.c_str(), 0777) != 0)
            return fail("cannot create directory '" + path + "': " + std::strerror(errno));
        } else if (auto st = write_blob(repo_, d->new_file.id, mode, path); !st) {
          return st;
        }
        break;
      }
      default:
        return fail("unexpected change of '" + std::string(rel) + "' between the trees");
    }
  }
  return {};
}

Result<std::string> Repo::update_checkout(const std::string& commit, const std::string& dir) {
  const std::string what = "cannot check out '" + commit + "' into '" + dir + "'";
  auto id = resolve(commit);
  if (!id) return fail(id.error());
  git_oid coid;
  git_oid_fromstr(&coid, id->c_str());
  git_commit* craw = nullptr;
  if (int rc = git_commit_lookup(&craw, repo_, &coid); rc != 0) return fail(what + ": " + git_error_text(rc));
  CommitPtr c(craw);
  git_tree* t = nullptr;
  if (int rc = git_commit_tree(&t, c.get()); rc != 0) return fail(what + ": " + git_error_text(rc));
  TreePtr tree(t);
  const std::string tree_hex = oid_hex(*git_tree_id(tree.get()));
  if (auto st = refuse_repository_dir(dir); !st) return fail(st.error().context(what));
  const std::string marker = dir + "/" + kTreeMarker;

  auto old = marked_tree(repo_, dir);
  if (old && git_oid_equal(&*old, git_tree_id(tree.get()))) return tree_hex;
  // The marker goes first: a checkout interrupted half-way is redone whole.
  std::remove(marker.c_str());
  Status st;
  if (old) {
    git_tree* o = nullptr;
    if (int rc = git_tree_lookup(&o, repo_, &*old); rc != 0) return fail(what + ": " + git_error_text(rc));
    TreePtr old_tree(o);
    st = apply_tree_diff(old_tree.get(), tree.get(), dir);
  } else {
    st = materialise(tree.get(), dir);
  }
  if (!st) return fail(st.error().context(what));
  if (auto w = write_file_atomic(marker, tree_hex + "\n"); !w) return fail(w.error().context(what));
  return tree_hex;
}

Result<Repo::WorkTreeState> Repo::work_tree_state() {
  if (git_repository_is_bare(repo_)) return fail("repository '" + path_ + "' has no work tree");
  git_object* head = nullptr;
  if (int rc = git_revparse_single(&head, repo_, "HEAD^{commit}"); rc != 0)
    return fail("repository '" + path_ + "' has no commit at HEAD: " + git_error_text(rc));
  ObjectPtr head_obj(head);
  WorkTreeState state;
  state.head = oid_hex(*git_object_id(head));
  state.tree = oid_hex(*git_commit_tree_id(reinterpret_cast<git_commit*>(head)));
  git_status_options opts = GIT_STATUS_OPTIONS_INIT;
  opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
  git_status_list* raw = nullptr;
  if (int rc = git_status_list_new(&raw, repo_, &opts); rc != 0)
    return fail("cannot read the status of '" + path_ + "': " + git_error_text(rc));
  StatusListPtr list(raw);
  state.dirty = git_status_list_entrycount(list.get()) > 0;
  return state;
}

}  // namespace ktstr::gitrepo
