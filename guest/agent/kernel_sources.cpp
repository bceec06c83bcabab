#include "guest/agent/kernel_sources.hpp"

#include "guest/agent/util.hpp"

#include <algorithm>
#include <climits>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <unistd.h>

namespace ktstr::agent {

void LineBuffer::feed(std::string_view data) {
  for (char c : data) {
    if (c == '\n') {
      lines_.push_back(std::move(partial_));
      partial_.clear();
      continue;
    }
    partial_.push_back(c);
    if (partial_.size() >= kMaxLine) {
      lines_.push_back(std::move(partial_));
      partial_.clear();
    }
  }
}

std::vector<std::string> LineBuffer::take_lines() {
  std::vector<std::string> out;
  out.swap(lines_);
  return out;
}

std::optional<std::string> LineBuffer::take_rest() {
  if (partial_.empty()) return std::nullopt;
  std::string rest;
  rest.swap(partial_);
  return rest;
}

bool is_sched_ext_trace_line(std::string_view line) {
  return line.find(" sched_ext_dump: ") != std::string_view::npos ||
         line.find(" sched_ext_exit: ") != std::string_view::npos;
}

std::optional<std::string> kmsg_record_line(std::string_view record) {
  size_t semi = record.find(';');
  if (semi == std::string_view::npos) return std::nullopt;
  std::string_view prefix = record.substr(0, semi);
  // prefix: priority,sequence,timestamp_us,flags[,more]
  size_t c1 = prefix.find(',');
  size_t c2 = c1 == std::string_view::npos ? c1 : prefix.find(',', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  size_t c3 = prefix.find(',', c2 + 1);
  std::string ts(prefix.substr(c2 + 1, c3 == std::string_view::npos ? std::string_view::npos : c3 - c2 - 1));
  if (ts.empty() || ts.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  uint64_t us = std::strtoull(ts.c_str(), nullptr, 10);
  std::string_view text = record.substr(semi + 1);
  size_t nl = text.find('\n');  // continuation lines are KEY=value metadata
  if (nl != std::string_view::npos) text = text.substr(0, nl);
  char stamp[40];
  std::snprintf(stamp, sizeof stamp, "[%5llu.%06llu] ", static_cast<unsigned long long>(us / 1000000),
                static_cast<unsigned long long>(us % 1000000));
  return std::string(stamp) + std::string(text);
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::optional<uint64_t> parse_number(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos)
    return std::nullopt;
  return std::strtoull(std::string(s).c_str(), nullptr, 10);
}

}  // namespace

std::vector<uint32_t> parse_sched_debug_nr_running(std::string_view text) {
  std::vector<uint32_t> out;
  for (uint64_t n : parse_sched_debug_field(text, ".nr_running"))
    out.push_back(static_cast<uint32_t>(n > UINT32_MAX ? UINT32_MAX : n));
  return out;
}

std::vector<uint64_t> parse_sched_debug_field(std::string_view text, std::string_view field) {
  constexpr size_t kMaxCpus = 4096;
  std::vector<uint64_t> out;
  // The current "cpu#N" section until its nr_running; kNone outside one. (A
  // plain sentinel: GCC 12 -O2 warns falsely about std::optional here.)
  constexpr size_t kNone = SIZE_MAX;
  size_t cpu = kNone;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (line.rfind("cpu#", 0) == 0) {
      std::string_view rest = line.substr(4);
      size_t end = rest.find_first_not_of("0123456789");
      auto n = parse_number(rest.substr(0, end));
      cpu = n && *n < kMaxCpus ? static_cast<size_t>(*n) : kNone;
      continue;
    }
    if (cpu == kNone) continue;
    std::string_view t = trim(line);
    if (t.rfind(field, 0) != 0) continue;
    size_t colon = t.find(':');
    if (colon == std::string_view::npos || trim(t.substr(0, colon)) != field) continue;
    auto n = parse_number(trim(t.substr(colon + 1)));
    if (!n) continue;
    if (out.size() <= cpu) out.resize(cpu + 1, 0);
    out[cpu] = *n;
    cpu = kNone;
  }
  return out;
}

std::map<std::string, int64_t> parse_sched_ext_events(std::string_view text) {
  std::map<std::string, int64_t> out;
  size_t pos = 0;
  while (pos < text.size() && out.size() < 256) {
    size_t nl = text.find('\n', pos);
    std::string_view line = trim(text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t sep = line.find_first_of(" \t:");
    if (sep == std::string_view::npos || sep == 0 || sep > 128) continue;
    std::string_view name = line.substr(0, sep);
    std::string_view value = trim(line.substr(sep + 1));
    if (!value.empty() && value.front() == ':') value = trim(value.substr(1));
    bool negative = !value.empty() && value.front() == '-';
    auto n = parse_number(negative ? value.substr(1) : value);
    if (!n || *n > uint64_t(INT64_MAX)) continue;
    out[std::string(name)] = negative ? -int64_t(*n) : int64_t(*n);
  }
  return out;
}

NonBlockingSource::~NonBlockingSource() { close(); }

std::string NonBlockingSource::open(const std::string& path, bool seek_end) {
  close();
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno_text(errno);
  if (seek_end) ::lseek(fd, 0, SEEK_END);
  fd_ = fd;
  eof_ = false;
  return {};
}

void NonBlockingSource::adopt(int fd) {
  close();
  fd_ = fd;
  eof_ = false;
  if (fd_ >= 0) ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
}

void NonBlockingSource::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

size_t NonBlockingSource::read_available(std::string& out, size_t max_bytes,
                                         std::vector<std::string>* per_read) {
  if (fd_ < 0 || eof_) return 0;
  size_t total = 0;
  char buf[8192];
  while (total < max_bytes) {
    size_t want = std::min(sizeof buf, max_bytes - total);
    ssize_t n = ::read(fd_, buf, want);
    if (n > 0) {
      total += size_t(n);
      if (per_read) per_read->emplace_back(buf, size_t(n));
      else out.append(buf, size_t(n));
      continue;
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    if (errno == EINTR) continue;
    if (errno == EPIPE) continue;  // /dev/kmsg: records were overwritten; go on
    break;                         // EAGAIN or a real error: nothing more now
  }
  return total;
}

}  // namespace ktstr::agent
