// The crash database: one row per crash occurrence (CrashRecord), grouped by
// signature for `ktstr crash list`, resolved by unique id prefix like git.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "core/sched_exit.hpp"
#include "db/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::db {

// Shortest id prefix find_crash resolves (git uses 4 too).
inline constexpr size_t kMinCrashPrefix = 4;

// All occurrences of one signature.
struct CrashSignatureGroup {
  std::string signature_key;
  int64_t kind = -1;
  std::string message;                 // masked
  std::string bpf_prog;
  std::string source;
  int64_t count = 0;
  int64_t first_seen = 0;              // unix seconds
  int64_t last_seen = 0;
  std::string latest_id;               // the newest occurrence
  std::string latest_summary;          // its unmasked summary
  std::vector<std::string> test_names; // distinct, in order of first occurrence
};

// Inserts the crash, or replaces the one with the same id.
Status put_crash(Store& store, const CrashRecord& crash);

// An id or unique prefix of at least kMinCrashPrefix hex digits. No match:
// nullopt. Ambiguous prefix or a prefix too short: error (listing candidates).
Result<std::optional<CrashRecord>> find_crash(Store& store, const std::string& id_or_prefix);

// Every occurrence of a signature, oldest first (all crashes when key is empty).
Result<std::vector<CrashRecord>> list_crashes(Store& store, const std::string& signature_key = {});

// One group per signature, most recently seen first.
Result<std::vector<CrashSignatureGroup>> list_crash_groups(Store& store);

// A fresh id: 12 hex digits of a hash over the run id, time, signature and
// random bytes (so two crashes of one run in one second still differ).
std::string new_crash_id(const CrashRecord& crash);

// Fills the signature fields (signature_key, kind, message, bpf_prog,
// source) and summary of `crash` from a parsed exit.
void set_crash_signature(CrashRecord& crash, const SchedExit& exit);

// "scx_bpf_error: bpf/scx_ktstr.bpf.c:N: ktstr: host-triggered crash [ktstr_dispatch]"
std::string signature_text(int64_t kind, const std::string& message, const std::string& bpf_prog);

}  // namespace ktstr::db
