// `ktstr test` end to end: the real binary boots the cached sched_ext kernel
// under QEMU and the guest agent reports what it sees. Checks the guest's
// CPUs, LLC groups, NUMA nodes and SMT siblings against each topology, that
// the workers ran, and that no QEMU outlives ktstr, even on SIGTERM.
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "vm/vm_env.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <signal.h>

#include <fstream>
#include <thread>

namespace ktstr {
namespace {

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";

// PIDs of qemu-system processes whose parent is `parent` (0: any parent).
std::vector<pid_t> qemu_pids(pid_t parent = 0) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string comm = line.substr(open + 1, close - open - 1);
    if (comm.rfind("qemu-system", 0) != 0) continue;
    pid_t ppid = std::atoi(line.c_str() + close + 4);
    if (parent == 0 || ppid == parent) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool have_kernel() {
  auto r = run({kKtstr, "kernel", "list", "--json"});
  return r && r->ok() && r->out.find("\"sched_ext\": true") != std::string::npos;
}

struct Expect {
  std::string topo;
  unsigned cpus;
  std::vector<std::string> llcs, nodes, smt;
};

class KtstrTest : public ::testing::TestWithParam<Expect> {};

TEST_P(KtstrTest, GuestSeesTopologyAndWorkersRun) {
  KTSTR_VM_REQUIRE(!find_in_path("qemu-system-x86_64").empty(), "qemu-system-x86_64 is not installed");
  KTSTR_VM_REQUIRE(ktstr::testing::in_ci() || have_kernel(), "no sched_ext kernel is cached (run 'ktstr kernel fetch')");
  const Expect& e = GetParam();
  size_t qemus_before = qemu_pids().size();
  auto r = run({kKtstr, "test", "--json", "--scenario", "steady", "--topo", e.topo, "--duration", "2"}, {},
               std::chrono::minutes(5));
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->status, 0) << r->out << r->err;
  auto doc = nlohmann::json::parse(r->out);
  ASSERT_EQ(doc["tests"].size(), 1u);
  auto& t = doc["tests"][0];
  EXPECT_EQ(t["status"], "pass") << t["reason"];
  auto& g = t["guest_topology"];
  EXPECT_EQ(g["cpus"].get<unsigned>(), e.cpus);
  EXPECT_EQ(g["llc_groups"].get<std::vector<std::string>>(), e.llcs);
  EXPECT_EQ(g["numa_nodes"].get<std::vector<std::string>>(), e.nodes);
  EXPECT_EQ(g["smt_groups"].get<std::vector<std::string>>(), e.smt);
  ASSERT_EQ(t["workers"].size(), e.cpus);
  for (auto& w : t["workers"]) {
    EXPECT_GT(w["iterations"].get<uint64_t>(), 0u);
    EXPECT_GT(w["cpu_time_ns"].get<uint64_t>(), 100'000'000u) << "a spinning worker got under 0.1 s of CPU in 2 s";
  }
  EXPECT_EQ(t["vm"]["end"], "powered_off");
  EXPECT_GT(t["run_id"].get<int64_t>(), 0);
#ifndef KTSTR_SANITIZED
  // ktstr's own footprint (the bench's target too). Not in the ASan tree,
  // where the sanitizer's shadow memory and quarantine alone pass 100 MB.
  EXPECT_LT(doc["host"]["peak_rss_kb"].get<long>(), 50 * 1024);
#endif
  EXPECT_EQ(qemu_pids().size(), qemus_before) << "a QEMU outlived ktstr";
}

INSTANTIATE_TEST_SUITE_P(
    Topologies, KtstrTest,
    ::testing::Values(Expect{"1n1l2c1t", 2, {"0-1"}, {"0-1"}, {"0", "1"}},
                      Expect{"1n2l2c1t", 4, {"0-1", "2-3"}, {"0-3"}, {"0", "1", "2", "3"}},
                      Expect{"2n2l1c2t", 4, {"0-1", "2-3"}, {"0-1", "2-3"}, {"0-1", "2-3"}}),
    [](const auto& info) { return info.param.topo; });

TEST(KtstrTestSignals, SigtermLeavesNoQemu) {
  KTSTR_VM_REQUIRE(!find_in_path("qemu-system-x86_64").empty(), "qemu-system-x86_64 is not installed");
  KTSTR_VM_REQUIRE(ktstr::testing::in_ci() || have_kernel(), "no sched_ext kernel is cached (run 'ktstr kernel fetch')");
  SpawnOptions o;
  o.stdout_path = "/dev/null";
  o.stderr_path = "/dev/null";
  auto child = spawn({kKtstr, "test", "--scenario", "steady", "--topo", "1n1l2c1t", "--duration", "30"}, o);
  ASSERT_TRUE(child.has_value());
  // Wait (bounded) until ktstr has started its QEMU.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::vector<pid_t> qemu;
  while (qemu.empty() && std::chrono::steady_clock::now() < deadline) {
    qemu = qemu_pids(child->pid);
    if (qemu.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(qemu.empty()) << "ktstr never started QEMU";
  ::kill(child->pid, SIGTERM);
  int status = wait_child(child->pid, std::chrono::seconds(30));
  EXPECT_NE(status, 0);
  // The QEMU must be gone (reaped or at least not running).
  for (pid_t q : qemu) {
    std::ifstream stat("/proc/" + std::to_string(q) + "/stat");
    std::string line;
    std::getline(stat, line);
    bool gone = line.empty() || line.find(") Z ") != std::string::npos;
    EXPECT_TRUE(gone) << "QEMU " << q << " still runs after SIGTERM to ktstr: " << line;
  }
}

}  // namespace
}  // namespace ktstr
