// KVM or TCG: KVM only when it really runs a guest. On some machines
// /dev/kvm opens but a normal kernel triple-faults, so the probe creates a
// VM with the KVM API, puts one vCPU in 64-bit long mode with paging and runs
// a few instructions; anything but the expected port write + HLT means TCG.
#pragma once

#include "guest/vm/vm_config.hpp"

#include <string>

namespace ktstr {

// The uncached probe (a forked child does the KVM calls, so a vCPU that never
// exits cannot hang ktstr). Fast: a few milliseconds when KVM works.
bool kvm_probe(const std::string& dev_kvm = "/dev/kvm");

// KTSTR_ACCEL=kvm|tcg forces one; otherwise the probe result, cached in
// `<cache_dir>/kvm-probe.json` for this boot (boot id + kernel release).
// Logs once at info level which accelerator is used and why. `dev_kvm` is
// for tests.
Result<Accel> choose_accel(const std::string& cache_dir, const std::string& dev_kvm = "/dev/kvm");

}  // namespace ktstr
