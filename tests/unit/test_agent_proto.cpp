// guest/agent pieces that run on the host: cpulists, the kernel command
// line, topology from a sysfs tree, port discovery, Port I/O over real
// pipes and sockets, and real forked workers (without cgroups).
#include "guest/agent/kernel_sources.hpp"
#include "guest/agent/ports.hpp"
#include "guest/agent/sched_session.hpp"
#include "guest/agent/topology_report.hpp"
#include "guest/agent/util.hpp"
#include "guest/agent/workers.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <filesystem>
#include <sched.h>
#include <map>
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

// Steps on the host (no cgroups: cpusets and moves become CPU affinity):
// each is done at its time, reported once, and shows in the workers' stats.
TEST(AgentWorkers, StepsRunInOrderAndShowInTheWorkersStats) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs 2 CPUs for set_cpus";
  ScratchDir sys;
  sys.file("cpu2/online", "1");  // a hot-pluggable CPU 2; CPU 1 has no online file
  JobMsg job;
  job.version = kJobVersionSteps;
  job.scenario.duration_ms = 600;
  job.scenario.cgroups = {{"a", 2, WorkKind::Spin, "0-1"}, {"b", 1, WorkKind::Yield, "0"}};
  job.scenario.steps = {{50, "add_workers", "a", 1, "", "", -1},
                        {100, "set_cpus", "a", 0, "", "1", -1},
                        {150, "move_workers", "b", 1, "a", "", -1},
                        {200, "remove_workers", "a", 1, "", "", -1},
                        {250, "cpu_offline", "", 0, "", "", 1},
                        {300, "cpu_offline", "", 0, "", "", 2}};
  std::vector<WorkerMsg> reports;
  std::vector<StepMsg> steps;
  WorkerCallbacks cb;
  cb.log = [](const std::string&, const std::string&) {};
  cb.report = [&](const WorkerMsg& w) { reports.push_back(w); };
  cb.step = [&](const StepMsg& m) { steps.push_back(m); };
  WorkerOptions options;
  options.cpu_sysfs = sys.path();
  auto status = run_workers(job, options, cb);
  ASSERT_TRUE(status) << status.error().msg;
  ASSERT_EQ(steps.size(), 6u);
  for (uint32_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].index, i);
    EXPECT_EQ(steps[i].step.action, job.scenario.steps[i].action);
    EXPECT_EQ(steps[i].ok, i != 4) << steps[i].error;
    if (i) {
      EXPECT_GE(steps[i].t_ms, steps[i - 1].t_ms);
    }
  }
  EXPECT_NE(steps[0].detail.find("started 1 workers in 'a'"), std::string::npos) << steps[0].detail;
  EXPECT_NE(steps[4].error.find("CPU 1 cannot be hot-plugged in this guest"), std::string::npos) << steps[4].error;
  EXPECT_EQ(steps[5].detail, "CPU 2 is offline");
  // CPU 2 went back online at the end.
  std::ifstream online(sys.path() + "/cpu2/online");
  std::string text;
  std::getline(online, text);
  EXPECT_EQ(text, "1");

  ASSERT_EQ(reports.size(), 4u);  // 3 + 1 added; the removed one reported too
  std::map<std::string, const WorkerMsg*> by;
  for (const WorkerMsg& w : reports) by[w.cgroup + "/" + std::to_string(w.index)] = &w;
  ASSERT_TRUE(by.count("a/2") && by.count("b/0") && by.count("a/0")) << reports.size();
  // The added worker was the newest of a, so the removal stopped it early.
  EXPECT_LT(by["a/2"]->wall_ns, 400000000u);
  EXPECT_EQ(by["b/0"]->moved_to, "a");
  for (const WorkerMsg& w : reports) {
    EXPECT_TRUE(w.cpus_changed) << w.cgroup << "/" << w.index;
    for (uint32_t c : w.cpus_since_change) EXPECT_EQ(c, 1u) << w.cgroup << "/" << w.index;
  }
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);
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

// --- kernel sources -----------------------------------------------------------

TEST(AgentKernelSources, LineBufferSplitsChunksAndCapsLongLines) {
  LineBuffer b;
  b.feed("ab");
  b.feed("c\nd");
  EXPECT_EQ(b.take_lines(), (std::vector<std::string>{"abc"}));
  b.feed("\n\n");
  EXPECT_EQ(b.take_lines(), (std::vector<std::string>{"d", ""}));
  b.feed(std::string(LineBuffer::kMaxLine * 2 + 5, 'x'));
  auto lines = b.take_lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), LineBuffer::kMaxLine);
  EXPECT_EQ(b.take_rest(), std::string(5, 'x'));
  EXPECT_EQ(b.take_rest(), std::nullopt);
}

TEST(AgentKernelSources, KeepsOnlyDumpAndExitLinesOfARealTrace) {
  std::ifstream in(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/7.3/crash/trace.txt");
  ASSERT_TRUE(in);
  std::stringstream all;
  all << in.rdbuf();
  LineBuffer b;
  b.feed(all.str());
  size_t dump = 0, exit = 0, kept = 0, total = 0;
  for (const std::string& line : b.take_lines()) {
    ++total;
    if (!is_sched_ext_trace_line(line)) continue;
    ++kept;
    EXPECT_EQ(line.find("sched_ext_event:"), std::string::npos) << line;
    if (line.find("sched_ext_dump: ") != std::string::npos) ++dump;
    if (line.find("sched_ext_exit: ") != std::string::npos) ++exit;
  }
  EXPECT_EQ(exit, 1u);
  EXPECT_GT(dump, 100u);
  EXPECT_EQ(kept, dump + exit);
  EXPECT_LT(kept, total);  // the capture also holds sched_ext_event lines
}

TEST(AgentKernelSources, KmsgRecordsReadLikeDmesg) {
  EXPECT_EQ(kmsg_record_line("6,381,9923512,-;sched_ext: BPF scheduler \"ktstr\" enabled\n"),
            "[    9.923512] sched_ext: BPF scheduler \"ktstr\" enabled");
  EXPECT_EQ(kmsg_record_line("4,12,5,c,more;x\n SUBSYSTEM=cpu\n DEVICE=+cpu:0\n"), "[    0.000005] x");
  EXPECT_EQ(kmsg_record_line("no semicolon"), std::nullopt);
  EXPECT_EQ(kmsg_record_line("6,1;x"), std::nullopt);
  EXPECT_EQ(kmsg_record_line("6,1,abc,-;x"), std::nullopt);
}

TEST(AgentKernelSources, NrRunningPerCpuFromSchedDebug) {
  const char* text =
      "Sched Debug Version: v0.11, 7.3.4+deb13-cloud-amd64 #1\n"
      "ktime                                   : 12345.678\n"
      "\n"
      "cpu#0, 2999.998 MHz\n"
      "  .nr_running                    : 2\n"
      "  .nr_switches                   : 9918\n"
      "\n"
      "cfs_rq[0]:/\n"
      "  .nr_running                    : 7\n"
      "cpu#1, 2999.998 MHz\n"
      "  .nr_running                    : 0\n"
      "cpu#3\n"
      "  .nr_running                    : 11\n";
  EXPECT_EQ(parse_sched_debug_nr_running(text), (std::vector<uint32_t>{2, 0, 0, 11}));
  // fail_on_stall's per-CPU context switches, from the same sections.
  EXPECT_EQ(parse_sched_debug_field(text, ".nr_switches"), (std::vector<uint64_t>{9918}));
  EXPECT_EQ(parse_sched_debug_field("cpu#1\n  .nr_switches : 5\ncpu#0\n  .nr_switches : 7\n", ".nr_switches"),
            (std::vector<uint64_t>{7, 5}));
  EXPECT_TRUE(parse_sched_debug_nr_running("").empty());
  EXPECT_TRUE(parse_sched_debug_nr_running("cpu#999999\n  .nr_running : 1\n").empty());
}

TEST(AgentKernelSources, SchedExtEventCounters) {
  auto events = parse_sched_ext_events(
      "SCX_EV_SELECT_CPU_FALLBACK 12\nSCX_EV_DISPATCH_KEEP_LAST: 3\ngarbage\nSCX_EV_X -4\nSCX_EV_Y many\n");
  EXPECT_EQ(events, (std::map<std::string, int64_t>{
                        {"SCX_EV_SELECT_CPU_FALLBACK", 12}, {"SCX_EV_DISPATCH_KEEP_LAST", 3}, {"SCX_EV_X", -4}}));
}

// --- early stop -----------------------------------------------------------------

TEST(AgentWorkers, TickStopsWorkersEarlyAndTheyStillReport) {
  JobMsg job;
  job.scenario.duration_ms = 20000;
  job.scenario.cgroups = {{"spin", 2, WorkKind::Spin, ""}};
  std::vector<WorkerMsg> reports;
  WorkerCallbacks cb;
  cb.log = [](const std::string&, const std::string&) {};
  cb.report = [&](const WorkerMsg& w) { reports.push_back(w); };
  auto begin = std::chrono::steady_clock::now();
  int ticks = 0;
  cb.tick = [&] { return ++ticks >= 5; };
  cb.tick_ms = 10;
  auto status = run_workers(job, WorkerOptions{}, cb);
  double took_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  ASSERT_TRUE(status) << status.error().msg;
  EXPECT_EQ(ticks, 5);
  EXPECT_LT(took_s, 10.0);
  ASSERT_EQ(reports.size(), 2u);
  for (const WorkerMsg& w : reports) {
    EXPECT_GE(w.iterations, 1u);
    EXPECT_LT(w.wall_ns, 10000000000ull);
  }
}

// --- scheduler session with a real (shell) stand-in for a scheduler ---------

namespace {

struct Captured {
  std::vector<Frame> frames;
  std::vector<std::string> logs;

  template <typename Msg>
  std::vector<Msg> all() const {
    std::vector<Msg> out;
    for (const Frame& f : frames)
      if (f.type == Msg::kType) {
        auto m = decode_payload<Msg>(f);
        EXPECT_TRUE(m) << m.error().msg;
        if (m) out.push_back(*m);
      }
    return out;
  }
  std::string output() const {
    std::string text;
    for (auto& o : all<SchedOutputMsg>()) text += o.text;
    return text;
  }
};

SchedSink capture_into(Captured& c) {
  SchedSink sink;
  sink.send = [&c](const std::string& frame) {
    FrameDecoder d;
    d.feed(frame);
    while (auto f = d.next()) c.frames.push_back(*f);
  };
  sink.log = [&c](const std::string& level, const std::string& text) { c.logs.push_back(level + ": " + text); };
  return sink;
}

JobMsg shell_scheduler_job(const std::string& script) {
  JobMsg job;
  job.scenario.duration_ms = 100;
  job.scheduler.path = "/bin/sh";
  job.scheduler.args = {"-c", script};
  job.scheduler.attach_timeout_ms = 5000;
  job.monitor_interval_ms = 10;
  return job;
}

SchedPaths scratch_paths(const ScratchDir& dir) {
  SchedPaths p;
  p.sched_ext = dir.path() + "/sched_ext";
  p.tracing = dir.path() + "/tracing";  // absent: no trace events
  p.kmsg = dir.path() + "/kmsg";        // absent: a warning
  p.sched_debug = dir.path() + "/sched_debug";
  p.boot = dir.path() + "/boot";
  return p;
}

}  // namespace

TEST(AgentSchedSession, AttachThenDeathEndsTheRunAndEverythingIsReported) {
  ScratchDir dir;
  dir.file("sched_ext/state", "disabled\n");
  dir.file("sched_ext/root/ops", "fake\n");
  dir.file("sched_ext/root/events", "SCX_EV_SELECT_CPU_FALLBACK 5\n");
  dir.file("sched_debug", "cpu#0\n  .nr_running : 3\ncpu#1\n  .nr_running : 1\n");
  std::string state = dir.path() + "/sched_ext/state";
  // The state file changes by rename, as a sysfs read never sees it half
  // written (`echo > state` would truncate first: a read between sees "").
  JobMsg job = shell_scheduler_job("echo enabled > " + state + ".new; mv " + state + ".new " + state +
                                   "; echo attached; sleep 0.3; echo 'EXIT: boom' >&2; echo disabled > " + state +
                                   ".new; mv " + state + ".new " + state + "; exit 1");
  job.map_writes = {{"ktstr_test_no_such_map", "crash", 1, 0}};
  Captured c;
  SchedSession session(job, capture_into(c), scratch_paths(dir));
  ASSERT_TRUE(session.start());
  ASSERT_EQ(session.wait_attached(), AttachOutcome::kEnabled);
  session.workload_started();
  auto begin = std::chrono::steady_clock::now();
  bool ended = false;
  while (!ended && std::chrono::steady_clock::now() - begin < std::chrono::seconds(10)) {
    ended = session.tick();
    sleep_ms(5);
  }
  EXPECT_TRUE(ended);
  session.finish();

  auto started = c.all<SchedStartedMsg>();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].pid, session.pid());
  auto states = c.all<SchedStateMsg>();
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states[0].state, "enabled");
  EXPECT_EQ(states[0].ops, "fake");
  EXPECT_EQ(states.back().state, "disabled");
  std::string out = c.output();
  EXPECT_NE(out.find("attached\n"), std::string::npos);
  EXPECT_NE(out.find("EXIT: boom\n"), std::string::npos);
  auto exited = c.all<SchedExitedMsg>();
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].exit_code, 1);
  EXPECT_EQ(exited[0].signal, 0);
  EXPECT_FALSE(exited[0].stopped_by_agent);  // it died on its own
  auto writes = c.all<MapWriteResultMsg>();
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_FALSE(writes[0].ok);
  EXPECT_FALSE(writes[0].error.empty());
  auto samples = c.all<MonitorMsg>();
  ASSERT_GE(samples.size(), 1u);
  EXPECT_EQ(samples[0].nr_running, (std::vector<uint32_t>{3, 1}));
  EXPECT_EQ(samples[0].events.at("SCX_EV_SELECT_CPU_FALLBACK"), 5);
  EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1);  // reaped
}

TEST(AgentSchedSession, TheJobsKernelConfigIsWhereLibbpfLooksBeforeTheSchedulerStarts) {
  // libbpf reads /boot/config-$(uname -r); the scheduler sees it at its start.
  ScratchDir dir;
  dir.file("sched_ext/state", "disabled\n");
  const std::string boot = dir.path() + "/boot";
  JobMsg job = shell_scheduler_job("cat " + boot + "/config-$(uname -r)");
  job.kernel_config = "CONFIG_HZ=250\n# CONFIG_FOO is not set\nCONFIG_SCHED_CLASS_EXT=y\n";
  Captured c;
  SchedSession session(job, capture_into(c), scratch_paths(dir));
  ASSERT_TRUE(session.start());
  EXPECT_EQ(session.wait_attached(), AttachOutcome::kExited);
  session.finish();
  EXPECT_EQ(c.output(), job.kernel_config);
  // No config in the job: nothing is written.
  ScratchDir empty;
  empty.file("sched_ext/state", "disabled\n");
  JobMsg none = shell_scheduler_job("true");
  Captured c2;
  SchedSession s2(none, capture_into(c2), scratch_paths(empty));
  ASSERT_TRUE(s2.start());
  s2.wait_attached();
  s2.finish();
  EXPECT_NE(::access((empty.path() + "/boot").c_str(), F_OK), 0);
}

TEST(AgentSchedSession, TheSchedulerGetsTheJobsSeedAsKtstrSeedAndNothingElseChanges) {
  // The agent's own environment has a stale KTSTR_SEED and another variable:
  // the scheduler sees the job's seed (or none), the other variable as is,
  // and the agent's environment is left alone.
  ASSERT_EQ(::setenv("KTSTR_SEED", "111", 1), 0);
  ASSERT_EQ(::setenv("KTSTR_TEST_OTHER", "kept", 1), 0);
  auto run = [](std::optional<uint64_t> seed) {
    ScratchDir dir;
    dir.file("sched_ext/state", "disabled\n");
    JobMsg job = shell_scheduler_job("echo \"seed=${KTSTR_SEED-unset} other=$KTSTR_TEST_OTHER\"");
    job.seed = seed;
    Captured c;
    SchedSession session(job, capture_into(c), scratch_paths(dir));
    EXPECT_TRUE(session.start());
    EXPECT_EQ(session.wait_attached(), AttachOutcome::kExited);
    session.finish();
    return c.output();
  };
  EXPECT_EQ(run(18446744073709551615ull), "seed=18446744073709551615 other=kept\n");
  EXPECT_EQ(run(0), "seed=0 other=kept\n");
  EXPECT_EQ(run(std::nullopt), "seed=unset other=kept\n");
  EXPECT_STREQ(std::getenv("KTSTR_SEED"), "111");
  ::unsetenv("KTSTR_SEED");
  ::unsetenv("KTSTR_TEST_OTHER");
}

TEST(AgentSchedSession, ASchedulerThatNeverRunsIsReportedAsExited) {
  ScratchDir dir;
  dir.file("sched_ext/state", "disabled\n");
  JobMsg job = shell_scheduler_job("");
  job.scheduler.path = dir.path() + "/no-such-scheduler";
  job.scheduler.args = {};
  Captured c;
  SchedSession session(job, capture_into(c), scratch_paths(dir));
  ASSERT_TRUE(session.start());
  EXPECT_EQ(session.wait_attached(), AttachOutcome::kExited);
  session.finish();
  auto exited = c.all<SchedExitedMsg>();
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].exit_code, 127);
  EXPECT_NE(c.output().find("cannot execute scheduler '" + job.scheduler.path + "'"), std::string::npos);
}

TEST(AgentSchedSession, AttachTimeoutStopsTheScheduler) {
  ScratchDir dir;
  dir.file("sched_ext/state", "disabled\n");
  JobMsg job = shell_scheduler_job("echo waiting; exec sleep 30");
  job.scheduler.attach_timeout_ms = 200;
  Captured c;
  SchedLimits limits;
  limits.stop_timeout_ms = 300;
  SchedSession session(job, capture_into(c), scratch_paths(dir), limits);
  ASSERT_TRUE(session.start());
  EXPECT_EQ(session.wait_attached(), AttachOutcome::kTimedOut);
  session.finish();
  auto exited = c.all<SchedExitedMsg>();
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].signal, SIGINT);
  EXPECT_TRUE(exited[0].stopped_by_agent);
  EXPECT_NE(c.output().find("waiting"), std::string::npos);
}

TEST(AgentSchedSession, FloodedOutputIsCappedAndMarkedTruncated) {
  ScratchDir dir;
  dir.file("sched_ext/state", "disabled\n");
  JobMsg job = shell_scheduler_job("head -c 2000000 /dev/zero | tr '\\0' x; exit 3");
  Captured c;
  SchedLimits limits;
  limits.max_output_bytes = 100000;
  limits.max_chunk_bytes = 8192;
  SchedSession session(job, capture_into(c), scratch_paths(dir), limits);
  ASSERT_TRUE(session.start());
  EXPECT_EQ(session.wait_attached(), AttachOutcome::kExited);
  session.finish();
  size_t xs = 0, truncated = 0;
  for (auto& o : c.all<SchedOutputMsg>()) {
    xs += size_t(std::count(o.text.begin(), o.text.end(), 'x'));
    truncated += o.truncated;
    EXPECT_LE(o.text.size(), 8192u + 100u);
  }
  EXPECT_EQ(xs, 100000u);
  EXPECT_EQ(truncated, 1u);
  auto exited = c.all<SchedExitedMsg>();
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].exit_code, 3);  // drained to the end: it never blocked
}

// Crash probe messages (auto-repro): the JOB's probe plan, PROBE_SETUP and
// PROBE_EVENTS survive a frame round trip, and bad input is refused.
namespace {

template <typename Msg>
Msg round_trip(const Msg& msg) {
  FrameDecoder decoder;
  decoder.feed(encode_message(msg));
  auto frame = decoder.next();
  EXPECT_TRUE(frame.has_value());
  auto back = decode_payload<Msg>(*frame);
  EXPECT_TRUE(back.has_value()) << (back ? "" : back.error().msg);
  return back ? *back : Msg{};
}

ProbePlan sample_plan() {
  ProbePlan plan;
  plan.kernel_functions = {{"do_pick_task_scx", {"rq", "task", "scalar"}}, {"scx_exit_bstr", {}}};
  plan.bpf_programs = {"ktstr_dispatch"};
  plan.trigger = {"sched_ext_exit", "scx_kf_exit"};
  plan.history_per_task = 32;
  plan.max_events = 1000;
  return plan;
}

}  // namespace

TEST(AgentProbeProto, JobProbePlanRoundTripsAndIsOptional) {
  JobMsg job;
  job.scheduler.path = "/bin/scx-ktstr";
  EXPECT_FALSE(round_trip(job).probes.has_value());
  EXPECT_FALSE(nlohmann::json(job).contains("probes"));
  job.probes = sample_plan();
  JobMsg back = round_trip(job);
  ASSERT_TRUE(back.probes.has_value());
  EXPECT_EQ(back.probes->kernel_functions.size(), 2u);
  EXPECT_EQ(back.probes->kernel_functions[0].args, (std::vector<std::string>{"rq", "task", "scalar"}));
  EXPECT_EQ(back.probes->bpf_programs, std::vector<std::string>{"ktstr_dispatch"});
  EXPECT_EQ(back.probes->trigger.fallback_kprobe, "scx_kf_exit");
  EXPECT_EQ(back.probes->history_per_task, 32u);
  EXPECT_EQ(back.probes->max_events, 1000u);
  EXPECT_FALSE(back.probes->kernel_probes_parallel);
  EXPECT_TRUE(validate_job(back));
}

TEST(AgentProbeProto, KernelProbesParallelIsOnTheWireOnlyWhenSet) {
  JobMsg job;
  job.scheduler.path = "/bin/scx-ktstr";
  job.probes = sample_plan();
  EXPECT_FALSE(nlohmann::json(job)["probes"].contains("kernel_probes_parallel"));  // old plans byte for byte
  job.probes->kernel_probes_parallel = true;
  EXPECT_EQ(nlohmann::json(job)["probes"]["kernel_probes_parallel"], true);
  EXPECT_TRUE(round_trip(job).probes->kernel_probes_parallel);
  auto j = nlohmann::json(job);
  j["probes"]["kernel_probes_parallel"] = "yes";  // mistyped: an error, not a guess
  EXPECT_FALSE(decode_payload<JobMsg>(Frame{MsgType::Job, kProtoVersion, j.dump()}));
}

TEST(AgentProbeProto, ProbesDuringWorkloadAndOpsArgsAreOnTheWireOnlyWhenSet) {
  JobMsg job;
  job.scheduler.path = "/bin/scx-ktstr";
  job.probes = sample_plan();
  auto j = nlohmann::json(job);
  EXPECT_FALSE(j["probes"].contains("probes_during_workload"));
  EXPECT_FALSE(j["probes"].contains("ops_args"));
  job.probes->probes_during_workload = true;
  job.probes->ops_args = {{"dispatch", {"scalar", "task"}}, {"exit", {"exit_info"}}};
  JobMsg back = round_trip(job);
  EXPECT_TRUE(back.probes->probes_during_workload);
  ASSERT_EQ(back.probes->ops_args.size(), 2u);
  EXPECT_EQ(back.probes->ops_args[0].name, "dispatch");
  EXPECT_EQ(back.probes->ops_args[0].args, (std::vector<std::string>{"scalar", "task"}));
  EXPECT_TRUE(validate_job(back));
  job.probes->ops_args[1].args = {"pointer"};  // checked like the kernel functions
  EXPECT_FALSE(validate_job(job));
  job.probes->ops_args = {{"dispatch; x", {}}};
  EXPECT_FALSE(validate_job(job));
}

TEST(AgentProbeProto, ValidationRefusesBadPlans) {
  JobMsg job;
  job.scheduler.path = "/bin/scx-ktstr";
  job.probes = sample_plan();
  job.probes->kernel_functions[0].args.push_back("pointer");
  EXPECT_FALSE(validate_job(job));
  job.probes = sample_plan();
  job.probes->kernel_functions[0].args = std::vector<std::string>(7, "scalar");
  EXPECT_FALSE(validate_job(job));
  job.probes = sample_plan();
  job.probes->kernel_functions[0].name = "do_pick; rm -rf";
  EXPECT_FALSE(validate_job(job));
  job.probes = sample_plan();
  job.probes->history_per_task = 0;
  EXPECT_FALSE(validate_job(job));
  job.probes = sample_plan();
  job.probes->max_events = kMaxProbeEvents + 1;
  EXPECT_FALSE(validate_job(job));
  job.probes = sample_plan();
  job.scheduler.path.clear();
  EXPECT_FALSE(validate_job(job));  // probes need a scheduler
}

TEST(AgentProbeProto, SetupRoundTripsAndRejectsUnknownTriggerKinds) {
  ProbeSetupMsg setup;
  setup.t_ms = 1234;
  setup.traceable = {"do_pick_task_scx"};
  setup.untraceable = {{"__schedule", "not traceable"}};
  setup.kprobes_attached = {"do_pick_task_scx"};
  setup.kprobe_failures = {{"x", "ENOENT"}};
  setup.bpf_discovered = {"ktstr_dispatch", "ktstr_enqueue"};
  setup.fentry_attached = {"ktstr_dispatch"};
  setup.fentry_failures = {{"ktstr_enqueue", "EBUSY"}};
  setup.trigger = {"scx_kf_exit", "kprobe", "attached", "", "sched_ext_exit", "ESRCH"};
  ProbeSetupMsg back = round_trip(setup);
  EXPECT_EQ(back.t_ms, 1234u);
  EXPECT_EQ(back.untraceable.at(0).why, "not traceable");
  EXPECT_EQ(back.fentry_failures.at(0).error, "EBUSY");
  EXPECT_EQ(back.trigger.kind, "kprobe");
  EXPECT_EQ(back.trigger.fallback_from, "sched_ext_exit");
  EXPECT_EQ(back.trigger.fallback_error, "ESRCH");

  nlohmann::json j = setup;
  j["trigger"]["kind"] = "uprobe";
  Frame bad{MsgType::ProbeSetup, kProtoVersion, j.dump()};
  EXPECT_FALSE(decode_payload<ProbeSetupMsg>(bad));
}

TEST(AgentProbeProto, EventsRoundTripWithDecodedArguments) {
  ProbeEventsMsg msg;
  msg.trigger_fired = true;
  msg.trigger_t_ns = 99;
  msg.trigger_pid = 115;
  msg.trigger_cpu = 2;
  msg.exit_kind = 1025;
  msg.exit_reason = "scx_bpf_error";
  ProbeEvent ev;
  ev.t_ns = 5;
  ev.pid = 115;
  ev.func = "ktstr_dispatch";
  ev.kind = "fentry";
  ev.source = "bpf/scx_ktstr.bpf.c:101";
  ProbeArg cpu_arg{"scalar", 1, {}, {}, {}, {}, {}};
  ProbeArg task_arg{"task", 0xff00001234, ProbeTask{115, "init", "0-3", ~0ull, 20000000, 7, 100, 0x405},
                    {}, {}, {}, {}};
  ProbeArg rq_arg{"rq", 0xff00005678, {}, 3, {}, {}, {}};
  ev.args = {cpu_arg, task_arg, rq_arg};
  msg.events = {ev};
  msg.events_total = 10;
  msg.events_dropped = 9;
  msg.per_task_history = {{"115", 1}};
  ProbeEventsMsg back = round_trip(msg);
  ASSERT_EQ(back.events.size(), 1u);
  const ProbeEvent& e = back.events[0];
  EXPECT_EQ(e.source, "bpf/scx_ktstr.bpf.c:101");
  ASSERT_EQ(e.args.size(), 3u);
  EXPECT_FALSE(e.args[0].task.has_value());
  ASSERT_TRUE(e.args[1].task.has_value());
  EXPECT_EQ(e.args[1].task->cpus, "0-3");
  EXPECT_EQ(e.args[1].task->dsq_id, ~0ull);
  EXPECT_EQ(e.args[1].task->flags, 0x405u);
  EXPECT_EQ(e.args[2].cpu, 3);
  EXPECT_EQ(back.exit_kind, 1025u);
  EXPECT_EQ(back.per_task_history.at("115"), 1u);

  nlohmann::json j = msg;
  j["events"][0]["args"] = nlohmann::json::array();
  for (int i = 0; i < 7; ++i) j["events"][0]["args"].push_back(nlohmann::json(cpu_arg));
  EXPECT_FALSE(decode_payload<ProbeEventsMsg>(Frame{MsgType::ProbeEvents, kProtoVersion, j.dump()}));
  j = msg;
  j["trigger_pid"] = "115";
  EXPECT_FALSE(decode_payload<ProbeEventsMsg>(Frame{MsgType::ProbeEvents, kProtoVersion, j.dump()}));
}
