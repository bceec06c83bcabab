// Files: whole-file reads, atomic writes (temporary file + rename), hashing,
// temporary directories, and where ktstr keeps things.
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace ktstr {

Result<std::string> read_file(const std::string& path, size_t max_bytes = SIZE_MAX);

// Write `data` to `path` atomically: mkstemp beside it, fsync, rename.
Status write_file_atomic(const std::string& path, std::string_view data, int mode = 0644);

// Copy a file atomically (same scheme as write_file_atomic).
Status copy_file_atomic(const std::string& from, const std::string& to, int mode = 0644);

// mkdir -p
Status make_dirs(const std::string& path, int mode = 0755);

bool path_exists(const std::string& path);

// Hex SHA-256 of bytes, or of a file's content (streamed).
std::string sha256_hex(std::string_view data);
Result<std::string> sha256_file_hex(const std::string& path);

// A directory from mkdtemp, removed recursively on destruction unless kept.
class TempDir {
 public:
  static Result<TempDir> create(const std::string& prefix = "ktstr");
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)), keep_(o.keep_) { o.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  void keep() { keep_ = true; }

 private:
  explicit TempDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
  bool keep_ = false;
};

Status remove_tree(const std::string& path);

// Bytes of the regular files under `path`, recursively (0 when it is missing).
uint64_t tree_bytes(const std::string& path);

// $KTSTR_CACHE_DIR, else $XDG_CACHE_HOME/ktstr, else ~/.cache/ktstr.
std::string cache_dir();

// Directory holding the running executable (/proc/self/exe).
std::string exe_dir();

}  // namespace ktstr
