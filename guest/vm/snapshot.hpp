// VM snapshots: a booted guest whose agent waits for its job, saved once by
// QEMU migration to a file and restored instead of booting.
//
// One snapshot per key: the QEMU command line (work-dir paths left out),
// the identity of the QEMU binary, the kernel and the initramfs (path, size,
// mtime, inode), so a different kernel, topology, memory size, agent build,
// accelerator mode or console verbosity never restores another's state.
// Only TCG guests are snapshotted: a KVM boot is already fast, and a KVM
// state ties itself to the host CPU.
//
// On disk, under the snapshot directory (<cache>/snapshots):
//   <key>/vmstate   QEMU's migration stream
//   <key>/replay    what the guest wrote before the snapshot (console and
//                   ports, in order), handed to the caller again on restore
//   <key>/meta.json when and from what it was made, sizes, the boot time
// A snapshot is written into a mkdtemp directory and renamed into place, so
// a reader sees all of it or nothing; the least recently used go first when
// there are more than kMaxSnapshots or more than kMaxSnapshotBytes.
#pragma once

#include "core/result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// One piece of guest output: channel 0 is the console, 1 + i port i.
struct ReplayChunk {
  uint32_t channel = 0;
  std::string bytes;
  bool operator==(const ReplayChunk&) const = default;
};

inline constexpr size_t kMaxReplayBytes = 4 * 1024 * 1024;
inline constexpr size_t kMaxSnapshots = 8;
inline constexpr uint64_t kMaxSnapshotBytes = 2ull * 1024 * 1024 * 1024;

// "KTSR" version, then per chunk: channel (u32 LE), length (u32 LE), bytes.
std::string encode_replay(const std::vector<ReplayChunk>& chunks);
// Strict: a bad magic, a truncated chunk or a channel >= `channels` is an error.
Result<std::vector<ReplayChunk>> decode_replay(std::string_view data, uint32_t channels);

// The key (hex SHA-256) for a QEMU argv (without the snapshot's own QMP and
// -incoming options). `work_dir` is cut out of every argument; `-kernel`,
// `-initrd` and the binary are identified by their files.
Result<std::string> snapshot_key(const std::vector<std::string>& argv, const std::string& work_dir);

// $KTSTR_SNAPSHOT_DIR, else <cache>/snapshots; empty when KTSTR_SNAPSHOT=off.
std::string default_snapshot_dir();

struct StoredSnapshot {
  std::string dir;      // <snapshot dir>/<key>
  std::string vmstate;  // <dir>/vmstate
  std::vector<ReplayChunk> replay;
};

// The snapshot for `key` when there is a whole one; a damaged one is removed.
std::optional<StoredSnapshot> find_snapshot(const std::string& snapshot_dir, const std::string& key,
                                            uint32_t channels);

// A snapshot being written: a mkdtemp directory beside the final one.
class PendingSnapshot {
 public:
  static Result<PendingSnapshot> begin(const std::string& snapshot_dir, const std::string& key);
  PendingSnapshot(PendingSnapshot&& o) noexcept;
  PendingSnapshot& operator=(PendingSnapshot&&) = delete;
  ~PendingSnapshot();  // removes the directory unless committed

  // The vmstate file, open for writing (QEMU gets a copy of the fd).
  int vmstate_fd() const { return fd_; }
  // Write replay + meta and rename into place (someone else's snapshot for
  // the same key may win the race; then ours is dropped). Then evict.
  Status commit(const std::vector<ReplayChunk>& replay, std::chrono::milliseconds boot_time,
                std::chrono::milliseconds save_time);

 private:
  PendingSnapshot() = default;
  std::string snapshot_dir_, key_, tmp_dir_;
  int fd_ = -1;
  bool committed_ = false;
};

// Remove the least recently used snapshots beyond the limits (a restore
// touches its directory). Temporary directories older than an hour go too.
void evict_snapshots(const std::string& snapshot_dir, size_t max_count = kMaxSnapshots,
                     uint64_t max_bytes = kMaxSnapshotBytes);

// What a snapshot directory holds, for `ktstr doctor`.
struct SnapshotUsage {
  size_t snapshots = 0;
  uint64_t bytes = 0;
  size_t restore_failed = 0;  // configurations turned off by a failed restore
};
SnapshotUsage snapshot_usage(const std::string& snapshot_dir);

// Mark a snapshot as just used (its directory's mtime).
void touch_snapshot(const std::string& dir);

}  // namespace ktstr
