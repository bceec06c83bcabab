// What the agent reads from the guest kernel while a scheduler runs: tracefs
// trace_pipe, /dev/kmsg, /sys/kernel/sched_ext, debugfs sched/debug. The
// parsers are pure so they are unit tested on captured text; LineBuffer and
// NonBlockingSource do the bounded, non-blocking reading.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr::agent {

// Splits a byte stream into lines. A line longer than kMaxLine is cut there
// (a flood without newlines must not grow memory).
class LineBuffer {
 public:
  static constexpr size_t kMaxLine = 16 * 1024;
  void feed(std::string_view data);
  // Complete lines (without '\n'), oldest first; clears them.
  std::vector<std::string> take_lines();
  // The unterminated rest, as a last line (end of stream).
  std::optional<std::string> take_rest();

 private:
  std::string partial_;
  std::vector<std::string> lines_;
};

// A trace_pipe line worth sending: sched_ext_dump / sched_ext_exit events.
// (sched_ext_event fires on every fallback dispatch: far too noisy to stream.)
bool is_sched_ext_trace_line(std::string_view line);

// One /dev/kmsg record ("6,381,9923512,-;text\n KEY=value...") as dmesg
// prints it ("[    9.923512] text"); nullopt when malformed.
std::optional<std::string> kmsg_record_line(std::string_view record);

// Per-CPU nr_running from debugfs sched/debug: the first ".nr_running" after
// each "cpu#N" header, indexed by N. Empty when there is none.
std::vector<uint32_t> parse_sched_debug_nr_running(std::string_view text);
// Any per-CPU field of sched/debug's "cpu#N" sections (".nr_switches"),
// indexed by CPU; the first occurrence in each section counts.
std::vector<uint64_t> parse_sched_debug_field(std::string_view text, std::string_view field);

// /sys/kernel/sched_ext/root/events: lines "SCX_EV_NAME value" (a ':' after
// the name is accepted too). Malformed lines are skipped.
std::map<std::string, int64_t> parse_sched_ext_events(std::string_view text);

// A file or pipe opened O_NONBLOCK, read until EAGAIN on each poll.
class NonBlockingSource {
 public:
  NonBlockingSource() = default;
  NonBlockingSource(const NonBlockingSource&) = delete;
  NonBlockingSource& operator=(const NonBlockingSource&) = delete;
  ~NonBlockingSource();

  // Empty string on success, else the errno text. `seek_end`: skip what is
  // already there (/dev/kmsg: only the run's records).
  std::string open(const std::string& path, bool seek_end = false);
  void adopt(int fd);  // takes ownership, sets O_NONBLOCK
  bool is_open() const { return fd_ >= 0; }
  bool at_eof() const { return eof_; }
  int fd() const { return fd_; }
  void close();

  // Appends what is readable now, at most `max_bytes`. /dev/kmsg returns one
  // record per read: `per_read` collects each read separately when non-null.
  size_t read_available(std::string& out, size_t max_bytes,
                        std::vector<std::string>* per_read = nullptr);

 private:
  int fd_ = -1;
  bool eof_ = false;
};

}  // namespace ktstr::agent
