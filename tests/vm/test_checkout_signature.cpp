// One scheduler built in two checkouts (tests/sched/scx_tiny compiled from
// build/tests/sched/checkout-a/ and checkout-b/, absolute paths, no
// -ffile-prefix-map): its scx_bpf_error messages carry different __FILE__
// directories, yet both crashes get one signature, and the test `ktstr pin`
// writes from the first crash passes against the second build. Bisection
// builds every commit in its own worktree and relies on this.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace ktstr::testing {
namespace {

const std::string kSchedDir = std::string(KTSTR_BINARY_DIR) + "/tests/sched";

std::string checkout_build(const std::string& tag) { return kSchedDir + "/checkout-" + tag + "/scx_tiny"; }

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

// Crashes `scheduler` with the fail_now switch: scx_bpf_error("tiny: told to fail").
std::string crash_spec(const std::string& dir, const std::string& name, const std::string& scheduler) {
  std::string toml = "[[test]]\nname = \"" + name + "\"\nscheduler = \"" + scheduler +
                     "\"\ntopology = \"1n1l2c1t\"\nscenario = \"steady\"\nduration_s = 4\n"
                     "bpf_map_write = [{ map = \".bss\", var = \"fail_now\", value = 1, after_ms = 500 }]\n";
  std::string path = dir + "/" + name + ".toml";
  auto st = write_file_atomic(path, toml);
  if (!st) throw std::runtime_error(st.error().msg);
  return path;
}

nlohmann::json crash_json(const VmStore& store, const std::string& id) {
  auto show = store.ktstr({"crash", "show", "--json", id});
  EXPECT_EQ(show.status, 0) << show.err;
  auto j = nlohmann::json::parse(show.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << show.out;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

TEST(CheckoutSignature, TwoBuildDirectoriesOneSignatureAndThePinHolds) {
  KTSTR_VM_STORE(store);
  auto tmp = TempDir::create("ktstr-ckout");
  ASSERT_TRUE(tmp.has_value());
  const std::string a = checkout_build("a"), b = checkout_build("b");

  std::string key[2], msg[2], id[2];
  for (int i = 0; i < 2; ++i) {
    const std::string& sched = i == 0 ? a : b;
    int status = -1;
    auto t = store.test_json(crash_spec(tmp->path(), i == 0 ? "ckout_a" : "ckout_b", sched), &status);
    EXPECT_EQ(status, 1);
    ASSERT_EQ(t.value("failure_kind", ""), "scheduler_died") << t.dump(1).substr(0, 4000);
    ASSERT_TRUE(t.contains("crash_id"));
    id[i] = t["crash_id"];
    msg[i] = t["exit"].value("msg", "");
    auto c = crash_json(store, id[i]);
    key[i] = c.value("signature_key", "");
    // The signature names the file without the checkout's directory.
    EXPECT_EQ(c.value("source", "").rfind("scx_tiny.bpf.c:", 0), 0u) << c.dump(1);
  }
  // The messages really differ: each names its own checkout, absolutely.
  const std::string dir_a = kSchedDir + "/checkout-a/scx_tiny.bpf.c:";
  const std::string dir_b = kSchedDir + "/checkout-b/scx_tiny.bpf.c:";
  EXPECT_EQ(msg[0].rfind(dir_a, 0), 0u) << msg[0];
  EXPECT_EQ(msg[1].rfind(dir_b, 0), 0u) << msg[1];
  EXPECT_NE(msg[0].find("tiny: told to fail"), std::string::npos) << msg[0];
  // One crash, two occurrences.
  ASSERT_FALSE(key[0].empty());
  EXPECT_EQ(key[0], key[1]);
  EXPECT_EQ(crash_json(store, id[1]).value("occurrences", 0), 2);

  // Pin the first build's crash and run the pinned test against the second.
  const std::string out = tmp->path() + "/pinned";
  auto pin = store.ktstr({"pin", id[0], "--out", out, "--name", "ckout_pinned"});
  ASSERT_EQ(pin.status, 0) << pin.err;
  auto text = read_file(out + "/ckout_pinned.toml");
  ASSERT_TRUE(text.has_value());
  EXPECT_NE(text->find("(?:[^\\s:]*/)?\\bscx_tiny\\.bpf\\.c:\\d+: tiny: told to fail"), std::string::npos) << *text;
  // No directory in the matchers (the comment above them quotes the crash).
  const std::string matchers = text->substr(text->find("expect_scx_bpf_error_contains"));
  EXPECT_EQ(matchers.find("checkout-a"), std::string::npos) << *text;
  ASSERT_NE(text->find(a), std::string::npos) << *text;
  const std::string on_b = out + "/ckout_pinned_b.toml";
  ASSERT_TRUE(write_file_atomic(on_b, replace_all(*text, a, b)).has_value());
  int status = -1;
  auto t = store.test_json(on_b, &status);
  EXPECT_EQ(status, 0) << t.value("reason", "") << "\n" << t.dump(1).substr(0, 4000);
  EXPECT_EQ(t.value("status", ""), "pass");
  EXPECT_EQ(t["exit"].value("msg", "").rfind(dir_b, 0), 0u) << t["exit"];  // it ran build b
  bool expected = false;
  for (auto& d : t.value("diagnostics", nlohmann::json::array()))
    if (d.get<std::string>().rfind("expected failure", 0) == 0) expected = true;
  EXPECT_TRUE(expected) << t["diagnostics"];
}

}  // namespace
}  // namespace ktstr::testing
