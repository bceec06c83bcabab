// Subprocesses: always an argv vector, never a shell string. Every child is
// registered so that SIGINT/SIGTERM to ktstr, or ktstr's own death
// (PR_SET_PDEATHSIG), never leaves one behind — QEMU above all.
#pragma once

#include "core/result.hpp"

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ktstr {

struct SpawnOptions {
  std::string cwd;                       // empty: inherit
  std::vector<std::string> env_extra;    // "K=V" added to the environment
  bool capture_stdout = false;           // pipe, read with Child::stdout_fd
  bool capture_stderr = false;
  std::string stdout_path;               // redirect stdout to this file (truncate)
  std::string stderr_path;               // redirect stderr to this file; "=stdout" merges
  bool null_stdin = true;
  bool die_with_parent = true;           // PR_SET_PDEATHSIG(SIGKILL)
};

struct Child {
  pid_t pid = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// Start argv[0] (looked up in PATH when it has no '/').
Result<Child> spawn(const std::vector<std::string>& argv, const SpawnOptions& opts = {});

// Encoded like a shell: exit code, or 128 + signal number.
struct Completed {
  int status = 0;
  std::string out;
  std::string err;
  bool ok() const { return status == 0; }
};

// Run to completion, capturing stdout and stderr. `timeout` kills the child.
Result<Completed> run(const std::vector<std::string>& argv, SpawnOptions opts = {},
                      std::optional<std::chrono::milliseconds> timeout = std::nullopt);

// Wait for a spawned child; returns the shell-style status. `timeout`: kill
// with SIGKILL once it passes and return 128+9.
int wait_child(pid_t pid, std::optional<std::chrono::milliseconds> timeout = std::nullopt);

// Wait for a spawned child that starts children of its own (make, a build
// script); at the deadline kill it and every process below it, returning
// 128+9. `tick` (when given) runs about every `tick_every` meanwhile.
int wait_process_tree(pid_t pid, std::chrono::milliseconds timeout, const std::function<void()>& tick = {},
                      std::chrono::milliseconds tick_every = std::chrono::milliseconds(250));

// Kill (SIGKILL) and reap a child; safe to call twice.
void kill_child(pid_t pid);

// Install SIGINT/SIGTERM/SIGHUP handlers that kill every registered child and
// then re-raise the signal. Idempotent; call once early in main.
void install_child_cleanup();

// Render argv for logs and error messages (quoted where needed).
std::string argv_to_string(const std::vector<std::string>& argv);

// Look a program up in PATH; empty when not found.
std::string find_in_path(const std::string& name);

}  // namespace ktstr
