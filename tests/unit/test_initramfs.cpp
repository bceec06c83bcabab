// guest/initramfs: cpio newc archives read back with libarchive, determinism,
// the content-addressed cache, and the ELF shared-library list.
#include "guest/initramfs/initramfs.hpp"

#include "core/fs.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <map>

using namespace ktstr;

namespace {

struct ReadEntry {
  std::string path;
  unsigned type = 0;  // AE_IF*
  unsigned perm = 0;
  std::string content;
  std::string symlink;
  int64_t uid = -1, gid = -1, mtime = -1;
  unsigned rdev_major = 0, rdev_minor = 0;
};

std::vector<ReadEntry> read_cpio(const std::string& bytes) {
  std::vector<ReadEntry> out;
  archive* ar = archive_read_new();
  archive_read_support_format_cpio(ar);
  EXPECT_EQ(archive_read_open_memory(ar, bytes.data(), bytes.size()), ARCHIVE_OK);
  archive_entry* ae = nullptr;
  while (archive_read_next_header(ar, &ae) == ARCHIVE_OK) {
    EXPECT_EQ(archive_format(ar), ARCHIVE_FORMAT_CPIO_SVR4_NOCRC);  // newc
    ReadEntry e;
    e.path = archive_entry_pathname(ae);
    e.type = archive_entry_filetype(ae);
    e.perm = archive_entry_perm(ae);
    e.uid = archive_entry_uid(ae);
    e.gid = archive_entry_gid(ae);
    e.mtime = archive_entry_mtime(ae);
    if (archive_entry_symlink(ae)) e.symlink = archive_entry_symlink(ae);
    e.rdev_major = major(archive_entry_rdev(ae));
    e.rdev_minor = minor(archive_entry_rdev(ae));
    char buf[4096];
    la_ssize_t n;
    while ((n = archive_read_data(ar, buf, sizeof buf)) > 0) e.content.append(buf, static_cast<size_t>(n));
    out.push_back(e);
  }
  archive_read_free(ar);
  return out;
}

std::vector<InitramfsEntry> sample_entries(const std::string& host_file) {
  return {
      InitramfsEntry::file_from_host("init", host_file, 0755),
      InitramfsEntry::file_from_bytes("etc/ktstr/mode", "echo\n", 0640),
      InitramfsEntry::directory("proc"),
      InitramfsEntry::symlink("bin/sh", "/init"),
      InitramfsEntry::char_device("dev/console", 5, 1, 0600),
  };
}

}  // namespace

class Initramfs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.emplace(TempDir::create("ktstr-initramfs-test").value());
    host_file_ = dir_->path() + "/agent";
    ASSERT_TRUE(write_file_atomic(host_file_, std::string("\x7f" "ELF fake agent\n", 16), 0755));
  }
  std::optional<TempDir> dir_;
  std::string host_file_;
};

TEST_F(Initramfs, EntriesReadBackWithTypesModesAndContent) {
  auto bytes = build_initramfs(sample_entries(host_file_)).value();
  auto entries = read_cpio(bytes);
  std::map<std::string, ReadEntry> by_path;
  for (auto& e : entries) by_path[e.path] = e;

  ASSERT_TRUE(by_path.count("init"));
  EXPECT_EQ(by_path["init"].type, unsigned(AE_IFREG));
  EXPECT_EQ(by_path["init"].perm, 0755u);
  EXPECT_EQ(by_path["init"].content, read_file(host_file_).value());

  EXPECT_EQ(by_path["etc/ktstr/mode"].content, "echo\n");
  EXPECT_EQ(by_path["etc/ktstr/mode"].perm, 0640u);
  EXPECT_EQ(by_path["proc"].type, unsigned(AE_IFDIR));
  EXPECT_EQ(by_path["bin/sh"].type, unsigned(AE_IFLNK));
  EXPECT_EQ(by_path["bin/sh"].symlink, "/init");
  EXPECT_EQ(by_path["dev/console"].type, unsigned(AE_IFCHR));
  EXPECT_EQ(by_path["dev/console"].rdev_major, 5u);
  EXPECT_EQ(by_path["dev/console"].rdev_minor, 1u);

  // Parents that were not listed are added as directories.
  for (const char* parent : {"etc", "etc/ktstr", "bin", "dev"}) {
    ASSERT_TRUE(by_path.count(parent)) << parent;
    EXPECT_EQ(by_path[parent].type, unsigned(AE_IFDIR)) << parent;
    EXPECT_EQ(by_path[parent].perm, 0755u) << parent;
  }
  for (auto& e : entries) {
    EXPECT_EQ(e.uid, 0) << e.path;
    EXPECT_EQ(e.gid, 0) << e.path;
    EXPECT_EQ(e.mtime, 0) << e.path;
  }
  // Sorted, so every directory precedes what it contains.
  std::vector<std::string> paths;
  for (auto& e : entries) paths.push_back(e.path);
  EXPECT_TRUE(std::is_sorted(paths.begin(), paths.end()));
}

TEST_F(Initramfs, SameInputsSameBytesWhateverTheOrder) {
  auto entries = sample_entries(host_file_);
  auto first = build_initramfs(entries).value();
  std::reverse(entries.begin(), entries.end());
  // A different mtime on the host file must not matter either.
  ASSERT_EQ(::utimensat(AT_FDCWD, host_file_.c_str(), nullptr, 0), 0);
  auto second = build_initramfs(entries).value();
  EXPECT_EQ(first, second);
  EXPECT_EQ(initramfs_key(entries).value(), initramfs_key(sample_entries(host_file_)).value());
}

TEST_F(Initramfs, LeadingSlashesAndDotsAreTheSamePath) {
  auto a = build_initramfs({InitramfsEntry::file_from_bytes("/bin//tool", "x")}).value();
  auto b = build_initramfs({InitramfsEntry::file_from_bytes("./bin/tool", "x")}).value();
  EXPECT_EQ(a, b);
}

TEST_F(Initramfs, KeyFollowsNamesModesAndContent) {
  auto base = sample_entries(host_file_);
  auto key = initramfs_key(base).value();
  EXPECT_EQ(key.size(), 64u);

  auto renamed = base;
  renamed[1].path = "etc/ktstr/mode2";
  EXPECT_NE(initramfs_key(renamed).value(), key);

  auto chmodded = base;
  chmodded[1].mode = 0644;
  EXPECT_NE(initramfs_key(chmodded).value(), key);

  auto edited = base;
  edited[1].data = "hang\n";
  EXPECT_NE(initramfs_key(edited).value(), key);

  ASSERT_TRUE(write_file_atomic(host_file_, "another agent"));
  EXPECT_NE(initramfs_key(base).value(), key);
}

TEST_F(Initramfs, CachedBuildIsStoredByKeyAndReused) {
  auto entries = sample_entries(host_file_);
  std::string cache = dir_->path() + "/cache/initramfs";
  auto path = build_initramfs_cached(entries, cache).value();
  EXPECT_EQ(path, cache + "/" + initramfs_key(entries).value() + ".cpio");
  EXPECT_EQ(read_file(path).value(), build_initramfs(entries).value());

  // A hit does not rebuild: a marker written into the cached file survives.
  ASSERT_TRUE(write_file_atomic(path, "marker"));
  EXPECT_EQ(build_initramfs_cached(entries, cache).value(), path);
  EXPECT_EQ(read_file(path).value(), "marker");

  // Different inputs, a different file.
  entries.push_back(InitramfsEntry::file_from_bytes("extra", "1"));
  auto other = build_initramfs_cached(entries, cache).value();
  EXPECT_NE(other, path);
  EXPECT_TRUE(path_exists(other));
}

TEST_F(Initramfs, BadInputsAreErrors) {
  auto dup = build_initramfs({InitramfsEntry::file_from_bytes("a", "1"), InitramfsEntry::file_from_bytes("/a", "2")});
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().msg.find("'a' is listed twice"), std::string::npos);

  auto dotdot = build_initramfs({InitramfsEntry::file_from_bytes("../etc/passwd", "x")});
  ASSERT_FALSE(dotdot);
  EXPECT_NE(dotdot.error().msg.find("'..'"), std::string::npos);

  auto missing = build_initramfs({InitramfsEntry::file_from_host("init", dir_->path() + "/nope")});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().msg.find("/nope"), std::string::npos);
  EXPECT_FALSE(build_initramfs_cached({InitramfsEntry::file_from_host("init", dir_->path() + "/nope")},
                                      dir_->path() + "/c"));

  auto under_file = build_initramfs({InitramfsEntry::file_from_bytes("a", "1"), InitramfsEntry::file_from_bytes("a/b", "2")});
  ASSERT_FALSE(under_file);
  EXPECT_NE(under_file.error().msg.find("not a directory"), std::string::npos);
}

TEST(ElfSharedLibraries, DynamicBinaryNeedsItsLibraries) {
  auto libs = elf_shared_libraries("/proc/self/exe").value();
  ASSERT_FALSE(libs.empty());
  EXPECT_NE(libs[0].find("ld-linux"), std::string::npos) << "the interpreter comes first";
  auto has_lib = [&](const std::string& name) {
    return std::any_of(libs.begin(), libs.end(), [&](const std::string& p) {
      return p.size() >= name.size() && p.compare(p.size() - name.size(), name.size(), name) == 0 &&
             path_exists(p);
    });
  };
  EXPECT_TRUE(has_lib("/libc.so.6"));
  EXPECT_TRUE(has_lib("/libarchive.so.13"));  // this test links it directly
  EXPECT_TRUE(has_lib("/libstdc++.so.6"));
  // No duplicates even though many libraries need libc.
  auto sorted = libs;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

TEST(ElfSharedLibraries, StaticBinaryNeedsNothing) {
  // Debian's ldconfig is static-pie.
  auto libs = elf_shared_libraries("/sbin/ldconfig");
  ASSERT_TRUE(libs) << libs.error().msg;
  EXPECT_TRUE(libs->empty());
}

TEST(ElfSharedLibraries, NotAnElfIsAnError) {
  auto dir = TempDir::create("ktstr-elf-test").value();
  ASSERT_TRUE(write_file_atomic(dir.path() + "/text", "just text\n"));
  auto r = elf_shared_libraries(dir.path() + "/text");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("not an ELF"), std::string::npos);
}
