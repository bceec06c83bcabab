#include "core/fs.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

namespace ktstr {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

std::string hint_for_errno(int e, const std::string& path) {
  if (e == EACCES || e == EROFS || e == EPERM)
    return "check that '" + path + "' is writable, or set KTSTR_CACHE_DIR to another directory";
  if (e == ENOSPC || e == EDQUOT) return "free some disk space, or set KTSTR_CACHE_DIR elsewhere";
  return {};
}

Status write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return fail(errno_text(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return {};
}

}  // namespace

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot read '" + path + "': " + errno_text(errno));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail("cannot read '" + path + "': " + errno_text(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) {
      ::close(fd);
      return fail("'" + path + "' is larger than " + std::to_string(max_bytes) + " bytes");
    }
  }
  ::close(fd);
  return out;
}

Status write_file_atomic(const std::string& path, std::string_view data, int mode) {
  std::string tmpl = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) {
    int e = errno;
    return fail("cannot write '" + path + "': " + errno_text(e), hint_for_errno(e, path));
  }
  auto st = write_all(fd, data.data(), data.size());
  if (st && ::fchmod(fd, static_cast<mode_t>(mode)) != 0) st = fail(errno_text(errno));
  if (st && ::fsync(fd) != 0) st = fail(errno_text(errno));
  int e = errno;
  ::close(fd);
  if (st && ::rename(tmpl.c_str(), path.c_str()) != 0) {
    e = errno;
    st = fail(errno_text(e));
  }
  if (!st) {
    ::unlink(tmpl.c_str());
    return fail("cannot write '" + path + "': " + st.error().msg, hint_for_errno(e, path));
  }
  return {};
}

Status copy_file_atomic(const std::string& from, const std::string& to, int mode) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return fail("cannot read '" + from + "': " + errno_text(errno));
  std::string tmpl = to + ".tmp.XXXXXX";
  int out = ::mkstemp(tmpl.data());
  if (out < 0) {
    int e = errno;
    ::close(in);
    return fail("cannot write '" + to + "': " + errno_text(e), hint_for_errno(e, to));
  }
  Status st;
  char buf[1 << 16];
  int e = 0;
  while (st) {
    ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      e = errno;
      st = fail(errno_text(e));
      break;
    }
    if (n == 0) break;
    st = write_all(out, buf, static_cast<size_t>(n));
    if (!st) e = errno;
  }
  if (st && ::fchmod(out, static_cast<mode_t>(mode)) != 0) st = fail(errno_text(e = errno));
  if (st && ::fsync(out) != 0) st = fail(errno_text(e = errno));
  ::close(in);
  ::close(out);
  if (st && ::rename(tmpl.c_str(), to.c_str()) != 0) st = fail(errno_text(e = errno));
  if (!st) {
    ::unlink(tmpl.c_str());
    return fail("cannot write '" + to + "': " + st.error().msg, hint_for_errno(e, to));
  }
  return {};
}

Status make_dirs(const std::string& path, int mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return fail("cannot create directory '" + path + "': " + ec.message(), hint_for_errno(ec.value(), path));
  (void)mode;
  return {};
}

bool path_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string sha256_hex(std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Result<std::string> sha256_file_hex(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail("cannot read '" + path + "': " + errno_text(errno));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return fail("cannot read '" + path + "': " + errno_text(e));
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf, static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Result<TempDir> TempDir::create(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/" + prefix + ".XXXXXX";
  if (!::mkdtemp(tmpl.data())) return fail("cannot create a temporary directory: " + errno_text(errno));
  return TempDir(tmpl);
}

TempDir::~TempDir() {
  if (!path_.empty() && !keep_) (void)remove_tree(path_);
}

Status remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return fail("cannot remove '" + path + "': " + ec.message());
  return {};
}

std::string cache_dir() {
  if (const char* d = std::getenv("KTSTR_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/ktstr";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.cache/ktstr";
}

std::string exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return ".";
  return p.parent_path().string();
}

uint64_t tree_bytes(const std::string& path) {
  std::error_code ec;
  uint64_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

}  // namespace ktstr
