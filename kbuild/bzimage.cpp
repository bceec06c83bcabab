#include "kbuild/bzimage.hpp"

#include <cctype>
#include <cerrno>
#include <fstream>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ktstr::kbuild {

namespace {

// Offsets in the real-mode setup header.
constexpr size_t kHeaderMagicOffset = 0x202;       // "HdrS"
constexpr size_t kVersionPointerOffset = 0x20E;    // u16, relative to 0x200
constexpr size_t kVersionBase = 0x200;
constexpr size_t kMaxVersionLength = 256;

std::string not_a_bzimage(const std::string& what) { return "'" + what + "' is not a bzImage"; }
const char* kBzImageHint =
    "give the kernel's compressed image: arch/x86/boot/bzImage of a build, or /boot/vmlinuz-*";

std::vector<long> version_numbers(const std::string& v) {
  std::vector<long> out;
  size_t i = 0;
  while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i]))) {
    long n = 0;
    while (i < v.size() && std::isdigit(static_cast<unsigned char>(v[i])) && n < 1000000)
      n = n * 10 + (v[i++] - '0');
    out.push_back(n);
    if (i < v.size() && v[i] == '.') ++i;
    else break;
  }
  return out;
}

}  // namespace

Result<std::string> bzimage_version_from_memory(std::string_view image, const std::string& what) {
  if (image.size() < kVersionPointerOffset + 2 || image.compare(kHeaderMagicOffset, 4, "HdrS") != 0)
    return fail(not_a_bzimage(what), kBzImageHint);
  uint16_t ptr;
  std::memcpy(&ptr, image.data() + kVersionPointerOffset, 2);  // little-endian, x86 host
  size_t at = kVersionBase + ptr;
  if (ptr == 0 || at >= image.size())
    return fail(not_a_bzimage(what) + " (no kernel version string)", kBzImageHint);
  std::string_view rest = image.substr(at, kMaxVersionLength);
  size_t end = rest.find('\0');
  if (end == std::string_view::npos) end = rest.size();
  std::string_view s = rest.substr(0, end);
  size_t sp = s.find(' ');
  std::string release(s.substr(0, sp));
  bool printable = !release.empty();
  for (char c : release) printable = printable && std::isgraph(static_cast<unsigned char>(c));
  if (!printable || !std::isdigit(static_cast<unsigned char>(release[0])))
    return fail(not_a_bzimage(what) + " (bad kernel version string)", kBzImageHint);
  return release;
}

Result<std::string> bzimage_version(const std::string& path) {
  // The version string lives in the setup code, within the first 64 KiB.
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read '" + path + "': " + std::strerror(errno));
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  return bzimage_version_from_memory(head, path);
}

std::string upstream_version(const std::string& release) {
  size_t i = 0;
  while (i < release.size() && (std::isdigit(static_cast<unsigned char>(release[i])) || release[i] == '.'))
    ++i;
  std::string v = release.substr(0, i);
  while (!v.empty() && v.back() == '.') v.pop_back();
  return v;
}

int compare_versions(const std::string& a, const std::string& b) {
  auto x = version_numbers(a), y = version_numbers(b);
  for (size_t i = 0; i < std::max(x.size(), y.size()); ++i) {
    long p = i < x.size() ? x[i] : -1, q = i < y.size() ? y[i] : -1;
    if (p != q) return p < q ? -1 : 1;
  }
  return 0;
}

bool version_matches(const std::string& release, const std::string& ref) {
  if (ref.empty()) return false;
  if (release == ref) return true;
  std::string up = upstream_version(release);
  if (up == ref) return true;
  return looks_like_version(ref) && up.size() > ref.size() && up.compare(0, ref.size(), ref) == 0 &&
         up[ref.size()] == '.';
}

bool looks_like_version(const std::string& ref) {
  if (ref.empty() || !std::isdigit(static_cast<unsigned char>(ref[0]))) return false;
  for (char c : ref)
    if (!std::isdigit(static_cast<unsigned char>(c)) && c != '.') return false;
  return true;
}

}  // namespace ktstr::kbuild
