#include "guest/vm/snapshot.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace ktstr {
namespace {

constexpr std::string_view kReplayMagic = "KTSR";
constexpr uint32_t kReplayVersion = 1;
constexpr std::string_view kKeyFormat = "ktstr-snapshot 1";
constexpr std::string_view kTmpPrefix = ".tmp-";

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t get_u32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// What identifies a file for the key: a content-addressed cache never
// rewrites one in place, so path, size, mtime and inode are enough.
Result<std::string> file_identity(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return fail("cannot stat '" + path + "': " + std::strerror(errno));
  return path + " " + std::to_string(st.st_size) + " " + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec) + " " + std::to_string(st.st_ino);
}

std::string cut_work_dir(std::string arg, const std::string& work_dir) {
  if (work_dir.empty()) return arg;
  for (size_t at; (at = arg.find(work_dir)) != std::string::npos;) arg.replace(at, work_dir.size(), "{work}");
  return arg;
}


}  // namespace

std::string encode_replay(const std::vector<ReplayChunk>& chunks) {
  std::string out(kReplayMagic);
  put_u32(out, kReplayVersion);
  for (const ReplayChunk& c : chunks) {
    put_u32(out, c.channel);
    put_u32(out, static_cast<uint32_t>(c.bytes.size()));
    out += c.bytes;
  }
  return out;
}

Result<std::vector<ReplayChunk>> decode_replay(std::string_view data, uint32_t channels) {
  if (data.size() < 8 || data.substr(0, 4) != kReplayMagic) return fail("not a snapshot replay file");
  if (get_u32(data, 4) != kReplayVersion)
    return fail("snapshot replay version " + std::to_string(get_u32(data, 4)) + " is not " +
                std::to_string(kReplayVersion));
  std::vector<ReplayChunk> out;
  size_t at = 8;
  while (at < data.size()) {
    if (data.size() - at < 8) return fail("snapshot replay is truncated");
    uint32_t channel = get_u32(data, at);
    uint32_t len = get_u32(data, at + 4);
    at += 8;
    if (channel >= channels)
      return fail("snapshot replay names channel " + std::to_string(channel) + " of " + std::to_string(channels));
    if (data.size() - at < len) return fail("snapshot replay is truncated");
    out.push_back({channel, std::string(data.substr(at, len))});
    at += len;
  }
  return out;
}

Result<std::string> snapshot_key(const std::vector<std::string>& argv, const std::string& work_dir) {
  if (argv.empty()) return fail("no QEMU command line to key a snapshot on");
  std::string text(kKeyFormat);
  std::string exe = find_in_path(argv[0]);
  auto binary = file_identity(exe.empty() ? argv[0] : exe);
  if (!binary) return tl::unexpected(binary.error());
  text += "\nbinary " + *binary;
  for (size_t i = 1; i < argv.size(); ++i) {
    text += "\narg " + cut_work_dir(argv[i], work_dir);
    if ((argv[i - 1] == "-kernel" || argv[i - 1] == "-initrd")) {
      auto id = file_identity(argv[i]);
      if (!id) return tl::unexpected(id.error());
      text += "\nfile " + *id;
    }
  }
  return sha256_hex(text);
}

std::string default_snapshot_dir() {
  const char* mode = std::getenv("KTSTR_SNAPSHOT");
  if (mode && std::string_view(mode) == "off") return "";
  const char* dir = std::getenv("KTSTR_SNAPSHOT_DIR");
  return dir && *dir ? dir : cache_dir() + "/snapshots";
}

std::optional<StoredSnapshot> find_snapshot(const std::string& snapshot_dir, const std::string& key,
                                            uint32_t channels) {
  StoredSnapshot s;
  s.dir = snapshot_dir + "/" + key;
  s.vmstate = s.dir + "/vmstate";
  if (!path_exists(s.dir)) return std::nullopt;
  auto replay = read_file(s.dir + "/replay", kMaxReplayBytes + 1024 * 1024);
  Result<std::vector<ReplayChunk>> chunks = replay ? decode_replay(*replay, channels)
                                                   : Result<std::vector<ReplayChunk>>(tl::unexpected(replay.error()));
  struct stat st{};
  if (!chunks || ::stat(s.vmstate.c_str(), &st) != 0 || st.st_size == 0) {
    spdlog::warn("vm: removing the damaged snapshot '{}': {}", s.dir,
                 chunks ? std::string("no vmstate") : chunks.error().msg);
    (void)remove_tree(s.dir);
    return std::nullopt;
  }
  s.replay = std::move(*chunks);
  return s;
}

Result<PendingSnapshot> PendingSnapshot::begin(const std::string& snapshot_dir, const std::string& key) {
  if (auto made = make_dirs(snapshot_dir, 0700); !made) return tl::unexpected(made.error());
  PendingSnapshot p;
  p.snapshot_dir_ = snapshot_dir;
  p.key_ = key;
  std::string tmpl = snapshot_dir + "/" + std::string(kTmpPrefix) + key.substr(0, 16) + ".XXXXXX";
  if (!::mkdtemp(tmpl.data())) return fail("cannot create a directory in '" + snapshot_dir + "': " + std::strerror(errno));
  p.tmp_dir_ = tmpl;
  std::string vmstate = p.tmp_dir_ + "/vmstate";
  p.fd_ = ::open(vmstate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (p.fd_ < 0) {
    std::string err = std::strerror(errno);
    (void)remove_tree(p.tmp_dir_);
    return fail("cannot create '" + vmstate + "': " + err);
  }
  return p;
}

PendingSnapshot::PendingSnapshot(PendingSnapshot&& o) noexcept
    : snapshot_dir_(std::move(o.snapshot_dir_)), key_(std::move(o.key_)), tmp_dir_(std::move(o.tmp_dir_)),
      fd_(o.fd_), committed_(o.committed_) {
  o.fd_ = -1;
  o.tmp_dir_.clear();
}

PendingSnapshot::~PendingSnapshot() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !tmp_dir_.empty()) (void)remove_tree(tmp_dir_);
}

Status PendingSnapshot::commit(const std::vector<ReplayChunk>& replay, std::chrono::milliseconds boot_time,
                               std::chrono::milliseconds save_time) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  struct stat st{};
  if (::stat((tmp_dir_ + "/vmstate").c_str(), &st) != 0 || st.st_size == 0) return fail("QEMU wrote no vmstate");
  if (auto w = write_file_atomic(tmp_dir_ + "/replay", encode_replay(replay), 0600); !w) return w;
  nlohmann::json meta = {{"key", key_},
                         {"created_at", static_cast<int64_t>(::time(nullptr))},
                         {"vmstate_bytes", static_cast<int64_t>(st.st_size)},
                         {"replay_chunks", replay.size()},
                         {"boot_ms", boot_time.count()},
                         {"save_ms", save_time.count()}};
  if (auto w = write_file_atomic(tmp_dir_ + "/meta.json", meta.dump(2) + "\n", 0600); !w) return w;
  std::string final_dir = snapshot_dir_ + "/" + key_;
  if (::rename(tmp_dir_.c_str(), final_dir.c_str()) != 0) {
    // Another run made the same snapshot first: keep theirs.
    if (errno == EEXIST || errno == ENOTEMPTY) return {};
    return fail("cannot rename '" + tmp_dir_ + "' to '" + final_dir + "': " + std::strerror(errno));
  }
  committed_ = true;
  evict_snapshots(snapshot_dir_);
  return {};
}

SnapshotUsage snapshot_usage(const std::string& snapshot_dir) {
  SnapshotUsage u;
  DIR* d = ::opendir(snapshot_dir.c_str());
  if (!d) return u;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name.rfind(kTmpPrefix, 0) == 0) continue;
    std::string path = snapshot_dir + "/" + name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      ++u.snapshots;
      u.bytes += tree_bytes(path);
    } else if (name.size() > 15 && name.substr(name.size() - 15) == ".restore-failed") {
      ++u.restore_failed;
    }
  }
  ::closedir(d);
  return u;
}

void touch_snapshot(const std::string& dir) { (void)::utimensat(AT_FDCWD, dir.c_str(), nullptr, 0); }

void evict_snapshots(const std::string& snapshot_dir, size_t max_count, uint64_t max_bytes) {
  struct Entry {
    std::string path;
    timespec mtime;
    uint64_t bytes;
  };
  std::vector<Entry> entries;
  DIR* d = ::opendir(snapshot_dir.c_str());
  if (!d) return;
  const time_t now = ::time(nullptr);
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = snapshot_dir + "/" + name;
    struct stat st{};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) continue;
    if (name.rfind(kTmpPrefix, 0) == 0) {
      // A writer that died (kill -9) leaves its directory; a live one is younger than this.
      if (now - st.st_mtim.tv_sec > 3600) (void)remove_tree(path);
      continue;
    }
    entries.push_back({path, st.st_mtim, tree_bytes(path)});
  }
  ::closedir(d);
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.mtime.tv_sec != b.mtime.tv_sec ? a.mtime.tv_sec > b.mtime.tv_sec : a.mtime.tv_nsec > b.mtime.tv_nsec;
  });
  uint64_t total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    total += entries[i].bytes;
    // The newest always stays, even alone over the byte limit.
    if (i > 0 && (i >= max_count || total > max_bytes)) {
      spdlog::debug("vm: evicting snapshot '{}'", entries[i].path);
      (void)remove_tree(entries[i].path);
    }
  }
}

}  // namespace ktstr
