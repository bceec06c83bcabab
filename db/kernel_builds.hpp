// The kernel build cache index (kbuild/kernel_build.hpp): one row per
// built kernel, keyed by what determines it (source tree id, final config,
// compiler), pointing at the cached kernel (kernels.id) it produced.
#pragma once

#include "core/result.hpp"
#include "db/store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace ktstr::db {

struct KernelBuildRecord {
  std::string key;            // hex SHA-256 of (tree id, final config hash, compiler)
  std::string request_key;    // hex SHA-256 of (tree id, merged fragments, compiler): a hit before kconfig runs
  std::string kernel_id;      // kernels.id
  std::string tree_id;        // git tree id, or "content:<sha256>" of a plain directory
  std::string source;         // the source directory, or the repository for a commit build
  std::string commit_id;      // empty for a plain directory
  bool dirty = false;         // the work tree differed from its HEAD
  std::string config_sha256;  // of the final .config
  std::string compiler;
  std::string build_dir;      // the shared O= directory it was built in
  std::string worktree;       // where the commit was checked out (empty for --source)
  int64_t duration_ms = 0;
  int64_t created_at = 0;
};

Status put_kernel_build(Store& store, const KernelBuildRecord& build);
Result<std::optional<KernelBuildRecord>> get_kernel_build(Store& store, const std::string& key);
Result<std::optional<KernelBuildRecord>> find_kernel_build_by_request(Store& store, const std::string& request_key);
// Newest first.
Result<std::vector<KernelBuildRecord>> list_kernel_builds(Store& store);
Status remove_kernel_builds_of(Store& store, const std::string& kernel_id);

}  // namespace ktstr::db
