// kbuild/kconfig and the pure parts of kbuild/kernel_build: fragment
// parsing, merging (later wins), the required-option check, dropped
// settings, cache keys, the content id of a plain directory, make's lines.
#include "core/fs.hpp"
#include "kbuild/kconfig.hpp"
#include "kbuild/kernel_build.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using namespace ktstr;
using namespace ktstr::kbuild;

namespace {

std::vector<KconfigSetting> parse_ok(const std::string& text) {
  auto r = parse_kconfig(text, "test");
  EXPECT_TRUE(r) << (r ? "" : r.error().msg);
  return r ? *r : std::vector<KconfigSetting>{};
}

// A final .config with every required option, plus `extra` lines.
std::string full_config(const std::string& extra = "") {
  std::string t = "#\n# Automatically generated file; DO NOT EDIT.\n#\n";
  for (const auto& r : required_kconfig_options()) t += "CONFIG_" + r.symbol + "=y\n";
  return t + extra;
}

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-kconfig-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

}  // namespace

TEST(Kconfig, ParsesAssignmentsAndNotSetLinesAndRefusesOthers) {
  auto s = parse_ok("# a comment\n\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\nCONFIG_D=0x10\n  CONFIG_E=m  \n");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s[0].symbol, "A");
  EXPECT_EQ(s[0].value, "y");
  EXPECT_EQ(s[1].symbol, "B");
  EXPECT_EQ(s[1].value, "n");
  EXPECT_EQ(s[2].value, "\"x y\"");
  EXPECT_EQ(s[3].value, "0x10");
  EXPECT_EQ(s[4].symbol, "E");
  EXPECT_EQ(s[4].value, "m");

  auto bad = parse_kconfig("CONFIG_A=y\nKPROBES=y\n", "frag.config");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("frag.config:2"), std::string::npos) << bad.error().msg;
  EXPECT_FALSE(parse_kconfig("CONFIG_A=\n", "f"));
  EXPECT_FALSE(parse_kconfig("CONFIG_A B=y\n", "f"));
}

TEST(Kconfig, TheCompiledInFragmentParsesAndAsksForEveryRequiredOptionItCanSet) {
  auto base = parse_ok(ktstr_kconfig());
  ASSERT_FALSE(base.empty());
  for (const auto& r : required_kconfig_options()) {
    if (r.symbol == "TRACEPOINTS") continue;  // no prompt: selected by the tracers
    EXPECT_EQ(kconfig_value(base, r.symbol), "y") << r.symbol;
  }
}

TEST(Kconfig, MergeLetsTheLaterFragmentWinAndKeepsFirstPositions) {
  auto base = parse_ok("CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\n");
  auto user = parse_ok("# CONFIG_B is not set\nCONFIG_D=y\nCONFIG_A=y\n");
  auto m = merge_kconfig({base, user});
  ASSERT_EQ(m.settings.size(), 4u);
  EXPECT_EQ(m.settings[1].symbol, "B");
  EXPECT_EQ(m.settings[1].value, "n");
  EXPECT_EQ(m.text, "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\nCONFIG_D=y\n");
  ASSERT_EQ(m.overridden.size(), 1u);
  EXPECT_EQ(m.overridden[0], "CONFIG_B: y -> n");
  // The text round-trips.
  auto again = merge_kconfig({parse_ok(m.text)});
  EXPECT_EQ(again.text, m.text);
}

TEST(Kconfig, RequiredCheckNamesEveryMissingOption) {
  EXPECT_TRUE(check_required_options(parse_ok(full_config()), "/src/linux"));
  EXPECT_TRUE(missing_required_options(parse_ok(full_config())).empty());

  // A tree without sched_ext: the option is absent from its .config.
  std::string old = full_config();
  old.replace(old.find("CONFIG_SCHED_CLASS_EXT=y\n"), 25, "");
  auto st = check_required_options(parse_ok(old), "/src/linux-6.6");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().msg.find("CONFIG_SCHED_CLASS_EXT"), std::string::npos) << st.error().msg;
  EXPECT_NE(st.error().msg.find("/src/linux-6.6"), std::string::npos);
  EXPECT_NE(st.error().hint.find("6.12"), std::string::npos) << st.error().hint;

  // Turned off or built as a module: both missing, both named, in order.
  auto cfg = parse_ok(full_config("# CONFIG_KPROBES is not set\nCONFIG_VIRTIO_CONSOLE=m\n"));
  auto missing = missing_required_options(cfg);
  ASSERT_EQ(missing.size(), 2u);
  EXPECT_EQ(missing[0].symbol, "VIRTIO_CONSOLE");
  EXPECT_EQ(missing[1].symbol, "KPROBES");
  auto st2 = check_required_options(cfg, "t");
  ASSERT_FALSE(st2);
  EXPECT_NE(st2.error().msg.find("CONFIG_VIRTIO_CONSOLE, CONFIG_KPROBES"), std::string::npos) << st2.error().msg;
}

// Without NET, libbpf's feature probes (socket filter programs) fail, it
// skips creating .bss/.data/.rodata, and the fixture scheduler is rejected
// ("fd 4 is not pointing to valid bpf_map"): the first built kernel lacked it.
TEST(Kconfig, NetIsRequiredAndInTheCompiledInFragment) {
  EXPECT_EQ(kconfig_value(parse_ok(ktstr_kconfig()), "NET"), "y");
  auto no_net = parse_ok(full_config("# CONFIG_NET is not set\n"));
  auto missing = missing_required_options(no_net);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].symbol, "NET");
  EXPECT_NE(missing[0].why.find("socket filter"), std::string::npos) << missing[0].why;
  auto st = check_required_options(no_net, "/src/linux");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().msg.find("CONFIG_NET"), std::string::npos) << st.error().msg;
  // A user fragment turning it off loses to nothing: the merge keeps the off.
  auto merged = merge_kconfig({parse_ok(ktstr_kconfig()), parse_ok("# CONFIG_NET is not set\n")});
  EXPECT_EQ(kconfig_value(merged.settings, "NET"), "n");
}

TEST(Kconfig, DroppedSettingsAreTheRequestedValuesKconfigDidNotKeep) {
  auto m = merge_kconfig({parse_ok("CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=\"x\"\n")});
  auto final_cfg = parse_ok("CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_D=\"y\"\n");
  auto dropped = dropped_settings(m, final_cfg);
  ASSERT_EQ(dropped.size(), 2u);
  EXPECT_EQ(dropped[0], "CONFIG_B=y (now n)");
  EXPECT_EQ(dropped[1], "CONFIG_D=\"x\" (now \"y\")");
}

TEST(KernelBuildKey, EachPartChangesTheKey) {
  const std::string k = kernel_build_key("tree1", "cfg1", "gcc 12");
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, kernel_build_key("tree1", "cfg1", "gcc 12"));
  EXPECT_NE(k, kernel_build_key("tree2", "cfg1", "gcc 12"));
  EXPECT_NE(k, kernel_build_key("tree1", "cfg2", "gcc 12"));
  EXPECT_NE(k, kernel_build_key("tree1", "cfg1", "gcc 13"));
  // No ambiguity from concatenation.
  EXPECT_NE(kernel_build_key("ab", "c", "d"), kernel_build_key("a", "bc", "d"));
  EXPECT_NE(kernel_request_key("tree1", "CONFIG_A=y\n", "gcc"), kernel_request_key("tree1", "CONFIG_A=n\n", "gcc"));
  EXPECT_NE(kernel_request_key("tree1", "x", "gcc"), kernel_build_key("tree1", "x", "gcc"));
}

TEST(KernelBuildKey, DirectoryIdFollowsContentNamesAndModesButNotTimesOrDotGit) {
  namespace fs = std::filesystem;
  auto tmp = temp_dir();
  const std::string d = tmp.path() + "/src";
  ASSERT_TRUE(make_dirs(d + "/kernel/sched"));
  ASSERT_TRUE(make_dirs(d + "/.git"));
  ASSERT_TRUE(write_file_atomic(d + "/Makefile", "all:\n"));
  ASSERT_TRUE(write_file_atomic(d + "/kernel/sched/ext.c", "int x;\n"));
  auto id = directory_tree_id(d);
  ASSERT_TRUE(id) << id.error().msg;
  EXPECT_EQ(id->rfind("content:", 0), 0u);

  fs::last_write_time(d + "/Makefile", fs::file_time_type::clock::now() - std::chrono::hours(2));
  ASSERT_TRUE(write_file_atomic(d + "/.git/HEAD", "ref: refs/heads/main\n"));
  EXPECT_EQ(*directory_tree_id(d), *id);

  ASSERT_TRUE(write_file_atomic(d + "/kernel/sched/ext.c", "int y;\n"));
  auto changed = directory_tree_id(d);
  EXPECT_NE(*changed, *id);
  ASSERT_TRUE(write_file_atomic(d + "/kernel/sched/ext.c", "int x;\n"));
  EXPECT_EQ(*directory_tree_id(d), *id);

  fs::permissions(d + "/Makefile", fs::perms::owner_exec, fs::perm_options::add);
  EXPECT_NE(*directory_tree_id(d), *id);
  fs::permissions(d + "/Makefile", fs::perms::owner_exec, fs::perm_options::remove);
  fs::rename(d + "/kernel/sched/ext.c", d + "/kernel/sched/ext2.c");
  EXPECT_NE(*directory_tree_id(d), *id);
  EXPECT_FALSE(directory_tree_id(tmp.path() + "/missing"));
}

TEST(KernelBuildProgress, MakeLinesGiveObjectsAndPhases) {
  EXPECT_TRUE(make_line_is_object("  CC      kernel/sched/build_policy.o"));
  EXPECT_TRUE(make_line_is_object("  AS      arch/x86/entry/entry_64.o"));
  EXPECT_FALSE(make_line_is_object("  CC      kernel/sched/build_policy.s"));
  EXPECT_FALSE(make_line_is_object("  HOSTCC  scripts/kconfig/conf.o"));
  EXPECT_FALSE(make_line_is_object("kernel/sched/ext.c:12:3: error: expected ';'"));
  EXPECT_EQ(make_line_phase("  CC      mm/slub.o"), "compile");
  EXPECT_EQ(make_line_phase("  LD      vmlinux.o"), "link");
  EXPECT_EQ(make_line_phase("  BTF     .btf.vmlinux.bin.o"), "link");
  EXPECT_EQ(make_line_phase("  BUILD   arch/x86/boot/bzImage"), "link");
  EXPECT_EQ(make_line_phase("  GEN     Makefile"), "");
}
