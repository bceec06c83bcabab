// Host-wide locks a shared machine (or CI runner) can ask for: when the
// environment variable names a file, ktstr holds an flock on it for as long
// as the guarded job runs, so that several ktstr processes (and other tools
// using the same file with flock(1)) take turns for the CPUs.
//   KTSTR_VM_LOCK     around every QEMU run
//   KTSTR_BUILD_LOCK  around every kernel build's make
// Unset or empty: no lock. The kernel drops the lock when the process dies.
#pragma once

#include "core/result.hpp"

#include <functional>
#include <string>

namespace ktstr {

inline constexpr const char* kVmLockEnv = "KTSTR_VM_LOCK";
inline constexpr const char* kBuildLockEnv = "KTSTR_BUILD_LOCK";

class HostLock {
 public:
  HostLock() = default;
  HostLock(HostLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  HostLock& operator=(HostLock&& o) noexcept;
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;
  ~HostLock();
  bool held() const { return fd_ >= 0; }

  // Blocks until the lock named by `env_var` is ours (`on_wait` runs once
  // when another process holds it); an unheld HostLock when the variable is
  // unset or empty. Errors: the file cannot be created or locked.
  static Result<HostLock> from_env(const char* env_var, const std::function<void(const std::string&)>& on_wait = {});
  // The same for an explicit path.
  static Result<HostLock> take(const std::string& path, const std::function<void(const std::string&)>& on_wait = {});

 private:
  explicit HostLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace ktstr
