// Private helpers of gitrepo/: libgit2 set-up, owning pointers, errors, ids.
#pragma once

#include "core/result.hpp"

#include <git2.h>

#include <memory>
#include <string>

namespace ktstr::gitrepo::detail {

// git_libgit2_init once per process (never shut down: objects may outlive
// any scope that could).
void init_libgit2();

// libgit2's last error message, or "libgit2 error <rc>".
std::string git_error_text(int rc);

std::string oid_hex(const git_oid& oid);

// Write one blob at `path` (which must not exist): a symlink for
// GIT_FILEMODE_LINK, else a file with git's modes (0777/0666 less the umask).
Status write_blob(git_repository* repo, const git_oid& id, git_filemode_t filemode, const std::string& path);

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using ObjectPtr = std::unique_ptr<git_object, Deleter<git_object, git_object_free>>;
using CommitPtr = std::unique_ptr<git_commit, Deleter<git_commit, git_commit_free>>;
using TreePtr = std::unique_ptr<git_tree, Deleter<git_tree, git_tree_free>>;
using BlobPtr = std::unique_ptr<git_blob, Deleter<git_blob, git_blob_free>>;
using IndexPtr = std::unique_ptr<git_index, Deleter<git_index, git_index_free>>;
using RevwalkPtr = std::unique_ptr<git_revwalk, Deleter<git_revwalk, git_revwalk_free>>;
using OdbPtr = std::unique_ptr<git_odb, Deleter<git_odb, git_odb_free>>;

}  // namespace ktstr::gitrepo::detail
