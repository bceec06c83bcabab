// FILE (45, host -> guest on the control port, before the JOB): the
// scheduler binary, its shared libraries and a verifier job's BPF objects
// travel to the running VM instead of living in the initramfs, so one
// initramfs per agent build serves every scheduler. A file is a run of FILE
// frames, chunks in order and contiguous, each repeating the file's path,
// mode, total size and SHA-256; the agent (guest/agent/file_receiver.hpp)
// writes it to a temporary file, checks size and hash at the end and only
// then renames it into place. The limits here are the agent's.
#pragma once

#include "guest/proto/messages.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr::proto {

struct FileMsg {
  static constexpr MsgType kType = MsgType::File;
  std::string path;      // absolute guest path, normalized, under an allowed root
  uint32_t mode = 0755;  // permission bits only (no setuid, setgid, sticky)
  uint64_t size = 0;     // the whole file's size
  std::string sha256;    // the whole file's SHA-256, 64 lowercase hex digits
  uint64_t offset = 0;   // where this chunk starts
  std::string data;      // this chunk's bytes (base64 in the JSON)
};

void to_json(nlohmann::json& j, const FileMsg& v);
void from_json(const nlohmann::json& j, FileMsg& v);

// Raw bytes per chunk: base64 makes 853 KiB of them, so a frame (with the
// path and hash) stays under the 1 MiB payload limit.
inline constexpr size_t kFileChunkBytes = 640u << 10;
// At most this many files per boot (a scheduler and its libraries: scx_tiny
// needs 5, a Rust scx scheduler about 6).
inline constexpr size_t kMaxFiles = 64;
// Rust scx schedulers are 10-30 MB (release builds, not stripped), a C one
// tens of KiB, glibc 2 MB: 32 MiB per file and 40 MiB per boot. The host
// queues the base64 frames (4/3 of that, 53 MiB) within the VM layer's
// 64 MiB send buffer, and a 256 MiB guest keeps them in its rootfs.
inline constexpr uint64_t kMaxFileBytes = 32ull << 20;
inline constexpr uint64_t kMaxFilesTotalBytes = 40ull << 20;
inline constexpr size_t kMaxFilePathLen = 4095;

// An absolute, normalized path (no empty, "." or ".." components, no
// trailing '/', printable ASCII without spaces) under an allowed root:
// /sched/, /verifier/, /lib*/, /usr/lib*/ (lib, lib32, lib64, libx32), or a
// file /bin/scx-<name>.
Status validate_file_path(const std::string& path);

// One FILE frame on its own: the path, mode, size and hash fields, and the
// chunk lies within the file and is not larger than kFileChunkBytes (empty
// only for an empty file).
Status validate_file_msg(const FileMsg& m);

// What the host is about to send, checked before boot with the agent's
// limits: count, size per file and in total, distinct valid paths.
struct FileSetEntry {
  std::string path;
  uint64_t size = 0;
};
Status validate_file_set(const std::vector<FileSetEntry>& files);

// The FILE frames for one file (at least one frame; an empty file is one
// empty chunk). The caller has validated path and size.
std::string encode_file_frames(const std::string& path, uint32_t mode, std::string_view content);

}  // namespace ktstr::proto
