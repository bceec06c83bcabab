// guest/vm/snapshot: the replay file, the key, and the snapshot directory
// (whole or nothing, damaged ones removed, least recently used evicted).
#include "guest/vm/snapshot.hpp"

#include "core/fs.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

using namespace ktstr;

namespace {

class SnapshotDir : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::create("ktstr-snap-test");
    ASSERT_TRUE(t);
    tmp_.emplace(std::move(*t));
    dir_ = tmp_->path() + "/snapshots";
    kernel_ = tmp_->path() + "/bzImage";
    initrd_ = tmp_->path() + "/initramfs.cpio";
    ASSERT_TRUE(write_file_atomic(kernel_, "kernel"));
    ASSERT_TRUE(write_file_atomic(initrd_, "initrd"));
  }

  std::vector<std::string> argv(const std::string& work, const std::string& mem = "256M") {
    return {"/bin/sh", "-m", mem, "-kernel", kernel_, "-initrd", initrd_, "-chardev",
            "socket,id=con,path=" + work + "/console.sock"};
  }

  // Write a snapshot for `key` with `bytes` of vmstate.
  void make(const std::string& key, size_t bytes, std::vector<ReplayChunk> replay = {{0, "Linux version"}}) {
    auto p = PendingSnapshot::begin(dir_, key);
    ASSERT_TRUE(p) << p.error().msg;
    std::string data(bytes, 'x');
    ASSERT_EQ(::write(p->vmstate_fd(), data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ASSERT_TRUE(p->commit(replay, std::chrono::milliseconds(7000), std::chrono::milliseconds(900)));
  }

  std::optional<TempDir> tmp_;
  std::string dir_, kernel_, initrd_;
};

TEST(SnapshotReplay, RoundTripsChunksInOrder) {
  std::vector<ReplayChunk> chunks = {{0, "console\n"}, {2, std::string("\0\x01hello", 7)}, {0, ""}, {1, "x"}};
  auto back = decode_replay(encode_replay(chunks), 3);
  ASSERT_TRUE(back) << back.error().msg;
  EXPECT_EQ(*back, chunks);
}

TEST(SnapshotReplay, RejectsDamage) {
  std::string good = encode_replay({{0, "abc"}, {1, "defg"}});
  EXPECT_FALSE(decode_replay("KTSX" + good.substr(4), 2));                     // magic
  EXPECT_FALSE(decode_replay(good.substr(0, good.size() - 1), 2));             // truncated bytes
  EXPECT_FALSE(decode_replay(good.substr(0, 8 + 8 + 3 + 4), 2));               // truncated header
  EXPECT_FALSE(decode_replay(good, 1));                                        // channel 1 of 1
  std::string v2 = good;
  v2[4] = 2;
  EXPECT_FALSE(decode_replay(v2, 2));                                          // version
  EXPECT_TRUE(decode_replay(good.substr(0, 8), 2));                            // no chunks is fine
}

TEST_F(SnapshotDir, KeyIgnoresTheWorkDirButNotTheMachine) {
  auto a = snapshot_key(argv("/tmp/ktstr-vm.AAAA"), "/tmp/ktstr-vm.AAAA");
  auto b = snapshot_key(argv("/tmp/ktstr-vm.BBBB"), "/tmp/ktstr-vm.BBBB");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  auto mem = snapshot_key(argv("/w", "512M"), "/w");
  ASSERT_TRUE(mem);
  EXPECT_NE(*a, *mem);
  // A new kernel file at the same path is another machine.
  ASSERT_TRUE(write_file_atomic(kernel_, "kernel, rebuilt"));
  auto rebuilt = snapshot_key(argv("/w"), "/w");
  ASSERT_TRUE(rebuilt);
  EXPECT_NE(*a, *rebuilt);
  ::unlink(initrd_.c_str());
  EXPECT_FALSE(snapshot_key(argv("/w"), "/w"));
}

TEST_F(SnapshotDir, CommitThenFind) {
  EXPECT_FALSE(find_snapshot(dir_, "k1", 3));
  make("k1", 4096, {{0, "boot"}, {2, "hello"}});
  auto s = find_snapshot(dir_, "k1", 3);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->vmstate, dir_ + "/k1/vmstate");
  ASSERT_EQ(s->replay.size(), 2u);
  EXPECT_EQ(s->replay[1].bytes, "hello");
  EXPECT_TRUE(path_exists(dir_ + "/k1/meta.json"));
  // Only the final directory is left: no temporary one.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) entries += e.path().filename() != "k1";
  EXPECT_EQ(entries, 0u);
}

TEST_F(SnapshotDir, AnAbandonedWriteLeavesNothing) {
  {
    auto p = PendingSnapshot::begin(dir_, "k2");
    ASSERT_TRUE(p);
    ASSERT_EQ(::write(p->vmstate_fd(), "abc", 3), 3);
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir_));
  EXPECT_FALSE(find_snapshot(dir_, "k2", 1));
}

TEST_F(SnapshotDir, AnEmptyVmstateIsNotCommitted) {
  auto p = PendingSnapshot::begin(dir_, "k3");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->commit({}, std::chrono::milliseconds(1), std::chrono::milliseconds(1)));
  EXPECT_FALSE(find_snapshot(dir_, "k3", 1));
}

TEST_F(SnapshotDir, DamagedSnapshotIsRemoved) {
  make("k4", 100);
  ASSERT_TRUE(write_file_atomic(dir_ + "/k4/replay", "garbage"));
  EXPECT_FALSE(find_snapshot(dir_, "k4", 1));
  EXPECT_FALSE(path_exists(dir_ + "/k4"));
}

TEST_F(SnapshotDir, TheSecondWriterOfAKeyKeepsTheFirst) {
  make("k5", 100, {{0, "first"}});
  make("k5", 200, {{0, "second"}});
  auto s = find_snapshot(dir_, "k5", 1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->replay[0].bytes, "first");
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1u);
}

TEST_F(SnapshotDir, EvictsTheLeastRecentlyUsed) {
  for (const char* k : {"a", "b", "c", "d"}) make(k, 8192);
  // Ages: a oldest ... d newest; then a is used (restored).
  int age = 400;
  for (const char* k : {"a", "b", "c", "d"}) {
    timespec t[2] = {{::time(nullptr) - age, 0}, {::time(nullptr) - age, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ + "/" + k).c_str(), t, 0), 0);
    age -= 100;
  }
  touch_snapshot(dir_ + "/a");
  evict_snapshots(dir_, 2, 1ull << 40);
  EXPECT_TRUE(path_exists(dir_ + "/a"));
  EXPECT_TRUE(path_exists(dir_ + "/d"));
  EXPECT_FALSE(path_exists(dir_ + "/b"));
  EXPECT_FALSE(path_exists(dir_ + "/c"));
  auto usage = snapshot_usage(dir_);
  EXPECT_EQ(usage.snapshots, 2u);
  EXPECT_GE(usage.bytes, 2u * 8192);
  ASSERT_TRUE(write_file_atomic(dir_ + "/zz.restore-failed", "why"));
  EXPECT_EQ(snapshot_usage(dir_).restore_failed, 1u);
  // By size: the newest stays even alone over the limit.
  evict_snapshots(dir_, 8, 1);
  EXPECT_TRUE(path_exists(dir_ + "/a"));
  EXPECT_FALSE(path_exists(dir_ + "/d"));
}

TEST(SnapshotDefaults, OffByEnvironment) {
  ::setenv("KTSTR_SNAPSHOT", "off", 1);
  EXPECT_EQ(default_snapshot_dir(), "");
  ::unsetenv("KTSTR_SNAPSHOT");
  ::unsetenv("KTSTR_SNAPSHOT_DIR");
  EXPECT_EQ(default_snapshot_dir(), cache_dir() + "/snapshots");
  ::setenv("KTSTR_SNAPSHOT_DIR", "/tmp/elsewhere", 1);
  EXPECT_EQ(default_snapshot_dir(), "/tmp/elsewhere");
  ::unsetenv("KTSTR_SNAPSHOT_DIR");
}

}  // namespace
