// An external scheduler given to `ktstr test` by path: tests/sched/scx_tiny,
// linked dynamically, so it starts in the guest only if ktstr shipped its
// shared libraries. Its sched_args reach it; a host map write crashes it and
// the crash is reported like the fixture's. Bad scheduler paths are refused
// before any VM boots.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>

namespace ktstr::testing {
namespace {

const std::string kSchedDir = std::string(KTSTR_BINARY_DIR) + "/tests/sched";
const std::string kTiny = kSchedDir + "/scx_tiny";

// A one-test spec for `scheduler`, written into `dir`; returns its path.
std::string write_spec(const std::string& dir, const std::string& name, const std::string& scheduler,
                       const std::string& extra) {
  std::string toml = "[[test]]\nname = \"" + name + "\"\nscheduler = \"" + scheduler +
                     "\"\nsched_args = [\"--slice-us\", \"3000\"]\ntopology = \"1n1l2c1t\"\n" + extra;
  std::string path = dir + "/" + name + ".toml";
  auto st = write_file_atomic(path, toml);
  EXPECT_TRUE(st.has_value()) << (st ? "" : st.error().msg);
  return path;
}

TempDir temp_dir() {
  auto d = TempDir::create("ktstr-ext");
  if (!d) throw std::runtime_error(d.error().msg);
  return std::move(*d);
}

// `ktstr test <spec>` in the store's private cache: a bad scheduler fails
// while its files for the guest are gathered, before the VM boots. (ktstr
// resolves the kernel first, so the store needs one even for these checks.)
Completed ktstr_test_no_boot(const VmStore& store, const std::string& spec) {
  return store.ktstr({"test", spec});
}

TEST(ExternalSched, TinyIsDynamicallyLinked) {
  // The point of the VM tests below: the guest needs these libraries.
  auto ldd = run({"ldd", kTiny});
  ASSERT_TRUE(ldd.has_value());
  ASSERT_EQ(ldd->status, 0) << ldd->err;
  // (libstdc++ is not listed: with -O2 the linker may not need it.)
  for (auto* lib : {"libelf.so", "libz.so", "libc.so"})
    EXPECT_NE(ldd->out.find(lib), std::string::npos) << lib << "\n" << ldd->out;
  EXPECT_EQ(ldd->out.find("not found"), std::string::npos) << ldd->out;
}

TEST(ExternalSched, NotExecutableIsRefusedBeforeBoot) {
  KTSTR_VM_STORE(store);
  TempDir dir = temp_dir();
  std::string copy = dir.path() + "/scx_tiny";
  ASSERT_TRUE(copy_file_atomic(kTiny, copy, 0644).has_value());
  auto r = ktstr_test_no_boot(store, write_spec(dir.path(), "ext_noexec", copy, "duration_s = 2\n"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("'" + copy + "' is not executable"), std::string::npos) << r.err;
}

TEST(ExternalSched, MissingLibraryIsNamedBeforeBoot) {
  // The helper finds libktstr_tinydep.so through $ORIGIN: it runs where it
  // was built, and a lone copy of it lacks the library.
  KTSTR_VM_STORE(store);
  const std::string helper = kSchedDir + "/ktstr_needs_tinydep";
  auto ok = run({helper});
  ASSERT_TRUE(ok.has_value());
  ASSERT_EQ(ok->status, 0) << "the helper must run beside its library";
  TempDir dir = temp_dir();
  std::string copy = dir.path() + "/needs_tinydep";
  ASSERT_TRUE(copy_file_atomic(helper, copy, 0755).has_value());
  auto r = ktstr_test_no_boot(store, write_spec(dir.path(), "ext_nolib", copy, "duration_s = 2\n"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("'libktstr_tinydep.so'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(copy), std::string::npos) << r.err;
}

TEST(ExternalSched, OversizedSchedulerIsRefusedBeforeBoot) {
  // The guest takes at most 32 MiB per file (guest/proto/file_messages.hpp):
  // ktstr says so before booting instead of letting the agent refuse it.
  KTSTR_VM_STORE(store);
  TempDir dir = temp_dir();
  std::string copy = dir.path() + "/scx_tiny_big";
  ASSERT_TRUE(copy_file_atomic(kTiny, copy, 0755).has_value());
  ASSERT_EQ(::truncate(copy.c_str(), (32 << 20) + 1), 0);  // zeros past the ELF's segments
  auto r = ktstr_test_no_boot(store, write_spec(dir.path(), "ext_big", copy, "duration_s = 2\n"));
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("more than the 32 MiB a VM takes per file"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("strip"), std::string::npos) << r.err;
}

TEST(ExternalSched, RunsByPathWithItsArgsAndLibraries) {
  KTSTR_VM_STORE(store);
  TempDir dir = temp_dir();
  int status = -1;
  auto t = store.test_json(write_spec(dir.path(), "ext_clean", kTiny, "scenario = \"steady\"\nduration_s = 3\n"),
                           &status);
  EXPECT_EQ(status, 0) << t.value("reason", "");
  EXPECT_EQ(t["status"], "pass") << t.dump(1).substr(0, 4000);
  auto& sched = t["sched"];
  EXPECT_TRUE(sched.value("attached", false));
  EXPECT_EQ(sched["args"], nlohmann::json({"--slice-us", "3000"}));
  // Printed by scx_tiny itself in the guest: its shared libraries were there
  // (the dynamic loader would have refused to start it otherwise) and the
  // spec's sched_args reached it.
  std::string log = sched.value("log", "");
  EXPECT_NE(log.find("scx_tiny: attached (slice 3000 us)"), std::string::npos) << log;
  EXPECT_EQ(log.find("error while loading shared libraries"), std::string::npos) << log;
  EXPECT_FALSE(t.contains("crash_id"));
}

TEST(ExternalSched, MapWriteCrashesItWithItsOwnMessage) {
  KTSTR_VM_STORE(store);
  TempDir dir = temp_dir();
  int status = -1;
  auto t = store.test_json(
      write_spec(dir.path(), "ext_crash", kTiny,
                 "scenario = \"steady\"\nduration_s = 5\n"
                 "bpf_map_write = [{ map = \".bss\", var = \"fail_now\", value = 1, after_ms = 1000 }]\n"),
      &status);
  EXPECT_EQ(status, 1);
  EXPECT_EQ(t["status"], "fail");
  EXPECT_EQ(t["failure_kind"], "scheduler_died") << t.dump(1).substr(0, 4000);
  auto& e = t["exit"];
  EXPECT_EQ(e["kind"], 1025);
  EXPECT_NE(e.value("msg", "").find("tests/sched/scx_tiny.bpf.c:"), std::string::npos) << e;
  EXPECT_NE(e.value("msg", "").find("tiny: told to fail"), std::string::npos) << e;
  EXPECT_NE(e.value("scheduler_state", "").find("scx_tiny state: fail_now=1"), std::string::npos) << e;
  // Not before the write at 1 s.
  EXPECT_GE(t["fail_at_s"].get<double>(), 1.0);
  EXPECT_NE(t["sched"].value("log", "").find("EXIT: "), std::string::npos);
  ASSERT_TRUE(t.contains("crash_id"));
  auto show = store.ktstr({"crash", "show", t["crash_id"].get<std::string>()});
  EXPECT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("tiny: told to fail"), std::string::npos);
}

// The scheduler travels to the running VM (FILE frames before the JOB), so
// the initramfs is the agent's alone: a run of the fixture and a run of
// scx_tiny boot the same image, and the store's initramfs cache holds one.
TEST(ExternalSched, TwoSchedulersBootOneInitramfs) {
  KTSTR_VM_STORE(store);
  TempDir dir = temp_dir();
  int status = -1;
  std::string fixture_spec = dir.path() + "/one_image_fixture.toml";
  ASSERT_TRUE(write_file_atomic(fixture_spec, "[[test]]\nname = \"one_image_fixture\"\nscheduler = \"scx-ktstr\"\n"
                                              "topology = \"1n1l2c1t\"\nscenario = \"steady\"\nduration_s = 2\n")
                  .has_value());
  auto fixture = store.test_json(fixture_spec, &status);
  EXPECT_EQ(fixture["status"], "pass") << fixture.dump(1).substr(0, 4000);
  EXPECT_TRUE(fixture["sched"].value("attached", false));
  auto tiny = store.test_json(write_spec(dir.path(), "one_image_tiny", kTiny, "scenario = \"steady\"\nduration_s = 2\n"), &status);
  EXPECT_EQ(tiny["status"], "pass") << tiny.dump(1).substr(0, 4000);
  EXPECT_NE(tiny["sched"].value("log", "").find("scx_tiny: attached"), std::string::npos);
  std::vector<std::string> images;
  for (auto& e : std::filesystem::directory_iterator(store.path() + "/cache/artifacts/initramfs"))
    images.push_back(e.path().filename().string());
  EXPECT_EQ(images.size(), 1u) << ::testing::PrintToString(images);
}

}  // namespace
}  // namespace ktstr::testing
