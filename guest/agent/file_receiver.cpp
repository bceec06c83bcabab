#include "guest/agent/file_receiver.hpp"

#include "guest/agent/util.hpp"

#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ktstr::agent {

namespace {

std::string q(const std::string& path) { return "'" + path + "'"; }

}  // namespace

FileReceiver::~FileReceiver() {
  if (cur_) {
    if (cur_->fd >= 0) ::close(cur_->fd);
    ::unlink(cur_->temp.c_str());
  }
}

Status FileReceiver::refuse(Error why) {
  failed_ = true;
  if (cur_) {
    if (cur_->fd >= 0) ::close(cur_->fd);
    ::unlink(cur_->temp.c_str());
    cur_.reset();
  }
  for (const std::string& p : placed_) ::unlink(p.c_str());
  placed_.clear();
  return tl::unexpected(std::move(why));
}

// mkdir -p below the root for the file's directory, refusing a component
// that is a symbolic link (it could lead anywhere) or not a directory.
Status FileReceiver::make_parents(const std::string& guest_path) {
  size_t pos = 0;
  while ((pos = guest_path.find('/', pos + 1)) != std::string::npos) {
    std::string dir = root_ + guest_path.substr(0, pos);
    struct stat st{};
    if (::lstat(dir.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode))
        return fail("file " + q(guest_path) + ": " + q(guest_path.substr(0, pos)) + " is a symbolic link");
      if (!S_ISDIR(st.st_mode))
        return fail("file " + q(guest_path) + ": " + q(guest_path.substr(0, pos)) + " is not a directory");
      continue;
    }
    if (errno != ENOENT || (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST))
      return fail("file " + q(guest_path) + ": creating " + q(guest_path.substr(0, pos)) + ": " + errno_text(errno));
  }
  return {};
}

Status FileReceiver::begin(const proto::FileMsg& chunk) {
  if (chunk.offset != 0)
    return fail("file " + q(chunk.path) + ": first chunk at offset " + std::to_string(chunk.offset) + ", not 0");
  if (seen_.count(chunk.path)) return fail("file " + q(chunk.path) + " is sent twice");
  if (seen_.size() >= proto::kMaxFiles)
    return fail("more than " + std::to_string(proto::kMaxFiles) + " files sent before the job");
  if (total_ + chunk.size > proto::kMaxFilesTotalBytes)
    return fail("file " + q(chunk.path) + " brings the files sent to more than " +
                std::to_string(proto::kMaxFilesTotalBytes >> 20) + " MiB");
  seen_.insert(chunk.path);
  total_ += chunk.size;
  if (auto made = make_parents(chunk.path); !made) return made;
  Current c;
  c.path = chunk.path;
  c.mode = chunk.mode;
  c.size = chunk.size;
  c.sha256 = chunk.sha256;
  std::string dir = root_ + chunk.path.substr(0, chunk.path.rfind('/'));
  std::string templ = dir + "/.ktstr-file-XXXXXX";
  c.fd = ::mkstemp(templ.data());
  if (c.fd < 0) return fail("file " + q(chunk.path) + ": creating a temporary file: " + errno_text(errno));
  c.temp = templ;
  cur_ = std::move(c);
  return {};
}

Status FileReceiver::complete() {
  Current& c = *cur_;
  struct stat st{};
  if (::fstat(c.fd, &st) != 0 || uint64_t(st.st_size) != c.size)
    return fail("file " + q(c.path) + ": " + std::to_string(uint64_t(st.st_size)) + " bytes written, not " +
                std::to_string(c.size));
  std::string got = c.hash.finish_hex();
  if (got != c.sha256)
    return fail("file " + q(c.path) + ": SHA-256 mismatch (received " + got + ", expected " + c.sha256 + ")",
                "the transfer was corrupted; run again");
  if (::fchmod(c.fd, c.mode) != 0) return fail("file " + q(c.path) + ": chmod: " + errno_text(errno));
  if (::close(c.fd) != 0) {
    c.fd = -1;
    return fail("file " + q(c.path) + ": close: " + errno_text(errno));
  }
  c.fd = -1;
  std::string target = root_ + c.path;
  if (::lstat(target.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return fail("file " + q(c.path) + ": a directory is in its place");
  // rename() replaces a symbolic link itself, never what it points to.
  if (::rename(c.temp.c_str(), target.c_str()) != 0)
    return fail("file " + q(c.path) + ": rename into place: " + errno_text(errno));
  placed_.push_back(target);
  cur_.reset();
  return {};
}

Status FileReceiver::accept(const proto::FileMsg& chunk) {
  if (failed_) return fail("file " + q(chunk.path) + ": an earlier file was refused");
  if (auto valid = proto::validate_file_msg(chunk); !valid) return refuse(valid.error());
  if (cur_ && chunk.path != cur_->path)
    return refuse(Error("file " + q(cur_->path) + " ended after " + std::to_string(cur_->received) + " of " +
                       std::to_string(cur_->size) + " bytes (" + q(chunk.path) + " began)"));
  if (!cur_) {
    if (auto started = begin(chunk); !started) return refuse(started.error());
  } else {
    Current& c = *cur_;
    if (chunk.size != c.size || chunk.sha256 != c.sha256 || chunk.mode != c.mode)
      return refuse(Error("file " + q(c.path) + ": size, mode or sha256 changed between chunks"));
    if (chunk.offset != c.received)
      return refuse(Error("file " + q(c.path) + ": chunk at offset " + std::to_string(chunk.offset) + ", expected " +
                         std::to_string(c.received) + " (chunks must be in order and contiguous)"));
  }
  Current& c = *cur_;
  const char* p = chunk.data.data();
  size_t left = chunk.data.size();
  while (left > 0) {
    ssize_t n = ::write(c.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return refuse(Error("file " + q(c.path) + ": write: " + errno_text(n < 0 ? errno : EIO)));
    p += n;
    left -= size_t(n);
  }
  c.hash.update(chunk.data);
  c.received += chunk.data.size();
  if (c.received == c.size)
    if (auto done = complete(); !done) return refuse(done.error());
  return {};
}

Status FileReceiver::finish() {
  if (failed_) return fail("files before the job were refused");
  if (cur_)
    return refuse(Error("file " + q(cur_->path) + " is incomplete at the job: " + std::to_string(cur_->received) +
                       " of " + std::to_string(cur_->size) + " bytes"));
  return {};
}

}  // namespace ktstr::agent
