// libFuzzer target: the crash-log parsers (core/crash_parse.hpp,
// core/verifier_log.hpp) on text captured from a guest: the scheduler's log,
// trace_pipe, dmesg. Every parser sees the whole input; exit_from_captures
// also gets it split in three at form feeds ('\f'), so one input can carry
// a scheduler log, a trace and a dmesg. The parsers must never crash, hang
// or throw, whatever the text.
#include "core/crash_parse.hpp"
#include "core/verifier_log.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace ktstr;

namespace {

void use(const Result<SchedExit>& r) {
  if (!r) return;
  (void)r->summary();
  Signature s = signature_of(*r);
  (void)s.key();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  use(parse_sched_log(text));
  use(parse_dump_text(text));
  use(parse_trace_dump(text));
  use(parse_dmesg_exit(text));
  (void)extract_trace_dump(text);
  (void)trace_exit_kind(text);

  std::string_view parts[3];
  std::string_view rest = text;
  for (int i = 0; i < 2; ++i) {
    size_t ff = rest.find('\f');
    if (ff == std::string_view::npos) break;
    parts[i] = rest.substr(0, ff);
    rest.remove_prefix(ff + 1);
  }
  parts[2] = rest;
  use(exit_from_captures(parts[0], parts[1], parts[2]));

  size_t line_start = 0;
  for (int lines = 0; line_start < text.size() && lines < 256; ++lines) {
    size_t nl = text.find('\n', line_start);
    if (nl == std::string_view::npos) nl = text.size();
    (void)parse_backtrace_frame(text.substr(line_start, nl - line_start));
    line_start = nl + 1;
  }
  (void)source_location_of(text);
  (void)mask_volatile(text);
  (void)exit_kind_for_reason(text);

  (void)looks_like_verifier_failure(text);
  (void)verifier_error_line(text);
  (void)collapse_verifier_log(text);
  return 0;
}
