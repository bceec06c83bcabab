// scx_tiny: the loader for tests/sched/scx_tiny.bpf.c, ktstr's external test
// scheduler. Unlike the fixture scx-ktstr it is linked dynamically (libelf,
// libz, libzstd from the system), so ktstr must ship those libraries into
// the guest for it to start at all.
//
// Usage: scx_tiny [--slice-us N] [--fail-after-ms N]
// --fail-after-ms N: N ms after attaching, set `.bss` `fail_now` (the next
// dispatch calls scx_bpf_error): a crash chosen by the scheduler's
// arguments, for `ktstr gauntlet`'s VM test.
// KTSTR_SEED (decimal, set by ktstr for every run): when the BPF object
// declares `ktstr_seed`/`ktstr_seeded` in .rodata (the bisect fixture,
// tests/sched/bisect/), they are set from it before load and stdout gets
// "scx_tiny: seed N"; this object draws nothing and ignores it.
// Stdout: "scx_tiny: attached (slice N us)". On exit, stderr gets the scx
// tools' report: DEBUG DUMP, the kernel's dump, and "EXIT: <reason> (<msg>)".
// Exit status: 0 detached (signal or unregistered), 1 ejected by the kernel,
// 2 usage or load failure, 3 attach failure.
//
// The skeleton refers to struct tiny_exit_info: define it first.
#include "scx_tiny_common.h"
#include "scx_tiny.skel.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

namespace {

constexpr int kExitDetached = 0;
constexpr int kExitEjected = 1;
constexpr int kExitLoadFailed = 2;
constexpr int kExitAttachFailed = 3;
constexpr auto kPollInterval = std::chrono::milliseconds(10);
// Slices outside this range make no sense for a test scheduler.
constexpr unsigned long kMinSliceUs = 100;
constexpr unsigned long kMaxSliceUs = 1000000;

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

int print_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return std::vfprintf(stderr, fmt, args);
}

struct Options {
  unsigned long slice_us = TINY_SLICE_DFL_NS / 1000;
  long fail_after_ms = -1;  // < 0: never
};

// False after printing a usage error.
bool parse_options(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    char* end = nullptr;
    if (arg == "--slice-us" && i + 1 < argc) {
      o.slice_us = std::strtoul(argv[++i], &end, 10);
      if (*end != '\0' || o.slice_us < kMinSliceUs || o.slice_us > kMaxSliceUs) {
        std::fprintf(stderr, "scx_tiny: invalid --slice-us '%s' (want %lu..%lu)\n", argv[i],
                     kMinSliceUs, kMaxSliceUs);
        return false;
      }
    } else if (arg == "--fail-after-ms" && i + 1 < argc) {
      o.fail_after_ms = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || o.fail_after_ms < 0 || o.fail_after_ms > 3600000) {
        std::fprintf(stderr, "scx_tiny: invalid --fail-after-ms '%s'\n", argv[i]);
        return false;
      }
    } else {
      std::fprintf(stderr, "usage: scx_tiny [--slice-us N] [--fail-after-ms N]\n");
      return false;
    }
  }
  return true;
}

int32_t exit_kind(const scx_tiny* skel) {
  return __atomic_load_n(&skel->bss->exit_info.kind, __ATOMIC_ACQUIRE);
}

void print_exit(const tiny_exit_info& info) {
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

// Sets the run's seed in an object that declares it; false for one that
// does not (a template, so that a skeleton without the fields compiles).
template <typename Rodata>
bool set_seed(Rodata* rodata, unsigned long long seed) {
  if constexpr (requires { rodata->ktstr_seed = seed; rodata->ktstr_seeded = true; }) {
    rodata->ktstr_seed = seed;
    rodata->ktstr_seeded = true;
    return true;
  }
  return false;
}

// KTSTR_SEED when set and well-formed.
bool seed_from_env(unsigned long long& seed) {
  const char* text = std::getenv("KTSTR_SEED");
  if (!text || !*text) return false;
  char* end = nullptr;
  errno = 0;
  seed = std::strtoull(text, &end, 10);
  if (*end != '\0' || errno == ERANGE || *text == '-') {
    std::fprintf(stderr, "scx_tiny: ignoring KTSTR_SEED '%s': not a decimal seed\n", text);
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!parse_options(argc, argv, opts)) return kExitLoadFailed;
  const unsigned long slice_us = opts.slice_us;
  libbpf_set_print(print_libbpf);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);

  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  scx_tiny* skel = scx_tiny__open();
  if (!skel) {
    std::fprintf(stderr, "scx_tiny: cannot open BPF object: %s\n", std::strerror(errno));
    return kExitLoadFailed;
  }
  skel->rodata->slice_ns = slice_us * 1000;
  skel->struct_ops.tiny_ops->exit_dump_len = TINY_EXIT_DUMP_LEN;
  if (unsigned long long seed = 0; seed_from_env(seed) && set_seed(skel->rodata, seed))
    std::printf("scx_tiny: seed %llu\n", seed);
  if (int err = scx_tiny__load(skel); err) {
    std::fprintf(stderr, "scx_tiny: failed to load BPF programs: %s\n", std::strerror(-err));
    scx_tiny__destroy(skel);
    return kExitLoadFailed;
  }
  bpf_link* link = bpf_map__attach_struct_ops(skel->maps.tiny_ops);
  if (!link) {
    std::fprintf(stderr, "scx_tiny: cannot attach scheduler: %s\n", std::strerror(errno));
    scx_tiny__destroy(skel);
    return kExitAttachFailed;
  }
  std::printf("scx_tiny: attached (slice %lu us)\n", slice_us);

  const auto attached = std::chrono::steady_clock::now();
  while (exit_kind(skel) == 0 && !g_stop_signal) {
    if (opts.fail_after_ms >= 0 && std::chrono::steady_clock::now() - attached >=
                                       std::chrono::milliseconds(opts.fail_after_ms)) {
      __atomic_store_n(&skel->bss->fail_now, true, __ATOMIC_RELEASE);
      opts.fail_after_ms = -1;
    }
    std::this_thread::sleep_for(kPollInterval);
  }

  // Detaching runs ops.exit (SCX_EXIT_UNREG) unless the kernel ejected us.
  bpf_link__destroy(link);
  const int32_t kind = exit_kind(skel);
  if (kind != 0) print_exit(skel->bss->exit_info);
  scx_tiny__destroy(skel);
  return kind >= TINY_EXIT_ERROR ? kExitEjected : kExitDetached;
}
