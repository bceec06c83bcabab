// ktstr_mapwrite's pure logic: BTF DATASEC lookup on the fixture's real BPF
// object, byte patching and value parsing.
#include "guest/scheduler/mapwrite.hpp"

// The skeleton refers to struct ktstr_exit_info: define it first.
#include "scx_ktstr_common.h"
#include "scx_ktstr.skel.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

namespace ktstr::mapwrite {
namespace {

using Bss = scx_ktstr::scx_ktstr__bss;

// The object as libbpf opens it (no load): DATASEC offsets fixed up from ELF.
class FixtureObject : public ::testing::Test {
 protected:
  void SetUp() override {
    obj_ = bpf_object__open_file(KTSTR_SCX_KTSTR_BPF_O, nullptr);
    ASSERT_NE(obj_, nullptr) << "cannot open " << KTSTR_SCX_KTSTR_BPF_O;
    btf_ = bpf_object__btf(obj_);
    ASSERT_NE(btf_, nullptr);
  }
  void TearDown() override { bpf_object__close(obj_); }

  std::vector<VarSlot> bss_vars() {
    auto sec = find_datasec(btf_, ".bss");
    EXPECT_TRUE(sec) << sec.error().msg;
    if (!sec) return {};
    auto vars = datasec_vars(btf_, *sec);
    EXPECT_TRUE(vars) << vars.error().msg;
    return vars ? *vars : std::vector<VarSlot>{};
  }

  bpf_object* obj_ = nullptr;
  const struct btf* btf_ = nullptr;
};

TEST_F(FixtureObject, BssOffsetsMatchTheSkeletonLayout) {
  const std::vector<VarSlot> vars = bss_vars();
  struct Expected {
    const char* name;
    size_t offset;
    size_t size;
  };
  const Expected expected[] = {
      {"crash", offsetof(Bss, crash), sizeof(Bss::crash)},
      {"stall", offsetof(Bss, stall), sizeof(Bss::stall)},
      {"degrade", offsetof(Bss, degrade), sizeof(Bss::degrade)},
      {"slow", offsetof(Bss, slow), sizeof(Bss::slow)},
      {"nr_dispatched", offsetof(Bss, nr_dispatched), sizeof(Bss::nr_dispatched)},
      {"exit_info", offsetof(Bss, exit_info), sizeof(ktstr_exit_info)},
  };
  for (const Expected& e : expected) {
    auto slot = find_var(vars, e.name, "scx_ktst.bss");
    ASSERT_TRUE(slot) << slot.error().msg;
    EXPECT_EQ(slot->offset, e.offset) << e.name;
    EXPECT_EQ(slot->size, e.size) << e.name;
  }
}

TEST_F(FixtureObject, RodataHoldsTheLoadTimeSwitches) {
  auto sec = find_datasec(btf_, ".rodata");
  ASSERT_TRUE(sec) << sec.error().msg;
  auto vars = datasec_vars(btf_, *sec);
  ASSERT_TRUE(vars);
  EXPECT_TRUE(find_var(*vars, "fail_verify", "scx_ktst.rodata"));
  EXPECT_TRUE(find_var(*vars, "verify_loop", "scx_ktst.rodata"));
  EXPECT_FALSE(find_var(*vars, "crash", "scx_ktst.rodata"));
}

TEST_F(FixtureObject, UnknownVariableNamesTheMapAndListsVariables) {
  auto slot = find_var(bss_vars(), "no_such_var", "scx_ktst.bss");
  ASSERT_FALSE(slot);
  EXPECT_EQ(slot.error().msg, "variable 'no_such_var' not found in map 'scx_ktst.bss'");
  EXPECT_NE(slot.error().hint.find("crash, stall, degrade, slow"), std::string::npos)
      << slot.error().hint;
}

TEST_F(FixtureObject, NonDatasecTypeIsRejected) {
  EXPECT_FALSE(datasec_vars(btf_, 1));  // type 1 of a BPF object is never a DATASEC
  EXPECT_FALSE(find_datasec(btf_, ".no_such_section"));
}

TEST(PatchBytes, WritesLittleEndianAndLeavesNeighboursAlone) {
  std::vector<uint8_t> bytes(16, 0xaa);
  ASSERT_TRUE(patch_bytes(bytes, {"v", 4, 4}, 0x01020304));
  const std::vector<uint8_t> want{0xaa, 0xaa, 0xaa, 0xaa, 0x04, 0x03, 0x02, 0x01,
                                  0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa};
  EXPECT_EQ(bytes, want);
  EXPECT_EQ(read_bytes(bytes, {"v", 4, 4}), 0x01020304u);
}

TEST(PatchBytes, NegativeValuesFillTheWholeSlot) {
  std::vector<uint8_t> bytes(8, 0);
  ASSERT_TRUE(patch_bytes(bytes, {"v", 0, 2}, -1));
  EXPECT_EQ(read_bytes(bytes, {"v", 0, 8}), 0xffffu);
}

TEST(PatchBytes, RejectsValuesThatDoNotFit) {
  std::vector<uint8_t> bytes(8, 0);
  EXPECT_TRUE(patch_bytes(bytes, {"crash", 0, 1}, 255));
  EXPECT_TRUE(patch_bytes(bytes, {"crash", 0, 1}, -128));
  auto too_big = patch_bytes(bytes, {"crash", 0, 1}, 256);
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.error().msg, "value 256 does not fit variable 'crash' (1 bytes)");
  EXPECT_FALSE(patch_bytes(bytes, {"crash", 0, 1}, -129));
}

TEST(PatchBytes, RejectsSlotsOutsideTheValueOrTooWide) {
  std::vector<uint8_t> bytes(8, 0);
  EXPECT_FALSE(patch_bytes(bytes, {"v", 6, 4}, 1));
  EXPECT_FALSE(patch_bytes(bytes, {"table", 0, 16}, 1));
  EXPECT_EQ(bytes, std::vector<uint8_t>(8, 0));
}

TEST(ParseValue, AcceptsDecimalHexNegativeAndBools) {
  EXPECT_EQ(parse_value("1").value(), 1);
  EXPECT_EQ(parse_value("-3").value(), -3);
  EXPECT_EQ(parse_value("0x1f").value(), 31);
  EXPECT_EQ(parse_value("true").value(), 1);
  EXPECT_EQ(parse_value("false").value(), 0);
  EXPECT_EQ(parse_value("0xffffffffffffffff").value(), -1);
}

TEST(ParseValue, RejectsGarbage) {
  for (const char* text : {"", "-", "abc", "1x", "0x", "--1", "99999999999999999999"}) {
    EXPECT_FALSE(parse_value(text)) << text;
  }
}

}  // namespace
}  // namespace ktstr::mapwrite
