// Parsers for a dead scheduler's output. Line-based and forgiving: every
// piece is optional, a missing piece leaves its field empty.
#include "core/crash_parse.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ktstr {
namespace {


std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view s) { return trim(s).empty(); }
bool starts_with_space(std::string_view s) { return !s.empty() && (s[0] == ' ' || s[0] == '\t'); }
bool is_rule(std::string_view s, char c) {
  s = trim(s);
  return s.size() >= 8 && std::all_of(s.begin(), s.end(), [c](char x) { return x == c; });
}

bool parse_int(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// "scx_bpf_error (msg)" or "EXIT: " payloads: reason, then the message in
// the outer parentheses. A known reason wins over splitting at " (".
void split_reason_msg(std::string_view text, std::string* reason, std::string* msg) {
  text = trim(text);
  for (int64_t k : {kScxExitErrorBpf, kScxExitErrorStall, kScxExitError, kScxExitSysrq, kScxExitUnregKern,
                    kScxExitUnregBpf, kScxExitUnreg, kScxExitDone}) {
    std::string known = exit_reason_for_kind(k);
    if (text.substr(0, known.size()) == known &&
        (text.size() == known.size() || text.substr(known.size(), 2) == " (")) {
      *reason = known;
      std::string_view rest = text.substr(known.size());
      if (rest.size() >= 2) {
        rest.remove_prefix(2);
        if (!rest.empty() && rest.back() == ')') rest.remove_suffix(1);
        *msg = std::string(rest);
      }
      return;
    }
  }
  size_t open = text.find(" (");
  if (open == std::string_view::npos) {
    *reason = std::string(text);
    return;
  }
  *reason = std::string(text.substr(0, open));
  std::string_view rest = text.substr(open + 2);
  if (!rest.empty() && rest.back() == ')') rest.remove_suffix(1);
  *msg = std::string(rest);
}

void fill_derived(SchedExit& e) {
  if (e.kind < 0) e.kind = exit_kind_for_reason(e.reason);
  if (e.reason.empty()) e.reason = exit_reason_for_kind(e.kind);
  if (e.source_location.empty()) e.source_location = source_location_of(e.msg);
  if (e.failing_prog.empty()) {
    for (const auto& f : e.backtrace) {
      if (!f.bpf_tag.empty()) {
        e.failing_prog = f.bpf_prog.empty() ? f.function : f.bpf_prog;
        break;
      }
    }
  }
}

// "<comm>[<pid>] triggered exit kind K on CPU N:" (no "on CPU" before 7.x).
bool parse_trigger(std::string_view line, SchedExit* e) {
  static constexpr std::string_view kMarker = "] triggered exit kind ";
  size_t at = line.find(kMarker);
  if (at == std::string_view::npos) return false;
  std::string_view rest = line.substr(at + kMarker.size());
  size_t end = 0;
  while (end < rest.size() && std::isdigit(static_cast<unsigned char>(rest[end]))) ++end;
  int64_t kind = -1;
  if (!parse_int(rest.substr(0, end), &kind)) return false;
  e->kind = kind;
  e->trigger = std::string(trim(line));
  static constexpr std::string_view kCpu = " on CPU ";
  if (rest.substr(end, kCpu.size()) == kCpu) {
    std::string_view cpu = rest.substr(end + kCpu.size());
    size_t n = 0;
    while (n < cpu.size() && std::isdigit(static_cast<unsigned char>(cpu[n]))) ++n;
    int64_t c = -1;
    if (parse_int(cpu.substr(0, n), &c) && c < (1 << 20)) e->exit_cpu = static_cast<int>(c);
  }
  return true;
}

std::string join_lines(const std::vector<std::string_view>& lines, size_t from, size_t to) {
  while (from < to && is_blank(lines[from])) ++from;
  while (to > from && is_blank(lines[to - 1])) --to;
  std::string out;
  for (size_t i = from; i < to; ++i) {
    out += lines[i];
    out += '\n';
  }
  return out;
}

}  // namespace

std::optional<BacktraceFrame> parse_backtrace_frame(std::string_view line) {
  line = trim(line);
  if (line.substr(0, 2) == "? ") line.remove_prefix(2);
  if (size_t sp = line.find(' '); sp != std::string_view::npos) {
    if (line.substr(sp + 1).front() != '[' || line.back() != ']') return std::nullopt;  // " [module]"
    line = line.substr(0, sp);
  }
  size_t plus = line.rfind("+0x");
  if (plus == std::string_view::npos || plus == 0) return std::nullopt;
  std::string_view off = line.substr(plus + 1);
  size_t slash = off.find('/');
  if (slash == std::string_view::npos || !is_hex(off.substr(2, slash - 2)) || off.substr(slash + 1, 2) != "0x" ||
      !is_hex(off.substr(slash + 3)))
    return std::nullopt;
  BacktraceFrame f;
  f.function = std::string(line.substr(0, plus));
  f.offset = "+" + std::string(off);
  static constexpr std::string_view kProg = "bpf_prog_";
  std::string_view fn = f.function;
  if (fn.substr(0, kProg.size()) == kProg) {
    std::string_view tail = fn.substr(kProg.size());
    std::string_view tag = tail.substr(0, std::min<size_t>(16, tail.size()));
    if (tag.size() == 16 && is_hex(tag)) {
      f.bpf_tag = std::string(tag);
      if (tail.size() > 17 && tail[16] == '_') f.bpf_prog = std::string(tail.substr(17));
    }
  }
  return f;
}

std::optional<SourcePrefix> find_source_prefix(std::string_view msg, bool masked_line) {
  // FILE:LINE with FILE a path whose last component holds a dot and no
  // space ("bpf/x.bpf.c"). Directories may hold spaces only in an absolute
  // path: __FILE__ of "/home/a b/x.bpf.c" still names a file, while text
  // such as "bad value: 3" must not.
  size_t colon = msg.find(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  std::string_view file = msg.substr(0, colon);
  size_t slash = file.rfind('/');
  size_t base = slash == std::string_view::npos ? 0 : slash + 1;
  std::string_view name = file.substr(base);
  if (name.empty() || name.find(' ') != std::string_view::npos || name.find('.') == std::string_view::npos)
    return std::nullopt;
  if (file.substr(0, base).find(' ') != std::string_view::npos && file.front() != '/') return std::nullopt;
  size_t n = colon + 1;
  if (masked_line && msg.substr(n, 1) == "N") {
    ++n;
  } else {
    while (n < msg.size() && std::isdigit(static_cast<unsigned char>(msg[n]))) ++n;
    if (n == colon + 1) return std::nullopt;
  }
  if (n < msg.size() && msg[n] != ':') return std::nullopt;
  return SourcePrefix{base, colon, n};
}

std::string source_location_of(std::string_view msg) {
  auto p = find_source_prefix(msg);
  return p ? std::string(msg.substr(0, p->line_end)) : std::string();
}

std::string without_source_dir(std::string_view text, bool masked_line) {
  auto p = find_source_prefix(text, masked_line);
  if (!p) return std::string(text);
  return std::string(text.substr(p->name_begin));
}

Result<SchedExit> parse_dump_text(std::string_view dump) {
  auto lines = split_lines(dump);
  SchedExit e;
  size_t i = 0;
  while (i < lines.size() && !parse_trigger(lines[i], &e)) ++i;
  if (i == lines.size()) return fail("no 'triggered exit kind' line in the sched_ext dump");
  e.dump = std::string(dump);
  // The reason line: the first non-blank line after the trigger, indented.
  size_t j = i + 1;
  while (j < lines.size() && is_blank(lines[j])) ++j;
  if (j < lines.size() && starts_with_space(lines[j]) && !parse_backtrace_frame(lines[j])) {
    split_reason_msg(lines[j], &e.reason, &e.msg);
    ++j;
  }
  size_t state_from = j;
  size_t cpu_states = lines.size();
  for (size_t k = j; k < lines.size(); ++k)
    if (trim(lines[k]) == "CPU states") {
      cpu_states = k;
      break;
    }
  for (size_t k = j; k < cpu_states; ++k) {
    if (trim(lines[k]) != "Backtrace:") continue;
    size_t f = k + 1;
    for (; f < cpu_states; ++f) {
      auto frame = parse_backtrace_frame(lines[f]);
      if (!frame) break;
      e.backtrace.push_back(std::move(*frame));
    }
    state_from = f;
    break;
  }
  // The scheduler's ops.dump output sits between the backtrace and CPU states.
  e.scheduler_state = join_lines(lines, state_from, cpu_states);
  fill_derived(e);
  return e;
}

Result<SchedExit> parse_sched_log(std::string_view log) {
  auto lines = split_lines(log);
  SchedExit e;
  bool have_dump = false;
  // The last DEBUG DUMP block: a restarted scheduler may have died twice.
  for (size_t i = lines.size(); i-- > 0;) {
    if (trim(lines[i]) != "DEBUG DUMP") continue;
    size_t from = i + 1;
    if (from < lines.size() && is_rule(lines[from], '=')) ++from;
    size_t to = from;
    while (to < lines.size() && !is_rule(lines[to], '=') && lines[to].find("EXIT: ") == std::string_view::npos) ++to;
    std::string body = join_lines(lines, from, to);
    if (auto d = parse_dump_text(body)) {
      e = std::move(*d);
      have_dump = true;
    }
    break;
  }
  std::string exit_line;
  for (size_t i = lines.size(); i-- > 0;) {
    size_t at = lines[i].find("EXIT: ");
    if (at == std::string_view::npos) continue;
    exit_line = std::string(trim(lines[i].substr(at)));
    break;
  }
  if (!have_dump && exit_line.empty()) return fail("no scheduler exit in the scheduler log (no DEBUG DUMP and no 'EXIT:' line)");
  if (!exit_line.empty()) {
    e.exit_line = exit_line;
    std::string reason, msg;
    // trim() took the blank after "EXIT:" when nothing follows it.
    std::string_view payload = exit_line;
    payload.remove_prefix(std::min<size_t>(payload.size(), 6));
    split_reason_msg(payload, &reason, &msg);
    if (e.reason.empty()) e.reason = reason;
    if (e.msg.empty()) e.msg = msg;
  }
  fill_derived(e);
  return e;
}

std::string extract_trace_dump(std::string_view trace) {
  static constexpr std::string_view kEvent = "sched_ext_dump:";
  std::string out;
  for (auto line : split_lines(trace)) {
    size_t at = line.find(kEvent);
    if (at == std::string_view::npos) continue;
    std::string_view payload = line.substr(at + kEvent.size());
    if (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
    out += payload;
    out += '\n';
  }
  return out;
}

std::optional<int64_t> trace_exit_kind(std::string_view trace) {
  std::optional<int64_t> kind;
  for (auto line : split_lines(trace)) {
    size_t at = line.find("sched_ext_exit:");
    if (at == std::string_view::npos) continue;
    std::string_view rest = line.substr(at);
    size_t k = rest.rfind("kind");
    if (k == std::string_view::npos) continue;
    std::string_view num = rest.substr(k + 4);
    if (!num.empty() && (num.front() == ' ' || num.front() == '=')) num.remove_prefix(1);
    size_t n = 0;
    while (n < num.size() && std::isdigit(static_cast<unsigned char>(num[n]))) ++n;
    int64_t v = -1;
    if (parse_int(num.substr(0, n), &v)) kind = v;
  }
  return kind;
}

Result<SchedExit> parse_trace_dump(std::string_view trace) {
  auto kind = trace_exit_kind(trace);
  const bool raw = trace.find("sched_ext_dump:") != std::string_view::npos;
  auto e = raw ? parse_dump_text(extract_trace_dump(trace)) : parse_dump_text(trace);
  if (!e) {
    if (!kind) return fail("no sched_ext_dump or sched_ext_exit events in the trace");
    SchedExit only_kind;
    only_kind.kind = *kind;
    fill_derived(only_kind);
    return only_kind;
  }
  if (e->kind < 0 && kind) e->kind = *kind;
  return e;
}

Result<SchedExit> parse_dmesg_exit(std::string_view dmesg) {
  auto lines = split_lines(dmesg);
  // Strip a "[   18.244137] " timestamp (and a "<3>" level before it).
  auto body = [](std::string_view l) {
    size_t open = l.find('[');
    size_t close = l.find(']');
    if (open == std::string_view::npos || close == std::string_view::npos || open > 3 || close < open) return l;
    std::string_view stamp = l.substr(open + 1, close - open - 1);
    bool is_stamp = !stamp.empty() && std::all_of(stamp.begin(), stamp.end(), [](char c) {
      return c == ' ' || c == '.' || std::isdigit(static_cast<unsigned char>(c));
    });
    if (!is_stamp) return l;
    l.remove_prefix(close + 1);
    if (!l.empty() && l.front() == ' ') l.remove_prefix(1);
    return l;
  };
  static constexpr std::string_view kDisabled = "sched_ext: BPF scheduler \"";
  for (size_t i = lines.size(); i-- > 0;) {
    std::string_view l = body(lines[i]);
    size_t at = l.find(kDisabled);
    if (at == std::string_view::npos) continue;
    std::string_view rest = l.substr(at + kDisabled.size());
    size_t q = rest.find('"');
    if (q == std::string_view::npos) continue;
    std::string name(rest.substr(0, q));
    std::string_view after = trim(rest.substr(q + 1));
    if (after.substr(0, 8) != "disabled") continue;
    SchedExit e;
    after = trim(after.substr(8));
    if (after.size() >= 2 && after.front() == '(' && after.back() == ')') e.reason = std::string(after.substr(1, after.size() - 2));
    const std::string msg_prefix = "sched_ext: " + name + ": ";
    size_t j = i + 1;
    if (j < lines.size()) {
      std::string_view m = body(lines[j]);
      if (size_t p = m.find(msg_prefix); p != std::string_view::npos) {
        e.msg = std::string(trim(m.substr(p + msg_prefix.size())));
        ++j;
      }
    }
    for (; j < lines.size(); ++j) {
      auto frame = parse_backtrace_frame(body(lines[j]));
      if (!frame) break;
      e.backtrace.push_back(std::move(*frame));
    }
    fill_derived(e);
    return e;
  }
  return fail("no 'sched_ext: BPF scheduler ... disabled' line in dmesg");
}

std::string libbpf_error_line(std::string_view sched_log) {
  static constexpr std::string_view kTag = "libbpf: ";
  std::string_view last;
  for (std::string_view line : split_lines(sched_log)) {
    size_t at = line.find(kTag);
    if (at == std::string_view::npos) continue;
    line = trim(line.substr(at));
    std::string lower(line);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    // Warnings such as "struct_ops ...: member ... not found in kernel,
    // skipping it" also appear on loads that succeed.
    if (lower.find("fail") != std::string::npos || lower.find("error") != std::string::npos)
      return std::string(line);
    last = line;
  }
  return std::string(last);
}

SchedExit merge_exits(const std::vector<SchedExit>& by_preference) {
  SchedExit m;
  auto take = [](auto& dst, const auto& src, bool empty) {
    if (empty) dst = src;
  };
  for (const auto& e : by_preference) {
    take(m.kind, e.kind, m.kind < 0);
    take(m.reason, e.reason, m.reason.empty());
    take(m.msg, e.msg, m.msg.empty());
    take(m.trigger, e.trigger, m.trigger.empty());
    take(m.exit_cpu, e.exit_cpu, m.exit_cpu < 0);
    take(m.backtrace, e.backtrace, m.backtrace.empty());
    take(m.scheduler_state, e.scheduler_state, m.scheduler_state.empty());
    take(m.dump, e.dump, m.dump.empty());
    take(m.exit_line, e.exit_line, m.exit_line.empty());
  }
  fill_derived(m);
  return m;
}

Result<SchedExit> exit_from_captures(std::string_view sched_log, std::string_view trace, std::string_view dmesg) {
  std::vector<SchedExit> found;
  if (auto e = parse_sched_log(sched_log)) found.push_back(std::move(*e));
  if (auto e = parse_trace_dump(trace)) found.push_back(std::move(*e));
  if (auto e = parse_dmesg_exit(dmesg)) found.push_back(std::move(*e));
  if (found.empty()) return fail("no scheduler exit in the scheduler log, trace or dmesg");
  return merge_exits(found);
}

}  // namespace ktstr
