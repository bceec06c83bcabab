// `ktstr bisect --signature`: what the user named (a crash id or prefix, a
// pinned spec file, a literal, or /regex/) turned into matchers that survive
// what changes between commits (line numbers, the build directory), plus the
// test to run when the signature names one. And the verdict of one run.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "core/run_result.hpp"
#include "core/spec.hpp"
#include "db/store.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace ktstr::bisectrun {

struct BisectSignature {
  std::string arg;                       // as given
  std::string source;                    // "crash" | "spec" | "literal" | "regex"
  std::optional<std::string> contains;   // AND semantics, like the spec matchers
  std::optional<std::string> matches;
  std::string crash_id;                  // the crash it came from, if any
  std::optional<TestSpec> test;          // the test to run, when the signature names one
  std::string kernel_ref;                // the crash's kernel, if any

  // "contains 'x' and matches /y/"
  std::string describe() const;
  // Does the scheduler log + dump corpus show the signature?
  bool matched_by(const std::string& corpus) const;
  nlohmann::json to_json() const;        // matchers + test (as TOML), for the session params
  static Result<BisectSignature> from_json(const nlohmann::json& j);
};

// The regex for a scx_bpf_error message that tolerates another line number
// and another directory for the source file:
// "/tmp/x/bpf/a.bpf.c:12: boom 3" -> "(?:[^\s:]*/)?a\.bpf\.c:\d+: boom \d+"
std::string portable_message_regex(const std::string& msg);

// Resolves --signature (and --spec/-E for the test). Errors are bad input.
// Order: /regex/; an existing file (a spec with expect_scx_bpf_error_*);
// 4+ hex digits naming a crash (an unknown hex id is an error); else a literal.
// A literal or regex without --spec takes its test from the newest recorded
// crash it matches; none matching is an error.
Result<BisectSignature> resolve_signature(db::Store& store, const std::string& arg, const std::string& spec_file,
                                          const std::vector<std::string>& filters);

// The test as bisect runs it: no expectations (the verdict is bisect's),
// no auto-repro.
TestSpec bisect_run_spec(TestSpec spec);

// One run's verdict, from the run's result before expect_err is applied.
enum class RunVerdict { Bad, Other, Good, Skip };
const char* verdict_name(RunVerdict v);          // "bad" | "other" | "good" | "skip", as stored
std::optional<RunVerdict> parse_verdict(const std::string& text);  // nothing for an unknown text
struct VerdictInfo {
  RunVerdict verdict = RunVerdict::Skip;
  std::string detail;                    // why, one line
};
VerdictInfo classify_run(const RunResult& r, const BisectSignature& sig);

}  // namespace ktstr::bisectrun
