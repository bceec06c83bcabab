// Receiving the FILE frames (guest/proto/file_messages.hpp) that come before
// the JOB: the scheduler, its libraries, a verifier job's objects. Each file
// is written to a temporary file beside its target, checked (size,
// SHA-256) once its last chunk is in, and only then made executable (its
// mode) and renamed into place. Any violation (a bad path, a directory on
// the way that is a symbolic link, too many or too large files, a chunk out
// of order, a size or hash mismatch, a file still incomplete at the JOB)
// is an error, and every file this receiver wrote is removed: the agent
// refuses the job and never runs a half-written binary.
#pragma once

#include "core/result.hpp"
#include "core/sha256.hpp"
#include "guest/proto/file_messages.hpp"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ktstr::agent {

class FileReceiver {
 public:
  // `root` is prepended to every guest path ("" in the VM; a temporary
  // directory in unit tests).
  explicit FileReceiver(std::string root = "") : root_(std::move(root)) {}
  ~FileReceiver();
  FileReceiver(const FileReceiver&) = delete;
  FileReceiver& operator=(const FileReceiver&) = delete;

  // One FILE frame. After an error every later call fails too.
  Status accept(const proto::FileMsg& chunk);
  // The JOB arrived: no file may be half-received.
  Status finish();

  size_t files() const { return placed_.size(); }
  uint64_t bytes() const { return total_; }

 private:
  struct Current {
    std::string path;  // guest path
    uint32_t mode = 0;
    uint64_t size = 0;
    std::string sha256;
    std::string temp;  // host path of the temporary file
    int fd = -1;
    uint64_t received = 0;
    Sha256 hash;
  };

  Status begin(const proto::FileMsg& chunk);
  Status complete();
  // Removes the unfinished temporary file and every placed file; returns `why`.
  Status refuse(Error why);
  Status make_parents(const std::string& guest_path);

  std::string root_;
  std::optional<Current> cur_;
  std::vector<std::string> placed_;  // host paths
  std::set<std::string> seen_;       // guest paths begun
  uint64_t total_ = 0;               // bytes of the files begun
  bool failed_ = false;
};

}  // namespace ktstr::agent
