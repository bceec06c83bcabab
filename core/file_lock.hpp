// The one file lock: an exclusive flock(2) on a file, held for as long as
// the FileLock lives (the kernel drops it when the process dies, so a killed
// ktstr never blocks the next). Every lock ktstr takes is one of these:
//   - host-wide locks a shared machine (or CI runner) can ask for: when the
//     environment variable names a file, ktstr holds it for as long as the
//     guarded job runs, so that several ktstr processes (and other tools
//     using the same file with flock(1)) take turns for the CPUs:
//       KTSTR_VM_LOCK     around every QEMU run
//       KTSTR_BUILD_LOCK  around every kernel build's make
//     Unset or empty: no lock.
//   - a kernel build directory (kbuild), the private apt state of `kernel
//     fetch` (kbuild), a bisect's worktree (bisectrun).
// A lock that cannot be taken is an error, never "carry on unlocked".
#pragma once

#include "core/result.hpp"

#include <functional>
#include <optional>
#include <string>

namespace ktstr {

inline constexpr const char* kVmLockEnv = "KTSTR_VM_LOCK";
inline constexpr const char* kBuildLockEnv = "KTSTR_BUILD_LOCK";

class FileLock {
 public:
  FileLock() = default;  // holds nothing
  FileLock(FileLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileLock& operator=(FileLock&& o) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();
  bool held() const { return fd_ >= 0; }

  // Blocks until the lock on `path` (created when missing) is ours;
  // `on_wait` runs once, with the path, when another process holds it.
  // Errors: the file cannot be created or opened, flock fails (EINTR is
  // retried).
  static Result<FileLock> take(const std::string& path, const std::function<void(const std::string&)>& on_wait = {});
  // Without waiting: nullopt when another process holds it. Errors as take.
  static Result<std::optional<FileLock>> try_take(const std::string& path);
  // The lock named by `env_var`, as take; an unheld FileLock when the
  // variable is unset or empty.
  static Result<FileLock> from_env(const char* env_var, const std::function<void(const std::string&)>& on_wait = {});

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  static Result<int> open_file(const std::string& path);
  int fd_ = -1;
};

}  // namespace ktstr
