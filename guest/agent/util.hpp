// Small helpers for the agent: file I/O without exceptions, clocks, cpulists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::agent {

// Whole file (sysfs/procfs files too: read until EOF); nullopt on error.
std::optional<std::string> read_text(const std::string& path);
// Same, trailing whitespace stripped.
std::optional<std::string> read_trimmed(const std::string& path);
// Writes `data` in one write(2) (what sysfs/cgroupfs expect). On failure
// returns the errno text, on success an empty string.
std::string write_text(const std::string& path, const std::string& data);

std::string errno_text(int err);

uint64_t monotonic_ns();
// Mix `seed` into the kernel's entropy pool and reseed its CRNG
// (RNDRESEEDCRNG); an error text, or empty.
std::string reseed_kernel_rng(uint64_t seed);
uint64_t boottime_ms();  // time since the kernel booted
void sleep_ms(unsigned ms);

// "0-3,5,7-8" -> {0,1,2,3,5,7,8}; nullopt on malformed text. Bounded: CPU
// ids above kMaxCpuId are rejected (untrusted input).
inline constexpr unsigned kMaxCpuId = 4095;
std::optional<std::vector<unsigned>> parse_cpulist(const std::string& text);
// First CPU of a cpulist, for sorting groups numerically ("2-3" < "10-11").
unsigned first_cpu(const std::string& cpulist);

// Decimal number without sign or suffix; nullopt otherwise.
std::optional<uint64_t> parse_u64(const std::string& text);

// Value of `key=` in a kernel command line ("ktstr.verbose=1"), or nullopt.
std::optional<std::string> cmdline_value(const std::string& cmdline, const std::string& key);

}  // namespace ktstr::agent
