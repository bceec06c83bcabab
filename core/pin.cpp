#include "core/pin.hpp"

#include "core/crash_parse.hpp"

#include <cctype>

namespace ktstr {
namespace {

bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

// Length of a "path/file.ext:123: " prefix at the start of msg, 0 if none.
size_t source_prefix_len(std::string_view msg) {
  auto p = find_source_prefix(msg);
  if (!p || p->line_end >= msg.size()) return 0;  // a message follows the ':'
  size_t i = p->line_end + 1;
  while (i < msg.size() && msg[i] == ' ') ++i;
  return i;
}

// Digits become \d+ (with a fraction part when the message has one).
std::string generalize_numbers(std::string_view msg) {
  std::string out;
  size_t i = 0;
  while (i < msg.size()) {
    if (is_digit(msg[i])) {
      while (i < msg.size() && (is_digit(msg[i]) || (msg[i] == '.' && i + 1 < msg.size() && is_digit(msg[i + 1])))) ++i;
      out += "\\d+(?:\\.\\d+)?";
      continue;
    }
    out += regex_escape(msg.substr(i, 1));
    ++i;
  }
  // Integers alone need no fraction part: keep the common case readable.
  const std::string frac = "\\d+(?:\\.\\d+)?";
  bool has_fraction = false;
  for (size_t k = 0; k + 1 < msg.size(); ++k)
    if (is_digit(msg[k]) && msg[k + 1] == '.' && k + 2 < msg.size() && is_digit(msg[k + 2])) has_fraction = true;
  if (!has_fraction) {
    size_t pos = 0;
    while ((pos = out.find(frac, pos)) != std::string::npos) {
      out.replace(pos, frac.size(), "\\d+");
      pos += 3;
    }
  }
  return out;
}

// Trim blanks and the brackets/punctuation a cut through "init[122]" or
// "(5.044s)" leaves at either end.
std::string trim(std::string_view s) {
  auto junk = [](char c) { return std::isspace(static_cast<unsigned char>(c)) || std::string_view("()[],.:;").find(c) != std::string_view::npos; };
  size_t a = 0, b = s.size();
  while (a < b && junk(s[a])) ++a;
  while (b > a && junk(s[b - 1])) --b;
  return std::string(s.substr(a, b - a));
}

}  // namespace

std::string regex_escape(std::string_view text) {
  static const std::string_view kMeta = "\\^$.|?*+()[]{}";
  std::string out;
  for (char c : text) {
    if (kMeta.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string stable_message_part(std::string_view msg) {
  std::string_view rest = msg.substr(source_prefix_len(msg));
  // The longest stretch without digits, trimmed.
  std::string best;
  size_t i = 0;
  while (i < rest.size()) {
    size_t j = i;
    while (j < rest.size() && !is_digit(rest[j])) ++j;
    std::string part = trim(rest.substr(i, j - i));
    if (part.size() > best.size()) best = part;
    while (j < rest.size() && is_digit(rest[j])) ++j;
    i = j;
  }
  return best;
}

std::string pinned_regex(std::string_view msg) {
  auto p = find_source_prefix(msg);
  if (!p) return generalize_numbers(msg);
  // The file by its name in any directory: __FILE__ is as the compiler saw
  // it, so another checkout or build directory gives another directory
  // (absolute, relative or none). The name itself stays literal; \b keeps
  // "my_scx_foo.bpf.c" from passing for "scx_foo.bpf.c". The line number
  // moves with every edit above it.
  std::string_view name = msg.substr(p->name_begin, p->name_end - p->name_begin);
  std::string out = "(?:[^\\s:]*/)?";
  if (std::isalnum(static_cast<unsigned char>(name.front())) || name.front() == '_') out += "\\b";
  out += regex_escape(name) + ":\\d+";
  return out + generalize_numbers(msg.substr(p->line_end));
}

Result<TestSpec> pin_spec(const CrashRecord& crash, const std::string& name) {
  auto specs = parse_spec_text(crash.spec_toml, "crash " + crash.id);
  if (!specs) return tl::unexpected(specs.error().context("reading the test recorded with crash '" + crash.id + "'"));
  if (specs->size() != 1) return fail("crash '" + crash.id + "' does not hold exactly one test");
  TestSpec spec = specs->front();
  spec.name = name.empty() ? spec.name + "_regression" : name;
  if (!is_valid_test_name(spec.name))
    return fail("invalid test name '" + spec.name + "'", "use letters, digits, '_', '.' and '-'");
  // The crash's raw message: the summary reads "reason (msg)".
  std::string msg = crash.summary;
  if (auto open = msg.find(" ("); open != std::string::npos && msg.back() == ')')
    msg = msg.substr(open + 2, msg.size() - open - 3);
  std::string contains = stable_message_part(msg);
  if (contains.empty()) return fail("crash '" + crash.id + "' has no message to pin");
  spec.expect_err = true;
  spec.expect_scx_bpf_error_contains = contains;
  spec.expect_scx_bpf_error_matches = pinned_regex(msg);
  spec.auto_repro = true;
  spec.source_file.clear();
  spec.source_line = 0;
  if (auto st = validate_matchers(spec); !st) return tl::unexpected(st.error());
  return spec;
}

}  // namespace ktstr
