// What a sched_ext scheduler's death looks like once parsed: the exit kind,
// reason and message, the kernel backtrace, the scheduler's own dump block,
// and the signature that groups occurrences of the same crash. Parsed from
// captured text (the scheduler log with its DEBUG DUMP and EXIT: line, the
// sched_ext_dump trace lines, dmesg), never from templates.
#pragma once

#include "core/result.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// Exit kinds (enum scx_exit_kind).
inline constexpr int64_t kScxExitDone = 0;
inline constexpr int64_t kScxExitUnreg = 64;
inline constexpr int64_t kScxExitUnregBpf = 65;
inline constexpr int64_t kScxExitUnregKern = 66;
inline constexpr int64_t kScxExitSysrq = 67;
inline constexpr int64_t kScxExitError = 1024;
inline constexpr int64_t kScxExitErrorBpf = 1025;      // scx_bpf_error()
inline constexpr int64_t kScxExitErrorStall = 1026;    // watchdog: runnable task stall

struct BacktraceFrame {
  std::string function;   // "do_pick_task_scx" or "bpf_prog_1fed99378f3a8055_ktstr_dispatch"
  std::string offset;     // "+0x379/0x770"
  std::string bpf_tag;    // "1fed99378f3a8055" for BPF program frames, else empty
  std::string bpf_prog;   // "ktstr_dispatch" for BPF program frames, else empty
  bool operator==(const BacktraceFrame&) const = default;
};

struct SchedExit {
  int64_t kind = -1;              // 1025, 1026, ...; -1 unknown
  std::string reason;             // "scx_bpf_error", "runnable task stall"
  std::string msg;                // "bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash"
  std::string trigger;            // "swapper/3[0] triggered exit kind 1025 on CPU 3:"
  int exit_cpu = -1;
  std::vector<BacktraceFrame> backtrace;
  std::string scheduler_state;    // the scheduler's ops.dump block ("ktstr scheduler state: ...")
  std::string dump;               // the whole DEBUG DUMP text
  std::string source_location;    // "bpf/scx_ktstr.bpf.c:115" when msg starts with FILE:LINE:
  std::string failing_prog;       // the first BPF program frame's name ("ktstr_dispatch")
  std::string exit_line;          // "EXIT: scx_bpf_error (...)" as printed

  // "scx_bpf_error (bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash)"
  std::string summary() const;
  bool is_stall() const { return kind == kScxExitErrorStall; }
};

// Groups occurrences of the same crash: exit kind, the message with volatile
// numbers masked (pids, CPU numbers, durations, addresses — but not the
// source line, which is kept in source_location), failing program, source file.
// The source file is named without its directory in both the message and
// `source`, so builds in different checkouts give one signature.
struct Signature {
  int64_t kind = -1;
  std::string message;       // masked: "scx_ktstr.bpf.c:N: ktstr: host-triggered crash"
  std::string bpf_prog;
  std::string source;        // "scx_ktstr.bpf.c:115"
  std::string key() const;   // stable hex hash (16 digits) over the fields
  bool operator==(const Signature&) const = default;
};

}  // namespace ktstr
