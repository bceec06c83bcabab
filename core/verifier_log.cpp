// Verifier logs: recognise, find the final error, collapse repetition.
#include "core/verifier_log.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <deque>
#include <vector>

namespace ktstr {
namespace {

constexpr size_t kMaxPeriod = 64;   // longest repeated block looked for
constexpr size_t kMinRepeats = 3;   // fewer repeats are shown as they are


bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }

// "12: (79) r1 = *(u64 *)(r3 +0)": an instruction as the verifier prints it.
bool is_insn_line(std::string_view l) {
  size_t n = 0;
  while (n < l.size() && is_digit(l[n])) ++n;
  return n > 0 && l.substr(n, 3) == ": (" && l.size() > n + 6 && l[n + 5] == ')';
}

// "2: R1=ctx() R7=...": register state after an instruction.
bool is_state_line(std::string_view l) {
  size_t n = 0;
  while (n < l.size() && is_digit(l[n])) ++n;
  return n > 0 && l.substr(n, 3) == ": R";
}

bool is_processed_line(std::string_view l) { return l.rfind("processed ", 0) == 0 && l.find(" insns") != std::string_view::npos; }

// The same line modulo numbers: digit runs and hex literals count as one
// '#'. FNV-1a over the normalised bytes, computed in place: a log has
// hundreds of thousands of lines and a copy of each would dominate.
uint64_t normalized_hash(std::string_view l) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 1099511628211ull; };
  for (size_t i = 0; i < l.size();) {
    if (l[i] == '0' && i + 1 < l.size() && l[i + 1] == 'x') {
      i += 2;
      while (i < l.size() && std::isxdigit(static_cast<unsigned char>(l[i]))) ++i;
      mix('#');
    } else if (is_digit(l[i])) {
      while (i < l.size() && is_digit(l[i])) ++i;
      mix('#');
    } else {
      mix(static_cast<unsigned char>(l[i++]));
    }
  }
  return h;
}

// The region of the last program's load log, or the whole text.
std::pair<size_t, size_t> load_log_region(const std::vector<std::string_view>& lines) {
  size_t begin = 0, end = lines.size();
  for (size_t i = lines.size(); i-- > 0;) {
    if (lines[i].find("-- BEGIN PROG LOAD LOG --") != std::string_view::npos) {
      begin = i + 1;
      break;
    }
  }
  for (size_t i = begin; i < lines.size(); ++i) {
    if (lines[i].find("-- END PROG LOAD LOG --") != std::string_view::npos) {
      end = i;
      break;
    }
  }
  return {begin, end};
}

std::string omitted(size_t n, const char* what) {
  return "... " + std::to_string(n) + (*what ? " " : "") + what + (n == 1 ? " line" : " lines") + " omitted ...";
}

}  // namespace

bool looks_like_verifier_failure(std::string_view log) {
  if (log.find("-- BEGIN PROG LOAD LOG --") != std::string_view::npos) return true;
  if (log.find("BPF program load failed") != std::string_view::npos) return true;
  for (auto l : split_lines(log))
    if (is_processed_line(l)) return true;
  return false;
}

std::string verifier_error_line(std::string_view log) {
  auto lines = split_lines(log);
  auto [begin, end] = load_log_region(lines);
  size_t last_insn = end;
  for (size_t i = end; i-- > begin;)
    if (is_insn_line(lines[i])) {
      last_insn = i;
      break;
    }
  if (last_insn != end) {
    for (size_t i = last_insn + 1; i < end; ++i) {
      std::string_view l = lines[i];
      if (l.find_first_not_of(" \t\r") == std::string_view::npos || l.front() == ';' || is_state_line(l)) continue;
      return std::string(l);
    }
  }
  for (size_t i = end; i-- > begin;) {
    std::string_view l = lines[i];
    if (l.find_first_not_of(" \t\r") == std::string_view::npos || is_processed_line(l)) continue;
    return std::string(l);
  }
  return {};
}

std::string collapse_verifier_log(std::string_view log, size_t max_lines) {
  auto lines = split_lines(log);
  const size_t n = lines.size();
  std::vector<uint64_t> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = normalized_hash(lines[i]);

  // Views into `log`, or into `notes` for the omission markers (a deque
  // keeps its elements in place as it grows).
  std::deque<std::string> notes;
  std::vector<std::string_view> out;
  out.reserve(n);
  for (size_t i = 0; i < n;) {
    size_t best_p = 0, best_k = 0;
    for (size_t p = 1; p <= kMaxPeriod && i + p * kMinRepeats <= n; ++p) {
      size_t k = 1;
      while (i + (k + 1) * p <= n && std::equal(h.begin() + i, h.begin() + i + p, h.begin() + i + k * p)) ++k;
      if (k >= kMinRepeats && k * p > best_k * best_p) best_p = p, best_k = k;
    }
    if (best_p == 0) {
      out.push_back(lines[i++]);
      continue;
    }
    for (size_t j = 0; j < best_p; ++j) out.push_back(lines[i + j]);
    out.push_back(notes.emplace_back(omitted((best_k - 2) * best_p, "similar")));
    for (size_t j = 0; j < best_p; ++j) out.push_back(lines[i + (best_k - 1) * best_p + j]);
    i += best_k * best_p;
  }

  if (max_lines > 0 && out.size() > max_lines) {
    const size_t head = max_lines / 2;
    const size_t tail = max_lines - head - 1;
    const std::string error = verifier_error_line(log);
    const size_t tail_from = out.size() - tail;
    auto err = std::find(out.begin() + static_cast<std::ptrdiff_t>(head), out.end(), error);
    std::vector<std::string_view> kept(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(head));
    const size_t err_at = static_cast<size_t>(err - out.begin());
    if (!error.empty() && err != out.end() && err_at < tail_from) {
      // The final error would be cut: keep it between two omission markers.
      kept.push_back(notes.emplace_back(omitted(err_at - head, "")));
      kept.push_back(notes.emplace_back(error));
      if (tail_from > err_at + 1) kept.push_back(notes.emplace_back(omitted(tail_from - err_at - 1, "")));
    } else {
      kept.push_back(notes.emplace_back(omitted(tail_from - head, "")));
    }
    kept.insert(kept.end(), out.begin() + static_cast<std::ptrdiff_t>(tail_from), out.end());
    out = std::move(kept);
  }
  size_t size = 0;
  for (auto l : out) size += l.size() + 1;
  std::string text;
  text.reserve(size);
  for (auto l : out) {
    text += l;
    text += '\n';
  }
  return text;
}

}  // namespace ktstr
