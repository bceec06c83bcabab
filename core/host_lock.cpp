#include "core/host_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ktstr {

HostLock& HostLock::operator=(HostLock&& o) noexcept {
  std::swap(fd_, o.fd_);
  return *this;
}

HostLock::~HostLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<HostLock> HostLock::take(const std::string& path, const std::function<void(const std::string&)>& on_wait) {
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return fail("cannot open the lock file '" + path + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (on_wait) on_wait(path);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno == EINTR) continue;
      std::string err = std::strerror(errno);
      ::close(fd);
      return fail("cannot lock '" + path + "': " + err);
    }
  }
  return HostLock(fd);
}

Result<HostLock> HostLock::from_env(const char* env_var, const std::function<void(const std::string&)>& on_wait) {
  const char* path = std::getenv(env_var);
  if (!path || !*path) return HostLock();
  auto lock = take(path, on_wait);
  if (!lock) return tl::unexpected(lock.error().context(std::string("taking the lock ") + env_var + " names"));
  return lock;
}

}  // namespace ktstr
