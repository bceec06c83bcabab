// vmlinux from a bzImage without booting it: find the compressed payload by
// its magic bytes, decompress it with the library for its format, keep the
// first result that is an ELF, and require a .BTF section in it.
#pragma once

#include "core/result.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace ktstr::kbuild {

// A decompressed payload larger than this is refused (garbage defence).
inline constexpr size_t kMaxVmlinuxBytes = size_t{1} << 30;

// Compression formats the kernel's bzImage may carry and ktstr can read.
enum class PayloadFormat { kZstd, kXz, kGzip, kLz4Legacy };
const char* payload_format_name(PayloadFormat f);

struct ExtractedVmlinux {
  std::string elf;             // the vmlinux ELF bytes
  PayloadFormat format{};      // how it was compressed
  size_t payload_offset = 0;   // where in the image the compressed stream starts
};

// Scan `image` for payload magics and return the first candidate that
// decompresses to an ELF with a .BTF section. `what` names the image in errors.
Result<ExtractedVmlinux> extract_vmlinux_from_memory(std::string_view image,
                                                     const std::string& what = "image",
                                                     size_t max_out = kMaxVmlinuxBytes);

// Read `bzimage_path`, extract its vmlinux and write it atomically to
// `out_path`. Returns `out_path`.
Result<std::string> extract_vmlinux(const std::string& bzimage_path, const std::string& out_path);

// True when `elf` is an ELF that has a section named `section` (via libelf).
Result<bool> elf_has_section(std::string_view elf, const std::string& section);

// The raw bytes of section `section` of an ELF held in memory.
Result<std::string> elf_section_bytes(std::string_view elf, const std::string& section);

}  // namespace ktstr::kbuild
