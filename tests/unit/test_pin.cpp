// The regression test `ktstr pin` writes: stable literal, generalized
// regex, and a spec that round-trips and matches the real crash text.
#include "core/fs.hpp"
#include "core/matcher.hpp"
#include "core/pin.hpp"

#include <gtest/gtest.h>

namespace ktstr {
namespace {

const char* kCrashMsg = "bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash";

CrashRecord crash_record() {
  CrashRecord c;
  c.id = "0123456789ab";
  c.summary = std::string("scx_bpf_error (") + kCrashMsg + ")";
  c.spec_toml =
      "[[test]]\nname = \"crash_demo\"\nscheduler = \"scx-ktstr\"\ntopology = \"1n1l4c1t\"\n"
      "scenario = \"custom_crash_light\"\nduration_s = 5\n"
      "bpf_map_write = [{ map = \".bss\", var = \"crash\", value = 1, after_ms = 2000 }]\n";
  return c;
}

std::string real_corpus(const std::string& dir) {
  auto log = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/" + dir + "/sched.log");
  EXPECT_TRUE(log.has_value());
  return log ? *log : "";
}

TEST(Pin, StablePartDropsSourcePrefixAndNumbers) {
  EXPECT_EQ(stable_message_part(kCrashMsg), "ktstr: host-triggered crash");
  EXPECT_EQ(stable_message_part("init[122] failed to run for 5.044s"), "failed to run for");
  EXPECT_EQ(stable_message_part("plain words"), "plain words");
}

TEST(Pin, RegexGeneralizesLineAndEscapes) {
  EXPECT_EQ(pinned_regex(kCrashMsg), "(?:[^\\s:]*/)?\\bscx_ktstr\\.bpf\\.c:\\d+: ktstr: host-triggered crash");
  auto re = Regex::compile(pinned_regex(kCrashMsg));
  ASSERT_TRUE(re.has_value());
  EXPECT_TRUE(*re->is_match("x bpf/scx_ktstr.bpf.c:999: ktstr: host-triggered crash y"));
  EXPECT_FALSE(*re->is_match("bpf/scx_ktstrXbpf.c:1: ktstr: host-triggered crash"));
  std::string stall = pinned_regex("init[122] failed to run for 5.044s");
  auto re2 = Regex::compile(stall);
  ASSERT_TRUE(re2.has_value()) << stall;
  EXPECT_TRUE(*re2->is_match("init[7] failed to run for 12.5s"));
}

TEST(Pin, RegexAcceptsTheFileInAnyDirectory) {
  // Pinned from a build in one checkout, run against a build in another.
  for (const char* pinned_from : {"/home/u/scx/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 7",
                                  "scheds/c/scx_foo.bpf.c:123: foo: bad cpu 7", "scx_foo.bpf.c:123: foo: bad cpu 7"}) {
    std::string pattern = pinned_regex(pinned_from);
    auto re = Regex::compile(pattern);
    ASSERT_TRUE(re.has_value()) << pattern;
    for (const char* corpus : {"EXIT: scx_bpf_error (/home/u/scx/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 7)",
                               "EXIT: scx_bpf_error (/tmp/bisect-9/wt/scheds/c/scx_foo.bpf.c:130: foo: bad cpu 2)",
                               "EXIT: scx_bpf_error (/home/John Smith/scx/scx_foo.bpf.c:1: foo: bad cpu 0)",
                               "EXIT: scx_bpf_error (../scx/scheds/c/scx_foo.bpf.c:123: foo: bad cpu 7)",
                               "  scx_bpf_error (scx_foo.bpf.c:99: foo: bad cpu 11)"})
      EXPECT_TRUE(*re->is_match(corpus)) << pattern << " on " << corpus;
    // Another file, or a file whose name only ends the same, is not it.
    for (const char* corpus : {"EXIT: scx_bpf_error (/home/u/scx/scheds/c/scx_bar.bpf.c:123: foo: bad cpu 7)",
                               "EXIT: scx_bpf_error (/home/u/my_scx_foo.bpf.c:123: foo: bad cpu 7)",
                               "EXIT: scx_bpf_error (/home/u/scx_foo.bpf.c:123: foo: bad dsq 7)"})
      EXPECT_FALSE(*re->is_match(corpus)) << pattern << " on " << corpus;
  }
  // The file name itself stays literal, digits included.
  EXPECT_EQ(pinned_regex("/b/v2/scx_v2.bpf.c:5: x 3"), "(?:[^\\s:]*/)?\\bscx_v2\\.bpf\\.c:\\d+: x \\d+");
  // The stable literal never holds a directory.
  EXPECT_EQ(stable_message_part("/home/John Smith/scx/scx_foo.bpf.c:1: foo: bad cpu 0"), "foo: bad cpu");
  EXPECT_EQ(stable_message_part("/tmp/build-2/x.bpf.c:9: boom"), "boom");
}

TEST(Pin, SpecExpectsTheCrashAndRoundTrips) {
  auto spec = pin_spec(crash_record(), "");
  ASSERT_TRUE(spec.has_value()) << spec.error().msg;
  EXPECT_EQ(spec->name, "crash_demo_regression");
  EXPECT_TRUE(spec->expect_err);
  EXPECT_EQ(spec->scheduler, "scx-ktstr");
  EXPECT_EQ(spec->topology.to_string(), "1n1l4c1t");
  ASSERT_EQ(spec->bpf_map_writes.size(), 1u);
  EXPECT_EQ(spec->bpf_map_writes[0].var, "crash");
  EXPECT_EQ(spec->expect_scx_bpf_error_contains.value_or(""), "ktstr: host-triggered crash");
  auto back = parse_spec_text(spec_to_toml(*spec), "pinned");
  ASSERT_TRUE(back.has_value()) << back.error().msg;
  EXPECT_EQ(back->front().expect_scx_bpf_error_matches, spec->expect_scx_bpf_error_matches);

  // The pinned matchers hold on the real 7.3 and 6.17 crash output and not
  // on a stall.
  for (auto* dir : {"7.3/crash", "6.17/crash"})
    EXPECT_TRUE(evaluate_matchers(*spec, real_corpus(dir)).ok) << dir;
  auto stall = evaluate_matchers(*spec, real_corpus("7.3/stall"));
  EXPECT_FALSE(stall.ok);
  EXPECT_NE(stall.message.find("substring not found"), std::string::npos) << stall.message;
}

TEST(Pin, NameAndBadRecordErrors) {
  EXPECT_EQ(pin_spec(crash_record(), "mine")->name, "mine");
  EXPECT_FALSE(pin_spec(crash_record(), "bad name").has_value());
  CrashRecord broken = crash_record();
  broken.spec_toml = "not toml [[";
  EXPECT_FALSE(pin_spec(broken, "").has_value());
}

}  // namespace
}  // namespace ktstr
