// KVM -> TCG fallback against a real kernel: a fake QEMU (fake_qemu.sh,
// selected with KTSTR_QEMU) fails under `-accel kvm` like QEMU does on hosts
// where KVM cannot run a real kernel, and runs the real QEMU under TCG.
// KTSTR_TEST_KVM_PROBE=pass makes the ioctl probe "pass" on this KVM-less
// host, so the KVM attempt happens. Checks: the KVM attempt ends within
// seconds, its process is gone, the run is redone under TCG and passes (what
// the caller sent is sent again), the verdict and its evidence are cached,
// and the next run goes straight to TCG.
#include "guest/initramfs/initramfs.hpp"
#include "guest/vm/accel.hpp"
#include "guest/vm/vm.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "vm/vm_store.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <sstream>

using namespace ktstr;
using namespace std::chrono_literals;

namespace {

const char* kOutPort = "ktstr.test.out";
const char* kInPort = "ktstr.test.in";

std::vector<pid_t> marker_pids(const std::string& marker) {
  std::vector<pid_t> pids;
  auto text = read_file(marker);
  if (!text) return pids;
  std::istringstream in(*text);
  for (std::string word; in >> word;) {
    pid_t pid = 0;
    in >> pid;
    if (word == "kvm") pids.push_back(pid);
  }
  return pids;
}

// The kernel for these tests: $KTSTR_TEST_BZIMAGE, the default store's
// sched_ext kernel, else any bzImage in its artifacts (the store may have been
// migrated by a newer ktstr that this build cannot read).
std::string kernel_image() {
  if (const char* k = std::getenv("KTSTR_TEST_BZIMAGE"); k && *k) return k;
  if (auto image = ktstr::testing::default_kernel_image(); !image.empty()) return image;
  std::error_code ec;
  std::string any;
  for (auto& d : std::filesystem::directory_iterator(cache_dir() + "/artifacts/kernels", ec)) {
    auto image = (d.path() / "bzImage").string();
    if (path_exists(image) && (any.empty() || image < any)) any = image;
  }
  return any;
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

class AccelFallback : public ::testing::Test {
 protected:
  void SetUp() override {
    KTSTR_VM_REQUIRE(!find_in_path("qemu-system-x86_64").empty(), "qemu-system-x86_64 is not installed");
    kernel_ = kernel_image();
    KTSTR_VM_REQUIRE(!kernel_.empty(), "no sched_ext kernel is cached (run 'ktstr kernel fetch')");
    dir_.emplace(TempDir::create("ktstr-accel-vmtest").value());
    for (const char* k : {"KTSTR_CACHE_DIR", "KTSTR_QEMU", "KTSTR_TEST_KVM_PROBE", "KTSTR_ACCEL",
                          "KTSTR_FAKE_QEMU_MARKER", "KTSTR_FAKE_QEMU_KVM"}) {
      if (const char* v = std::getenv(k)) saved_.emplace_back(k, v);
      ::unsetenv(k);
    }
    cache_ = dir_->path() + "/cache";
    marker_ = dir_->path() + "/kvm-attempts";
    ::setenv("KTSTR_CACHE_DIR", cache_.c_str(), 1);
    ::setenv("KTSTR_QEMU", KTSTR_FAKE_QEMU, 1);
    ::setenv("KTSTR_TEST_KVM_PROBE", "pass", 1);
    ::setenv("KTSTR_FAKE_QEMU_MARKER", marker_.c_str(), 1);
  }
  void TearDown() override {
    for (const char* k : {"KTSTR_CACHE_DIR", "KTSTR_QEMU", "KTSTR_TEST_KVM_PROBE", "KTSTR_FAKE_QEMU_MARKER",
                          "KTSTR_FAKE_QEMU_KVM"})
      ::unsetenv(k);
    for (auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }

  // An "echo" VM (tests/vm/vm_test_init.c) whose input is sent once, from
  // the first on_port_connected, as cmd/pipeline.cpp sends its job.
  VmConfig echo_config() {
    std::vector<InitramfsEntry> entries = {
        InitramfsEntry::file_from_host("init", KTSTR_VM_TEST_INIT, 0755),
        InitramfsEntry::file_from_bytes("mode", "echo\n"),
    };
    VmConfig cfg;
    cfg.kernel_image = kernel_;
    cfg.initramfs = build_initramfs_cached(entries, dir_->path() + "/initramfs").value();
    cfg.topology = Topology::parse("1n1l2c1t").value();
    cfg.ports = {kOutPort, kInPort};
    cfg.no_output_timeout = 60s;
    cfg.overall_timeout = 180s;
    EXPECT_EQ(cfg.qemu_binary, KTSTR_FAKE_QEMU);
    return cfg;
  }

  VmOutcome run_echo(std::string& received, int& announced, const std::string& snapshot_dir = "") {
    auto cfg = echo_config();
    cfg.snapshot_dir = snapshot_dir;
    cfg.snapshot_ready_port = kInPort;
    VmCallbacks cb;
    cb.on_port_connected = [&](Vm& vm, const std::string& port) {
      if (port != kInPort) return;
      ++announced;
      ASSERT_TRUE(vm.send(kInPort, "ping 42\n"));
    };
    cb.on_port_data = [&](Vm&, const std::string& port, const char* data, size_t len) {
      if (port == kOutPort) received.append(data, len);
    };
    return run_vm(cfg, cb).value();
  }

  std::string kernel_, cache_, marker_;
  std::optional<TempDir> dir_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

}  // namespace

TEST_F(AccelFallback, KvmErrorEndsTheAttemptAndTcgRetryPasses) {
  // Capture the log lines: exactly one warning must say why.
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  auto logger = std::make_shared<spdlog::logger>("accel-test", sink);
  logger->set_level(spdlog::level::warn);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);

  ASSERT_EQ(choose_accel(cache_).value(), Accel::kKvm);  // the (pretend) probe passed
  auto provisional = read_accel_verdict(cache_).value();
  EXPECT_TRUE(provisional.kvm_works);
  EXPECT_EQ(provisional.decided_by, kDecidedByProbe);

  std::string received;
  int announced = 0;
  // Snapshots on: the TCG retry saves one, holding back what the caller sent
  // during the KVM attempt until the guest is ready.
  auto outcome = run_echo(received, announced, dir_->path() + "/snapshots");
  spdlog::set_default_logger(previous);

  // The KVM attempt: one fake QEMU, ended within seconds, and gone.
  auto pids = marker_pids(marker_);
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_NE(::kill(pids[0], 0), 0);
  EXPECT_EQ(errno, ESRCH) << "the KVM attempt's QEMU is still there";
  ASSERT_TRUE(outcome.kvm_abandoned);
  EXPECT_NE(outcome.kvm_abandoned->evidence.find("KVM internal error. Suberror: 1"), std::string::npos)
      << outcome.kvm_abandoned->evidence;
  EXPECT_LT(outcome.kvm_abandoned->after, 3000ms);
  // The TCG run: the whole VM, with what the caller sent before the retry.
  EXPECT_EQ(outcome.accel, Accel::kTcg);
  EXPECT_EQ(outcome.end, VmEnd::kPoweredOff) << outcome.console_tail << outcome.qemu_log_tail;
  EXPECT_EQ(announced, 1);
  EXPECT_NE(received.find("echo:ping 42\n"), std::string::npos) << received;
  EXPECT_TRUE(outcome.snapshot_saved) << outcome.snapshot_note;
  EXPECT_EQ(outcome.qemu_log_tail.find("KVM internal error"), std::string::npos) << "the TCG run's log, not KVM's";
  std::cout << "[ accel   ] KVM attempt abandoned after " << outcome.kvm_abandoned->after.count()
            << " ms; TCG run " << outcome.wall_time.count() << " ms (boot to first port byte "
            << (outcome.boot_time ? outcome.boot_time->count() : -1) << " ms)\n";

  std::string lines = log.str();
  EXPECT_EQ(count(lines, "\n"), 1u) << lines;
  EXPECT_NE(lines.find("KVM cannot boot the kernel here (QEMU: \"KVM internal error. Suberror: 1\"); using TCG"),
            std::string::npos)
      << lines;

  // The verdict, with its evidence, for this host boot.
  auto verdict = read_accel_verdict(cache_).value();
  EXPECT_FALSE(verdict.kvm_works);
  EXPECT_TRUE(verdict.this_boot);
  EXPECT_EQ(verdict.decided_by, kDecidedByBoot);
  EXPECT_NE(verdict.evidence.find("KVM internal error"), std::string::npos) << verdict.evidence;

  // The next run goes straight to TCG: no second KVM attempt.
  EXPECT_EQ(choose_accel(cache_).value(), Accel::kTcg);
  received.clear();
  announced = 0;
  auto again = run_echo(received, announced);
  EXPECT_FALSE(again.kvm_abandoned);
  EXPECT_EQ(again.accel, Accel::kTcg);
  EXPECT_EQ(again.end, VmEnd::kPoweredOff) << again.console_tail;
  EXPECT_EQ(marker_pids(marker_).size(), 1u);
}

TEST_F(AccelFallback, SilentKvmGuestIsAbandonedAfterTheBound) {
  ::setenv("KTSTR_FAKE_QEMU_KVM", "silent", 1);
  std::string received;
  int announced = 0;
  auto outcome = run_echo(received, announced);
  auto pids = marker_pids(marker_);
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_NE(::kill(pids[0], 0), 0);
  ASSERT_TRUE(outcome.kvm_abandoned);
  EXPECT_NE(outcome.kvm_abandoned->evidence.find("no guest output within 5000 ms"), std::string::npos)
      << outcome.kvm_abandoned->evidence;
  EXPECT_GE(outcome.kvm_abandoned->after, 5000ms);
  EXPECT_LT(outcome.kvm_abandoned->after, 8000ms);
  EXPECT_EQ(outcome.end, VmEnd::kPoweredOff) << outcome.console_tail << outcome.qemu_log_tail;
  EXPECT_NE(received.find("echo:ping 42\n"), std::string::npos) << received;
  auto verdict = read_accel_verdict(cache_).value();
  EXPECT_FALSE(verdict.kvm_works);
  EXPECT_EQ(verdict.decided_by, kDecidedByBoot);
  std::cout << "[ accel   ] silent KVM attempt abandoned after " << outcome.kvm_abandoned->after.count()
            << " ms; TCG run " << outcome.wall_time.count() << " ms\n";
}

TEST_F(AccelFallback, KvmForcedByTheUserIsNotRetried) {
  ::setenv("KTSTR_ACCEL", "kvm", 1);
  auto cfg = echo_config();
  auto outcome = run_vm(cfg, {}).value();
  ::unsetenv("KTSTR_ACCEL");
  EXPECT_FALSE(outcome.kvm_abandoned);
  EXPECT_EQ(outcome.accel, Accel::kKvm);
  // Ended at once (not by the 60 s watchdog), with QEMU's words.
  EXPECT_EQ(outcome.end, VmEnd::kQemuFailedToStart);
  EXPECT_LT(outcome.wall_time, 5000ms);
  EXPECT_NE(outcome.qemu_log_tail.find("KVM internal error"), std::string::npos) << outcome.qemu_log_tail;
  EXPECT_EQ(marker_pids(marker_).size(), 1u);
  EXPECT_FALSE(read_accel_verdict(cache_)) << "a forced run decides nothing";
}

// The real binary: `ktstr test` passes through the fallback without the
// pipeline knowing, prints one warning, and its report says KVM was tried.
TEST_F(AccelFallback, KtstrTestFallsBackOnceThenGoesStraightToTcg) {
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path() + "/store", "KTSTR_TEST_DIR=" + dir_->path() + "/tests"};
  auto add = run({ktstr::testing::kKtstrBin, "kernel", "add", kernel_}, o, std::chrono::minutes(5)).value();
  ASSERT_EQ(add.status, 0) << add.err;
  std::vector<std::string> argv = {ktstr::testing::kKtstrBin, "test", "--json", "--scenario", "steady",
                                   "--topo", "1n1l2c1t", "--duration", "2"};
  auto first = run(argv, o, std::chrono::minutes(5)).value();
  ASSERT_EQ(first.status, 0) << first.out << first.err;
  auto doc = nlohmann::json::parse(first.out);
  auto& t = doc["tests"][0];
  EXPECT_EQ(t["status"], "pass") << t["reason"];
  EXPECT_EQ(t["accel"], "tcg");
  std::string notes = t["diagnostics"].dump();
  EXPECT_NE(notes.find("KVM was tried first and abandoned"), std::string::npos) << notes;
  EXPECT_EQ(count(first.err, "warning:"), 1u) << first.err;
  EXPECT_EQ(count(first.err, "KVM cannot boot the kernel here"), 1u) << first.err;
  EXPECT_EQ(marker_pids(marker_).size(), 1u);

  auto second = run(argv, o, std::chrono::minutes(5)).value();
  ASSERT_EQ(second.status, 0) << second.out << second.err;
  auto doc2 = nlohmann::json::parse(second.out);
  EXPECT_EQ(doc2["tests"][0]["accel"], "tcg");
  EXPECT_EQ(doc2["tests"][0]["diagnostics"].dump().find("KVM was tried"), std::string::npos);
  EXPECT_EQ(count(second.err, "KVM cannot boot the kernel here"), 1u) << second.err;
  EXPECT_EQ(marker_pids(marker_).size(), 1u) << "the second run tried KVM again";
}
