#include "core/subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

extern char** environ;

namespace ktstr {
namespace {

// Registry of live children, readable from a signal handler: a fixed array
// of atomics, no allocation.
constexpr size_t kMaxChildren = 64;
std::array<std::atomic<pid_t>, kMaxChildren> g_children{};

void register_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = 0;
    if (slot.compare_exchange_strong(expected, pid)) return;
  }
}

void unregister_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t expected = pid;
    if (slot.compare_exchange_strong(expected, 0)) return;
  }
}

void on_fatal_signal(int sig) {
  for (auto& slot : g_children) {
    pid_t pid = slot.load();
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

int decode_status(int st) {
  if (WIFEXITED(st)) return WEXITSTATUS(st);
  if (WIFSIGNALED(st)) return 128 + WTERMSIG(st);
  return 255;
}

}  // namespace

std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    // An empty PATH entry means the current directory.
    std::string cand = (end > start ? p.substr(start, end - start) : std::string(".")) + "/" + name;
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
    start = end + 1;
  }
  return "";
}

Result<Child> spawn(const std::vector<std::string>& argv, const SpawnOptions& opts) {
  if (argv.empty()) return fail("cannot run an empty command");
  std::string exe = find_in_path(argv[0]);
  if (exe.empty()) return fail("'" + argv[0] + "' not found", "install it or put it on PATH");

  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) envs.emplace_back(*e);
  for (auto& kv : opts.env_extra) {
    auto key = kv.substr(0, kv.find('=') + 1);
    envs.erase(std::remove_if(envs.begin(), envs.end(),
                              [&](const std::string& s) { return s.rfind(key, 0) == 0; }),
               envs.end());
    envs.push_back(kv);
  }
  std::vector<char*> cenv;
  for (auto& e : envs) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  if (opts.capture_stdout && ::pipe2(out_pipe, O_CLOEXEC) != 0)
    return fail(std::string("cannot create a pipe: ") + std::strerror(errno));
  if (opts.capture_stderr && ::pipe2(err_pipe, O_CLOEXEC) != 0)
    return fail(std::string("cannot create a pipe: ") + std::strerror(errno));
  int exec_err[2];
  if (::pipe2(exec_err, O_CLOEXEC) != 0)
    return fail(std::string("cannot create a pipe: ") + std::strerror(errno));

  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail(std::string("fork failed: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    if (opts.die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (opts.null_stdin) {
      int fd = ::open("/dev/null", O_RDONLY);
      if (fd >= 0) ::dup2(fd, 0);
    }
    if (opts.capture_stdout) ::dup2(out_pipe[1], 1);
    if (opts.capture_stderr) ::dup2(err_pipe[1], 2);
    if (!opts.stdout_path.empty()) {
      int fd = ::open(opts.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 1);
    }
    if (opts.stderr_path == "=stdout") {
      ::dup2(1, 2);
    } else if (!opts.stderr_path.empty()) {
      int fd = ::open(opts.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) ::dup2(fd, 2);
    }
    if (!opts.cwd.empty() && ::chdir(opts.cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(exec_err[1], &e, sizeof e);
      ::_exit(127);
    }
    ::execve(exe.c_str(), cargv.data(), cenv.data());
    int e = errno;
    (void)!::write(exec_err[1], &e, sizeof e);
    ::_exit(127);
  }
  register_child(pid);
  ::close(exec_err[1]);
  if (out_pipe[1] >= 0) ::close(out_pipe[1]);
  if (err_pipe[1] >= 0) ::close(err_pipe[1]);
  int child_errno = 0;
  ssize_t n = ::read(exec_err[0], &child_errno, sizeof child_errno);
  ::close(exec_err[0]);
  if (n == sizeof child_errno) {
    ::waitpid(pid, nullptr, 0);
    unregister_child(pid);
    if (out_pipe[0] >= 0) ::close(out_pipe[0]);
    if (err_pipe[0] >= 0) ::close(err_pipe[0]);
    return fail("cannot run '" + argv[0] + "': " + std::strerror(child_errno));
  }
  return Child{pid, out_pipe[0], err_pipe[0]};
}

int wait_child(pid_t pid, std::optional<std::chrono::milliseconds> timeout) {
  int st = 0;
  if (!timeout) {
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    unregister_child(pid);
    return decode_status(st);
  }
  auto deadline = std::chrono::steady_clock::now() + *timeout;
  while (true) {
    pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      unregister_child(pid);
      return decode_status(st);
    }
    if (r < 0 && errno != EINTR) {
      unregister_child(pid);
      return 255;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill_child(pid);
      return 128 + SIGKILL;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void kill_child(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  unregister_child(pid);
}

Result<Completed> run(const std::vector<std::string>& argv, SpawnOptions opts,
                      std::optional<std::chrono::milliseconds> timeout) {
  opts.capture_stdout = opts.stdout_path.empty();
  opts.capture_stderr = opts.stderr_path.empty();
  auto child = spawn(argv, opts);
  if (!child) return tl::unexpected(child.error());
  Completed done;
  std::vector<pollfd> fds;
  if (child->stdout_fd >= 0) fds.push_back({child->stdout_fd, POLLIN, 0});
  if (child->stderr_fd >= 0) fds.push_back({child->stderr_fd, POLLIN, 0});
  auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                          : std::chrono::steady_clock::time_point::max();
  bool timed_out = false;
  char buf[65536];
  while (!fds.empty()) {
    int wait_ms = -1;
    if (timeout) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left.count());
    }
    int r = ::poll(fds.data(), fds.size(), wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (size_t i = 0; i < fds.size();) {
      if (fds[i].revents) {
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          (fds[i].fd == child->stdout_fd ? done.out : done.err).append(buf, n);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          ::close(fds[i].fd);
          fds.erase(fds.begin() + i);
          continue;
        }
      }
      ++i;
    }
  }
  for (auto& p : fds) ::close(p.fd);
  if (timed_out) {
    kill_child(child->pid);
    done.status = 128 + SIGKILL;
    return done;
  }
  done.status = wait_child(child->pid);
  return done;
}

void install_child_cleanup() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
  });
}

std::string argv_to_string(const std::vector<std::string>& argv) {
  std::string s;
  for (auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?") == std::string::npos;
    if (plain) {
      s += a;
    } else {
      s += '\'';
      for (char c : a) s += (c == '\'') ? std::string("'\\''") : std::string(1, c);
      s += '\'';
    }
  }
  return s;
}

}  // namespace ktstr
