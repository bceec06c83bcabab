// guest/vm against a real kernel under QEMU: ports, echo, power-off, the
// watchdogs, topology as the guest sees it, and no QEMU left behind.
#include "guest/initramfs/initramfs.hpp"
#include "guest/vm/vm.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "tests/vm/vm_env.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

using namespace ktstr;
using namespace std::chrono_literals;

namespace {

const char* kOutPort = "ktstr.test.out";
const char* kInPort = "ktstr.test.in";

std::string find_kernel() {
  if (const char* k = std::getenv("KTSTR_TEST_BZIMAGE"); k && *k) return k;
  std::error_code ec;
  std::string newest;
  std::filesystem::file_time_type newest_time;
  for (auto& d : std::filesystem::directory_iterator(cache_dir() + "/artifacts/kernels", ec)) {
    auto image = d.path() / "bzImage";
    auto t = std::filesystem::last_write_time(image, ec);
    if (ec) continue;
    if (newest.empty() || t > newest_time) {
      newest = image.string();
      newest_time = t;
    }
  }
  if (!newest.empty()) return newest;
  std::string fallback = "/tmp/ktstr-kernel/x/usr/lib/modules/7.3.4+deb13-cloud-amd64/vmlinuz";
  return path_exists(fallback) ? fallback : "";
}

// Children of this process whose name contains "qemu".
std::vector<pid_t> qemu_children() {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    auto stat = read_file("/proc/" + std::string(e->d_name) + "/stat", 4096);
    if (!stat) continue;
    auto open = stat->find('('), close = stat->rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string comm = stat->substr(open + 1, close - open - 1);
    std::istringstream rest(stat->substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid() && comm.find("qemu") != std::string::npos) out.push_back(pid);
  }
  if (d) closedir(d);
  return out;
}

class VmBoot : public ::testing::Test {
 protected:
  void SetUp() override {
    kernel_ = find_kernel();
    KTSTR_VM_REQUIRE(!kernel_.empty(), "no kernel image (set KTSTR_TEST_BZIMAGE)");
    KTSTR_VM_REQUIRE(!find_in_path("qemu-system-x86_64").empty(), "qemu-system-x86_64 is not installed");
    dir_.emplace(TempDir::create("ktstr-vmtest").value());
    accel_ = choose_accel(cache_dir()).value();
  }

  std::string initramfs(const std::string& mode) {
    std::vector<InitramfsEntry> entries = {
        InitramfsEntry::file_from_host("init", KTSTR_VM_TEST_INIT, 0755),
        InitramfsEntry::file_from_bytes("mode", mode + "\n"),
    };
    return build_initramfs_cached(entries, dir_->path() + "/initramfs").value();
  }

  VmConfig config(const std::string& mode, const std::string& topology) {
    VmConfig cfg;
    cfg.kernel_image = kernel_;
    cfg.initramfs = initramfs(mode);
    cfg.topology = Topology::parse(topology).value();
    cfg.ports = {kOutPort, kInPort};
    cfg.work_dir = dir_->path() + "/" + mode + "-" + topology;
    cfg.no_output_timeout = 30s;
    cfg.overall_timeout = 90s;
    return cfg;
  }

  // Runs an "echo" VM: returns what came out of ktstr.test.out.
  std::string run_echo(const VmConfig& cfg, VmOutcome& outcome, const std::string& ping = "ping 42") {
    std::string received;
    VmCallbacks cb;
    cb.on_port_connected = [ping](Vm& vm, const std::string& port) {
      if (port == kInPort) {
        ASSERT_TRUE(vm.send(kInPort, ping + "\n"));
      }
    };
    cb.on_port_data = [&](Vm&, const std::string& port, const char* data, size_t len) {
      if (port == kOutPort) received.append(data, len);
    };
    outcome = run_vm(cfg, cb, accel_).value();
    std::cout << "[ vm      ] " << cfg.topology.to_string() << " (" << accel_name(accel_) << "): "
              << vm_end_name(outcome.end) << ", boot to first port byte "
              << (outcome.boot_time ? outcome.boot_time->count() : -1) << " ms, total " << outcome.wall_time.count()
              << " ms\n";
    return received;
  }

  std::string kernel_;
  std::optional<TempDir> dir_;
  Accel accel_ = Accel::kTcg;
};

}  // namespace

TEST_F(VmBoot, PortsEchoAndPowerOff) {
  auto cfg = config("echo", "1n1l2c1t");
  VmOutcome outcome;
  std::string received = run_echo(cfg, outcome);

  EXPECT_EQ(outcome.end, VmEnd::kPoweredOff) << outcome.console_tail << outcome.qemu_log_tail;
  EXPECT_EQ(outcome.qemu_status, 0);
  EXPECT_EQ(received.rfind("hello from the guest\n", 0), 0u) << received;
  EXPECT_NE(received.find("echo:ping 42\n"), std::string::npos) << received;
  ASSERT_TRUE(outcome.boot_time);
  EXPECT_LT(*outcome.boot_time, outcome.wall_time);

  // The console went to console.txt: kernel output, including our init's kmsg line.
  EXPECT_EQ(outcome.console_path, console_log_path(cfg.work_dir));
  auto console = read_file(outcome.console_path).value();
  EXPECT_EQ(console.size(), outcome.console_bytes);
  EXPECT_NE(console.find("vm_test_init: done"), std::string::npos) << console;
  EXPECT_NE(console.find("reboot: Power down"), std::string::npos) << console;
  EXPECT_EQ(outcome.console_tail, console.substr(console.size() - outcome.console_tail.size()));

  // Sockets are gone, QEMU too.
  for (auto& f : std::filesystem::directory_iterator(cfg.work_dir))
    EXPECT_NE(f.path().extension(), ".sock") << f.path();
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, GuestSeesTheTopology) {
  auto cfg = config("echo", "2n2l1c2t");
  VmOutcome outcome;
  std::string received = run_echo(cfg, outcome);
  ASSERT_EQ(outcome.end, VmEnd::kPoweredOff) << outcome.console_tail << outcome.qemu_log_tail;

  std::map<std::string, std::string> seen;  // "node0" -> "0-1", "llc2" -> "2-3", "smt3" -> "2-3"
  std::istringstream lines(received);
  for (std::string key, value; lines >> key >> value;) seen[key] = value;
  const Topology& t = cfg.topology;
  auto nodes = t.expected_node_cpus();
  ASSERT_EQ(nodes.size(), 2u);
  for (unsigned n = 0; n < t.nodes; ++n) EXPECT_EQ(seen["node" + std::to_string(n)], nodes[n]) << received;
  EXPECT_EQ(seen.count("node2"), 0u);
  auto llcs = t.expected_llc_groups();
  auto smt = t.expected_smt_groups();
  for (unsigned cpu = 0; cpu < t.cpus(); ++cpu) {
    EXPECT_EQ(seen["llc" + std::to_string(cpu)], llcs[t.llc_of_cpu(cpu)]) << "cpu " << cpu << "\n" << received;
    EXPECT_EQ(seen["smt" + std::to_string(cpu)], smt[t.core_of_cpu(cpu)]) << "cpu " << cpu << "\n" << received;
  }
  EXPECT_EQ(llcs, (std::vector<std::string>{"0-1", "2-3"}));
}

TEST_F(VmBoot, SilentGuestTripsTheNoOutputWatchdog) {
  auto cfg = config("hang", "1n1l2c1t");
  // Longer than the silent start of a TCG boot (firmware and decompression,
  // before the early console prints): 21 s to the first console byte on a
  // 2-core host at load 18 (10 s was too short there).
  cfg.verbose_console = true;
  cfg.no_output_timeout = 30s;
  cfg.overall_timeout = 150s;
  std::string received;
  VmCallbacks cb;
  cb.on_port_data = [&](Vm&, const std::string&, const char* data, size_t len) { received.append(data, len); };
  Vm vm(cfg, cb, accel_);
  auto outcome = vm.run().value();
  EXPECT_EQ(outcome.end, VmEnd::kWatchdogNoOutput) << outcome.console_tail;
  EXPECT_EQ(outcome.qemu_status, 128 + SIGKILL);
  // The guest reached init ("ready"), then was silent for the whole timeout.
  EXPECT_EQ(received, "ready\n");
  ASSERT_TRUE(outcome.boot_time);
  EXPECT_GE(outcome.wall_time - *outcome.boot_time, std::chrono::milliseconds(30000));
  EXPECT_LT(outcome.wall_time - *outcome.boot_time, std::chrono::milliseconds(40000));
  EXPECT_NE(outcome.console_tail.find("Run /init as init process"), std::string::npos) << outcome.console_tail;
  EXPECT_EQ(vm.qemu_pid(), -1);
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, OverallTimeoutFiresWhileOutputFlows) {
  auto cfg = config("hang", "1n1l2c1t");
  cfg.verbose_console = true;  // the booting kernel keeps the no-output watchdog quiet
  cfg.no_output_timeout = 60s;
  cfg.overall_timeout = 5s;
  auto outcome = run_vm(cfg, {}, accel_).value();
  EXPECT_EQ(outcome.end, VmEnd::kWatchdogTimeout) << outcome.console_tail;
  EXPECT_GE(outcome.wall_time, std::chrono::milliseconds(5000));
  EXPECT_LT(outcome.wall_time, std::chrono::milliseconds(10000));
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, InitExitIsAPanic) {
  auto cfg = config("exit", "1n1l2c1t");
  auto outcome = run_vm(cfg, {}, accel_).value();
  EXPECT_EQ(outcome.end, VmEnd::kPanicked) << outcome.console_tail;
  EXPECT_EQ(outcome.qemu_status, 0);
  EXPECT_NE(outcome.console_tail.find("Attempted to kill init"), std::string::npos) << outcome.console_tail;
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, RequestStopEndsTheRun) {
  auto cfg = config("hang", "1n1l2c1t");
  cfg.verbose_console = true;
  VmCallbacks cb;
  cb.on_console = [](Vm& vm, const char*, size_t) { vm.request_stop(); };
  auto outcome = run_vm(cfg, cb, accel_).value();
  EXPECT_EQ(outcome.end, VmEnd::kInterrupted);
  EXPECT_GT(outcome.console_bytes, 0u);
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, QemuThatCannotStartIsAnOutcome) {
  auto cfg = config("hang", "1n1l2c1t");
  cfg.qemu_binary = dir_->path() + "/no-such-qemu";
  auto missing = run_vm(cfg, {}, accel_).value();
  EXPECT_EQ(missing.end, VmEnd::kQemuFailedToStart);
  EXPECT_NE(missing.qemu_log_tail.find("no-such-qemu"), std::string::npos) << missing.qemu_log_tail;

  cfg = config("hang", "1n1l2c1t");
  cfg.kernel_image = dir_->path() + "/no-such-bzImage";
  auto bad_kernel = run_vm(cfg, {}, accel_).value();
  EXPECT_EQ(bad_kernel.end, VmEnd::kQemuFailedToStart);
  EXPECT_NE(bad_kernel.qemu_status, 0);
  EXPECT_NE(bad_kernel.qemu_log_tail.find("no-such-bzImage"), std::string::npos) << bad_kernel.qemu_log_tail;
  EXPECT_TRUE(qemu_children().empty());
}

TEST_F(VmBoot, SigtermToTheHostKillsQemu) {
  auto cfg = config("hang", "1n1l2c1t");
  cfg.verbose_console = true;
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t host = ::fork();
  ASSERT_GE(host, 0);
  if (host == 0) {
    // The "ktstr" process: reports QEMU's pid once the guest talks, then runs on.
    ::close(pipefd[0]);
    install_child_cleanup();
    bool told = false;
    VmCallbacks cb;
    cb.on_console = [&](Vm& vm, const char*, size_t) {
      if (told) return;
      pid_t qemu = vm.qemu_pid();
      (void)!::write(pipefd[1], &qemu, sizeof qemu);
      told = true;
    };
    Vm vm(cfg, cb, accel_);
    (void)vm.run();
    ::_exit(3);
  }
  ::close(pipefd[1]);
  pid_t qemu = -1;
  ASSERT_EQ(::read(pipefd[0], &qemu, sizeof qemu), static_cast<ssize_t>(sizeof qemu));
  ::close(pipefd[0]);
  ASSERT_GT(qemu, 0);
  EXPECT_EQ(::kill(qemu, 0), 0) << "QEMU runs while the host does";
  ASSERT_EQ(::kill(host, SIGTERM), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(host, &st, 0), host);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM) << "status " << st;
  // The host's handler killed and reaped QEMU before dying.
  EXPECT_NE(::kill(qemu, 0), 0);
  EXPECT_EQ(errno, ESRCH);
}

// Snapshots: the first run saves one when the guest opens the ready port
// (what the host sent is held back until then, so it is not in the
// snapshot); the second is restored, gets what the guest wrote before the
// snapshot replayed, and still answers its own message; a damaged snapshot
// makes the VM boot instead, once, and turns snapshots off for that VM.
// The "tick" guest sleeps on its timers after the snapshot point: a
// restored guest whose clock or timers did not come back would hang.
TEST_F(VmBoot, SnapshotSavedRestoredAndADamagedOneBoots) {
  accel_ = Accel::kTcg;  // snapshots are taken under TCG only: on a KVM host too, this test runs TCG
  auto cfg = config("tick", "1n1l2c1t");
  cfg.snapshot_dir = dir_->path() + "/snapshots";
  cfg.snapshot_ready_port = kInPort;
  auto count = [](const std::string& hay, const std::string& needle) {
    size_t n = 0;
    for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
    return n;
  };

  VmOutcome first;
  std::string received = run_echo(cfg, first, "ping 1");
  ASSERT_EQ(first.end, VmEnd::kPoweredOff) << first.console_tail << first.qemu_log_tail;
  EXPECT_TRUE(first.snapshot_saved) << first.snapshot_note;
  EXPECT_FALSE(first.restored);
  EXPECT_EQ(count(received, "hello from the guest\n"), 1u) << received;
  EXPECT_NE(received.find("echo:ping 1\n"), std::string::npos) << received;
  std::vector<std::string> keys;
  for (auto& e : std::filesystem::directory_iterator(cfg.snapshot_dir)) keys.push_back(e.path().filename());
  ASSERT_EQ(keys.size(), 1u);
  const std::string snap = cfg.snapshot_dir + "/" + keys[0];
  EXPECT_GT(std::filesystem::file_size(snap + "/vmstate"), 1u << 20);

  VmOutcome second;
  received = run_echo(cfg, second, "ping 2");
  ASSERT_EQ(second.end, VmEnd::kPoweredOff) << second.console_tail << second.qemu_log_tail << second.snapshot_note;
  EXPECT_TRUE(second.restored) << second.snapshot_note;
  EXPECT_FALSE(second.snapshot_saved);
  ASSERT_TRUE(second.snapshot_time);
  // What the guest wrote before the snapshot, once, then its answer to this run's message.
  EXPECT_EQ(received.rfind("hello from the guest\n", 0), 0u) << received;
  EXPECT_EQ(count(received, "hello from the guest\n"), 1u) << received;
  EXPECT_NE(received.find("node0 0-1\n"), std::string::npos) << received;
  EXPECT_NE(received.find("tick 5\necho:ping 2\n"), std::string::npos) << received;
  EXPECT_EQ(received.find("ping 1"), std::string::npos) << received;
  // The console: the boot replayed once (the kernel did not boot again), then this run's end.
  auto console = read_file(second.console_path).value();
  EXPECT_EQ(count(console, "Linux version"), 1u) << console;
  EXPECT_NE(console.find("vm_test_init: done"), std::string::npos) << console;
  EXPECT_EQ(console.size(), second.console_bytes);

  // A damaged vmstate: QEMU cannot load it; the VM boots and answers.
  std::filesystem::resize_file(snap + "/vmstate", std::filesystem::file_size(snap + "/vmstate") / 2);
  VmOutcome third;
  received = run_echo(cfg, third, "ping 3");
  ASSERT_EQ(third.end, VmEnd::kPoweredOff) << third.console_tail << third.qemu_log_tail << third.snapshot_note;
  EXPECT_FALSE(third.restored);
  EXPECT_FALSE(third.snapshot_saved);
  EXPECT_NE(third.snapshot_note.find("restoring the snapshot failed"), std::string::npos) << third.snapshot_note;
  EXPECT_EQ(count(received, "hello from the guest\n"), 1u) << received;
  EXPECT_EQ(count(received, "echo:ping 3\n"), 1u) << received;
  EXPECT_FALSE(path_exists(snap));
  EXPECT_TRUE(path_exists(snap + ".restore-failed"));

  // And no new snapshot of this VM until someone removes the marker.
  VmOutcome fourth;
  received = run_echo(cfg, fourth, "ping 4");
  ASSERT_EQ(fourth.end, VmEnd::kPoweredOff) << fourth.console_tail;
  EXPECT_FALSE(fourth.snapshot_saved);
  EXPECT_NE(fourth.snapshot_note.find("restoring one failed before"), std::string::npos) << fourth.snapshot_note;
  EXPECT_NE(received.find("echo:ping 4\n"), std::string::npos) << received;
  EXPECT_FALSE(path_exists(snap));
  EXPECT_TRUE(qemu_children().empty());
}
