// Repo::materialise: write a tree into a directory of ktstr's own by reading
// blobs, so the repository (work tree, index, HEAD) is never involved.
#include "core/fs.hpp"
#include "gitrepo/libgit2_util.hpp"
#include "gitrepo/repo.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>

namespace ktstr::gitrepo {

using namespace detail;

namespace {

std::string errno_text() { return std::strerror(errno); }

// Names a tree may not hold: they would leave the directory or step on it.
bool unsafe_name(const char* name) {
  std::string n = name ? name : "";
  return n.empty() || n == "." || n == ".." || n == ".git" || n.find('/') != std::string::npos;
}

bool is_within(const std::filesystem::path& inner, const std::filesystem::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

}  // namespace

namespace detail {

Status write_blob(git_repository* repo, const git_oid& id, git_filemode_t filemode, const std::string& path) {
  git_blob* raw = nullptr;
  if (int rc = git_blob_lookup(&raw, repo, &id); rc != 0)
    return fail("cannot read blob for '" + path + "': " + git_error_text(rc));
  BlobPtr blob(raw);
  const char* data = static_cast<const char*>(git_blob_rawcontent(blob.get()));
  const size_t size = static_cast<size_t>(git_blob_rawsize(blob.get()));
  if (filemode == GIT_FILEMODE_LINK) {
    std::string target(data, size);
    if (::symlink(target.c_str(), path.c_str()) != 0)
      return fail("cannot create symlink '" + path + "': " + errno_text());
    return {};
  }
  // As git: 0777 or 0666, less the umask.
  const mode_t mode = filemode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0777 : 0666;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return fail("cannot create '" + path + "': " + errno_text());
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string err = errno_text();
      ::close(fd);
      return fail("cannot write '" + path + "': " + err);
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return fail("cannot write '" + path + "': " + errno_text());
  return {};
}

}  // namespace detail

namespace {

Status write_tree(git_repository* repo, const git_tree* tree, const std::string& dir) {
  const size_t count = git_tree_entrycount(tree);
  for (size_t i = 0; i < count; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    const char* name = git_tree_entry_name(e);
    if (unsafe_name(name)) return fail("the tree holds an unsafe entry '" + std::string(name ? name : "") + "'");
    const std::string path = dir + "/" + name;
    switch (git_tree_entry_filemode(e)) {
      case GIT_FILEMODE_TREE: {
        if (::mkdir(path.c_str(), 0777) != 0) return fail("cannot create directory '" + path + "': " + errno_text());
        git_tree* raw = nullptr;
        if (int rc = git_tree_lookup(&raw, repo, git_tree_entry_id(e)); rc != 0)
          return fail("cannot read tree for '" + path + "': " + git_error_text(rc));
        TreePtr sub(raw);
        if (auto st = write_tree(repo, sub.get(), path); !st) return st;
        break;
      }
      case GIT_FILEMODE_COMMIT:  // a submodule: an empty directory, as an uninitialised one
        if (::mkdir(path.c_str(), 0777) != 0) return fail("cannot create directory '" + path + "': " + errno_text());
        break;
      case GIT_FILEMODE_BLOB:
      case GIT_FILEMODE_BLOB_EXECUTABLE:
      case GIT_FILEMODE_LINK:
        if (auto st = write_blob(repo, *git_tree_entry_id(e), git_tree_entry_filemode(e), path); !st) return st;
        break;
      default:
        return fail("entry '" + path + "' has an unknown mode " + std::to_string(git_tree_entry_filemode(e)));
    }
  }
  return {};
}

}  // namespace

Status Repo::refuse_repository_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  if (dir.empty()) return fail("no directory given");
  std::error_code ec;
  const fs::path target = fs::weakly_canonical(fs::absolute(dir), ec);
  if (ec) return fail("cannot resolve '" + dir + "': " + ec.message());
  // Emptying `dir` must never reach the user's files: refuse a directory
  // that is or holds the work tree or the git directory, or lies inside the
  // git directory. (Inside the work tree is allowed: git sees untracked files.)
  auto canonical_dir = [&](const char* p) -> std::optional<fs::path> {
    if (!p) return std::nullopt;
    std::string s = p;
    while (s.size() > 1 && s.back() == '/') s.pop_back();
    std::error_code e;
    fs::path c = fs::weakly_canonical(fs::path(s), e);
    if (e) return std::nullopt;
    return c;
  };
  const auto gitdir = canonical_dir(git_repository_path(repo_));
  const auto workdir = canonical_dir(git_repository_workdir(repo_));
  for (const auto& mine : {gitdir, workdir})
    if (mine && is_within(*mine, target))
      return fail("'" + dir + "' is or holds the repository '" + path_ + "'",
                  "check out into a directory outside the repository");
  if (gitdir && is_within(target, *gitdir))
    return fail("'" + dir + "' is inside the git directory of the repository '" + path_ + "'",
                "check out into a directory outside the repository");
  return {};
}

Status Repo::materialise(git_tree* tree, const std::string& dir) {
  if (auto st = refuse_repository_dir(dir); !st) return st;
  const std::string target = std::filesystem::weakly_canonical(std::filesystem::absolute(dir)).string();
  if (auto st = remove_tree(target); !st) return st;
  if (auto st = make_dirs(target); !st) return st;
  return write_tree(repo_, tree, target);
}

}  // namespace ktstr::gitrepo
