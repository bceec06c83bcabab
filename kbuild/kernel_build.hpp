// `ktstr kernel build`: a kernel made for ktstr from a source directory or a
// git commit, cached by what determines it, registered in the kernel cache
// like a fetched kernel.
//
// Layout under the cache directory: kernel-builds/<slot>/ per source (the
// absolute path of the directory or repository, hashed), holding `lock`
// (flock: one build per slot at a time), `out/` (the shared O= directory, so
// the next commit rebuilds incrementally), `tree/` (the commit checked out
// with libgit2; never the user's tree), `logs/` (logs of failed builds) and
// `source` (the path, for people). A build's log goes with its kernel:
// <artifacts>/kernels/<id>/build.log.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "db/kernel_builds.hpp"
#include "db/store.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ktstr::kbuild {

// How long one kernel build may run before it is killed.
inline constexpr std::chrono::minutes kKernelBuildTimeout{180};

struct KernelBuildRequest {
  std::string source_dir;       // --source: a kernel tree built in place (out of tree, O=)
  std::string repo;             // --repo with --commit: a git repository ...
  std::string commit;           // ... and any revision of it
  std::string config_fragment;  // --config: a fragment applied on top of ktstr.kconfig
  unsigned jobs = 0;            // make -j; 0: the number of CPUs
  std::string name;             // a name for the cached kernel
  std::chrono::milliseconds timeout = kKernelBuildTimeout;
};

struct KernelBuildProgress {
  std::string phase;         // "waiting" (slot lock), "checkout", "config", "queued" (KTSTR_BUILD_LOCK),
                             // "compile", "link", "register"
  size_t objects = 0;        // objects compiled so far
  size_t estimate = 0;       // objects a whole build compiles (0: unknown)
  double elapsed = 0;        // seconds since the build started
};
using KernelBuildProgressFn = std::function<void(const KernelBuildProgress&)>;

struct KernelBuildResult {
  bool ok = false;
  bool cached = false;                 // nothing was built
  KernelRecord kernel;                 // when ok
  db::KernelBuildRecord build;         // when ok
  double seconds = 0;                  // this call, wall clock
  std::string log_path;                // kept: with the kernel, or under logs/ for a failure
  std::string error_excerpt;           // first error lines of a failed build
  std::vector<std::string> dropped;    // fragment settings kconfig did not keep
};

// The cache key: SHA-256 over (tree id, SHA-256 of the final .config, compiler).
std::string kernel_build_key(const std::string& tree_id, const std::string& config_sha256,
                             const std::string& compiler);
// The key of a request before kconfig runs: (tree id, merged fragment text, compiler).
std::string kernel_request_key(const std::string& tree_id, const std::string& merged_fragment,
                               const std::string& compiler);

// "content:<sha256>" over a plain directory: every path (sorted), its kind,
// mode bits that git keeps (executable), symlink target or file bytes. A
// top-level .git is skipped.
Result<std::string> directory_tree_id(const std::string& dir);

// First line of `gcc --version` (the compiler kbuild uses), once per process.
std::string kernel_compiler_version();

// <cache_dir>/kernel-builds/<16 hex of SHA-256 of the absolute source path>
std::string build_slot_dir(const db::Store& store, const std::string& source);

// "  CC      kernel/sched/core.o" -> counts as an object; the phase a line
// starts ("link" for vmlinux, BTF and bzImage steps), or empty.
bool make_line_is_object(const std::string& line);
std::string make_line_phase(const std::string& line);

// Build (or find in the cache) and register the kernel. A build that fails
// is ok=false with its first error lines, not an error; errors are bad
// requests (exit 2 material: no such directory, not a kernel tree, a bad
// fragment, a tree too old for sched_ext) and ktstr's own failures.
Result<KernelBuildResult> build_kernel(db::Store& store, const KernelBuildRequest& req,
                                       KernelBuildProgressFn progress = {});

// What a built kernel's `source` column says: "build:<dir>" or
// "build:<repo>@<commit 12>", with " (dirty)".
std::string built_kernel_source(const db::KernelBuildRecord& b);

// After kernel rm: the build rows of `kernel_id`, and the slots (build
// directory, worktree) no remaining build uses. Returns the removed paths.
Result<std::vector<std::string>> forget_kernel_builds(db::Store& store, const std::string& kernel_id);

// `kernel gc --keep N`: built kernels beyond the N newest are removed (their
// files, rows and build directories no kept build uses); slots without any
// build and staging leftovers go too. Returns what was removed, for people.
Result<std::vector<std::string>> gc_kernel_builds(db::Store& store, size_t keep);

}  // namespace ktstr::kbuild
