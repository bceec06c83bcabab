// Builds a scheduler from a checked-out source tree with the user's command
// (an argv, never a shell) and caches the artifact by what determines it:
// the tree id, the command, the artifact path and the compiler version.
// Entries live in <store artifacts>/sched-builds/<key>/ (the binary,
// build.log, meta.json), indexed by the store's sched_builds table. Failed
// builds are cached too, so a bisect never rebuilds a broken commit.
#pragma once

#include "core/result.hpp"
#include "db/store.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace ktstr::schedbuild {

// How long one build may run before it is killed (and not cached).
inline constexpr std::chrono::minutes kBuildTimeout{20};

struct BuildRequest {
  std::string tree_id;                 // the source tree's id (git tree hash)
  std::string source_dir;              // where the tree is checked out
  std::vector<std::string> command;    // argv, split from the user's --build string (no shell)
  std::string artifact;                // path of the built scheduler binary, relative to source_dir
  std::chrono::milliseconds timeout = kBuildTimeout;
};

struct BuildResult {
  bool ok = false;
  bool cached = false;                 // nothing was built: the entry existed
  std::string binary;                  // absolute path of the cached artifact (stable across bisects)
  std::string key;                     // the cache key (hex)
  std::string log_path;                // build log kept in the cache
  std::string error_excerpt;           // first error lines when !ok
  double seconds = 0;                  // how long the build that made the entry took
};

// First lines of `cc --version` and `clang --version` (those installed),
// joined by "; "; computed once per process.
std::string compiler_version();

// Shell-like words: blanks separate, '...' is literal, "..." honours \\ \" \$ \`,
// a backslash outside quotes escapes the next character. No expansion of
// any kind; unquoted shell operators (| & ; < > ( ) $ `) are an error since
// no shell runs the command. Errors: unbalanced quotes, empty command.
Result<std::vector<std::string>> split_command(const std::string& command);

// The cache key (hex SHA-256) of a request with the current compiler.
std::string build_key(const BuildRequest& req);

// Builds (or finds in the cache). A failed build is ok=false, not an error;
// errors are for ktstr's own failures (store, cache directory, a program
// not found in PATH).
Result<BuildResult> build(db::Store& store, const BuildRequest& req);

}  // namespace ktstr::schedbuild
