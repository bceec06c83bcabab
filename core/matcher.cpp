// PCRE2 wrapper and the scx_bpf_error matchers (see matcher.hpp for the
// semantics; the compile options below are what make PCRE2 behave like the
// Rust regex crate's defaults).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "core/matcher.hpp"

#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdio>

namespace ktstr {
namespace {

// UTF-8 and UCP: Unicode text and Unicode \d \w \b (Rust's default).
// MATCH_INVALID_UTF: a log with stray bytes is searched, not rejected.
// DOLLAR_ENDONLY: without (?m), $ is the very end only (PCRE2 would also
// match before a final "\n"). ALT_CIRCUMFLEX: with (?m), ^ also matches
// after a final "\n", as Rust's does. NEVER_BACKSLASH_C: \C could split a
// UTF-8 sequence and Rust has no such escape.
constexpr uint32_t kCompileOptions = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY |
                                     PCRE2_ALT_CIRCUMFLEX | PCRE2_NEVER_BACKSLASH_C;

constexpr std::string_view kCorpusName = "the scheduler log + sched_ext dump corpus";

std::string pcre2_message(int code) {
  std::array<PCRE2_UCHAR, 256> buf{};
  int n = pcre2_get_error_message(code, buf.data(), buf.size());
  if (n < 0) return "pcre2 error " + std::to_string(code);
  return std::string(reinterpret_cast<const char*>(buf.data()), static_cast<size_t>(n));
}

struct CompileContextFree {
  void operator()(pcre2_compile_context* c) const { pcre2_compile_context_free(c); }
};
struct MatchDataFree {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

// The length of the UTF-8 sequence starting at s[i] when it is a valid one
// (no overlongs, surrogates or code points past U+10FFFF), else 0.
size_t valid_utf8_at(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  unsigned char c1 = byte(i + 1);
  if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0) || (c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90))
    return 0;
  return len;
}

// Invalid bytes become '?', so the text is valid UTF-8 (JSON output and
// terminals need that) and keeps its length.
std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_utf8_at(s, i);
    if (len == 0) {
      out += '?';
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  return out;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Moves [start, end) inward so neither end splits a UTF-8 sequence.
void trim_to_utf8_boundaries(std::string_view s, size_t& start, size_t& end) {
  for (int k = 0; k < 3 && start < end && is_continuation(static_cast<unsigned char>(s[start])); ++k) ++start;
  size_t lead = end;
  for (int k = 0; k < 4 && lead > start; ++k) {
    --lead;
    if (!is_continuation(static_cast<unsigned char>(s[lead]))) break;
  }
  if (lead < end && valid_utf8_at(s, lead) > end - lead) end = lead;
}

// The pattern as written, in double quotes; quotes and control characters
// escaped, backslashes left alone so a regex reads as typed.
std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if ((c >= 0 && c < 0x20) || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return sanitize_utf8(out) + "\"";
}

std::optional<size_t> excerpt_anchor(std::string_view corpus) {
  if (size_t at = corpus.rfind("EXIT: "); at != std::string_view::npos) return at;
  for (std::string_view word : {"triggered exit", "scx_bpf_error"})
    if (size_t at = corpus.find(word); at != std::string_view::npos) return at;
  return std::nullopt;
}

}  // namespace

tl::expected<Regex, RegexSyntaxError> Regex::try_compile(std::string_view pattern) {
  std::unique_ptr<pcre2_compile_context, CompileContextFree> context(pcre2_compile_context_create(nullptr));
  if (!context) throw std::bad_alloc();
  // Only "\n" ends a line: "\r" is an ordinary character for . $ and (?m).
  pcre2_set_newline(context.get(), PCRE2_NEWLINE_LF);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), kCompileOptions,
                                   &error, &offset, context.get());
  if (!code) return tl::unexpected(RegexSyntaxError{pcre2_message(error), static_cast<size_t>(offset)});
  return Regex(std::string(pattern), std::shared_ptr<const pcre2_real_code_8>(code, [](const pcre2_real_code_8* c) {
                 pcre2_code_free(const_cast<pcre2_code*>(c));
               }));
}

Result<Regex> Regex::compile(std::string_view pattern) {
  auto regex = try_compile(pattern);
  if (!regex)
    return fail("invalid regex '" + std::string(pattern) + "': " + regex.error().message + " at offset " +
                std::to_string(regex.error().offset));
  return std::move(*regex);
}

Result<std::optional<MatchSpan>> Regex::find(std::string_view subject) const {
  std::unique_ptr<pcre2_match_data, MatchDataFree> data(pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  if (!data) throw std::bad_alloc();
  // PCRE2 wants a non-null pointer even for an empty subject.
  auto text = reinterpret_cast<PCRE2_SPTR>(subject.data() ? subject.data() : "");
  int rc = pcre2_match(code_.get(), text, subject.size(), 0, 0, data.get(), nullptr);
  if (rc == PCRE2_ERROR_NOMATCH) return std::optional<MatchSpan>();
  if (rc < 0) return fail("matching regex '" + pattern_ + "' failed: " + pcre2_message(rc));
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
  // \K in a lookahead can put the end before the start; report no length then.
  size_t begin = ovector[0], end = std::max(ovector[0], ovector[1]);
  return std::optional<MatchSpan>(MatchSpan{begin, end - begin});
}

Result<bool> Regex::is_match(std::string_view subject) const {
  auto found = find(subject);
  if (!found) return tl::unexpected(found.error());
  return found->has_value();
}

std::string matcher_corpus(std::string_view sched_log, std::string_view sched_ext_dump) {
  std::string corpus;
  corpus.reserve(sched_log.size() + 1 + sched_ext_dump.size());
  corpus.append(sched_log).append("\n").append(sched_ext_dump);
  return corpus;
}

Status validate_contains_literal(std::string_view literal) {
  if (literal.empty())
    return fail("substring must not be empty", "an empty substring is found in every corpus; pin a fragment of the error");
  return {};
}

Status validate_match_regex(std::string_view regex) {
  if (regex.empty())
    return fail("regex must not be empty", "an empty regex matches every corpus; pin a fragment of the error");
  auto compiled = Regex::compile(regex);
  if (!compiled) return fail(compiled.error());
  auto empty = compiled->is_match("");
  if (!empty) return fail(empty.error());
  if (*empty)
    return fail("regex '" + std::string(regex) + "' matches the empty string",
                "it would match every corpus and pin nothing; make it require text (e.g. 'x+' rather than 'x*')");
  return {};
}

Status validate_matcher_patterns(const std::optional<std::string>& contains,
                                 const std::optional<std::string>& matches) {
  if (contains)
    if (auto st = validate_contains_literal(*contains); !st)
      return fail(st.error().context("'expect_scx_bpf_error_contains'"));
  if (matches)
    if (auto st = validate_match_regex(*matches); !st) return fail(st.error().context("'expect_scx_bpf_error_matches'"));
  return {};
}

MatchOutcome evaluate_matchers(const TestSpec& spec, std::string_view corpus) {
  std::string failures;
  if (auto& literal = spec.expect_scx_bpf_error_contains) {
    if (corpus.find(*literal) == std::string_view::npos)
      failures += "expect_scx_bpf_error_contains(" + quoted(*literal) + "): substring not found in " +
                  std::string(kCorpusName) + "\n";
  }
  if (auto& pattern = spec.expect_scx_bpf_error_matches) {
    const std::string label = "expect_scx_bpf_error_matches(" + quoted(*pattern) + ")";
    auto regex = Regex::compile(*pattern);
    auto matched = regex ? regex->is_match(corpus) : Result<bool>(tl::unexpected(regex.error()));
    if (!matched)
      failures += label + ": " + matched.error().msg + "\n";
    else if (!*matched)
      failures += label + ": regex did not match " + std::string(kCorpusName) + "\n";
  }
  if (failures.empty()) return {};
  if (corpus.empty()) return {false, failures + "corpus: 0 bytes (nothing was captured)"};
  CorpusExcerpt excerpt = corpus_excerpt(corpus);
  return {false, failures + "corpus: " + std::to_string(corpus.size()) + " bytes, excerpt from byte " +
                     std::to_string(excerpt.offset) + ":\n" + excerpt.text};
}

std::string no_error_message() { return "expected a scheduler error, none happened"; }

CorpusExcerpt corpus_excerpt(std::string_view corpus, size_t max_bytes) {
  size_t start = 0, end = corpus.size();
  if (corpus.size() > max_bytes) {
    auto line_start = [&](size_t at) {
      size_t nl = at == 0 ? std::string_view::npos : corpus.rfind('\n', at - 1);
      return nl == std::string_view::npos ? 0 : nl + 1;
    };
    std::optional<size_t> anchor = excerpt_anchor(corpus);
    const size_t lead = max_bytes / 4;  // context before the anchor
    // Show the anchor's whole line unless the line is too long for that.
    size_t base = corpus.size();
    if (anchor) base = *anchor - line_start(*anchor) <= lead ? line_start(*anchor) : *anchor;
    start = anchor ? base - std::min(base, lead) : corpus.size() - max_bytes;
    end = std::min(corpus.size(), start + max_bytes);
    if (end - start < max_bytes) start = end - max_bytes;  // near the end: show more before
    // Begin at a whole line when one starts before the anchor's line.
    if (start > 0 && corpus[start - 1] != '\n') {
      size_t nl = corpus.find('\n', start);
      if (nl != std::string_view::npos && nl < base) start = nl + 1;
    }
    trim_to_utf8_boundaries(corpus, start, end);
  }
  return {start, sanitize_utf8(corpus.substr(start, end - start))};
}

}  // namespace ktstr
