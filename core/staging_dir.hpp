// A directory made with mkdtemp inside a given parent (so a later rename()
// stays on one filesystem), removed on destruction unless committed.
#pragma once

#include "core/fs.hpp"
#include "core/result.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ktstr {

class StagingDir {
 public:
  static Result<StagingDir> create(const std::string& parent, const std::string& tag) {
    if (auto r = make_dirs(parent); !r) return fail(r.error());
    std::string tmpl = parent + "/.tmp-" + tag + "-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      return fail("cannot create a directory in '" + parent + "': " + std::strerror(errno));
    ::chmod(tmpl.c_str(), 0755);  // mkdtemp makes it 0700; cached files are not secret
    return StagingDir(tmpl);
  }
  StagingDir(StagingDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  StagingDir& operator=(StagingDir&&) = delete;
  StagingDir(const StagingDir&) = delete;
  ~StagingDir() {
    if (!path_.empty()) (void)remove_tree(path_);
  }
  const std::string& path() const { return path_; }

  // Rename into `dest`, replacing a stale directory there; afterwards the
  // directory is no longer removed by this object.
  Status commit(const std::string& dest) {
    if (path_exists(dest))
      if (auto r = remove_tree(dest); !r) return r;
    if (std::rename(path_.c_str(), dest.c_str()) != 0)
      return fail("cannot rename '" + path_ + "' to '" + dest + "': " + std::strerror(errno));
    path_.clear();
    return {};
  }

 private:
  explicit StagingDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

}  // namespace ktstr
