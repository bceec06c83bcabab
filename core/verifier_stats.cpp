// The verifier's statistics: log parsing, JSON, the table and comparisons.
#include "core/verifier_stats.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <charconv>
#include <map>

namespace ktstr {
namespace {

using nlohmann::json;

// The unsigned number at the start of `s`, advancing past it; nothing on
// no digits or overflow.
std::optional<uint64_t> take_number(std::string_view& s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  s.remove_prefix(size_t(end - s.data()));
  return v;
}

bool take_prefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "processed 85 insns (limit 1000000) max_states_per_insn 0 total_states 6
// peak_states 6 mark_read 3": the key/value pairs after the count, in any
// order; unknown keys are skipped so a kernel adding one still parses.
void parse_processed(std::string_view rest, VerifierLogStats& st) {
  auto n = take_number(rest);
  if (!n || !take_prefix(rest, " insns")) return;
  st.processed_insns = n;
  rest = trim_view(rest);
  if (take_prefix(rest, "(limit ")) {
    if (auto limit = take_number(rest); limit && take_prefix(rest, ")")) st.insn_limit = limit;
  }
  static const std::pair<std::string_view, std::optional<uint64_t> VerifierLogStats::*> keys[] = {
      {"max_states_per_insn", &VerifierLogStats::max_states_per_insn},
      {"total_states", &VerifierLogStats::total_states},
      {"peak_states", &VerifierLogStats::peak_states},
      {"mark_read", &VerifierLogStats::mark_read},
  };
  while (!(rest = trim_view(rest)).empty()) {
    size_t sp = rest.find(' ');
    std::string_view key = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view() : trim_view(rest.substr(sp));
    auto value = take_number(rest);
    if (!value) continue;  // not "key N": skip the word
    if (!rest.empty() && rest.front() != ' ') {  // "3x": not a number, skip it
      size_t next = rest.find(' ');
      rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
      continue;
    }
    for (auto& [name, field] : keys)
      if (key == name) st.*field = value;
  }
}

std::string num(const std::optional<uint64_t>& v) { return v ? std::to_string(*v) : "-"; }

json opt_json(const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); }

std::string signed_delta(const std::optional<uint64_t>& a, const std::optional<uint64_t>& b) {
  if (!a || !b) return "-";
  int64_t d = int64_t(*b) - int64_t(*a);
  return (d > 0 ? "+" : "") + std::to_string(d);
}

json delta_json(const std::optional<uint64_t>& a, const std::optional<uint64_t>& b) {
  json j = {{"a", opt_json(a)}, {"b", opt_json(b)}, {"delta", nullptr}};
  if (a && b) j["delta"] = int64_t(*b) - int64_t(*a);
  return j;
}

std::string render_rows(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()), 0);
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      // Names left-aligned, numbers right-aligned.
      bool left = i < 2;
      std::string pad(width[i] - r[i].size(), ' ');
      line += left ? r[i] + pad : pad + r[i];
      if (i + 1 < r.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string attach_of(const VerifierProgram& p) { return p.attach.empty() ? p.section : p.attach; }

// "2 more programs were not loaded: libbpf stops at the first failure".
std::string not_reached_line(const VerifierReport& r, const std::string& prefix) {
  size_t n = std::count_if(r.programs.begin(), r.programs.end(), [](const auto& p) { return !p.loaded && !p.reached; });
  if (n == 0) return "";
  return prefix + std::to_string(n) + (n == 1 ? " program was" : " programs were") +
         " not loaded: libbpf stops the object's load at the first failure\n";
}

std::string side_marks(const VerifierDelta& d) {
  std::string out;
  for (auto [p, side] : {std::pair{d.a, "a"}, std::pair{d.b, "b"}})
    if (p && !p->loaded) out += std::string(" (") + side + (p->reached ? " failed)" : " not loaded)");
  return out;
}

std::optional<uint64_t> time_us(const VerifierProgram* p) { return p ? p->stats.verification_time_us : std::nullopt; }

}  // namespace

VerifierLogStats parse_verifier_stats(std::string_view log) {
  VerifierLogStats st;
  std::vector<uint64_t> subprog_stacks;
  for (std::string_view line : split_lines(log)) {
    std::string_view l = trim_view(line);
    if (take_prefix(l, "verification time ")) {
      if (auto v = take_number(l); v && l == " usec") st.verification_time_us = v;
    } else if (take_prefix(l, "stack depth max ")) {
      if (auto v = take_number(l); v && trim_view(l).empty()) st.stack_max = v;
      subprog_stacks.clear();  // a new summary starts
    } else if (take_prefix(l, "stack depth ")) {
      l = trim_view(l);
      if (!l.empty() && l.find_first_not_of("0123456789+") == std::string_view::npos) st.stack_depth = std::string(l);
    } else if (take_prefix(l, "subprog ")) {
      // "subprog 1 (name) static insns_self 10 insns_total 10 stack 0": the
      // stack is the last word pair.
      size_t at = l.rfind(" stack ");
      std::string_view head = l;
      if (at == std::string_view::npos || !take_number(head) || !take_prefix(head, " (")) continue;
      std::string_view tail = l.substr(at + 7);
      if (auto v = take_number(tail); v && tail.empty()) {
        subprog_stacks.push_back(*v);
        st.subprogs = subprog_stacks.size();
        st.stack_depth.clear();
        for (size_t i = 0; i < subprog_stacks.size(); ++i)
          st.stack_depth += (i ? "+" : "") + std::to_string(subprog_stacks[i]);
      }
    } else if (take_prefix(l, "processed ")) {
      parse_processed(l, st);
    }
  }
  return st;
}

std::string verifier_stats_error(std::string_view log) {
  std::string_view found;
  for (std::string_view line : split_lines(log)) {
    std::string_view l = trim_view(line);
    if (l.empty()) continue;
    bool summary = l.rfind("verification time ", 0) == 0 || l.rfind("stack depth ", 0) == 0 ||
                   l.rfind("processed ", 0) == 0 ||
                   (l.rfind("subprog ", 0) == 0 && l.find(" insns_self ") != std::string_view::npos);
    if (!summary) found = l;
  }
  return std::string(found);
}

std::optional<uint64_t> verified_insns(const VerifierProgram& p) {
  return p.stats.processed_insns ? p.stats.processed_insns : p.verified_insns;
}

bool VerifierReport::ok() const {
  return errors.empty() && !programs.empty() &&
         std::all_of(programs.begin(), programs.end(), [](const VerifierProgram& p) { return p.loaded; });
}

json to_json(const VerifierProgram& p) {
  json j = {{"object", p.object},
            {"name", p.name},
            {"section", p.section},
            {"type", p.type},
            {"attach", p.attach},
            {"loaded", p.loaded},
            {"verified_insns", opt_json(verified_insns(p))},
            {"insn_limit", opt_json(p.stats.insn_limit)},
            {"total_states", opt_json(p.stats.total_states)},
            {"peak_states", opt_json(p.stats.peak_states)},
            {"max_states_per_insn", opt_json(p.stats.max_states_per_insn)},
            {"mark_read", opt_json(p.stats.mark_read)},
            {"verification_time_us", opt_json(p.stats.verification_time_us)},
            {"stack_depth", p.stats.stack_depth},
            {"stack_max", opt_json(p.stats.stack_max)},
            {"xlated_insns", opt_json(p.xlated_insns)},
            {"jited_bytes", opt_json(p.jited_bytes)},
            {"log", p.log}};
  if (!p.loaded) {
    j["reached"] = p.reached;
    j["error"] = p.error;
    j["log_tail"] = p.log_tail;
  }
  return j;
}

json to_json(const VerifierReport& r) {
  json j = {{"path", r.path}, {"kernel", r.kernel}, {"ok", r.ok()}, {"errors", r.errors}};
  j["programs"] = json::array();
  for (const VerifierProgram& p : r.programs) j["programs"].push_back(to_json(p));
  return j;
}

std::string render_verifier_table(const VerifierReport& r) {
  bool several = std::any_of(r.programs.begin(), r.programs.end(), [](const auto& p) { return p.object > 0; });
  std::vector<std::vector<std::string>> rows = {
      {"program", "attach", "insns", "states", "peak", "max/insn", "time us", "stack", "xlated", "jited"}};
  for (const VerifierProgram& p : r.programs) {
    std::string name = several ? std::to_string(p.object) + ":" + p.name : p.name;
    if (!p.loaded) name += p.reached ? " (failed)" : " (not loaded)";
    rows.push_back({name, attach_of(p), num(verified_insns(p)), num(p.stats.total_states),
                    num(p.stats.peak_states), num(p.stats.max_states_per_insn), num(p.stats.verification_time_us),
                    p.stats.stack_depth.empty() ? "-" : p.stats.stack_depth, num(p.xlated_insns),
                    num(p.jited_bytes)});
  }
  std::string out = render_rows(rows);
  for (const VerifierProgram& p : r.programs) {
    if (p.loaded || !p.reached) continue;
    out += "\nprogram '" + p.name + "' did not load: " + p.error + "\n";
    if (!p.log_tail.empty()) out += p.log_tail + (p.log_tail.back() == '\n' ? "" : "\n");
  }
  out += not_reached_line(r, "");
  for (const std::string& e : r.errors) out += "error: " + e + "\n";
  return out;
}

std::vector<VerifierDelta> compare_verifier_reports(const VerifierReport& a, const VerifierReport& b) {
  std::vector<VerifierDelta> out;
  std::map<std::pair<uint32_t, std::string>, size_t> index;
  for (const VerifierProgram& p : a.programs) {
    index[{p.object, p.name}] = out.size();
    out.push_back({p.name, attach_of(p), &p, nullptr});
  }
  for (const VerifierProgram& p : b.programs) {
    auto it = index.find({p.object, p.name});
    if (it != index.end()) {
      out[it->second].b = &p;
    } else {
      out.push_back({p.name, attach_of(p), nullptr, &p});
    }
  }
  return out;
}

json verifier_compare_json(const VerifierReport& a, const VerifierReport& b) {
  json j = {{"a", to_json(a)}, {"b", to_json(b)}, {"deltas", json::array()}};
  for (const VerifierDelta& d : compare_verifier_reports(a, b)) {
    auto get = [](const VerifierProgram* p, std::optional<uint64_t> (*f)(const VerifierProgram&)) {
      return p ? f(*p) : std::nullopt;
    };
    j["deltas"].push_back(
        {{"name", d.name},
         {"attach", d.attach},
         {"in", d.a && d.b ? "both" : d.a ? "a" : "b"},
         {"verified_insns", delta_json(get(d.a, verified_insns), get(d.b, verified_insns))},
         {"total_states", delta_json(get(d.a, [](const VerifierProgram& p) { return p.stats.total_states; }),
                                     get(d.b, [](const VerifierProgram& p) { return p.stats.total_states; }))},
         {"peak_states", delta_json(get(d.a, [](const VerifierProgram& p) { return p.stats.peak_states; }),
                                    get(d.b, [](const VerifierProgram& p) { return p.stats.peak_states; }))},
         {"verification_time_us", delta_json(time_us(d.a), time_us(d.b))},
         {"xlated_insns", delta_json(get(d.a, [](const VerifierProgram& p) { return p.xlated_insns; }),
                                     get(d.b, [](const VerifierProgram& p) { return p.xlated_insns; }))},
         {"jited_bytes", delta_json(get(d.a, [](const VerifierProgram& p) { return p.jited_bytes; }),
                                    get(d.b, [](const VerifierProgram& p) { return p.jited_bytes; }))}});
  }
  return j;
}

std::string render_verifier_compare(const VerifierReport& a, const VerifierReport& b) {
  std::vector<std::vector<std::string>> rows = {{"program", "attach", "insns a", "insns b", "delta", "states a",
                                                 "states b", "delta", "peak a", "peak b", "delta", "time us a",
                                                 "time us b", "delta", "xlated", "delta", "jited", "delta"}};
  auto field = [](const VerifierProgram* p, auto f) -> std::optional<uint64_t> { return p ? f(*p) : std::nullopt; };
  auto insns = [](const VerifierProgram& p) { return verified_insns(p); };
  auto states = [](const VerifierProgram& p) { return p.stats.total_states; };
  auto peak = [](const VerifierProgram& p) { return p.stats.peak_states; };
  auto xlated = [](const VerifierProgram& p) { return p.xlated_insns; };
  auto jited = [](const VerifierProgram& p) { return p.jited_bytes; };
  for (const VerifierDelta& d : compare_verifier_reports(a, b)) {
    std::string name = d.name + (d.a && d.b ? "" : d.a ? " (only a)" : " (only b)") + side_marks(d);
    auto xa = field(d.a, xlated), xb = field(d.b, xlated), ja = field(d.a, jited), jb = field(d.b, jited);
    rows.push_back({name, d.attach, num(field(d.a, insns)), num(field(d.b, insns)),
                    signed_delta(field(d.a, insns), field(d.b, insns)), num(field(d.a, states)),
                    num(field(d.b, states)), signed_delta(field(d.a, states), field(d.b, states)),
                    num(field(d.a, peak)), num(field(d.b, peak)), signed_delta(field(d.a, peak), field(d.b, peak)),
                    num(time_us(d.a)), num(time_us(d.b)), signed_delta(time_us(d.a), time_us(d.b)),
                    num(xb ? xb : xa), signed_delta(xa, xb), num(jb ? jb : ja), signed_delta(ja, jb)});
  }
  std::string out = "a: " + a.path + "\nb: " + b.path + "\n" + render_rows(rows);
  for (const VerifierReport* r : {&a, &b}) {
    std::string side = r == &a ? "a: " : "b: ";
    for (const VerifierProgram& p : r->programs)
      if (!p.loaded && p.reached) out += side + "program '" + p.name + "' did not load: " + p.error + "\n";
    out += not_reached_line(*r, side);
  }
  for (const std::string& e : a.errors) out += "error: a: " + e + "\n";
  for (const std::string& e : b.errors) out += "error: b: " + e + "\n";
  return out;
}

}  // namespace ktstr
