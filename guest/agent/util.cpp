#include "guest/agent/util.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sstream>
#include <unistd.h>

namespace ktstr::agent {

std::optional<std::string> read_text(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (1u << 20)) break;  // no file we read is this large
  }
  ::close(fd);
  return out;
}

std::optional<std::string> read_trimmed(const std::string& path) {
  auto text = read_text(path);
  if (!text) return text;
  while (!text->empty() && std::isspace(static_cast<unsigned char>(text->back()))) text->pop_back();
  return text;
}

std::string write_text(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno_text(errno);
  ssize_t n;
  do {
    n = ::write(fd, data.data(), data.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return errno_text(err);
  if (static_cast<size_t>(n) != data.size()) return "short write";
  return {};
}

std::string errno_text(int err) { return std::strerror(err); }

std::string reseed_kernel_rng(uint64_t seed) {
  int fd = ::open("/dev/urandom", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return "opening /dev/urandom: " + errno_text(errno);
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<unsigned char>(seed >> (8 * i));
  std::string err;
  if (::write(fd, bytes, sizeof bytes) != static_cast<ssize_t>(sizeof bytes)) err = "writing /dev/urandom: " + errno_text(errno);
  else if (::ioctl(fd, RNDRESEEDCRNG) != 0) err = "RNDRESEEDCRNG: " + errno_text(errno);
  ::close(fd);
  return err;
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t boottime_ms() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000ull + uint64_t(ts.tv_nsec) / 1000000ull;
}

void sleep_ms(unsigned ms) {
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

namespace {
bool parse_uint(const std::string& s, unsigned& out) {
  if (s.empty() || s.size() > 6) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + unsigned(c - '0');
  }
  out = v;
  return true;
}
}  // namespace

std::optional<std::vector<unsigned>> parse_cpulist(const std::string& text) {
  std::vector<unsigned> cpus;
  std::string trimmed = text;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.pop_back();
  if (trimmed.empty()) return cpus;
  std::stringstream ss(trimmed);
  std::string part;
  while (std::getline(ss, part, ',')) {
    size_t dash = part.find('-');
    unsigned lo, hi;
    if (dash == std::string::npos) {
      if (!parse_uint(part, lo)) return std::nullopt;
      hi = lo;
    } else if (!parse_uint(part.substr(0, dash), lo) || !parse_uint(part.substr(dash + 1), hi)) {
      return std::nullopt;
    }
    if (lo > hi || hi > kMaxCpuId) return std::nullopt;
    for (unsigned c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  return cpus;
}

unsigned first_cpu(const std::string& cpulist) {
  auto cpus = parse_cpulist(cpulist);
  return cpus && !cpus->empty() ? cpus->front() : kMaxCpuId + 1;
}

std::optional<uint64_t> parse_u64(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + uint64_t(c - '0');
  }
  return v;
}

std::optional<std::string> cmdline_value(const std::string& cmdline, const std::string& key) {
  std::stringstream ss(cmdline);
  std::string word;
  std::optional<std::string> found;
  while (ss >> word) {  // the last occurrence wins, as for kernel parameters
    if (word.size() > key.size() && word.compare(0, key.size(), key) == 0 && word[key.size()] == '=')
      found = word.substr(key.size() + 1);
  }
  return found;
}

}  // namespace ktstr::agent
