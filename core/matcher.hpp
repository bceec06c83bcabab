// The scx_bpf_error matchers of a test (expect_scx_bpf_error_contains /
// expect_scx_bpf_error_matches) and the PCRE2 wrapper behind them.
//
// Both matchers look at ONE corpus: the whole scheduler log, "\n", then the
// sched_ext dump (matcher_corpus). Regexes follow the Rust regex crate's
// defaults, which the recipe documents: ^ and $ are the boundaries of the
// whole corpus (never lines, and $ never matches before a final "\n"), .
// does not match "\n" (only "\n": "\r" is an ordinary character), (?m) opts
// in to line anchors and (?s) to dotall; \d, \w, \b are Unicode-aware.
// PCRE2 extras (lookarounds, backreferences) are accepted as PCRE2 has them.
#pragma once

#include "core/result.hpp"
#include "core/spec.hpp"

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct pcre2_real_code_8;  // PCRE2's opaque compiled pattern (pcre2_code)

namespace ktstr {

// Why a pattern failed to compile: PCRE2's message and the byte offset in
// the pattern where it noticed.
struct RegexSyntaxError {
  std::string message;  // "missing closing parenthesis"
  size_t offset = 0;

  bool operator==(const RegexSyntaxError&) const = default;
};

// Where a match is, in bytes of the subject.
struct MatchSpan {
  size_t offset = 0;
  size_t length = 0;

  bool operator==(const MatchSpan&) const = default;
};

// A compiled pattern. Copies share the (immutable, thread-safe) PCRE2 code;
// each search allocates its own match data, so a Regex may be used from
// several threads at once.
class Regex {
 public:
  static tl::expected<Regex, RegexSyntaxError> try_compile(std::string_view pattern);
  // Errors read "invalid regex '(a': missing closing parenthesis at offset 2".
  static Result<Regex> compile(std::string_view pattern);

  // The leftmost match, nullopt when there is none. Invalid UTF-8 in the
  // subject is never an error (it just cannot be part of a match); an error
  // means PCRE2 gave up (e.g. its backtracking limit).
  Result<std::optional<MatchSpan>> find(std::string_view subject) const;
  Result<bool> is_match(std::string_view subject) const;

  const std::string& pattern() const { return pattern_; }

 private:
  Regex(std::string pattern, std::shared_ptr<const pcre2_real_code_8> code)
      : pattern_(std::move(pattern)), code_(std::move(code)) {}

  std::string pattern_;
  std::shared_ptr<const pcre2_real_code_8> code_;
};

// The text both matchers search: the scheduler log, "\n", the sched_ext dump.
std::string matcher_corpus(std::string_view sched_log, std::string_view sched_ext_dump);

// Load-time checks of the patterns themselves (expect_err = true is the
// spec loader's check). A literal must not be empty; a regex must compile
// and must not match the empty string, since such a regex (`a?`, `.*`,
// `^$`) matches every corpus and would pin nothing. Zero-width-only regexes
// that cannot match "" (`(?=a)`, `\b`) are accepted: they still need text.
Status validate_contains_literal(std::string_view literal);
Status validate_match_regex(std::string_view regex);
// Both of the above; messages name the key ("'expect_scx_bpf_error_matches': ...").
Status validate_matcher_patterns(const std::optional<std::string>& contains,
                                 const std::optional<std::string>& matches);

struct MatchOutcome {
  bool ok = true;
  std::string message;  // empty when ok

  bool operator==(const MatchOutcome&) const = default;
};

// The spec's matchers against the corpus, AND semantics; ok when the spec
// sets none. On failure the message has one line per failing matcher:
//   expect_scx_bpf_error_contains("host-triggered crash"): substring not found in the scheduler log + sched_ext dump corpus
//   expect_scx_bpf_error_matches("..."): regex did not match the scheduler log + sched_ext dump corpus
// then "corpus: N bytes, excerpt from byte B:" and corpus_excerpt(corpus).
MatchOutcome evaluate_matchers(const TestSpec& spec, std::string_view corpus);

// The verdict text when a test expects a scheduler error and none happened.
std::string no_error_message();

inline constexpr size_t kExcerptMaxBytes = 400;

struct CorpusExcerpt {
  size_t offset = 0;  // where `text` starts in the corpus
  std::string text;   // at most max_bytes bytes, valid UTF-8
};

// The most useful part of a corpus that fits in max_bytes: a window starting
// a few lines before the last "EXIT:" line, else before the first "triggered
// exit", else before the first "scx_bpf_error", else the tail. Never cuts a UTF-8 sequence;
// bytes that are not valid UTF-8 are shown as '?' (same length).
CorpusExcerpt corpus_excerpt(std::string_view corpus, size_t max_bytes = kExcerptMaxBytes);

}  // namespace ktstr
