// Parsers that turn what a dead sched_ext scheduler left behind into a
// SchedExit: the scheduler's own log (DEBUG DUMP + "EXIT:" line), the
// sched_ext_dump/sched_ext_exit trace events, and dmesg. Each works on any
// scx-style scheduler output, takes garbage or truncated text without
// throwing, and fails only when the text holds no exit at all.
#pragma once

#include "core/result.hpp"
#include "core/sched_exit.hpp"
#include "core/verifier_log.hpp"  // the verifier-log helpers belong to the same story

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// The scheduler's stdout+stderr: the DEBUG DUMP block (from the '=' line
// after "DEBUG DUMP" up to the closing '=' line, the EXIT: line or the end)
// and the last "EXIT: reason (msg)" line. Error when neither names an exit.
Result<SchedExit> parse_sched_log(std::string_view log);

// The dump text itself (the kernel's dump format, without the '=' frame):
// trigger line, reason line, Backtrace:, the scheduler's ops.dump block,
// "CPU states". Error when there is no trigger line.
Result<SchedExit> parse_dump_text(std::string_view dump);

// tracefs trace_pipe text: the sched_ext_dump payloads (the text after
// "sched_ext_dump: "), one per line, in order.
std::string extract_trace_dump(std::string_view trace);
// The exit kind of the last sched_ext_exit event ("... kind 1025"), if any.
std::optional<int64_t> trace_exit_kind(std::string_view trace);
// A whole trace (or dump text already extracted from one): its dump lines
// parsed as parse_dump_text, the kind taken from the sched_ext_exit event
// when the dump has none. Error when the trace has neither.
Result<SchedExit> parse_trace_dump(std::string_view trace);

// dmesg: 'sched_ext: BPF scheduler "NAME" disabled (REASON)', then
// 'sched_ext: NAME: MSG' and the indented backtrace. The last one wins.
Result<SchedExit> parse_dmesg_exit(std::string_view dmesg);

// Why a scheduler never attached, in libbpf's words from its log: the first
// "libbpf: " line that reports a failure or an error (libbpf names the cause
// first, then what failed because of it: "failed to load object", "failed to
// load BPF skeleton"), else the last "libbpf: " line. From "libbpf: " on,
// without a trailing newline; empty when libbpf said nothing.
std::string libbpf_error_line(std::string_view sched_log);

// Combines exits in order of preference (scheduler log, trace dump, dmesg):
// each field comes from the first source that has it; derived fields
// (source_location, failing_prog, kind from reason) are recomputed.
SchedExit merge_exits(const std::vector<SchedExit>& by_preference);

// Parses the three captures and merges what they give. `trace` is the raw
// trace_pipe text or the sched_ext_dump payloads already extracted from it.
// Error when none holds an exit.
Result<SchedExit> exit_from_captures(std::string_view sched_log, std::string_view trace, std::string_view dmesg);

// "  scx_exit+0x50/0x70" or "bpf_prog_<16 hex>_<name>+0x68/0x1b4"; leading
// "? " (unreliable entry) and a trailing " [module]" are accepted.
std::optional<BacktraceFrame> parse_backtrace_frame(std::string_view line);

// A "FILE:LINE" at the start of a message (scx_bpf_error() prefixes
// __FILE__:__LINE__). FILE's last component holds a dot and no space; its
// directories may hold spaces only when FILE is absolute. With
// `masked_line`, the line may also be mask_volatile's "N".
struct SourcePrefix {
  size_t name_begin = 0;  // where the file name (after the last '/') starts
  size_t name_end = 0;    // the ':' after FILE
  size_t line_end = 0;    // just past LINE
};
std::optional<SourcePrefix> find_source_prefix(std::string_view msg, bool masked_line = false);

// "bpf/scx_ktstr.bpf.c:115" when `msg` starts with FILE:LINE: (see
// find_source_prefix), else empty. As the compiler saw the path: absolute
// when the scheduler was built from an absolute path.
std::string source_location_of(std::string_view msg);

// `text` with the directory part of its leading FILE:LINE removed
// ("/home/u/scx/scheds/c/scx_foo.bpf.c:12: boom" -> "scx_foo.bpf.c:12: boom");
// unchanged without one. What signatures use, so that one scheduler built in
// two checkouts (or from two working directories) gives one signature.
std::string without_source_dir(std::string_view text, bool masked_line = false);

// "scx_bpf_error" <-> 1025 etc. (the kernel's scx_exit_reason()); empty / -1
// when unknown.
std::string exit_reason_for_kind(int64_t kind);
int64_t exit_kind_for_reason(std::string_view reason);

// Masks what varies between occurrences of one crash: task references
// "comm[pid]" -> "TASK[N]", hex "0x1f" -> "0xN", bare hex words of 8+ digits
// mixing digits and letters -> "X", decimal numbers (with a fraction, so
// "5.044s" -> "Ns"; line numbers too: "file.c:115:" -> "file.c:N:") -> "N".
// Digits inside identifiers ("u16", "scx_ktstr2") are kept.
std::string mask_volatile(std::string_view msg);

// kind, masked message (the reason when there is no message), failing BPF
// program and source location (with its line: Signature::source). The
// source file is kept by its name only, in both the message and the
// location (without_source_dir): __FILE__ is as the compiler saw it, so the
// directory names the checkout and the build's working directory, not the
// crash.
Signature signature_of(const SchedExit& e);

// A signature stored before file names lost their directories (message
// already masked, "bpf/scx_ktstr.bpf.c:N: ..."; source "bpf/x.bpf.c:115"),
// brought to the current form: the directories dropped. Its key() is what
// signature_of gives for the same crash today. For a store migration.
Signature upgrade_stored_signature(Signature stored);

}  // namespace ktstr
