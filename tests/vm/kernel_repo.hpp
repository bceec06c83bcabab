// Shared by the slow kernel-build VM tests (test_kernel_build,
// test_kernel_bisect): Debian's linux-source for the default kernel's series,
// imported once into a git repository with libgit2, and commits made on it.
//
// KTSTR_KBUILD_TEST_DIR: keep the repository and the store there (reused by a
// later run, by the other slow test and by the boot benchmark) instead of a
// temporary directory.
#pragma once

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "vm/vm_store.hpp"

#include <git2.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace ktstr::testing {

inline void check_git(int rc, const char* what) {
  if (rc != 0) {
    const git_error* e = git_error_last();
    throw std::runtime_error(std::string(what) + ": " + (e && e->message ? e->message : "libgit2 error"));
  }
}

inline std::string oid_hex(const git_oid& id) {
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &id);
  return hex;
}

// `paths` (every file of the work tree when empty, .gitignore files or not)
// into the index, then a commit on HEAD. Returns the commit id.
inline std::string commit_paths(git_repository* repo, const std::string& work_tree, std::vector<std::string> paths,
                                const std::string& message) {
  namespace fs = std::filesystem;
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
  return oid_hex(id);
}

inline std::string series_of(const std::string& release) {
  std::string v = kbuild::upstream_version(release);
  return v.substr(0, v.find('.', v.find('.') + 1));
}

// The kernel `ktstr test` uses by default: the newest cached version with sched_ext.
inline std::string newest_kernel_image() {
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

// Debian's linux-source-<series> unpacked into `repo_dir` and committed as
// one commit (once: an existing repository is kept). Empty on success, else
// what failed.
inline std::string import_linux_source(const std::string& cache, const std::string& series, const std::string& repo_dir,
                                       const std::string& scratch) {
  if (path_exists(repo_dir + "/.git")) return "";
  auto store = db::Store::open(cache);
  if (!store) return store.error().msg;
  auto tarball = kbuild::fetch_debian_linux_source(**store, series, scratch + "/deb");
  if (!tarball) return tarball.error().msg + "\nhint: " + tarball.error().hint;
  if (!make_dirs(repo_dir)) return "cannot create " + repo_dir;
  auto tar = run({"tar", "-xJf", *tarball, "-C", repo_dir, "--strip-components=1"}, {}, std::chrono::minutes(20));
  if (!tar || !tar->ok()) return tar ? tar->err : tar.error().msg;
  (void)remove_tree(scratch + "/deb");
  git_repository* repo = nullptr;
  check_git(git_repository_init(&repo, repo_dir.c_str(), 0), "git_repository_init");
  commit_paths(repo, repo_dir, {}, "linux-source-" + series + " from Debian");
  git_repository_free(repo);
  return "";
}

// The import commit: HEAD's first-parent chain back to the root.
inline std::string root_commit(git_repository* repo) {
  git_oid id;
  check_git(git_reference_name_to_id(&id, repo, "HEAD"), "git_reference_name_to_id HEAD");
  while (true) {
    git_commit* c = nullptr;
    check_git(git_commit_lookup(&c, repo, &id), "git_commit_lookup");
    const bool root = git_commit_parentcount(c) == 0;
    if (!root) id = *git_commit_parent_id(c, 0);
    git_commit_free(c);
    if (root) return oid_hex(id);
  }
}

// A commit on `parent` whose tree is the parent's with `files` (path ->
// content) replaced, written without a work tree (an in-memory index, so
// blobs are written first: git_index_add_from_buffer needs a repository's
// index);
// `ref` (e.g. refs/heads/x) moves to it. The same parent and files give the
// same tree id on every run, so kernel builds of it are found in the cache.
inline std::string commit_files_on(git_repository* repo, const std::string& parent_hex,
                                   const std::vector<std::pair<std::string, std::string>>& files,
                                   const std::string& message, const std::string& ref) {
  git_oid parent_id;
  check_git(git_oid_fromstr(&parent_id, parent_hex.c_str()), "git_oid_fromstr");
  git_commit* parent = nullptr;
  check_git(git_commit_lookup(&parent, repo, &parent_id), "git_commit_lookup");
  git_tree* parent_tree = nullptr;
  check_git(git_commit_tree(&parent_tree, parent), "git_commit_tree");
  git_index* index = nullptr;
  check_git(git_index_new(&index), "git_index_new");
  check_git(git_index_read_tree(index, parent_tree), "git_index_read_tree");
  for (const auto& [path, content] : files) {
    const git_index_entry* old = git_index_get_bypath(index, path.c_str(), 0);
    git_index_entry e{};
    e.mode = old ? old->mode : static_cast<uint32_t>(GIT_FILEMODE_BLOB);
    e.path = path.c_str();
    check_git(git_blob_create_from_buffer(&e.id, repo, content.data(), content.size()),
              ("git_blob_create_from_buffer " + path).c_str());
    check_git(git_index_add(index, &e), ("git_index_add " + path).c_str());
  }
  git_oid tree_id;
  check_git(git_index_write_tree_to(&tree_id, index, repo), "git_index_write_tree_to");
  git_index_free(index);
  git_tree_free(parent_tree);
  git_tree* tree = nullptr;
  check_git(git_tree_lookup(&tree, repo, &tree_id), "git_tree_lookup");
  git_signature* sig = nullptr;
  check_git(git_signature_now(&sig, "ktstr test", "test@ktstr.invalid"), "git_signature_now");
  const git_commit* parents[] = {parent};
  git_oid id;
  check_git(git_commit_create(&id, repo, nullptr, sig, sig, nullptr, message.c_str(), tree, 1, parents),
            "git_commit_create");
  git_reference* out = nullptr;
  check_git(git_reference_create(&out, repo, ref.c_str(), &id, 1, "ktstr test"), "git_reference_create");
  git_reference_free(out);
  git_signature_free(sig);
  git_tree_free(tree);
  git_commit_free(parent);
  return oid_hex(id);
}

// A file's content at `commit_hex` (empty string when absent).
inline std::string file_at(git_repository* repo, const std::string& commit_hex, const std::string& path) {
  git_oid id;
  check_git(git_oid_fromstr(&id, commit_hex.c_str()), "git_oid_fromstr");
  git_commit* c = nullptr;
  check_git(git_commit_lookup(&c, repo, &id), "git_commit_lookup");
  git_tree* tree = nullptr;
  check_git(git_commit_tree(&tree, c), "git_commit_tree");
  std::string out;
  git_tree_entry* entry = nullptr;
  if (git_tree_entry_bypath(&entry, tree, path.c_str()) == 0) {
    git_blob* blob = nullptr;
    check_git(git_blob_lookup(&blob, repo, git_tree_entry_id(entry)), "git_blob_lookup");
    out.assign(static_cast<const char*>(git_blob_rawcontent(blob)), static_cast<size_t>(git_blob_rawsize(blob)));
    git_blob_free(blob);
    git_tree_entry_free(entry);
  }
  git_tree_free(tree);
  git_commit_free(c);
  return out;
}

}  // namespace ktstr::testing
