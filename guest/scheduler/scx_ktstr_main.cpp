// scx-ktstr: loads the fixture scheduler (bpf/scx_ktstr.bpf.c), attaches it,
// waits until it exits and reports the exit like the scx tools do: the
// kernel's DEBUG DUMP, then "EXIT: <reason> (<msg>)".
//
// Exit status: 0 detached normally (signal or unregistered), 1 ejected by the
// kernel (error, stall), 2 usage or BPF load failure (verifier), 3 attach or
// other setup failure.
// The skeleton refers to struct ktstr_exit_info: define it first.
#include "scx_ktstr_common.h"
#include "scx_ktstr.skel.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>
#include <thread>

namespace {

constexpr int kExitDetached = 0;
constexpr int kExitEjected = 1;
constexpr int kExitLoadFailed = 2;
constexpr int kExitSetupFailed = 3;
constexpr auto kPollInterval = std::chrono::milliseconds(10);

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

// libbpf warnings (including the verifier log) go to stderr; info and debug
// are noise (e.g. every struct_ops member an older kernel lacks).
int print_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return std::vfprintf(stderr, fmt, args);
}

struct Options {
  bool fail_verify = false;
  bool verify_loop = false;
  unsigned timeout_ms = 0;  // 0: keep the object's default
};

bool parse_options(int argc, char** argv, Options& opts) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--fail-verify") {
      opts.fail_verify = true;
    } else if (arg == "--verify-loop") {
      opts.verify_loop = true;
    } else if (arg == "--timeout-ms" && i + 1 < argc) {
      opts.timeout_ms = unsigned(std::strtoul(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr,
                   "usage: scx-ktstr [--timeout-ms N] [--fail-verify] [--verify-loop]\n"
                   "  --fail-verify, --verify-loop: make the verifier reject the scheduler\n"
                   "  (for testing failure reports only)\n");
      return false;
    }
  }
  return true;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

int32_t exit_kind(const scx_ktstr* skel) {
  return __atomic_load_n(&skel->bss->exit_info.kind, __ATOMIC_ACQUIRE);
}

// The scx tools' report format, so one parser reads both.
void print_exit(const ktstr_exit_info& info) {
  const std::string_view dump(info.dump, strnlen(info.dump, sizeof(info.dump)));
  const char* rule =
      "================================================================================";
  if (!dump.empty()) {
    std::fprintf(stderr, "\nDEBUG DUMP\n%s\n\n%.*s", rule, int(dump.size()), dump.data());
    if (dump.back() != '\n') std::fputc('\n', stderr);
    std::fprintf(stderr, "%s\n\n", rule);
  }
  std::fprintf(stderr, "EXIT: %.*s", int(strnlen(info.reason, sizeof(info.reason))), info.reason);
  const size_t msg_len = strnlen(info.msg, sizeof(info.msg));
  if (msg_len) std::fprintf(stderr, " (%.*s)", int(msg_len), info.msg);
  std::fputc('\n', stderr);
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!parse_options(argc, argv, opts)) return kExitLoadFailed;
  libbpf_set_print(print_libbpf);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  const auto load_start = std::chrono::steady_clock::now();
  scx_ktstr* skel = scx_ktstr__open();
  if (!skel) {
    std::fprintf(stderr, "scx-ktstr: cannot open BPF object: %s\n", std::strerror(errno));
    return kExitSetupFailed;
  }
  skel->rodata->fail_verify = opts.fail_verify;
  skel->rodata->verify_loop = opts.verify_loop;
  // Ask the kernel for a debug dump on exit; ops.exit copies it to .bss.
  skel->struct_ops.ktstr_ops->exit_dump_len = KTSTR_EXIT_DUMP_LEN;
  if (opts.timeout_ms) skel->struct_ops.ktstr_ops->timeout_ms = opts.timeout_ms;

  if (int err = scx_ktstr__load(skel); err) {
    std::fprintf(stderr, "scx-ktstr: failed to load BPF programs: %s\n", std::strerror(-err));
    scx_ktstr__destroy(skel);
    return kExitLoadFailed;
  }
  const double load_ms = ms_since(load_start);

  const auto attach_start = std::chrono::steady_clock::now();
  bpf_link* link = bpf_map__attach_struct_ops(skel->maps.ktstr_ops);
  if (!link) {
    const int err = errno;
    std::fprintf(stderr, "scx-ktstr: cannot attach scheduler: %s\n", std::strerror(err));
    if (err == EBUSY || err == EEXIST)
      std::fprintf(stderr, "hint: another sched_ext scheduler is loaded\n");
    scx_ktstr__destroy(skel);
    return kExitSetupFailed;
  }
  std::printf("scx-ktstr: attached\n");
  std::fprintf(stderr, "scx-ktstr: load %.0f ms, attach %.0f ms\n", load_ms,
               ms_since(attach_start));

  while (exit_kind(skel) == 0 && !g_stop_signal) std::this_thread::sleep_for(kPollInterval);

  if (exit_kind(skel) != 0) {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    std::fprintf(stderr, "scx-ktstr: scheduler exited at %.6f (monotonic)\n",
                 double(now.tv_sec) + double(now.tv_nsec) / 1e9);
  }
  // Detaching runs ops.exit (kind SCX_EXIT_UNREG) before it returns, unless
  // the kernel already ejected the scheduler.
  bpf_link__destroy(link);
  int32_t kind = exit_kind(skel);
  if (kind != 0) print_exit(skel->bss->exit_info);
  scx_ktstr__destroy(skel);
  return kind >= KTSTR_EXIT_ERROR ? kExitEjected : kExitDetached;
}
