// guest/vm: the QEMU command line for each topology, and the KVM/TCG choice.
#include "guest/vm/accel.hpp"
#include "guest/vm/vm.hpp"
#include "guest/vm/vm_config.hpp"

#include "core/fs.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

using namespace ktstr;

namespace {

VmConfig config_for(const std::string& topo) {
  VmConfig cfg;
  cfg.kernel_image = "/k/bzImage";
  cfg.initramfs = "/k/initrd.cpio";
  cfg.topology = Topology::parse(topo).value();
  cfg.work_dir = "/run/w";
  return cfg;
}

// Every value that follows `opt` in argv, in order.
std::vector<std::string> values_of(const std::vector<std::string>& argv, const std::string& opt) {
  std::vector<std::string> out;
  for (size_t i = 0; i + 1 < argv.size(); ++i)
    if (argv[i] == opt) out.push_back(argv[i + 1]);
  return out;
}

bool has(const std::vector<std::string>& argv, const std::string& arg) {
  return std::find(argv.begin(), argv.end(), arg) != argv.end();
}

}  // namespace

TEST(QemuArgs, FixedOptionsAndKernel) {
  auto argv = qemu_argv(config_for("1n1l2c1t"), Accel::kTcg);
  EXPECT_EQ(argv[0], "qemu-system-x86_64");
  for (const char* a : {"-nodefaults", "-no-user-config", "-no-reboot"}) EXPECT_TRUE(has(argv, a)) << a;
  EXPECT_EQ(values_of(argv, "-display"), std::vector<std::string>{"none"});
  EXPECT_EQ(values_of(argv, "-kernel"), std::vector<std::string>{"/k/bzImage"});
  EXPECT_EQ(values_of(argv, "-initrd"), std::vector<std::string>{"/k/initrd.cpio"});
  EXPECT_EQ(values_of(argv, "-serial"), std::vector<std::string>{"chardev:con"});
  EXPECT_TRUE(has(argv, "socket,id=con,path=/run/w/console.sock"));
}

TEST(QemuArgs, Accelerators) {
  ::unsetenv("KTSTR_TCG_THREAD");
  auto tcg = qemu_argv(config_for("1n1l2c1t"), Accel::kTcg);
  EXPECT_EQ(values_of(tcg, "-accel"), std::vector<std::string>{"tcg,thread=single"});
  ::setenv("KTSTR_TCG_THREAD", "multi", 1);
  EXPECT_EQ(values_of(qemu_argv(config_for("1n1l2c1t"), Accel::kTcg), "-accel"),
            std::vector<std::string>{"tcg,thread=multi"});
  ::unsetenv("KTSTR_TCG_THREAD");
  EXPECT_EQ(values_of(tcg, "-cpu"), std::vector<std::string>{"max"});
  auto kvm = qemu_argv(config_for("1n1l2c1t"), Accel::kKvm);
  EXPECT_EQ(values_of(kvm, "-accel"), std::vector<std::string>{"kvm"});
  EXPECT_EQ(values_of(kvm, "-cpu"), std::vector<std::string>{"host"});
}

TEST(QemuArgs, OneNodeOneLlc) {
  auto argv = qemu_argv(config_for("1n1l2c1t"), Accel::kTcg);
  EXPECT_EQ(values_of(argv, "-smp"), std::vector<std::string>{"2,sockets=1,cores=2,threads=1"});
  EXPECT_EQ(values_of(argv, "-m"), std::vector<std::string>{"256M"});
  EXPECT_TRUE(values_of(argv, "-numa").empty());
  EXPECT_TRUE(values_of(argv, "-object").empty());
}

TEST(QemuArgs, TwoLlcsAreTwoSockets) {
  auto argv = qemu_argv(config_for("1n2l2c1t"), Accel::kTcg);
  EXPECT_EQ(values_of(argv, "-smp"), std::vector<std::string>{"4,sockets=2,cores=2,threads=1"});
  EXPECT_TRUE(values_of(argv, "-numa").empty());
}

TEST(QemuArgs, TwoNodesSplitMemoryAndCpus) {
  auto argv = qemu_argv(config_for("2n2l1c2t"), Accel::kTcg);
  EXPECT_EQ(values_of(argv, "-smp"), std::vector<std::string>{"4,sockets=2,cores=1,threads=2"});
  EXPECT_EQ(values_of(argv, "-m"), std::vector<std::string>{"256M"});
  EXPECT_EQ(values_of(argv, "-object"),
            (std::vector<std::string>{"memory-backend-ram,id=m0,size=128M", "memory-backend-ram,id=m1,size=128M"}));
  EXPECT_EQ(values_of(argv, "-numa"),
            (std::vector<std::string>{"node,nodeid=0,cpus=0-1,memdev=m0", "node,nodeid=1,cpus=2-3,memdev=m1"}));
}

TEST(QemuArgs, SmtAcrossTwoLlcs) {
  auto argv = qemu_argv(config_for("1n2l4c2t"), Accel::kTcg);
  EXPECT_EQ(values_of(argv, "-smp"), std::vector<std::string>{"16,sockets=2,cores=4,threads=2"});
  EXPECT_TRUE(values_of(argv, "-numa").empty());
}

TEST(QemuArgs, NodeMemoryStaysEvenAndAddsUp) {
  auto cfg = config_for("4n4l1c1t");
  cfg.memory_mb = 1004;  // 251 per node is odd: rounded down to 250
  auto argv = qemu_argv(cfg, Accel::kTcg);
  EXPECT_EQ(memory_per_node_mb(cfg), 250u);
  EXPECT_EQ(values_of(argv, "-m"), std::vector<std::string>{"1000M"});
  EXPECT_EQ(values_of(argv, "-numa").back(), "node,nodeid=3,cpus=3,memdev=m3");
}

TEST(QemuArgs, PortsAreSocketsWithNames) {
  auto cfg = config_for("1n1l2c1t");
  cfg.ports = {"ktstr.control", "ktstr.results"};
  auto argv = qemu_argv(cfg, Accel::kTcg);
  auto devices = values_of(argv, "-device");
  ASSERT_EQ(devices.size(), 3u);
  EXPECT_EQ(devices[0].rfind("virtio-serial-pci", 0), 0u);
  EXPECT_EQ(devices[1], "virtserialport,bus=vser0.0,id=vport0,chardev=port0,name=ktstr.control");
  EXPECT_EQ(devices[2], "virtserialport,bus=vser0.0,id=vport1,chardev=port1,name=ktstr.results");
  auto chardevs = values_of(argv, "-chardev");
  ASSERT_EQ(chardevs.size(), 3u);
  EXPECT_EQ(chardevs[1], "socket,id=port0,path=" + port_socket_path("/run/w", 0));
  EXPECT_EQ(chardevs[2], "socket,id=port1,path=" + port_socket_path("/run/w", 1));
  EXPECT_NE(port_socket_path("/run/w", 0), port_socket_path("/run/w", 1));
}

TEST(QemuArgs, NoPortsNoVirtioSerial) {
  auto argv = qemu_argv(config_for("1n1l2c1t"), Accel::kTcg);
  EXPECT_TRUE(values_of(argv, "-device").empty());
}

TEST(QemuArgs, CommasInPathsAreDoubled) {
  auto cfg = config_for("1n1l2c1t");
  cfg.work_dir = "/tmp/a,b";
  cfg.ports = {"p"};
  auto argv = qemu_argv(cfg, Accel::kTcg);
  EXPECT_TRUE(has(argv, "socket,id=con,path=/tmp/a,,b/console.sock"));
  EXPECT_TRUE(has(argv, "socket,id=port0,path=/tmp/a,,b/port0.sock"));
}

TEST(QemuArgs, KernelCmdline) {
  auto cfg = config_for("1n1l2c1t");
  cfg.cmdline_extra = "ktstr.seed=7";
  auto quiet = values_of(qemu_argv(cfg, Accel::kTcg), "-append");
  ASSERT_EQ(quiet.size(), 1u);
  EXPECT_EQ(quiet[0], "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 rdinit=/init quiet loglevel=4 ktstr.seed=7");
  cfg.verbose_console = true;
  auto verbose = values_of(qemu_argv(cfg, Accel::kTcg), "-append");
  EXPECT_EQ(verbose[0], "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1 rdinit=/init loglevel=7 ktstr.verbose=1 ktstr.seed=7");
}

TEST(Accel, ParseNames) {
  EXPECT_EQ(parse_accel("kvm").value(), Accel::kKvm);
  EXPECT_EQ(parse_accel("tcg").value(), Accel::kTcg);
  auto bad = parse_accel("hvf");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().msg.find("'hvf'"), std::string::npos);
  EXPECT_STREQ(accel_name(Accel::kKvm), "kvm");
}

TEST(Accel, ProbeRejectsWhatIsNotKvm) {
  EXPECT_FALSE(kvm_probe("/nonexistent/kvm"));
  // Opens fine, but KVM ioctls fail: the forked probe must report failure.
  EXPECT_FALSE(kvm_probe("/dev/null"));
}

TEST(Accel, QemuKvmFailureLinesAreEvidence) {
  EXPECT_EQ(kvm_failure_evidence("KVM internal error. Suberror: 1"), "QEMU: \"KVM internal error. Suberror: 1\"");
  EXPECT_EQ(kvm_failure_evidence("emulation failure\r"), "QEMU: \"emulation failure\"");
  EXPECT_NE(kvm_failure_evidence("KVM: entry failed, hardware error 0x80000021"), "");
  EXPECT_NE(kvm_failure_evidence("qemu-system-x86_64: failed to initialize kvm: Permission denied"), "");
  EXPECT_NE(kvm_failure_evidence("Could not access KVM kernel module: No such file or directory"), "");
  EXPECT_NE(kvm_failure_evidence("error: kvm run failed Bad address"), "");
  // Ordinary QEMU chatter is not.
  EXPECT_EQ(kvm_failure_evidence("qemu-system-x86_64: warning: host doesn't support requested feature"), "");
  EXPECT_EQ(kvm_failure_evidence("RAX=0000000000000000 RBX=0000000000000000"), "");
  EXPECT_EQ(kvm_failure_evidence(""), "");
  // Long lines are cut.
  EXPECT_LT(kvm_failure_evidence("KVM internal error" + std::string(1000, 'x')).size(), 230u);
}

TEST(Accel, KtstrQemuSelectsTheBinary) {
  std::string saved = std::getenv("KTSTR_QEMU") ? std::getenv("KTSTR_QEMU") : "";
  ::unsetenv("KTSTR_QEMU");
  EXPECT_EQ(VmConfig{}.qemu_binary, "qemu-system-x86_64");
  ::setenv("KTSTR_QEMU", "/opt/qemu/bin/qemu-system-x86_64", 1);
  EXPECT_EQ(VmConfig{}.qemu_binary, "/opt/qemu/bin/qemu-system-x86_64");
  EXPECT_EQ(qemu_argv(config_for("1n1l1c1t"), Accel::kTcg)[0], "/opt/qemu/bin/qemu-system-x86_64");
  if (saved.empty()) ::unsetenv("KTSTR_QEMU");
  else ::setenv("KTSTR_QEMU", saved.c_str(), 1);
}

class AccelEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* k : {"KTSTR_ACCEL", "KTSTR_TEST_KVM_PROBE"}) {
      if (const char* v = std::getenv(k)) saved_.emplace_back(k, v);
      ::unsetenv(k);
    }
  }
  void TearDown() override {
    ::unsetenv("KTSTR_ACCEL");
    ::unsetenv("KTSTR_TEST_KVM_PROBE");
    for (auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST_F(AccelEnv, EnvironmentForcesTheChoice) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  ::setenv("KTSTR_ACCEL", "kvm", 1);
  EXPECT_EQ(choose_accel(dir.path()).value(), Accel::kKvm);
  ::setenv("KTSTR_ACCEL", "tcg", 1);
  EXPECT_EQ(choose_accel(dir.path()).value(), Accel::kTcg);
  ::setenv("KTSTR_ACCEL", "qemu", 1);
  EXPECT_FALSE(choose_accel(dir.path()));
}

TEST_F(AccelEnv, NoDeviceMeansTcg) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  ::unsetenv("KTSTR_ACCEL");
  EXPECT_EQ(choose_accel(dir.path(), "/nonexistent/kvm").value(), Accel::kTcg);
  EXPECT_FALSE(path_exists(dir.path() + "/kvm-probe.json"));
}

TEST_F(AccelEnv, ProbeResultIsCachedForThisBoot) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  ::unsetenv("KTSTR_ACCEL");
  // /dev/null opens but is no KVM: the probe fails and the answer is cached.
  EXPECT_EQ(choose_accel(dir.path(), "/dev/null").value(), Accel::kTcg);
  auto cached = nlohmann::json::parse(read_file(dir.path() + "/kvm-probe.json").value());
  EXPECT_FALSE(cached["kvm_works"].get<bool>());
  EXPECT_EQ(cached["boot_id"].get<std::string>().size(), 36u);
  // Flip the cached answer: the next choice must come from the cache, not a new probe.
  cached["kvm_works"] = true;
  ASSERT_TRUE(write_file_atomic(dir.path() + "/kvm-probe.json", cached.dump()));
  EXPECT_EQ(choose_accel(dir.path(), "/dev/null").value(), Accel::kKvm);
  // Another boot: probe again.
  cached["boot_id"] = "00000000-0000-0000-0000-000000000000";
  ASSERT_TRUE(write_file_atomic(dir.path() + "/kvm-probe.json", cached.dump()));
  EXPECT_EQ(choose_accel(dir.path(), "/dev/null").value(), Accel::kTcg);
}

TEST_F(AccelEnv, ABootVerdictSendsLaterRunsStraightToTcg) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  AccelVerdict v;
  v.kvm_works = false;
  v.decided_by = kDecidedByBoot;
  v.evidence = "QEMU: \"KVM internal error. Suberror: 1\"";
  v.device = "/dev/null";
  ASSERT_TRUE(record_accel_verdict(dir.path(), v));
  auto back = read_accel_verdict(dir.path()).value();
  EXPECT_TRUE(back.this_boot);
  EXPECT_FALSE(back.kvm_works);
  EXPECT_EQ(back.decided_by, kDecidedByBoot);
  EXPECT_EQ(back.evidence, v.evidence);
  EXPECT_GT(back.decided_at, 0);
  // /dev/null would fail the probe too; make the probe "pass" to show the
  // cached boot verdict wins over a new probe.
  ::setenv("KTSTR_TEST_KVM_PROBE", "pass", 1);
  EXPECT_EQ(choose_accel(dir.path(), "/dev/null").value(), Accel::kTcg);
  EXPECT_EQ(read_accel_verdict(dir.path())->decided_by, kDecidedByBoot);
  // Another host boot: the verdict no longer applies, the probe decides again.
  auto j = nlohmann::json::parse(read_file(accel_cache_path(dir.path())).value());
  j["boot_id"] = "00000000-0000-0000-0000-000000000000";
  ASSERT_TRUE(write_file_atomic(accel_cache_path(dir.path()), j.dump()));
  EXPECT_FALSE(read_accel_verdict(dir.path())->this_boot);
  EXPECT_EQ(choose_accel(dir.path(), "/dev/null").value(), Accel::kKvm);
  auto provisional = read_accel_verdict(dir.path()).value();
  EXPECT_EQ(provisional.decided_by, kDecidedByProbe);
  EXPECT_TRUE(provisional.kvm_works);
}

TEST_F(AccelEnv, TestProbeHookNeedsNoDevice) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  ::setenv("KTSTR_TEST_KVM_PROBE", "pass", 1);
  EXPECT_EQ(choose_accel(dir.path(), "/nonexistent/kvm").value(), Accel::kKvm);
  ::setenv("KTSTR_ACCEL", "tcg", 1);  // forcing still wins
  EXPECT_EQ(choose_accel(dir.path(), "/nonexistent/kvm").value(), Accel::kTcg);
  EXPECT_TRUE(accel_forced());
}

TEST_F(AccelEnv, VerdictsWithoutEvidenceReadAsProbeResults) {
  auto dir = TempDir::create("ktstr-accel-test").value();
  // The format written before verdicts carried evidence.
  ASSERT_TRUE(write_file_atomic(accel_cache_path(dir.path()), R"({"boot_id":"x","kernel_release":"y","device":"/dev/kvm","kvm_works":true})"));
  auto v = read_accel_verdict(dir.path()).value();
  EXPECT_EQ(v.decided_by, kDecidedByProbe);
  EXPECT_FALSE(v.this_boot);
  ASSERT_TRUE(write_file_atomic(accel_cache_path(dir.path()), "not json"));
  EXPECT_FALSE(read_accel_verdict(dir.path()));
}
