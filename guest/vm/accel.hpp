// KVM or TCG, chosen by evidence. Two filters, cheapest first:
//  1. the ioctl probe: /dev/kvm must open and a tiny guest (64-bit long mode,
//     paging, a port write + HLT) must run through the KVM API;
//  2. the first real boot: on some hosts (nested virtualisation) the probe
//     passes but QEMU cannot run a real kernel under KVM ("KVM internal error.
//     Suberror: 1 ... emulation failure" while the kernel decompresses, and
//     QEMU pauses the guest instead of exiting). The VM layer (vm.cpp) watches
//     every KVM boot for that, ends it at once, reruns it under TCG and records
//     the verdict here, so later runs of this host boot go straight to TCG.
// The verdict and its evidence live in `<cache_dir>/kvm-probe.json`, keyed by
// boot id + kernel release + device.
#pragma once

#include "guest/vm/vm_config.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace ktstr {

// The uncached probe (a forked child does the KVM calls, so a vCPU that never
// exits cannot hang ktstr). Fast: a few milliseconds when KVM works.
bool kvm_probe(const std::string& dev_kvm = "/dev/kvm");

// What is known about KVM on this host boot.
struct AccelVerdict {
  bool kvm_works = false;
  std::string decided_by;     // kDecidedByProbe or kDecidedByBoot
  std::string evidence;       // why, e.g. `QEMU: "KVM internal error. Suberror: 1"`
  int64_t decided_at = 0;     // unix seconds
  std::string boot_id;        // /proc/sys/kernel/random/boot_id
  std::string kernel_release; // uname -r
  std::string device;         // "/dev/kvm"
  bool this_boot = false;     // boot id and release match the running host (set when read)
};
inline constexpr const char* kDecidedByProbe = "ioctl_probe";  // provisional: no real kernel booted yet
inline constexpr const char* kDecidedByBoot = "boot";          // a real kernel booted (or failed) under KVM

std::string accel_cache_path(const std::string& cache_dir);  // <cache_dir>/kvm-probe.json

// The cached verdict, whatever boot it is from (this_boot says); empty when
// there is none or it does not parse.
std::optional<AccelVerdict> read_accel_verdict(const std::string& cache_dir);

// Record a verdict for this host boot (boot id, release and time filled in).
Status record_accel_verdict(const std::string& cache_dir, AccelVerdict v);

// KTSTR_ACCEL=kvm|tcg forces one; otherwise the cached verdict for this boot,
// else the probe (cached, provisional until a real boot confirms it).
// Logs once per process which accelerator is used and why (TCG: one warning).
// `dev_kvm` is for tests. KTSTR_TEST_KVM_PROBE=pass (tests only) makes the
// probe pass without a device, to exercise the KVM-failure fallback on hosts
// without KVM.
Result<Accel> choose_accel(const std::string& cache_dir, const std::string& dev_kvm = "/dev/kvm");

// True when KTSTR_ACCEL names an accelerator: then there is no TCG fallback.
bool accel_forced();

// The one warning line for "KVM cannot boot a kernel here".
std::string kvm_fallback_warning(const std::string& evidence);

// Log that warning, once per process; choose_accel() says nothing more after it.
void warn_kvm_fallback(const std::string& evidence);

}  // namespace ktstr
