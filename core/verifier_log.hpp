// BPF verifier logs as printed by libbpf when a scheduler fails to load:
// recognising them, finding the final error, and collapsing the thousands of
// near-identical lines a verified loop produces.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ktstr {

// True when the log shows a BPF program rejected at load
// ("-- BEGIN PROG LOAD LOG --", "BPF program load failed", "processed N insns").
bool looks_like_verifier_failure(std::string_view sched_log);

// The verifier's final error ("R3 unbounded memory access, ..."): the first
// line after the last instruction line that is not source, state or blank;
// else the last line before "processed N insns". Empty when not found.
std::string verifier_error_line(std::string_view sched_log);

// Collapses runs of blocks (1..64 lines) that repeat 3+ times modulo numbers
// into the first and last occurrence around "... N similar lines omitted ...",
// then, when still longer than max_lines, keeps the head and the tail around
// "... N lines omitted ...". The final error line always stays.
std::string collapse_verifier_log(std::string_view log, size_t max_lines = 200);

}  // namespace ktstr
