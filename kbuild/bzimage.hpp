// The bzImage setup header (Documentation/arch/x86/boot.rst) and kernel
// release strings: "7.3.4+deb13-cloud-amd64" has the upstream version "7.3.4".
#pragma once

#include "core/result.hpp"

#include <string>
#include <string_view>

namespace ktstr::kbuild {

// The kernel release from the header's kernel_version string (the first
// word of it). `what` names the image in errors.
Result<std::string> bzimage_version_from_memory(std::string_view image, const std::string& what);
Result<std::string> bzimage_version(const std::string& path);

// "7.3.4+deb13-cloud-amd64" -> "7.3.4"; "6.17.0-rc1" -> "6.17.0".
std::string upstream_version(const std::string& release);

// Numeric comparison of dotted versions ("6.17.13" > "6.9"); <0, 0, >0.
int compare_versions(const std::string& a, const std::string& b);

// True when a version reference names this release: the whole release,
// its upstream version, or a dotted prefix of it ("6.17" matches 6.17.13).
bool version_matches(const std::string& release, const std::string& ref);

// True for references that look like a version: digits and dots, starting with a digit.
bool looks_like_version(const std::string& ref);

}  // namespace ktstr::kbuild
