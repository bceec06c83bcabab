#include "guest/initramfs/initramfs.hpp"

#include "core/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

namespace ktstr {
namespace {

// Bumped whenever the archive layout changes, so old cache entries are not reused.
constexpr const char* kFormatTag = "ktstr-initramfs-v1";

using Kind = InitramfsEntry::Kind;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kFile: return "file";
    case Kind::kDirectory: return "dir";
    case Kind::kSymlink: return "symlink";
    case Kind::kCharDevice: return "chardev";
  }
  return "?";
}

// "/bin//x" -> "bin/x"; rejects empty paths and '..' components.
Result<std::string> normalize_path(const std::string& raw) {
  std::string out;
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t end = raw.find('/', pos);
    if (end == std::string::npos) end = raw.size();
    std::string part = raw.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") return fail("invalid initramfs path '" + raw + "': '..' is not allowed");
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty()) return fail("invalid initramfs path '" + raw + "': it is empty");
  return out;
}

// Normalized, sorted entries with missing parent directories added.
Result<std::vector<InitramfsEntry>> canonical_entries(const std::vector<InitramfsEntry>& entries) {
  std::map<std::string, InitramfsEntry> by_path;
  for (const auto& e : entries) {
    auto path = normalize_path(e.path);
    if (!path) return fail(path.error());
    InitramfsEntry c = e;
    c.path = *path;
    c.mode &= 07777;
    if (!by_path.emplace(c.path, std::move(c)).second)
      return fail("initramfs path '" + *path + "' is listed twice");
  }
  std::vector<std::string> missing;
  for (const auto& [path, e] : by_path) {
    for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
      std::string parent = path.substr(0, slash);
      auto it = by_path.find(parent);
      if (it == by_path.end()) {
        missing.push_back(parent);
      } else if (it->second.kind != Kind::kDirectory) {
        return fail("initramfs path '" + path + "' is inside '" + parent + "', which is not a directory");
      }
    }
  }
  for (auto& m : missing) by_path.emplace(m, InitramfsEntry::directory(m));
  std::vector<InitramfsEntry> out;
  out.reserve(by_path.size());
  // std::map order puts every directory before the paths below it.
  for (auto& [path, e] : by_path) out.push_back(std::move(e));
  return out;
}

Result<std::string> entry_content(const InitramfsEntry& e) {
  if (e.kind != Kind::kFile) return std::string();
  if (e.host_path.empty()) return e.data;
  auto data = read_file(e.host_path);
  if (!data) return fail(data.error().context("cannot add '" + e.host_path + "' to the initramfs"));
  return data;
}

Result<std::string> entry_content_hash(const InitramfsEntry& e) {
  if (e.kind == Kind::kFile && !e.host_path.empty()) {
    auto h = sha256_file_hex(e.host_path);
    if (!h) return fail(h.error().context("cannot add '" + e.host_path + "' to the initramfs"));
    return h;
  }
  return sha256_hex(e.kind == Kind::kFile ? e.data : std::string());
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

la_ssize_t append_to_string(archive*, void* out, const void* buf, size_t len) {
  static_cast<std::string*>(out)->append(static_cast<const char*>(buf), len);
  return static_cast<la_ssize_t>(len);
}

}  // namespace

InitramfsEntry InitramfsEntry::file_from_host(std::string path, std::string host_path, unsigned mode) {
  InitramfsEntry e;
  e.kind = Kind::kFile;
  e.path = std::move(path);
  e.host_path = std::move(host_path);
  e.mode = mode;
  return e;
}

InitramfsEntry InitramfsEntry::file_from_bytes(std::string path, std::string data, unsigned mode) {
  InitramfsEntry e;
  e.kind = Kind::kFile;
  e.path = std::move(path);
  e.data = std::move(data);
  e.mode = mode;
  return e;
}

InitramfsEntry InitramfsEntry::directory(std::string path, unsigned mode) {
  InitramfsEntry e;
  e.kind = Kind::kDirectory;
  e.path = std::move(path);
  e.mode = mode;
  return e;
}

InitramfsEntry InitramfsEntry::symlink(std::string path, std::string target) {
  InitramfsEntry e;
  e.kind = Kind::kSymlink;
  e.path = std::move(path);
  e.target = std::move(target);
  e.mode = 0777;
  return e;
}

InitramfsEntry InitramfsEntry::char_device(std::string path, unsigned major, unsigned minor, unsigned mode) {
  InitramfsEntry e;
  e.kind = Kind::kCharDevice;
  e.path = std::move(path);
  e.dev_major = major;
  e.dev_minor = minor;
  e.mode = mode;
  return e;
}

Result<std::string> build_initramfs(const std::vector<InitramfsEntry>& entries) {
  auto sorted = canonical_entries(entries);
  if (!sorted) return fail(sorted.error());

  std::string out;
  std::unique_ptr<archive, ArchiveDeleter> ar(archive_write_new());
  if (!ar) return fail("cannot create an archive writer");
  auto ar_error = [&](const std::string& what) {
    const char* msg = archive_error_string(ar.get());
    return fail("cannot write the initramfs: " + what + ": " + (msg ? msg : "unknown libarchive error"));
  };
  if (archive_write_set_format_cpio_newc(ar.get()) != ARCHIVE_OK) return ar_error("cpio newc format");
  // No padding to a block size: the kernel does not need it.
  archive_write_set_bytes_per_block(ar.get(), 0);
  if (archive_write_open2(ar.get(), &out, nullptr, append_to_string, nullptr, nullptr) != ARCHIVE_OK)
    return ar_error("open");

  std::unique_ptr<archive_entry, EntryDeleter> ae(archive_entry_new());
  int64_t ino = 0;
  for (const auto& e : *sorted) {
    auto content = entry_content(e);
    if (!content) return fail(content.error());
    archive_entry_clear(ae.get());
    archive_entry_set_pathname(ae.get(), e.path.c_str());
    archive_entry_set_uid(ae.get(), 0);
    archive_entry_set_gid(ae.get(), 0);
    archive_entry_set_mtime(ae.get(), 0, 0);
    // Synthetic inode numbers, nlink 1 for non-directories: the kernel
    // treats nlink >= 2 on regular files with equal inode as hard links.
    archive_entry_set_ino64(ae.get(), ++ino);
    archive_entry_set_dev(ae.get(), 0);
    archive_entry_set_nlink(ae.get(), e.kind == Kind::kDirectory ? 2 : 1);
    switch (e.kind) {
      case Kind::kFile:
        archive_entry_set_filetype(ae.get(), AE_IFREG);
        archive_entry_set_size(ae.get(), static_cast<la_int64_t>(content->size()));
        break;
      case Kind::kDirectory:
        archive_entry_set_filetype(ae.get(), AE_IFDIR);
        archive_entry_set_size(ae.get(), 0);
        break;
      case Kind::kSymlink:
        archive_entry_set_filetype(ae.get(), AE_IFLNK);
        archive_entry_set_symlink(ae.get(), e.target.c_str());
        archive_entry_set_size(ae.get(), 0);
        break;
      case Kind::kCharDevice:
        archive_entry_set_filetype(ae.get(), AE_IFCHR);
        archive_entry_set_rdev(ae.get(), makedev(e.dev_major, e.dev_minor));
        archive_entry_set_size(ae.get(), 0);
        break;
    }
    archive_entry_set_perm(ae.get(), e.mode);
    if (archive_write_header(ar.get(), ae.get()) != ARCHIVE_OK) return ar_error("'" + e.path + "'");
    if (!content->empty()) {
      la_ssize_t n = archive_write_data(ar.get(), content->data(), content->size());
      if (n < 0 || static_cast<size_t>(n) != content->size()) return ar_error("'" + e.path + "' data");
    }
  }
  if (archive_write_close(ar.get()) != ARCHIVE_OK) return ar_error("close");
  return out;
}

Result<std::string> initramfs_key(const std::vector<InitramfsEntry>& entries) {
  auto sorted = canonical_entries(entries);
  if (!sorted) return fail(sorted.error());
  std::string text = std::string(kFormatTag) + "\n";
  for (const auto& e : *sorted) {
    auto hash = entry_content_hash(e);
    if (!hash) return fail(hash.error());
    // Paths cannot hold '\n' safely in this listing, so length-prefix them.
    text += std::string(kind_name(e.kind)) + " " + std::to_string(e.path.size()) + ":" + e.path + " " +
            std::to_string(e.mode) + " " + std::to_string(e.target.size()) + ":" + e.target + " " +
            std::to_string(e.dev_major) + ":" + std::to_string(e.dev_minor) + " " + *hash + "\n";
  }
  return sha256_hex(text);
}

Result<std::string> build_initramfs_cached(const std::vector<InitramfsEntry>& entries,
                                           const std::string& cache_dir) {
  auto key = initramfs_key(entries);
  if (!key) return fail(key.error());
  std::string path = cache_dir + "/" + *key + ".cpio";
  // Written atomically, so an existing file is always complete.
  if (path_exists(path)) return path;
  if (auto made = make_dirs(cache_dir); !made) return fail(made.error());
  auto bytes = build_initramfs(entries);
  if (!bytes) return fail(bytes.error());
  if (auto written = write_file_atomic(path, *bytes); !written)
    return fail(written.error().context("cannot store the initramfs"));
  return path;
}

}  // namespace ktstr
