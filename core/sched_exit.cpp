// SchedExit::summary, Signature::key, and how a parsed exit becomes a
// signature: the message with volatile numbers masked (mask_volatile).
#include "core/sched_exit.hpp"

#include "core/crash_parse.hpp"
#include "core/fs.hpp"

#include <cctype>

namespace ktstr {
namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)); }
bool is_hex_digit(char c) { return std::isxdigit(static_cast<unsigned char>(c)); }

// A task reference "<comm>[<pid>]": comm is a run of non-space characters
// (kworker/u16:1, init) right before a bracketed decimal pid.
bool task_ref_at(std::string_view s, size_t i, size_t* comm_begin, size_t* end) {
  if (s[i] != '[') return false;
  size_t j = i + 1;
  if (j < s.size() && s[j] == '-') ++j;
  size_t digits = j;
  while (j < s.size() && is_digit(s[j])) ++j;
  if (j == digits || j >= s.size() || s[j] != ']') return false;
  size_t b = i;
  while (b > 0 && !std::isspace(static_cast<unsigned char>(s[b - 1])) && s[b - 1] != '(' && s[b - 1] != '[') --b;
  *comm_begin = b;
  *end = j + 1;
  return true;
}

}  // namespace

std::string exit_reason_for_kind(int64_t kind) {
  switch (kind) {
    case kScxExitDone: return "normal";
    case kScxExitUnreg: return "unregistered from user space";
    case kScxExitUnregBpf: return "unregistered from BPF";
    case kScxExitUnregKern: return "unregistered from the main kernel";
    case kScxExitSysrq: return "disabled by sysrq-S";
    case kScxExitError: return "runtime error";
    case kScxExitErrorBpf: return "scx_bpf_error";
    case kScxExitErrorStall: return "runnable task stall";
    default: return {};
  }
}

int64_t exit_kind_for_reason(std::string_view reason) {
  for (int64_t k : {kScxExitDone, kScxExitUnreg, kScxExitUnregBpf, kScxExitUnregKern, kScxExitSysrq,
                    kScxExitError, kScxExitErrorBpf, kScxExitErrorStall})
    if (!reason.empty() && exit_reason_for_kind(k) == reason) return k;
  return -1;
}

std::string SchedExit::summary() const {
  std::string r = reason.empty() ? exit_reason_for_kind(kind) : reason;
  if (r.empty()) r = kind >= 0 ? "exit kind " + std::to_string(kind) : "unknown exit";
  return msg.empty() ? r : r + " (" + msg + ")";
}

std::string Signature::key() const {
  // Versioned, NUL-separated: no two field lists hash the same text.
  std::string text = "ktstr-signature-v1";
  for (const std::string& f : {std::to_string(kind), message, bpf_prog, source}) {
    text.push_back('\0');
    text += f;
  }
  return sha256_hex(text).substr(0, 16);
}

std::string mask_volatile(std::string_view raw) {
  // Pass 1: task references, whose comm may hold digits ("kworker/u16:1").
  // Text between two '[' is copied in one piece.
  std::string tasks;
  tasks.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    size_t open = raw.find('[', i);
    if (open == std::string_view::npos) open = raw.size();
    tasks.append(raw.substr(i, open - i));
    i = open;
    if (i == raw.size()) break;
    size_t comm_begin = 0, end = 0;
    if (task_ref_at(raw, i, &comm_begin, &end)) {
      // Which task stalled or tripped an error varies run to run.
      tasks.resize(tasks.size() - (i - comm_begin));
      tasks += "TASK[N]";
      i = end;
    } else {
      tasks.push_back(raw[i++]);
    }
  }
  // Pass 2: numbers. Only a word that starts with a hex digit can change;
  // the text up to the next such word is copied in one piece.
  std::string_view s = tasks;
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t plain = i;
    while (plain < s.size() && !(is_hex_digit(s[plain]) && (plain == 0 || !is_word_char(s[plain - 1])))) ++plain;
    out.append(s.substr(i, plain - i));
    i = plain;
    if (i == s.size()) break;
    const char c = s[i];
    if (c == '0' && i + 2 < s.size() && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_hex_digit(s[i + 2])) {
      size_t j = i + 2;
      while (j < s.size() && is_hex_digit(s[j])) ++j;
      out += "0xN";
      i = j;
      continue;
    }
    // Bare hex words of 8+ digits mixing digits and letters (BPF tags, hashes).
    size_t j = i;
    bool has_digit = false, has_letter = false;
    for (; j < s.size() && is_hex_digit(s[j]); ++j) (is_digit(s[j]) ? has_digit : has_letter) = true;
    if (j - i >= 8 && has_digit && has_letter && (j == s.size() || !is_word_char(s[j]))) {
      out += "X";
      i = j;
      continue;
    }
    if (is_digit(c)) {
      // Decimal numbers, with a fraction: pids, CPUs, line numbers, "5.044s".
      j = i;
      while (j < s.size() && is_digit(s[j])) ++j;
      if (j + 1 < s.size() && s[j] == '.' && is_digit(s[j + 1])) {
        ++j;
        while (j < s.size() && is_digit(s[j])) ++j;
      }
      out += "N";
      i = j;
      continue;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

Signature signature_of(const SchedExit& e) {
  Signature sig;
  sig.kind = e.kind;
  // Directories go before masking: digits in them ("/tmp/build-2/") are
  // not part of the message.
  sig.message = mask_volatile(without_source_dir(e.msg.empty() ? e.reason : e.msg));
  sig.bpf_prog = e.failing_prog;
  sig.source = without_source_dir(e.source_location);
  return sig;
}

Signature upgrade_stored_signature(Signature stored) {
  stored.message = without_source_dir(stored.message, /*masked_line=*/true);
  stored.source = without_source_dir(stored.source);
  return stored;
}

}  // namespace ktstr
