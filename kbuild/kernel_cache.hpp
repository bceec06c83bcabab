// The kernel cache: <artifacts>/kernels/<id>/{bzImage,config,vmlinux}, id =
// the first 16 hex digits of the image's SHA-256, one row per kernel in the
// store. Entries appear whole (built in a temporary directory beside them,
// then renamed) or not at all.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "db/store.hpp"
#include "kbuild/debian_fetch.hpp"  // ProgressFn

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ktstr::kbuild {

struct AddOptions {
  std::string config_path;  // empty: look for one beside the image
  std::string name;         // user label
  std::string source;       // empty: "file:<absolute image path>"
  std::string version;      // empty: from the image header
  // More files for the entry (name in the entry, path to copy), staged with
  // it: a built kernel's build.log.
  std::vector<std::pair<std::string, std::string>> extra_files;
};

// Register a bzImage. Adding an image that is already cached (and intact)
// returns the existing record (updating its name when one is given).
Result<KernelRecord> add_kernel(db::Store& store, const std::string& image_path,
                                const AddOptions& opts = {});

// <artifacts>/kernels/<id>
std::string kernel_dir(const db::Store& store, const std::string& id);

// A cached kernel and whether its files are still what was recorded.
struct KernelHealth {
  KernelRecord record;
  bool corrupt = false;
  std::string problem;  // e.g. "image missing", "image hash mismatch"
};
// `hash`: also re-hash the image (slower; `kernel list` does).
KernelHealth check_kernel(const KernelRecord& k, bool hash = true);
Result<std::vector<KernelHealth>> list_kernels_checked(db::Store& store, bool hash = true);

// Look `ref` up in the cache: exact id, name, version ("7.3.4", "6.17":
// newest matching), then unique id prefix. Ambiguous prefix -> error listing
// the candidates; nothing -> nullopt.
Result<std::optional<KernelRecord>> find_cached_kernel(db::Store& store, const std::string& ref);

// Remove a cached kernel's files and row, and for a built kernel its build
// rows and the build directories no other build uses. Returns what was removed.
Result<KernelRecord> remove_kernel(db::Store& store, const std::string& ref);

// What `--kernel REF` means everywhere: a cached kernel (as
// find_cached_kernel), a path to a bzImage (registered on the fly), or a
// version not cached yet (fetched). Empty ref: the newest cached kernel with
// sched_ext, else the default Debian kernel is fetched.
Result<KernelRecord> resolve_kernel(db::Store& store, const std::string& ref, ProgressFn progress = {});

// A config file beside an image: config, config-<release>, .config, and the
// Debian (boot/ <-> usr/lib/modules/<release>/) and source-tree layouts.
// Empty when none is found.
std::string find_config_beside(const std::string& image_path, const std::string& release);

}  // namespace ktstr::kbuild
