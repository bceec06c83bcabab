// cmd/doctor: problems, hints, exit status and rendering from hand-made
// reports; then the real binary against a store it was pointed at.
#include "run/doctor.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "guest/vm/accel.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sqlite3.h>

using namespace ktstr;
using namespace ktstr::runner;

namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";

// A host where everything is in place.
DoctorReport healthy() {
  DoctorReport r;
  r.host_kernel = "Linux 6.1.0-28-amd64 #1 SMP Debian x86_64";
  r.qemu = {"qemu", "/usr/bin/qemu-system-x86_64", "QEMU emulator version 7.2.22"};
  r.kvm_device = true;
  r.kvm_device_mode = "crw-rw---- root:kvm";
  r.kvm_accessible = true;
  r.verdict_known = true;
  r.verdict_kvm_works = true;
  r.verdict_decided_by = kDecidedByBoot;
  r.verdict_evidence = "a kernel (bzImage) reached the guest under KVM in 900 ms";
  r.store_path = "/home/u/.cache/ktstr";
  r.store_exists = true;
  r.store_schema = 5;
  r.store_schema_supported = 5;
  r.store_bytes = 3 * 1024 * 1024;
  r.kernels = {{"abc123", "7.3.4+deb13-cloud-amd64", "debian:linux-image", true, {"sched_ext_dump", "sched_ext_exit"}}};
  r.libbpf_version = "1.5";
  r.bpftool = {"bpftool", "/usr/sbin/bpftool", "bpftool v7.5.0"};
  r.clang = {"clang", "/usr/bin/clang-16", "Debian clang version 16.0.6"};
  return r;
}

const DoctorProblem* find_problem(const DoctorReport& r, const std::string& part) {
  for (auto& p : r.problems)
    if (p.what.find(part) != std::string::npos) return &p;
  return nullptr;
}

}  // namespace

TEST(Doctor, HealthyHostHasNoProblems) {
  auto r = healthy();
  add_doctor_problems(r);
  EXPECT_TRUE(r.problems.empty());
  EXPECT_EQ(doctor_exit_status(r), 0);
  EXPECT_EQ(r.accel, "kvm");
  std::string text = render_doctor(r);
  EXPECT_NE(text.find("qemu:        QEMU emulator version 7.2.22 (/usr/bin/qemu-system-x86_64)"), std::string::npos) << text;
  EXPECT_NE(text.find("KVM works (decided by a real boot: a kernel (bzImage) reached"), std::string::npos) << text;
  EXPECT_NE(text.find("/home/u/.cache/ktstr, 3.0 MiB, schema 5 (this ktstr: 5)"), std::string::npos) << text;
  EXPECT_NE(text.find("abc123 7.3.4+deb13-cloud-amd64  sched_ext: yes  tracepoints: sched_ext_dump,sched_ext_exit"),
            std::string::npos) << text;
  EXPECT_NE(text.find("libbpf:      1.5 (compiled in)"), std::string::npos) << text;
  EXPECT_NE(text.find("no problems found"), std::string::npos) << text;
  auto j = doctor_json(r);
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["store"]["schema_version"], 5);
  EXPECT_EQ(j["kvm"]["verdict"]["decided_by"], "boot");
  EXPECT_EQ(j["kernels"][0]["tracepoints"].size(), 2u);
}

TEST(Doctor, MissingQemuAndKernelBlock) {
  auto r = healthy();
  r.qemu.path.clear();
  r.kernels.clear();
  add_doctor_problems(r);
  EXPECT_EQ(doctor_exit_status(r), 1);
  auto* q = find_problem(r, "no QEMU");
  ASSERT_TRUE(q);
  EXPECT_TRUE(q->blocks);
  EXPECT_NE(q->hint.find("qemu-system-x86"), std::string::npos);
  auto* k = find_problem(r, "no kernel cached");
  ASSERT_TRUE(k);
  EXPECT_NE(k->hint.find("ktstr kernel fetch"), std::string::npos);
  std::string text = render_doctor(r);
  EXPECT_NE(text.find("problem: no QEMU found"), std::string::npos) << text;
  EXPECT_NE(text.find("hint: run 'ktstr kernel fetch'"), std::string::npos) << text;
  EXPECT_FALSE(doctor_json(r)["ok"].get<bool>());
}

TEST(Doctor, KernelWithoutSchedExtBlocks) {
  auto r = healthy();
  r.kernels[0].sched_ext = false;
  add_doctor_problems(r);
  EXPECT_EQ(doctor_exit_status(r), 1);
  EXPECT_TRUE(find_problem(r, "no cached kernel has sched_ext"));
}

TEST(Doctor, KvmTroubleIsANoteNotABlocker) {
  auto r = healthy();
  r.verdict_kvm_works = false;
  r.verdict_evidence = "QEMU: \"KVM internal error. Suberror: 1\"";
  add_doctor_problems(r);
  EXPECT_EQ(doctor_exit_status(r), 0);
  EXPECT_EQ(r.accel, "tcg");
  auto* p = find_problem(r, "KVM cannot boot a kernel here (QEMU: \"KVM internal error. Suberror: 1\")");
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->blocks);
  EXPECT_NE(p->hint.find("TCG is used"), std::string::npos);

  auto none = healthy();
  none.kvm_device = false;
  none.verdict_known = false;
  add_doctor_problems(none);
  EXPECT_EQ(none.accel, "tcg");
  EXPECT_EQ(doctor_exit_status(none), 0);
  ASSERT_TRUE(find_problem(none, "no /dev/kvm"));
  EXPECT_NE(render_doctor(none).find("none needed (no /dev/kvm: TCG)"), std::string::npos);
  auto undecided = healthy();
  undecided.verdict_known = false;
  add_doctor_problems(undecided);
  EXPECT_EQ(undecided.accel, "kvm (not confirmed yet)");
  EXPECT_NE(render_doctor(undecided).find("no verdict for this host boot yet (the first VM decides)"), std::string::npos);

  auto unproven = healthy();
  unproven.verdict_decided_by = kDecidedByProbe;
  add_doctor_problems(unproven);
  EXPECT_EQ(unproven.accel, "kvm (not confirmed by a boot yet)");
  EXPECT_NE(render_doctor(unproven).find("no real boot has decided yet"), std::string::npos);

  auto denied = healthy();
  denied.kvm_accessible = false;
  add_doctor_problems(denied);
  auto* d = find_problem(denied, "not readable and writable");
  ASSERT_TRUE(d);
  EXPECT_NE(d->hint.find("kvm"), std::string::npos);
}

TEST(Doctor, NewerStoreSchemaBlocks) {
  auto r = healthy();
  r.store_schema = 9;
  add_doctor_problems(r);
  EXPECT_EQ(doctor_exit_status(r), 1);
  EXPECT_TRUE(find_problem(r, "newer than this ktstr"));
}

// The real binary, pointed at a fresh store with KTSTR_CACHE_DIR.
TEST(DoctorBinary, ReportsTheStoreItWasPointedAt) {
  auto dir = TempDir::create("ktstr-doctor-test").value();
  std::string cache = dir.path() + "/cache";
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + cache};

  // No store yet: reported, not created; no kernel blocks.
  auto before = run({kKtstr, "doctor", "--json"}, o, std::chrono::seconds(60)).value();
  EXPECT_EQ(before.status, 1) << before.out << before.err;
  auto j0 = nlohmann::json::parse(before.out);
  EXPECT_EQ(j0["store"]["path"], cache);
  EXPECT_FALSE(j0["store"]["exists"].get<bool>());
  EXPECT_FALSE(path_exists(cache + "/ktstr.db"));
  bool kernel_hint = false;
  for (auto& p : j0["problems"])
    kernel_hint = kernel_hint || p["hint"].get<std::string>().find("ktstr kernel fetch") != std::string::npos;
  EXPECT_TRUE(kernel_hint) << j0["problems"].dump();

  // Make the store (any store command does), and a verdict with evidence.
  ASSERT_EQ(run({kKtstr, "kernel", "list"}, o).value().status, 0);
  AccelVerdict v;
  v.kvm_works = false;
  v.decided_by = kDecidedByBoot;
  v.evidence = "QEMU: \"KVM internal error. Suberror: 1\"";
  ASSERT_TRUE(record_accel_verdict(cache, v));

  auto after = run({kKtstr, "doctor", "--json"}, o, std::chrono::seconds(60)).value();
  auto j = nlohmann::json::parse(after.out);
  EXPECT_TRUE(j["store"]["exists"].get<bool>());
  EXPECT_GT(j["store"]["bytes"].get<uint64_t>(), 0u);
  // The schema version is the database's own.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2((cache + "/ktstr.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  int schema = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  EXPECT_GT(schema, 0);
  EXPECT_EQ(j["store"]["schema_version"], schema);
  EXPECT_EQ(j["kvm"]["verdict"]["evidence"], v.evidence);
  EXPECT_EQ(j["kvm"]["verdict"]["decided_by"], "boot");
  EXPECT_EQ(j["libbpf"]["version"].get<std::string>().rfind("1.", 0), 0u);
  EXPECT_EQ(j["qemu"]["found"].get<bool>(), !find_in_path("qemu-system-x86_64").empty());

  // Text form: the same facts, and a hint per problem.
  auto text = run({kKtstr, "doctor"}, o, std::chrono::seconds(60)).value();
  EXPECT_NE(text.out.find("store:       " + cache + ", "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find(", schema " + std::to_string(schema) + " "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("hint: run 'ktstr kernel fetch'"), std::string::npos) << text.out;
  EXPECT_EQ(text.status, 1);

  auto help = run({kKtstr, "doctor", "--help"}, o).value();
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("--json"), std::string::npos);
  auto bad = run({kKtstr, "doctor", "--bogus"}, o).value();
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("hint:"), std::string::npos) << bad.err;
}
