// The guest's initramfs: a cpio "newc" archive built with libarchive from a
// list of entries. Output is deterministic (sorted paths, mtime 0, uid/gid 0,
// synthetic inode numbers) so the same inputs give the same bytes, and it is
// cached content-addressed so a second run with the same inputs is a lookup.
#pragma once

#include "core/result.hpp"

#include <string>
#include <vector>

namespace ktstr {

struct InitramfsEntry {
  enum class Kind { kFile, kDirectory, kSymlink, kCharDevice };

  Kind kind = Kind::kFile;
  std::string path;         // inside the archive, e.g. "init" or "bin/sched" (leading '/' ignored)
  unsigned mode = 0644;     // permission bits only
  std::string host_path;    // kFile: read from here when non-empty ...
  std::string data;         // ... else these bytes are the content
  std::string target;       // kSymlink
  unsigned dev_major = 0;   // kCharDevice
  unsigned dev_minor = 0;

  static InitramfsEntry file_from_host(std::string path, std::string host_path, unsigned mode = 0755);
  static InitramfsEntry file_from_bytes(std::string path, std::string data, unsigned mode = 0644);
  static InitramfsEntry directory(std::string path, unsigned mode = 0755);
  static InitramfsEntry symlink(std::string path, std::string target);
  static InitramfsEntry char_device(std::string path, unsigned major, unsigned minor, unsigned mode = 0600);
};

// The archive's bytes. Parent directories that are not listed are added
// (mode 0755); a path listed twice is an error.
Result<std::string> build_initramfs(const std::vector<InitramfsEntry>& entries);

// The content key: SHA-256 (hex) over every entry's kind, path, mode, target,
// device numbers and content. Host files are hashed, not archived.
Result<std::string> initramfs_key(const std::vector<InitramfsEntry>& entries);

// Build once and keep as `<cache_dir>/<key>.cpio` (written atomically);
// returns that path. A hit costs hashing the inputs, not building.
Result<std::string> build_initramfs_cached(const std::vector<InitramfsEntry>& entries,
                                           const std::string& cache_dir);

// Shared libraries an ELF binary needs at run time (DT_NEEDED, resolved
// recursively in the usual library directories), plus its interpreter
// (PT_INTERP) first. Empty for a static binary.
Result<std::vector<std::string>> elf_shared_libraries(const std::string& elf_path);

}  // namespace ktstr
