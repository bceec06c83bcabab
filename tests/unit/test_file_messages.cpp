// guest/proto/file_messages.hpp: the FILE payload (base64 data, strict
// decoding that never throws), chunking under the frame limit, and the
// limits the agent enforces on paths, chunks and the whole set.
#include "core/sha256.hpp"
#include "guest/proto/file_messages.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ktstr::proto {
namespace {

std::vector<FileMsg> decode_all(const std::string& bytes) {
  FrameDecoder d;
  d.feed(bytes.data(), bytes.size());
  std::vector<FileMsg> out;
  while (auto f = d.next()) {
    EXPECT_EQ(f->type, MsgType::File);
    EXPECT_LE(f->payload.size(), kMaxPayload);
    auto m = decode_payload<FileMsg>(*f);
    EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().msg);
    if (m) out.push_back(std::move(*m));
  }
  EXPECT_TRUE(d.diagnostics().empty());
  return out;
}

TEST(FileMsg, TypeIs45AndNamedFile) {
  EXPECT_EQ(static_cast<uint16_t>(MsgType::File), 45);
  EXPECT_EQ(msg_type_name(MsgType::File), "file");
}

TEST(FileMsg, RoundTripsBinaryData) {
  FileMsg m;
  m.path = "/sched/scx_tiny";
  m.mode = 0755;
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(char(i * 7));
  m.data = data;
  m.size = 5000;
  m.offset = 1000;
  m.sha256 = std::string(64, 'a');
  std::string frame = encode_message(m);
  auto back = decode_all(frame);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].path, m.path);
  EXPECT_EQ(back[0].mode, 0755u);
  EXPECT_EQ(back[0].size, 5000u);
  EXPECT_EQ(back[0].offset, 1000u);
  EXPECT_EQ(back[0].sha256, m.sha256);
  EXPECT_EQ(back[0].data, data);
}

TEST(FileMsg, DecodingBadPayloadsIsAnErrorNotAThrow) {
  for (const char* bad : {R"({"path":"/sched/a","mode":493,"size":3,"sha256":"x","offset":0,"data":"Zg"})",
                          R"({"path":"/sched/a","mode":-1,"size":3,"sha256":"x","offset":0,"data":""})",
                          R"({"path":"/sched/a","mode":493,"size":3,"sha256":"x","data":""})",
                          R"({"path":7,"mode":493,"size":3,"sha256":"x","offset":0,"data":""})", "not json"}) {
    Frame f{MsgType::File, kProtoVersion, bad};
    auto m = decode_payload<FileMsg>(f);
    EXPECT_FALSE(m.has_value()) << bad;
  }
}

TEST(FileMsg, FramesOfAFileAreContiguousChunksUnderTheLimit) {
  std::string content(kFileChunkBytes * 2 + 12345, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = char((i * 131) >> 3);
  std::string path = "/usr/lib/x86_64-linux-gnu/" + std::string(200, 'l');
  auto chunks = decode_all(encode_file_frames(path, 0755, content));
  ASSERT_EQ(chunks.size(), 3u);
  std::string sha = sha256_hex_portable(content);
  std::string joined;
  for (const FileMsg& c : chunks) {
    EXPECT_EQ(c.path, path);
    EXPECT_EQ(c.size, content.size());
    EXPECT_EQ(c.sha256, sha);
    EXPECT_EQ(c.offset, joined.size());
    EXPECT_TRUE(validate_file_msg(c).has_value());
    joined += c.data;
  }
  EXPECT_EQ(joined, content);
  // An empty file is one empty chunk.
  auto empty = decode_all(encode_file_frames("/sched/empty", 0644, ""));
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_EQ(empty[0].size, 0u);
  EXPECT_TRUE(validate_file_msg(empty[0]).has_value());
}

TEST(FileMsg, PathsMustBeNormalizedAndUnderTheAllowedRoots) {
  for (const char* ok : {"/sched/scx_rusty", "/bin/scx-ktstr", "/lib/x86_64-linux-gnu/libc.so.6",
                         "/lib64/ld-linux-x86-64.so.2", "/usr/lib/x86_64-linux-gnu/libelf.so.1", "/usr/lib64/a.so",
                         "/verifier/a0.bpf.o", "/sched/sub/dir/x"})
    EXPECT_TRUE(validate_file_path(ok).has_value()) << ok;
  for (const char* bad : {"", "sched/x", "/sched", "/sched/", "/sched//x", "/sched/./x", "/sched/../init",
                          "/lib/../init", "/init", "/bin/sh", "/bin/scx-", "/bin/scx-a/b", "/etc/passwd",
                          "/usr/bin/x", "/usr/lib", "/libfoo/x", "/sched/a b", "/sched/a\nb", "/tmp/x", "/dev/sda"})
    EXPECT_FALSE(validate_file_path(bad).has_value()) << bad;
  EXPECT_FALSE(validate_file_path("/sched/" + std::string(256, 'a')).has_value());
  EXPECT_FALSE(validate_file_path("/sched/" + std::string(4095, 'a')).has_value());
  EXPECT_FALSE(validate_file_path(std::string("/sched/a\0b", 10)).has_value());
}

TEST(FileMsg, ChunkFieldsAreBounded) {
  FileMsg m;
  m.path = "/sched/x";
  m.size = 10;
  m.sha256 = std::string(64, '0');
  m.data = "0123456789";
  EXPECT_TRUE(validate_file_msg(m).has_value());
  FileMsg b = m;
  b.mode = 04755;  // setuid
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.sha256 = std::string(64, 'A');
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b.sha256 = std::string(63, '0');
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.offset = 1;  // runs past the size
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.offset = UINT64_MAX;
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.data.clear();  // an empty chunk of a non-empty file
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.size = kMaxFileBytes + 1;
  EXPECT_FALSE(validate_file_msg(b).has_value());
  b = m;
  b.size = kFileChunkBytes + 1;
  b.data = std::string(kFileChunkBytes + 1, 'x');
  EXPECT_FALSE(validate_file_msg(b).has_value());
}

TEST(FileMsg, TheSetIsBoundedInCountSizeAndTotal) {
  std::vector<FileSetEntry> set;
  for (size_t i = 0; i < kMaxFiles; ++i) set.push_back({"/sched/f" + std::to_string(i), 1000});
  EXPECT_TRUE(validate_file_set(set).has_value());
  set.push_back({"/sched/one-more", 1});
  auto many = validate_file_set(set);
  ASSERT_FALSE(many.has_value());
  EXPECT_NE(many.error().msg.find("more than 64"), std::string::npos) << many.error().msg;

  // A 20 MB Rust scheduler and glibc fit; a 33 MiB binary does not, nor
  // two 30 MiB files together.
  EXPECT_TRUE(validate_file_set({{"/sched/scx_rusty", 20'000'000}, {"/lib/x86_64-linux-gnu/libc.so.6", 2'000'000}})
                  .has_value());
  auto big = validate_file_set({{"/sched/huge", kMaxFileBytes + 1}});
  ASSERT_FALSE(big.has_value());
  EXPECT_NE(big.error().msg.find("more than the 32 MiB"), std::string::npos) << big.error().msg;
  EXPECT_FALSE(big.error().hint.empty());
  EXPECT_FALSE(validate_file_set({{"/sched/a", 30u << 20}, {"/sched/b", 30u << 20}}).has_value());
  EXPECT_FALSE(validate_file_set({{"/sched/a", 1}, {"/sched/a", 1}}).has_value());
  EXPECT_FALSE(validate_file_set({{"/etc/a", 1}}).has_value());
}

}  // namespace
}  // namespace ktstr::proto
