// guest/agent/file_receiver.hpp: the agent's side of the FILE transfer,
// into a temporary root. A good transfer puts each file in place with its
// mode; every violation is an error and leaves no file behind (neither the
// failing one, nor its temporary file, nor the files placed before it).
#include "core/fs.hpp"
#include "core/sha256.hpp"
#include "guest/agent/file_receiver.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ktstr::agent {
namespace {

using proto::FileMsg;

TempDir temp_root() {
  auto d = TempDir::create("ktstr-filerecv");
  if (!d) throw std::runtime_error(d.error().msg);
  return std::move(*d);
}

// Every regular file and symbolic link under `root` (temporary files too).
std::vector<std::string> files_under(const std::string& root) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::recursive_directory_iterator(root))
    if (e.is_regular_file() || e.is_symlink()) out.push_back(e.path().string().substr(root.size()));
  std::sort(out.begin(), out.end());
  return out;
}

// The chunks of `content` as the host sends them, `chunk` bytes each.
std::vector<FileMsg> chunks_of(const std::string& path, const std::string& content, size_t chunk = 1000,
                               uint32_t mode = 0755) {
  std::vector<FileMsg> out;
  const std::string sha = sha256_hex_portable(content);
  size_t at = 0;
  do {
    FileMsg m;
    m.path = path;
    m.mode = mode;
    m.size = content.size();
    m.sha256 = sha;
    m.offset = at;
    m.data = content.substr(at, chunk);
    at += m.data.size();
    out.push_back(std::move(m));
  } while (at < content.size());
  return out;
}

std::string pattern(size_t n, int seed = 1) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = char((i * 31 + seed) ^ (i >> 7));
  return s;
}

Status send_all(FileReceiver& r, const std::vector<FileMsg>& chunks) {
  for (const FileMsg& c : chunks)
    if (auto ok = r.accept(c); !ok) return ok;
  return {};
}

TEST(FileReceiver, PutsFilesInPlaceWithTheirModes) {
  TempDir root = temp_root();
  FileReceiver r(root.path());
  std::string sched = pattern(4321);
  std::string lib = pattern(999, 7);
  ASSERT_TRUE(send_all(r, chunks_of("/sched/scx_tiny", sched)).has_value());
  ASSERT_TRUE(send_all(r, chunks_of("/lib/x86_64-linux-gnu/libelf.so.1", lib, 1000, 0644)).has_value());
  ASSERT_TRUE(send_all(r, chunks_of("/sched/empty", "")).has_value());
  ASSERT_TRUE(r.finish().has_value());
  EXPECT_EQ(r.files(), 3u);
  EXPECT_EQ(r.bytes(), sched.size() + lib.size());
  EXPECT_EQ(read_file(root.path() + "/sched/scx_tiny").value_or(""), sched);
  EXPECT_EQ(read_file(root.path() + "/lib/x86_64-linux-gnu/libelf.so.1").value_or(""), lib);
  struct stat st{};
  ASSERT_EQ(::stat((root.path() + "/sched/scx_tiny").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(::stat((root.path() + "/lib/x86_64-linux-gnu/libelf.so.1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(files_under(root.path()),
            (std::vector<std::string>{"/lib/x86_64-linux-gnu/libelf.so.1", "/sched/empty", "/sched/scx_tiny"}));
}

// A transfer that goes wrong in its second file: the first, already placed,
// goes too, and nothing else is left.
void expect_refused(const std::vector<FileMsg>& second, const std::string& what, bool fails_at_finish = false) {
  TempDir root = temp_root();
  FileReceiver r(root.path());
  ASSERT_TRUE(send_all(r, chunks_of("/lib/libok.so", pattern(3000))).has_value());
  auto sent = send_all(r, second);
  Status st = sent ? r.finish() : sent;
  ASSERT_FALSE(st.has_value()) << what;
  EXPECT_EQ(sent.has_value(), fails_at_finish) << st.error().msg;
  EXPECT_NE(st.error().msg.find(what), std::string::npos) << st.error().msg;
  EXPECT_EQ(files_under(root.path()), std::vector<std::string>{}) << what;
  // Later frames are refused too.
  EXPECT_FALSE(r.accept(chunks_of("/sched/later", "x")[0]).has_value());
}

TEST(FileReceiver, HashMismatchLeavesNoFile) {
  auto c = chunks_of("/sched/s", pattern(2500));
  for (auto& m : c) m.sha256 = sha256_hex_portable("something else");
  expect_refused(c, "SHA-256 mismatch");
}

TEST(FileReceiver, CorruptedChunkLeavesNoFile) {
  auto c = chunks_of("/sched/s", pattern(2500));
  c[1].data[10] ^= 1;
  expect_refused(c, "SHA-256 mismatch");
}

TEST(FileReceiver, SizeMismatchLeavesNoFile) {
  // More bytes than the size says.
  auto c = chunks_of("/sched/s", pattern(2500));
  for (auto& m : c) m.size = 2400;
  expect_refused(c, "runs past its size");
  // Fewer: the job comes while the file is incomplete.
  auto d = chunks_of("/sched/s", pattern(2500));
  d.pop_back();
  expect_refused(d, "incomplete at the job: 2000 of 2500 bytes", true);
  // Or the next file begins.
  auto e = chunks_of("/sched/s", pattern(2500));
  e.pop_back();
  auto next = chunks_of("/sched/t", "abc");
  e.insert(e.end(), next.begin(), next.end());
  expect_refused(e, "ended after 2000 of 2500 bytes");
}

TEST(FileReceiver, OutOfOrderChunkLeavesNoFile) {
  auto c = chunks_of("/sched/s", pattern(3500));
  std::swap(c[1], c[2]);
  expect_refused(c, "chunk at offset 2000, expected 1000");
  auto d = chunks_of("/sched/s", pattern(3500));
  d.erase(d.begin() + 1);  // a gap
  expect_refused(d, "expected 1000");
  auto e = chunks_of("/sched/s", pattern(3500));
  e.insert(e.begin() + 2, e[1]);  // a repeated chunk
  expect_refused(e, "expected 2000");
  auto f = chunks_of("/sched/s", pattern(3500));
  f.erase(f.begin());  // no first chunk
  expect_refused(f, "first chunk at offset 1000");
}

TEST(FileReceiver, PathTraversalLeavesNoFile) {
  expect_refused(chunks_of("/sched/../init", "evil"), "not normalized");
  expect_refused(chunks_of("/lib/../../etc/passwd", "evil"), "not normalized");
  expect_refused(chunks_of("/init", "evil"), "outside the allowed directories");
}

TEST(FileReceiver, SymbolicLinkOnTheWayIsRefused) {
  TempDir root = temp_root();
  TempDir elsewhere = temp_root();
  ASSERT_EQ(::symlink(elsewhere.path().c_str(), (root.path() + "/sched").c_str()), 0);
  FileReceiver r(root.path());
  auto st = send_all(r, chunks_of("/sched/s", "payload"));
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().msg.find("'/sched' is a symbolic link"), std::string::npos) << st.error().msg;
  EXPECT_EQ(files_under(elsewhere.path()), std::vector<std::string>{});
}

TEST(FileReceiver, TooManyFilesLeaveNoFile) {
  TempDir root = temp_root();
  FileReceiver r(root.path());
  for (size_t i = 0; i < proto::kMaxFiles; ++i)
    ASSERT_TRUE(send_all(r, chunks_of("/sched/f" + std::to_string(i), "x")).has_value());
  auto st = send_all(r, chunks_of("/sched/one-more", "x"));
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().msg.find("more than 64 files"), std::string::npos) << st.error().msg;
  EXPECT_EQ(files_under(root.path()), std::vector<std::string>{});
}

TEST(FileReceiver, TooLargeFilesLeaveNoFile) {
  // The size is declared up front: refused at the first chunk.
  auto c = chunks_of("/sched/huge", "x");
  c[0].size = proto::kMaxFileBytes + 1;
  expect_refused(c, "more than the 32 MiB");
  // Within the per-file limit but past the total: two 21 MiB files.
  TempDir root = temp_root();
  FileReceiver r(root.path());
  std::string big(21u << 20, 'b');
  ASSERT_TRUE(send_all(r, chunks_of("/sched/a", big, proto::kFileChunkBytes)).has_value());
  auto st = send_all(r, chunks_of("/sched/b", big, proto::kFileChunkBytes));
  ASSERT_FALSE(st.has_value());
  EXPECT_NE(st.error().msg.find("more than 40 MiB"), std::string::npos) << st.error().msg;
  EXPECT_EQ(files_under(root.path()), std::vector<std::string>{});
}

TEST(FileReceiver, SameFileTwiceIsRefused) {
  expect_refused(chunks_of("/lib/libok.so", "again"), "sent twice");
}

}  // namespace
}  // namespace ktstr::agent
