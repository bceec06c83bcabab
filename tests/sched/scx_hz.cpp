// scx_hz: the loader for tests/sched/scx_hz.bpf.c, a test scheduler whose BPF
// code reads CONFIG_HZ through a libbpf `__kconfig` extern.
//
// Usage: scx_hz
// Stdout: "scx_hz: attached (CONFIG_HZ=N, slice M us)", N as the BPF code
// read it in ops.init. libbpf's warnings go to stderr (a missing kernel
// config shows as "libbpf: failed to open system Kconfig").
// Exit status: 0 detached on SIGINT/SIGTERM, 2 load failure, 3 attach failure.
#include "scx_hz.skel.h"

#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <thread>

namespace {

constexpr int kExitDetached = 0;
constexpr int kExitLoadFailed = 2;
constexpr int kExitAttachFailed = 3;

volatile std::sig_atomic_t g_stop_signal = 0;

void on_stop_signal(int sig) { g_stop_signal = sig; }

int print_libbpf(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level != LIBBPF_WARN) return 0;
  return std::vfprintf(stderr, fmt, args);
}

}  // namespace

int main(int argc, char**) {
  if (argc != 1) {
    std::fprintf(stderr, "usage: scx_hz\n");
    return kExitLoadFailed;
  }
  libbpf_set_print(print_libbpf);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  scx_hz* skel = scx_hz__open_and_load();
  if (!skel) {
    std::fprintf(stderr, "scx_hz: failed to load BPF skeleton: %s\n", std::strerror(errno));
    return kExitLoadFailed;
  }
  bpf_link* link = bpf_map__attach_struct_ops(skel->maps.hz_ops);
  if (!link) {
    std::fprintf(stderr, "scx_hz: cannot attach scheduler: %s\n", std::strerror(errno));
    scx_hz__destroy(skel);
    return kExitAttachFailed;
  }
  // ops.init ran during the attach.
  std::printf("scx_hz: attached (CONFIG_HZ=%llu, slice %llu us)\n",
              static_cast<unsigned long long>(skel->bss->hz_seen),
              static_cast<unsigned long long>(skel->bss->slice_ns / 1000));
  while (!g_stop_signal) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  bpf_link__destroy(link);
  scx_hz__destroy(skel);
  return kExitDetached;
}
