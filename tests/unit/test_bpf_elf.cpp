// core/bpf_elf: finding BPF objects in the fixture's real .bpf.o and in the
// scx-ktstr binary that embeds it through its bpftool skeleton.
#include "core/bpf_elf.hpp"
#include "core/fs.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace ktstr {
namespace {

std::string read_or_fail(const std::string& path) {
  auto bytes = read_file(path);
  EXPECT_TRUE(bytes) << path << ": " << (bytes ? "" : bytes.error().msg);
  return bytes ? *bytes : std::string();
}

TEST(BpfElf, ObjectFileIsItsOwnSpan) {
  std::string obj = read_or_fail(KTSTR_SCX_KTSTR_BPF_O);
  auto spans = find_bpf_objects(obj);
  ASSERT_TRUE(spans) << spans.error().msg;
  ASSERT_EQ(spans->size(), 1u);
  EXPECT_EQ((*spans)[0].offset, 0u);
  // The section table is the last thing clang writes.
  EXPECT_EQ((*spans)[0].size, obj.size());
}

TEST(BpfElf, ProgramSectionsOfTheFixture) {
  auto sections = bpf_program_sections(read_or_fail(KTSTR_SCX_KTSTR_BPF_O));
  ASSERT_TRUE(sections) << sections.error().msg;
  for (const char* want : {"struct_ops/ktstr_enqueue", "struct_ops/ktstr_dispatch", "struct_ops/ktstr_init_task",
                           "struct_ops/ktstr_exit", "struct_ops.s/ktstr_init"})
    EXPECT_NE(std::find(sections->begin(), sections->end(), want), sections->end()) << want;
  EXPECT_EQ(std::find(sections->begin(), sections->end(), ".maps"), sections->end());
}

#ifdef KTSTR_SCX_KTSTR_BIN
TEST(BpfElf, BinaryEmbedsTheSameObject) {
  std::string bin = read_or_fail(KTSTR_SCX_KTSTR_BIN);
  std::string obj = read_or_fail(KTSTR_SCX_KTSTR_BPF_O);
  auto spans = find_bpf_objects(bin);
  ASSERT_TRUE(spans) << spans.error().msg;
  ASSERT_EQ(spans->size(), 1u);
  EXPECT_GT((*spans)[0].offset, 0u);
  // bpftool embeds the object file byte for byte.
  EXPECT_EQ(bin.substr((*spans)[0].offset, (*spans)[0].size), obj);
}
#endif

TEST(BpfElf, NotElf) {
  auto r = find_bpf_objects("#!/bin/sh\necho hi\n");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().msg, "not an ELF file");
  EXPECT_FALSE(r.error().hint.empty());
  EXPECT_FALSE(find_bpf_objects(""));
}

TEST(BpfElf, HostElfWithoutBpf) {
  // This test binary is an x86-64 ELF with no skeleton inside.
  auto r = find_bpf_objects(read_or_fail("/proc/self/exe"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().msg, "no BPF object inside");
}

TEST(BpfElf, TruncatedObjectIsRejected) {
  std::string obj = read_or_fail(KTSTR_SCX_KTSTR_BPF_O);
  ASSERT_GT(obj.size(), 4096u);
  auto r = find_bpf_objects(obj.substr(0, obj.size() - 100));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("malformed"), std::string::npos) << r.error().msg;
  // Embedded and cut short: not found rather than read out of bounds.
  std::string host = read_or_fail("/proc/self/exe");
  EXPECT_FALSE(find_bpf_objects(host.substr(0, 4096) + obj.substr(0, obj.size() / 2)));
}

TEST(BpfElf, TwoEmbeddedObjectsAreBothFound) {
  std::string obj = read_or_fail(KTSTR_SCX_KTSTR_BPF_O);
  std::string host = read_or_fail("/proc/self/exe").substr(0, 8192);
  std::string file = host + obj + std::string(13, 'x') + obj + "tail";
  auto spans = find_bpf_objects(file);
  ASSERT_TRUE(spans) << spans.error().msg;
  ASSERT_EQ(spans->size(), 2u);
  EXPECT_EQ((*spans)[0].offset, host.size());
  EXPECT_EQ((*spans)[1].offset, host.size() + obj.size() + 13);
  EXPECT_EQ((*spans)[1].size, obj.size());
}

}  // namespace
}  // namespace ktstr
