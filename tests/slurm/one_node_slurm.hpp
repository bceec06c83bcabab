// A real one-node Slurm cluster for tests, started and stopped by the test
// itself: munged, slurmctld and slurmd in the foreground (so they are this
// process's children, killed with it), on free localhost ports, with a config,
// key, state and logs in a temporary directory. Nothing of the host's own
// Slurm or munge configuration is read or touched. Needs root (slurmd) and
// Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup.sh).
#pragma once

#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace ktstr::testing {

// What is missing for a one-node Slurm here; empty when it can run.
inline std::string slurm_missing() {
  for (const char* p : {"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo"})
    if (find_in_path(p).empty() && !path_exists(std::string("/usr/sbin/") + p)) return std::string(p) + " not found";
  if (::geteuid() != 0) return "slurmd needs root";
  return "";
}

class OneNodeSlurm {
 public:
  // Empty error: running; check ok() before use.
  OneNodeSlurm() {
    auto dir = TempDir::create("ktstr-slurm");
    if (!dir) { error_ = dir.error().msg; return; }
    dir_.emplace(std::move(*dir));
    error_ = start();
  }
  ~OneNodeSlurm() { stop(); }
  OneNodeSlurm(const OneNodeSlurm&) = delete;
  OneNodeSlurm& operator=(const OneNodeSlurm&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& dir() const { return dir_->path(); }
  std::string conf() const { return dir() + "/slurm.conf"; }
  // For every Slurm client command: which cluster to talk to.
  std::vector<std::string> env() const { return {"SLURM_CONF=" + conf()}; }
  const std::string& node() const { return node_; }

  Result<Completed> client(std::vector<std::string> argv) const {
    SpawnOptions o;
    o.env_extra = env();
    return run(argv, o, std::chrono::seconds(30));
  }

 private:
  static std::string sbin(const char* p) {
    std::string s = find_in_path(p);
    return s.empty() ? std::string("/usr/sbin/") + p : s;
  }
  static int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    ::close(fd);
    return port;
  }
  std::string daemon(const std::vector<std::string>& argv, const std::string& log) {
    SpawnOptions o;
    o.stdout_path = log;
    o.stderr_path = "=stdout";
    auto c = spawn(argv, o);
    if (!c) return c.error().msg;
    pids_.push_back(c->pid);
    return "";
  }
  std::string start() {
    const std::string d = dir();
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    node_ = host;
    node_ = node_.substr(0, node_.find('.'));
    // munge: its own key and socket; the socket's directory must be
    // world-searchable (munged checks), the key private.
    std::string key(128, '\0');
    std::ifstream("/dev/urandom", std::ios::binary).read(key.data(), static_cast<std::streamsize>(key.size()));
    if (auto st = write_file_atomic(d + "/munge.key", key, 0600); !st) return st.error().msg;
    if (::chmod(d.c_str(), 0755) != 0) return "chmod " + d + " failed";
    if (auto e = daemon({sbin("munged"), "--foreground", "--socket=" + d + "/munge.sock", "--key-file=" + d + "/munge.key",
                         "--pid-file=" + d + "/munged.pid", "--seed-file=" + d + "/munge.seed",
                         "--log-file=" + d + "/munged.log"},
                        d + "/munged.out");
        !e.empty())
      return e;
    for (const char* sub : {"state", "spool"}) (void)make_dirs(d + "/" + sub);
    const int ctld_port = free_port(), slurmd_port = free_port();
    long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    std::string text =
        "ClusterName=ktstr\n"
        "SlurmctldHost=" + node_ + "(127.0.0.1)\n"
        "AuthType=auth/munge\nCredType=cred/munge\n"
        "AuthInfo=socket=" + d + "/munge.sock\n"
        "SlurmUser=root\nSlurmdUser=root\n"
        "SlurmctldPort=" + std::to_string(ctld_port) + "\nSlurmdPort=" + std::to_string(slurmd_port) + "\n"
        "StateSaveLocation=" + d + "/state\nSlurmdSpoolDir=" + d + "/spool\n"
        "SlurmctldPidFile=" + d + "/slurmctld.pid\nSlurmdPidFile=" + d + "/slurmd.pid\n"
        "SlurmctldLogFile=" + d + "/slurmctld.log\nSlurmdLogFile=" + d + "/slurmd.log\n"
        "ProctrackType=proctrack/pgid\nTaskPlugin=task/none\nMpiDefault=none\n"
        "SchedulerType=sched/builtin\nSelectType=select/cons_tres\nSelectTypeParameters=CR_Core_Memory\n"
        "ReturnToService=2\nJobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n"
        "NodeName=" + node_ + " NodeAddr=127.0.0.1 CPUs=" + std::to_string(cpus) +
        " RealMemory=8192 State=UNKNOWN\n"
        "PartitionName=ktstr Nodes=" + node_ + " Default=YES MaxTime=INFINITE State=UP\n";
    if (auto st = write_file_atomic(conf(), text); !st) return st.error().msg;
    // munged must answer before the Slurm daemons authenticate with it.
    if (!wait_for([&] { return path_exists(d + "/munge.sock"); })) return "munged did not start (see " + d + "/munged.log)";
    if (auto e = daemon({sbin("slurmctld"), "-D", "-f", conf()}, d + "/slurmctld.out"); !e.empty()) return e;
    if (auto e = daemon({sbin("slurmd"), "-D", "-f", conf(), "-N", node_}, d + "/slurmd.out"); !e.empty()) return e;
    bool idle = wait_for([&] {
      auto r = client({"sinfo", "--noheader", "--format=%T"});
      return r && r->ok() && r->out.rfind("idle", 0) == 0;
    });
    if (!idle) return "the one-node Slurm did not become idle (logs in " + d + ")";
    return "";
  }
  // Polls a condition that an outside daemon makes true, up to 30 s.
  template <class F>
  static bool wait_for(F&& cond) {
    for (int i = 0; i < 300; ++i) {
      if (cond()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  void stop() {
    for (auto it = pids_.rbegin(); it != pids_.rend(); ++it) {
      ::kill(*it, SIGTERM);
      (void)wait_child(*it, std::chrono::seconds(10));  // SIGKILL after 10 s
    }
    pids_.clear();
    // A job step's slurmstepd outlives slurmd by design (it survives a
    // daemon restart), and one whose job was cancelled can stay behind,
    // retrying to report to the gone slurmd: kill this cluster's steps too.
    if (dir_) {
      for (pid_t p : steps()) ::kill(p, SIGKILL);
      wait_for([&] { return steps().empty(); });
    }
  }

 public:
  // The slurmstepd processes of this cluster (their environment names its
  // config), running or not yet reaped by their parent.
  std::vector<pid_t> steps() const {
    std::vector<pid_t> out;
    const std::string mark = "SLURM_CONF=" + conf() + '\0';
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string e = entry.path().filename().string();
      if (e.empty() || e.find_first_not_of("0123456789") != std::string::npos) continue;
      auto comm = read_file("/proc/" + e + "/comm");
      if (!comm || comm->rfind("slurmstepd", 0) != 0) continue;
      auto stat = read_file("/proc/" + e + "/stat");
      if (stat && stat->find(") Z ") != std::string::npos) continue;  // a zombie: gone, only unreaped
      auto environ = read_file("/proc/" + e + "/environ");
      if (environ && environ->find(mark) != std::string::npos) out.push_back(static_cast<pid_t>(std::stoi(e)));
    }
    return out;
  }

 private:
  std::optional<TempDir> dir_;
  std::string node_;
  std::vector<pid_t> pids_;
  std::string error_;
};

}  // namespace ktstr::testing
