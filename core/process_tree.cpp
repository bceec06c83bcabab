// wait_process_tree: a build command and everything it started (make's
// compilers) killed together at a deadline. Shared by schedbuild/ and kbuild/.
#include "core/subprocess.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

namespace ktstr {

namespace {

// The processes below `root` (its children, theirs, ...), from /proc.
std::vector<pid_t> descendants(pid_t root) {
  std::multimap<pid_t, pid_t> children;  // ppid -> pid
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(stat.c_str() + close + 1, " %c %ld", &state, &ppid) != 2) continue;
    children.emplace(static_cast<pid_t>(ppid), static_cast<pid_t>(std::stol(name)));
  }
  std::vector<pid_t> out;
  std::vector<pid_t> todo = {root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    auto [lo, hi] = children.equal_range(p);
    for (auto it = lo; it != hi; ++it) {
      out.push_back(it->second);
      todo.push_back(it->second);
    }
  }
  return out;
}

}  // namespace

int wait_process_tree(pid_t pid, std::chrono::milliseconds timeout, const std::function<void()>& tick,
                      std::chrono::milliseconds tick_every) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto next_tick = start + tick_every;
  for (;;) {
    siginfo_t info{};
    // WNOWAIT: the child stays a zombie, so its pid (and its children's
    // parent link) stays valid until wait_child reaps it.
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      return wait_child(pid);
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (tick && now >= next_tick) {
      tick();
      next_tick = now + tick_every;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGSTOP);  // no new children while the tree is collected
  for (pid_t d : descendants(pid)) ::kill(d, SIGKILL);
  kill_child(pid);
  return 128 + SIGKILL;
}

}  // namespace ktstr
