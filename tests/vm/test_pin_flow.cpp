// The pin workflow of the recipe, in real VMs: crash the fixture, pin the
// crash, the pinned test passes; a changed expected text fails with the
// matcher message; with the crash disabled it fails because no error
// happened.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace ktstr::testing {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

TEST(PinFlow, CrashPinPassDriftAndFix) {
  KTSTR_VM_STORE(store);
  auto crash = store.test_json(kVmSpecs + "/crash.toml");
  ASSERT_TRUE(crash.contains("crash_id")) << crash.value("reason", "");
  std::string id = crash["crash_id"];

  std::string out = store.path() + "/pinned";
  auto pin = store.ktstr({"pin", id.substr(0, 5), "--out", out, "--name", "crash_pinned"});
  ASSERT_EQ(pin.status, 0) << pin.err;
  std::string path = out + "/crash_pinned.toml";
  EXPECT_NE(pin.out.find(path), std::string::npos) << pin.out;
  auto text = read_file(path);
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("expect_err = true"), std::string::npos) << *text;
  EXPECT_NE(text->find("expect_scx_bpf_error_contains = \"ktstr: host-triggered crash\""), std::string::npos) << *text;
  // The file in any directory: a build in another checkout still matches.
  EXPECT_NE(text->find("(?:[^\\s:]*/)?\\bscx_ktstr\\.bpf\\.c:\\d+"), std::string::npos) << *text;

  // Pinning again under the same name is refused.
  auto again = store.ktstr({"pin", id, "--out", out, "--name", "crash_pinned"});
  EXPECT_EQ(again.status, 2);
  EXPECT_NE(again.err.find("already exists"), std::string::npos) << again.err;

  // 1. The pinned test passes: the bug is still there.
  int status = -1;
  auto pass = store.test_json(path, &status);
  EXPECT_EQ(status, 0) << pass.value("reason", "");

  // 2. The expected text drifted: the matcher fails with its message.
  std::string drifted = out + "/drifted.toml";
  ASSERT_TRUE(write_file_atomic(drifted, replace_all(replace_all(*text, "ktstr: host-triggered crash\"", "ktstr: some other crash\""),
                                                     "crash_pinned", "crash_drifted")));
  auto drift = store.test_json(drifted, &status);
  EXPECT_EQ(status, 1);
  EXPECT_NE(drift.value("reason", "").find("expect_scx_bpf_error_contains(\"ktstr: some other crash\"): substring not found in the scheduler log + sched_ext dump corpus"),
            std::string::npos)
      << drift.value("reason", "");

  // 3. The bug is fixed (no trigger): no error happened.
  std::string fixed = out + "/fixed.toml";
  std::string no_write = std::regex_replace(*text, std::regex("bpf_map_write = .*\n"), "");
  ASSERT_TRUE(write_file_atomic(fixed, replace_all(no_write, "crash_pinned", "crash_fixed")));
  auto none = store.test_json(fixed, &status);
  EXPECT_EQ(status, 1);
  EXPECT_EQ(none.value("reason", ""), "expected a scheduler error, none happened");
}

}  // namespace
}  // namespace ktstr::testing
