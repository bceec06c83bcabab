// guest/agent pieces that run on the host: cpulists, the kernel command
// line, topology from a sysfs tree, port discovery, Port I/O over real
// pipes and sockets, and real forked workers (without cgroups).
#include "guest/agent/ports.hpp"
#include "guest/agent/topology_report.hpp"
#include "guest/agent/util.hpp"
#include "guest/agent/workers.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <filesystem>
#include <sched.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace ktstr::agent;
using namespace ktstr::proto;

namespace {

// A scratch directory standing in for /sys or a cgroup tree.
class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/ktstr-agent-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

  void file(const std::string& rel, const std::string& text) {
    std::string full = path_ + "/" + rel;
    for (size_t at = full.find('/', path_.size() + 1); at != std::string::npos; at = full.find('/', at + 1))
      ::mkdir(full.substr(0, at).c_str(), 0755);
    FILE* f = std::fopen(full.c_str(), "w");
    ASSERT_NE(f, nullptr) << full;
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }

 private:
  std::string path_;
};

}  // namespace

TEST(AgentCpulist, ParsesRangesAndRejectsMalformedText) {
  EXPECT_EQ(parse_cpulist("0-3,5,7-8\n"), (std::vector<unsigned>{0, 1, 2, 3, 5, 7, 8}));
  EXPECT_EQ(parse_cpulist("4"), (std::vector<unsigned>{4}));
  EXPECT_EQ(parse_cpulist(""), (std::vector<unsigned>{}));
  for (const char* bad : {"3-1", "a", "1,,2", "-1", "1-", "0-99999", "1 2"})
    EXPECT_FALSE(parse_cpulist(bad).has_value()) << bad;
  EXPECT_LT(first_cpu("2-3"), first_cpu("10-11"));
}

TEST(AgentCmdline, FindsKeysExactlyAndTheLastOneWins) {
  std::string cmdline = "console=ttyS0 ktstr.verbose=0 ktstr.verbosex=1 rdinit=/init ktstr.verbose=1";
  EXPECT_EQ(cmdline_value(cmdline, "ktstr.verbose"), "1");
  EXPECT_EQ(cmdline_value(cmdline, "rdinit"), "/init");
  EXPECT_FALSE(cmdline_value(cmdline, "ktstr.job").has_value());
  EXPECT_EQ(parse_u64("30000"), 30000u);
  EXPECT_FALSE(parse_u64("30s").has_value());
  EXPECT_FALSE(parse_u64("").has_value());
}

TEST(AgentTopology, ReadsAFakeSysfsTree) {
  // 12 CPUs, 2 SMT threads per core, an LLC per 4 CPUs, 3 nodes; node ids
  // and groups must come out in numeric order, not string order.
  ScratchDir sys;
  sys.file("devices/system/cpu/online", "0-11\n");
  for (unsigned cpu = 0; cpu < 12; ++cpu) {
    std::string dir = "devices/system/cpu/cpu" + std::to_string(cpu);
    unsigned core = cpu / 2, llc = cpu / 4;
    sys.file(dir + "/topology/thread_siblings_list", std::to_string(core * 2) + "-" + std::to_string(core * 2 + 1) + "\n");
    sys.file(dir + "/cache/index0/level", "1\n");
    sys.file(dir + "/cache/index0/shared_cpu_list", "ignored\n");
    sys.file(dir + "/cache/index2/level", "2\n");
    sys.file(dir + "/cache/index3/level", "3\n");
    sys.file(dir + "/cache/index3/shared_cpu_list", std::to_string(llc * 4) + "-" + std::to_string(llc * 4 + 3) + "\n");
  }
  sys.file("devices/system/node/node0/cpulist", "0-3\n");
  sys.file("devices/system/node/node10/cpulist", "8-11\n");
  sys.file("devices/system/node/node2/cpulist", "4-7\n");
  sys.file("devices/system/node/possible", "0-10\n");

  TopologyMsg t = read_topology(sys.path());
  EXPECT_EQ(t.cpus_online, "0-11");
  EXPECT_EQ(t.cpus, 12u);
  EXPECT_EQ(t.llc_groups, (std::vector<std::string>{"0-3", "4-7", "8-11"}));
  EXPECT_EQ(t.numa_nodes, (std::vector<std::string>{"0-3", "4-7", "8-11"}));
  ASSERT_EQ(t.smt_groups.size(), 6u);
  EXPECT_EQ(t.smt_groups[1], "2-3");
  EXPECT_EQ(t.smt_groups[5], "10-11");
}

TEST(AgentTopology, MatchesThisMachine) {
  TopologyMsg t = read_topology("/sys");
  EXPECT_EQ(t.cpus, static_cast<uint32_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  EXPECT_FALSE(t.smt_groups.empty());
}

TEST(AgentPorts, FindsTheDeviceByPortName) {
  ScratchDir sys;
  sys.file("class/virtio-ports/vport0p1/name", "ktstr.control\n");
  sys.file("class/virtio-ports/vport0p2/name", "ktstr.results\n");
  sys.file("class/virtio-ports/vport0p3/name", "\n");
  EXPECT_EQ(find_port_device(kResultsPort, sys.path(), "/dev"), "/dev/vport0p2");
  EXPECT_EQ(find_port_device(kControlPort, sys.path(), "/dev"), "/dev/vport0p1");
  EXPECT_FALSE(find_port_device(kSchedPort, sys.path(), "/dev").has_value());
  EXPECT_FALSE(find_port_device(kResultsPort, sys.path() + "/missing", "/dev").has_value());
}

TEST(AgentPorts, OpenFailsWithTheDeviceName) {
  auto port = Port::open("/nonexistent/vport9p9", O_RDONLY);
  ASSERT_FALSE(port);
  EXPECT_EQ(port.error().msg, "cannot open '/nonexistent/vport9p9': No such file or directory");
}

TEST(AgentPorts, FramesCrossASocketInBothDirections) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Port guest(sv[0]), host(sv[1]);
  std::string big = encode_message(LogMsg{"info", std::string(600000, 'x')});
  std::string hello = encode_message(HelloMsg{"v", "k", 1});
  // The writer blocks on a full socket buffer until the reader drains it.
  std::thread writer([&] {
    EXPECT_TRUE(guest.write_all(hello, 10000));
    EXPECT_TRUE(guest.write_all(big, 10000));
  });
  FrameDecoder decoder;
  auto first = host.read_frame(decoder, 10000);
  auto second = host.read_frame(decoder, 10000);
  writer.join();
  ASSERT_TRUE(first) << first.error().msg;
  ASSERT_TRUE(second) << second.error().msg;
  EXPECT_EQ(first->type, MsgType::Hello);
  auto log = decode_payload<LogMsg>(*second);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->text.size(), 600000u);
}

TEST(AgentPorts, ReadTimesOutWhenNothingArrives) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  Port guest(sv[0]), host(sv[1]);
  FrameDecoder decoder;
  auto frame = guest.read_frame(decoder, 30);
  ASSERT_FALSE(frame);
  EXPECT_EQ(frame.error().msg, "no frame within 30 ms");
  // EOF (the peer went away) is retried until the deadline, as virtio
  // ports report EOF before the host connects.
  host = Port();
  frame = guest.read_frame(decoder, 30);
  ASSERT_FALSE(frame);
  EXPECT_EQ(frame.error().msg, "no frame within 30 ms");
}

TEST(AgentPorts, WriteTimesOutOnceThenFailsFast) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  Port reader(fds[0]), writer(fds[1]);  // nobody reads: the pipe fills
  auto first = writer.write_all(std::string(4 << 20, 'x'), 30);
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().msg, "writing port: timed out after 30 ms");
  auto second = writer.write_all("y", 10000);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().msg, "port timed out earlier");
}

TEST(AgentWork, EveryKindMeasuresItself) {
  for (WorkKind kind : {WorkKind::Spin, WorkKind::Yield, WorkKind::Mixed}) {
    WorkStats s = run_work(kind, 30);
    SCOPED_TRACE(work_kind_name(kind));
    EXPECT_GE(s.iterations, 1u);
    EXPECT_GE(s.wall_ns, 30000000u);
    EXPECT_GT(s.cpu_time_ns, 0u);
    EXPECT_LE(s.max_gap_ns, s.wall_ns);
    EXPECT_LE(s.migrations, s.iterations);
    EXPECT_GE(s.cpus_used.count(), 1u);
    EXPECT_LE(s.cpus_used.count(), s.migrations + 1);
  }
}

TEST(AgentWorkers, ForkReportAndReapEveryWorker) {
  JobMsg job;
  job.scenario.duration_ms = 50;
  job.scenario.cgroups = {{"pinned", 2, WorkKind::Spin, "0"}, {"free", 1, WorkKind::Yield, ""}};
  std::vector<WorkerMsg> reports;
  std::vector<std::string> logs;
  int started = 0;
  WorkerCallbacks cb;
  cb.log = [&](const std::string& level, const std::string& text) { logs.push_back(level + ": " + text); };
  cb.started = [&] {
    EXPECT_TRUE(reports.empty());
    ++started;
  };
  cb.report = [&](const WorkerMsg& w) { reports.push_back(w); };
  auto status = run_workers(job, WorkerOptions{}, cb);
  ASSERT_TRUE(status) << status.error().msg;
  EXPECT_EQ(started, 1);
  ASSERT_EQ(reports.size(), 3u);
  std::set<std::pair<std::string, uint32_t>> who;
  std::set<int32_t> pids;
  for (const WorkerMsg& w : reports) {
    who.insert({w.cgroup, w.index});
    pids.insert(w.pid);
    EXPECT_GT(w.pid, 0);
    EXPECT_NE(w.pid, ::getpid());
    EXPECT_GE(w.wall_ns, 50000000u);
    EXPECT_GE(w.iterations, 1u);
    EXPECT_EQ(w.work, w.cgroup == "pinned" ? WorkKind::Spin : WorkKind::Yield);
    if (w.cgroup == "pinned") {
      EXPECT_EQ(w.cpus_used, (std::vector<uint32_t>{0}));
    }
  }
  EXPECT_EQ(who, (std::set<std::pair<std::string, uint32_t>>{{"pinned", 0}, {"pinned", 1}, {"free", 0}}));
  EXPECT_EQ(pids.size(), 3u);
  // Every worker was reaped: no child is left.
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
}

TEST(AgentWorkers, InvalidJobForksNothing) {
  JobMsg job;
  job.scenario.cgroups = {{"../x", 1, WorkKind::Spin, ""}};
  WorkerCallbacks cb;
  cb.log = [](const std::string&, const std::string&) {};
  cb.report = [](const WorkerMsg&) { ADD_FAILURE() << "no worker may run"; };
  auto status = run_workers(job, WorkerOptions{}, cb);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().msg, "invalid cgroup name '../x'");
}

TEST(AgentWorkers, AWorkerThatCannotJoinItsCgroupFailsTheRun) {
  // A plain directory is not cgroupfs: cgroup.procs does not exist.
  ScratchDir root;
  JobMsg job;
  job.scenario.duration_ms = 10;
  job.scenario.cgroups = {{"a", 2, WorkKind::Spin, "0"}};
  std::vector<std::string> logs;
  WorkerCallbacks cb;
  cb.log = [&](const std::string& level, const std::string& text) { logs.push_back(level + ": " + text); };
  cb.report = [](const WorkerMsg&) { ADD_FAILURE() << "a misplaced worker must not report results"; };
  WorkerOptions options;
  options.cgroup_root = root.path() + "/ktstr";
  auto status = run_workers(job, options, cb);
  ASSERT_FALSE(status);
  EXPECT_NE(status.error().msg.find("joining cgroup '" + root.path() + "/ktstr/a'"), std::string::npos)
      << status.error().msg;
  bool warned_cpuset = false, logged_error = false;
  for (const auto& l : logs) {
    warned_cpuset |= l.rfind("warn: setting cpuset.cpus '0'", 0) == 0;
    logged_error |= l.rfind("error: worker a/", 0) == 0;
  }
  EXPECT_TRUE(warned_cpuset);
  EXPECT_TRUE(logged_error);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
}
