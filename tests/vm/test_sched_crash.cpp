// sched_ext schedulers in real VMs through the real ktstr binary: a crash
// via a host map write (report, signature, crash record), a watchdog stall,
// a verifier rejection, a clean run, expect_err, and a bad map write.
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>

namespace ktstr::testing {
namespace {

bool has_frame(const nlohmann::json& exit, const std::string& fn) {
  for (auto& f : exit["backtrace"])
    if (f.value("function", "").find(fn) != std::string::npos) return true;
  return false;
}

TEST(SchedCrash, MapWriteCrashIsReportedAndRecorded) {
  KTSTR_VM_STORE(store);
  int status = 0;
  auto t = store.test_json(kVmSpecs + "/crash.toml", &status);
  EXPECT_EQ(status, 1);
  EXPECT_EQ(t["status"], "fail");
  EXPECT_EQ(t["failure_kind"], "scheduler_died") << t.dump(1).substr(0, 4000);
  auto& e = t["exit"];
  EXPECT_EQ(e["kind"], 1025);
  EXPECT_NE(e.value("summary", "").find("scx_bpf_error (bpf/scx_ktstr.bpf.c:"), std::string::npos) << e;
  EXPECT_NE(e.value("msg", "").find("ktstr: host-triggered crash"), std::string::npos);
  EXPECT_EQ(e["failing_prog"], "ktstr_dispatch");
  EXPECT_TRUE(has_frame(e, "_ktstr_dispatch"));
  EXPECT_TRUE(has_frame(e, "do_pick_task_scx") || has_frame(e, "balance_scx")) << e["backtrace"];
  EXPECT_NE(e.value("scheduler_state", "").find("ktstr scheduler state:"), std::string::npos);
  EXPECT_NE(e.value("scheduler_state", "").find("crash=1"), std::string::npos);
  // The crash happened after the map write at 2 s, not before.
  EXPECT_GE(t["fail_at_s"].get<double>(), 2.0);
  EXPECT_LT(t["fail_at_s"].get<double>(), 5.0);
  EXPECT_NE(t.value("sched_ext_dump", "").find("triggered exit kind 1025"), std::string::npos);
  ASSERT_TRUE(t.contains("crash_id"));
  std::string id = t["crash_id"];

  // The stored report has the recipe's sections and names the commands.
  auto show = store.ktstr({"crash", "show", id.substr(0, 6)});
  ASSERT_EQ(show.status, 0) << show.err;
  for (auto* section : {"BUG SUMMARY: scx_bpf_error (bpf/scx_ktstr.bpf.c:", "[sched=scx-ktstr] [topo=1n1l4c1t] failed: scheduler process died unexpectedly during workload",
                        "--- stats ---", "--- diagnostics ---", "--- timeline ---", "--- scheduler log ---",
                        "DEBUG DUMP", "EXIT: scx_bpf_error", "--- monitor ---", "--- sched_ext dump ---",
                        "ktstr repro " , "ktstr pin "})
    EXPECT_NE(show.out.find(section), std::string::npos) << section << "\n" << show.out.substr(0, 3000);
  auto list = store.ktstr({"crash", "list", "--json"});
  ASSERT_EQ(list.status, 0);
  EXPECT_NE(list.out.find(id), std::string::npos);
}

TEST(SchedCrash, StallIsTheWatchdogKind) {
  KTSTR_VM_STORE(store);
  auto t = store.test_json(kVmSpecs + "/stall.toml");
  EXPECT_EQ(t["status"], "fail");
  EXPECT_EQ(t["failure_kind"], "stall") << t.value("reason", "");
  EXPECT_EQ(t["exit"]["kind"], 1026);
  EXPECT_NE(t["exit"].value("reason", "").find("stall"), std::string::npos);
}

TEST(SchedCrash, VerifierRejectionShowsLogAndGetsNoCrashId) {
  KTSTR_VM_STORE(store);
  auto t = store.test_json(kVmSpecs + "/fail_verify.toml");
  EXPECT_EQ(t["status"], "fail");
  EXPECT_EQ(t["failure_kind"], "verifier") << t.value("reason", "");
  EXPECT_NE(t.value("reason", "").find("verifier"), std::string::npos);
  EXPECT_FALSE(t.value("verifier_log", "").empty());
  EXPECT_FALSE(t.contains("crash_id"));
  auto list = store.ktstr({"crash", "list", "--json"});
  EXPECT_EQ(list.out.find("fail_verify"), std::string::npos);
}

TEST(SchedCrash, CleanRunPasses) {
  KTSTR_VM_STORE(store);
  int status = -1;
  auto t = store.test_json(kVmSpecs + "/clean.toml", &status);
  EXPECT_EQ(status, 0) << t.value("reason", "");
  EXPECT_EQ(t["status"], "pass");
  EXPECT_TRUE(t["sched"]["attached"].get<bool>());
  EXPECT_FALSE(t.contains("crash_id"));
  EXPECT_GT(t["monitor"].size(), 0u);
}

TEST(SchedCrash, ExpectErrTurnsTheCrashIntoAPass) {
  KTSTR_VM_STORE(store);
  int status = -1;
  auto t = store.test_json(kVmSpecs + "/expect_err.toml", &status);
  EXPECT_EQ(status, 0) << t.value("reason", "");
  EXPECT_EQ(t["status"], "pass");
  EXPECT_FALSE(t.contains("crash_id"));
}

TEST(SchedCrash, UnknownVariableIsAClearTestError) {
  KTSTR_VM_STORE(store);
  auto t = store.test_json(kVmSpecs + "/bad_var.toml");
  EXPECT_EQ(t["status"], "fail");
  std::string all = t.dump();
  EXPECT_NE(all.find("variable 'no_such_var' not found"), std::string::npos) << t.value("reason", "");
}

}  // namespace
}  // namespace ktstr::testing
