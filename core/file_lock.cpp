#include "core/file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace ktstr {

FileLock& FileLock::operator=(FileLock&& o) noexcept {
  std::swap(fd_, o.fd_);
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

Result<int> FileLock::open_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return fail("cannot open the lock file '" + path + "': " + std::strerror(errno));
  return fd;
}

Result<FileLock> FileLock::take(const std::string& path, const std::function<void(const std::string&)>& on_wait) {
  auto fd = open_file(path);
  if (!fd) return tl::unexpected(fd.error());
  FileLock lock(*fd);  // closes the file on every way out
  if (::flock(*fd, LOCK_EX | LOCK_NB) == 0) return lock;
  if (errno != EWOULDBLOCK) return fail("cannot lock '" + path + "': " + std::strerror(errno));
  if (on_wait) on_wait(path);
  while (::flock(*fd, LOCK_EX) != 0)
    if (errno != EINTR) return fail("cannot lock '" + path + "': " + std::strerror(errno));
  return lock;
}

Result<std::optional<FileLock>> FileLock::try_take(const std::string& path) {
  auto fd = open_file(path);
  if (!fd) return tl::unexpected(fd.error());
  FileLock lock(*fd);
  while (::flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<FileLock>();
    if (errno != EINTR) return fail("cannot lock '" + path + "': " + std::strerror(errno));
  }
  return std::optional<FileLock>(std::move(lock));
}

Result<FileLock> FileLock::from_env(const char* env_var, const std::function<void(const std::string&)>& on_wait) {
  const char* path = std::getenv(env_var);
  if (!path || !*path) return FileLock();
  auto lock = take(path, on_wait);
  if (!lock) return tl::unexpected(lock.error().context(std::string("taking the lock ") + env_var + " names"));
  return lock;
}

}  // namespace ktstr
