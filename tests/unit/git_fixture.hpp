// Real git repositories for unit tests, written with libgit2: commits from
// whole-tree file maps with fixed author times, a branch, a work tree.
#pragma once

#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <git2.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ktstr::testing {

struct FileSpec {
  std::string content;
  git_filemode_t mode = GIT_FILEMODE_BLOB;
};
using Files = std::map<std::string, FileSpec>;

inline void check_git(int rc, const char* what) {
  if (rc != 0) {
    const git_error* e = git_error_last();
    throw std::runtime_error(std::string(what) + ": " + (e && e->message ? e->message : "libgit2 error"));
  }
}

class GitFixture {
 public:
  explicit GitFixture(const std::string& dir) : dir_(dir) {
    git_libgit2_init();
    check_git(git_repository_init(&repo_, dir.c_str(), 0), "git_repository_init");
  }
  ~GitFixture() {
    git_repository_free(repo_);
    git_libgit2_shutdown();
  }
  GitFixture(const GitFixture&) = delete;
  GitFixture& operator=(const GitFixture&) = delete;

  const std::string& dir() const { return dir_; }
  git_repository* repo() { return repo_; }

  // A commit holding exactly `files`, with `parents` (ids), author time
  // 1700000000 + 60 * (n-th commit), updating `ref` when given. Returns its id.
  std::string commit(const Files& files, const std::vector<std::string>& parents, const std::string& message,
                     const char* ref = nullptr) {
    git_index* index = nullptr;
    check_git(git_index_new(&index), "git_index_new");
    for (const auto& [path, f] : files) {
      git_index_entry e{};
      e.path = path.c_str();
      e.mode = f.mode;
      check_git(git_blob_create_from_buffer(&e.id, repo_, f.content.data(), f.content.size()), "git_blob_create");
      check_git(git_index_add(index, &e), "git_index_add");
    }
    git_oid tree_oid;
    check_git(git_index_write_tree_to(&tree_oid, index, repo_), "git_index_write_tree_to");
    git_index_free(index);
    git_tree* tree = nullptr;
    check_git(git_tree_lookup(&tree, repo_, &tree_oid), "git_tree_lookup");
    std::vector<git_commit*> ps;
    for (const auto& p : parents) {
      git_oid oid;
      check_git(git_oid_fromstr(&oid, p.c_str()), "git_oid_fromstr");
      git_commit* c = nullptr;
      check_git(git_commit_lookup(&c, repo_, &oid), "git_commit_lookup");
      ps.push_back(c);
    }
    git_signature* sig = nullptr;
    check_git(git_signature_new(&sig, "A U Thor", "author@example.com", 1700000000 + 60 * ++count_, 0),
              "git_signature_new");
    git_oid oid;
    check_git(git_commit_create(&oid, repo_, ref, sig, sig, nullptr, message.c_str(), tree, ps.size(),
                                const_cast<const git_commit**>(ps.data())),
              "git_commit_create");
    git_signature_free(sig);
    for (auto* c : ps) git_commit_free(c);
    git_tree_free(tree);
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &oid);
    return hex;
  }

  // HEAD -> refs/heads/main, and the work tree and index checked out from it.
  void checkout_main() {
    check_git(git_repository_set_head(repo_, "refs/heads/main"), "git_repository_set_head");
    git_checkout_options opts = GIT_CHECKOUT_OPTIONS_INIT;
    opts.checkout_strategy = GIT_CHECKOUT_FORCE;
    check_git(git_checkout_head(repo_, &opts), "git_checkout_head");
  }

 private:
  std::string dir_;
  git_repository* repo_ = nullptr;
  int count_ = 0;
};

// The git CLI, for cross-checks only (ktstr itself never runs it). No user
// or system configuration is read.
inline Completed git_cli(const std::string& dir, std::vector<std::string> args) {
  std::vector<std::string> argv = {"git", "-C", dir, "-c", "user.name=T", "-c", "user.email=t@example.com"};
  argv.insert(argv.end(), args.begin(), args.end());
  SpawnOptions opts;
  opts.env_extra = {"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"};
  auto r = run(argv, opts);
  if (!r) throw std::runtime_error(r.error().msg);
  return *r;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

// Every file, directory and symlink under `dir` (or under it except
// `skip`): path, type, mode bits and a hash of the content (the link target
// for symlinks), sorted. Two equal snapshots mean byte-identical trees.
inline std::string snapshot(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> rows;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
    const auto& p = it->path();
    const auto st = fs::symlink_status(p);
    std::string rel = p.lexically_relative(dir).string();
    std::string row = rel + " " + std::to_string(static_cast<int>(st.permissions()) & 0777) + " ";
    if (fs::is_symlink(st)) {
      row += "link " + fs::read_symlink(p).string();
    } else if (fs::is_directory(st)) {
      row += "dir";
    } else {
      auto h = sha256_file_hex(p.string());
      row += "file " + (h ? *h : "unreadable");
    }
    rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  for (const auto& r : rows) out += r + "\n";
  return out;
}

}  // namespace ktstr::testing
