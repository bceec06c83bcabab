// The verifier's own statistics per BPF program (`ktstr verifier`): parsing
// the summary a load with log_level BPF_LOG_STATS (4) leaves in the log,
// the per-program record, its JSON, the table and the comparison of two
// loads. Pure: the guest agent only forwards logs and bpf_prog_info.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

// The summary lines of kernel/bpf/verifier.c (print_verification_stats),
// up to 7.2:
//   verification time 1234 usec
//   stack depth 0+16+8
//   processed 85 insns (limit 1000000) max_states_per_insn 0 total_states 6 peak_states 6 mark_read 3
// 7.3 prints the stack per subprogram on lines of its own instead:
//   stack depth max 16
//   subprog 0 (ktstr_dispatch) main insns_self 104 insns_total 114 stack 40
//   subprog 1 (ktstr_slow_step) static insns_self 10 insns_total 10 stack 0
// A field the log lacks (older kernels, a failed load) stays empty; a
// malformed or overflowing number is ignored, never guessed. The last
// occurrence of each line wins.
struct VerifierLogStats {
  std::optional<uint64_t> processed_insns;
  std::optional<uint64_t> insn_limit;
  std::optional<uint64_t> max_states_per_insn;
  std::optional<uint64_t> total_states;
  std::optional<uint64_t> peak_states;
  std::optional<uint64_t> mark_read;
  std::optional<uint64_t> verification_time_us;
  std::string stack_depth;  // per subprogram, "0+16+8" (7.3: from the subprog lines)
  std::optional<uint64_t> stack_max;  // 7.3's "stack depth max N"
  std::optional<uint64_t> subprogs;   // 7.3: subprog lines seen
};
VerifierLogStats parse_verifier_stats(std::string_view log);

// The verifier's error in a BPF_LOG_STATS log of a rejected program: the
// last line that is not part of the summary ("R3 unbounded memory access,
// ..."). Empty when there is none.
std::string verifier_stats_error(std::string_view log);

// One program of a verifier run.
struct VerifierProgram {
  uint32_t object = 0;     // which BPF object of the file (a binary may embed several)
  std::string name;        // "ktstr_enqueue"
  std::string section;     // "struct_ops/ktstr_enqueue"
  std::string type;        // libbpf's name of the program type: "struct_ops", "tracing", ...
  std::string attach;      // struct_ops callback ("enqueue") or attach type; "" when none
  bool loaded = false;
  bool reached = true;     // false: the load stopped at an earlier program's failure
  std::string error;       // why it did not load; "" when loaded
  VerifierLogStats stats;  // from the log
  std::optional<uint64_t> verified_insns;  // bpf_prog_info (5.16+), equals processed_insns
  std::optional<uint64_t> xlated_insns;    // bpf_prog_info.xlated_prog_len / 8
  std::optional<uint64_t> jited_bytes;     // bpf_prog_info.jited_prog_len
  std::string log_tail;    // a program that failed: the last lines of its log
  std::string log;         // the whole log as the guest sent it (at most 16 KiB)
};

// Verified instructions: the log's count, else bpf_prog_info's.
std::optional<uint64_t> verified_insns(const VerifierProgram& p);

// One file's load on one kernel.
struct VerifierReport {
  std::string path;             // as given on the command line
  std::string kernel;           // the kernel version it was verified on
  std::vector<VerifierProgram> programs;
  std::vector<std::string> errors;  // object-level failures (open, maps, a missing result)
  bool ok() const;              // every program loaded and no object error
};

nlohmann::json to_json(const VerifierProgram& p);
nlohmann::json to_json(const VerifierReport& r);

// One row per program: program, attach, insns, states, peak, time, stack,
// xlated, jited; failed programs are followed by their error and log tail.
std::string render_verifier_table(const VerifierReport& r);

// Programs matched by object index and name; a side without the program
// has no numbers. Deltas are b - a.
struct VerifierDelta {
  std::string name;
  std::string attach;
  const VerifierProgram* a = nullptr;
  const VerifierProgram* b = nullptr;
};
std::vector<VerifierDelta> compare_verifier_reports(const VerifierReport& a, const VerifierReport& b);
nlohmann::json verifier_compare_json(const VerifierReport& a, const VerifierReport& b);
std::string render_verifier_compare(const VerifierReport& a, const VerifierReport& b);

}  // namespace ktstr
