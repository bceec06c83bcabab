// `ktstr test --repeat 3` of the map-write crash (tests/vm/specs/crash.toml)
// through the real binary: three repetitions in one boot, each with its own
// verdict, run record and crash record in the store; auto-repro replays the
// signature once. Checked in the store and the JSON, not the exit status.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ktstr::testing {
namespace {

TEST(RepeatVm, ThreeCrashesInOneBootEachRecorded) {
  KTSTR_VM_STORE(store);
  // --jobs 1: all three in one boot (a larger host's default N would split
  // them into batches, one boot each).
  auto r = store.ktstr({"test", "--json", "--jobs", "1", "--repeat", "3", kVmSpecs + "/crash.toml"});
  auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << r.err;
  ASSERT_EQ(doc["tests"].size(), 3u) << r.out.substr(0, 2000);
  std::set<std::string> crash_ids;
  std::set<int64_t> run_ids;
  for (unsigned i = 0; i < 3; ++i) {
    auto& t = doc["tests"][i];
    EXPECT_EQ(t["status"], "fail");
    EXPECT_EQ(t["failure_kind"], "scheduler_died") << t.value("reason", "");
    EXPECT_EQ(t["exit"]["kind"], 1025);
    EXPECT_NE(t["exit"].value("msg", "").find("ktstr: host-triggered crash"), std::string::npos);
    // Each one's own crash, after its own map write.
    EXPECT_GE(t["fail_at_s"].get<double>(), 2.0);
    EXPECT_LT(t["fail_at_s"].get<double>(), 5.0);
    ASSERT_TRUE(t.contains("repeat")) << t.dump(1).substr(0, 2000);
    EXPECT_EQ(t["repeat"]["repetition"], i + 1);
    // One boot for all three.
    EXPECT_EQ(t["repeat"]["vm"], 1);
    EXPECT_EQ(t["repeat"]["vm_repetition"], i + 1);
    if (i > 0) {
      EXPECT_EQ(t["vm"]["boot_s"].get<double>(), 0.0);
    }
    ASSERT_TRUE(t.contains("crash_id"));
    crash_ids.insert(t["crash_id"].get<std::string>());
    run_ids.insert(t["run_id"].get<int64_t>());
    // The signature is replayed once, on its first occurrence.
    EXPECT_EQ(t.contains("repro"), i == 0) << "repetition " << i + 1;
  }
  EXPECT_EQ(crash_ids.size(), 3u);
  EXPECT_EQ(run_ids.size(), 3u);
  ASSERT_EQ(doc["repeat"].size(), 1u);
  EXPECT_EQ(doc["repeat"][0]["vms"], 1);
  EXPECT_EQ(doc["repeat"][0]["failed"], 3);
  EXPECT_EQ(doc["repeat"][0]["signatures"].size(), 1u);

  // The store holds three crash records of one signature.
  auto list = store.ktstr({"crash", "list", "--json"});
  ASSERT_EQ(list.status, 0) << list.err;
  auto groups = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(groups.is_array()) << list.out;
  ASSERT_EQ(groups.size(), 1u) << list.out;
  EXPECT_EQ(groups[0]["count"], 3) << list.out;
  for (const std::string& id : crash_ids) {
    auto show = store.ktstr({"crash", "show", id});
    EXPECT_EQ(show.status, 0) << show.err;
    EXPECT_NE(show.out.find("VM 1, repetition"), std::string::npos) << show.out.substr(0, 3000);
  }

  // The text form: one summary line per run, the tally, one report.
  auto text = store.ktstr({"test", "--jobs", "1", "--repeat", "2", "--no-auto-repro", kVmSpecs + "/crash.toml"});
  EXPECT_NE(text.out.find("2 runs: 2 failed (signature scx_bpf_error (bpf/scx_ktstr.bpf.c:"), std::string::npos)
      << text.out.substr(0, 3000);
  EXPECT_NE(text.out.find("0 other, 0 passed, 0 skipped (1 VM)"), std::string::npos) << text.out.substr(0, 3000);
  size_t reports = 0;
  for (size_t at = text.out.find("BUG SUMMARY"); at != std::string::npos; at = text.out.find("BUG SUMMARY", at + 1))
    ++reports;
  EXPECT_EQ(reports, 1u) << text.out.substr(0, 3000);
}

}  // namespace
}  // namespace ktstr::testing
