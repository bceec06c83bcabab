#include "run/gauntlet.hpp"

#include "kbuild/bzimage.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace ktstr::runner {
namespace {

// `s` cut to `n` characters, the cut marked with "...".
std::string fit(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return n <= 3 ? s.substr(0, n) : s.substr(0, n - 3) + "...";
}

std::string pad(const std::string& s, size_t n) { return s.size() >= n ? s : s + std::string(n - s.size(), ' '); }

std::string rtrim(std::string s) {
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Lenient readers of a worker's run document: a field of the wrong type
// reads as absent rather than throwing.
std::string str(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
const nlohmann::json& obj(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}
std::vector<std::string> strings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

std::string kernel_text(const CellResult& c) {
  if (!c.kernel_version.empty()) return kbuild::upstream_version(c.kernel_version);
  return c.kernel_ref.empty() ? "(spec kernel)" : c.kernel_ref;
}

}  // namespace

Result<std::vector<std::string>> parse_axis(const std::string& option, const std::vector<std::string>& values) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const std::string& value : values) {
    size_t at = 0;
    while (true) {
      size_t comma = value.find(',', at);
      std::string entry = value.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      entry.erase(0, entry.find_first_not_of(" \t"));
      entry.erase(entry.find_last_not_of(" \t") + 1);
      if (entry.empty())
        return fail(Error(option + " '" + value + "' has an empty entry",
                          "give a comma-separated list without empty entries, e.g. " + option +
                              (option == "--kernel" ? " 6.17,7.3" : " 1n1l2c1t,1n2l4c2t")));
      if (seen.insert(entry).second) out.push_back(entry);
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
  }
  if (out.empty()) return fail(Error(option + " has no entries", "leave " + option + " out to use each test's own"));
  return out;
}

Result<std::vector<Topology>> parse_topology_axis(const std::vector<std::string>& values) {
  auto entries = parse_axis("--topo", values);
  if (!entries) return tl::unexpected(entries.error());
  std::vector<Topology> out;
  for (const std::string& e : *entries) {
    auto t = Topology::parse(e);
    if (!t) return fail(Error("--topo: " + t.error().msg, t.error().hint));
    if (std::find(out.begin(), out.end(), *t) == out.end()) out.push_back(*t);
  }
  return out;
}

Result<std::vector<std::string>> split_sched_args(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char ch = text[i];
    if (ch == ' ' || ch == '\t' || ch == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (ch == '\\') {
      if (i + 1 < text.size()) word += text[++i];
      continue;
    }
    if (ch == '\'') {
      size_t end = text.find('\'', i + 1);
      if (end == std::string::npos)
        return fail(Error("--sched-args '" + text + "' has an unterminated quote", "close the ' quote"));
      word += text.substr(i + 1, end - i - 1);
      i = end;
      continue;
    }
    if (ch == '"') {
      size_t j = i + 1;
      for (; j < text.size() && text[j] != '"'; ++j) {
        if (text[j] == '\\' && j + 1 < text.size() && (text[j + 1] == '"' || text[j + 1] == '\\')) ++j;
        word += text[j];
      }
      if (j >= text.size())
        return fail(Error("--sched-args '" + text + "' has an unterminated quote", "close the \" quote"));
      i = j;
      continue;
    }
    word += ch;
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::string sched_args_text(const std::vector<std::string>& args) {
  if (args.empty()) return "(none)";
  std::string out;
  for (const std::string& a : args) {
    if (!out.empty()) out += ' ';
    bool quote = a.empty() || a.find_first_of(" \t\n'\"\\") != std::string::npos;
    if (!quote) {
      out += a;
      continue;
    }
    out += '\'';
    for (char ch : a) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
    out += '\'';
  }
  return out;
}

std::vector<CellIndex> expand_matrix(size_t tests, size_t args, size_t kernels, size_t topos) {
  std::vector<CellIndex> out;
  out.reserve(tests * args * kernels * topos);
  for (size_t t = 0; t < tests; ++t)
    for (size_t a = 0; a < args; ++a)
      for (size_t k = 0; k < kernels; ++k)
        for (size_t p = 0; p < topos; ++p) out.push_back(CellIndex{t, a, k, p});
  return out;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return "fail";
    case Verdict::kCrash: return "crash";
    case Verdict::kSkip: return "skip";
  }
  return "skip";
}

void judge_cell(CellResult& c, const nlohmann::json& run) {
  if (auto it = run.find("run_id"); it != run.end() && it->is_number_integer()) c.run_id = it->get<int64_t>();
  c.crash_id = str(run, "crash_id");
  c.reason = str(run, "reason");
  c.messages = strings(run, "diagnostics");
  const nlohmann::json& vm = obj(run, "vm");
  if (auto it = vm.find("wall_s"); it != vm.end() && it->is_number()) c.wall_s = it->get<double>();
  // What really ran, as the worker recorded it.
  const nlohmann::json& kernel = obj(run, "kernel");
  if (!str(kernel, "id").empty()) c.kernel_id = str(kernel, "id");
  if (!str(kernel, "version").empty()) c.kernel_version = str(kernel, "version");
  if (!str(run, "topology").empty()) c.topology = str(run, "topology");
  if (run.contains("sched") && run["sched"].is_object()) c.sched_args = strings(run["sched"], "args");

  c.detail.clear();
  if (str(run, "status") == "pass") {
    c.verdict = Verdict::kPass;
    return;
  }
  if (!c.crash_id.empty()) {
    c.verdict = Verdict::kCrash;
    c.detail = c.crash_id;
    return;
  }
  const std::string kind = str(run, "failure_kind");
  // The guest agent never said hello: the kernel did not boot to it (or
  // QEMU did not start), so nothing of the test ran.
  const bool no_agent = c.reason.find("the guest agent never started") != std::string::npos ||
                        str(vm, "end") == "qemu_failed_to_start";
  if (kind == "vm" && str(run, "stage").empty() && no_agent) {
    c.verdict = Verdict::kSkip;
    c.detail = "boot";
    return;
  }
  c.verdict = Verdict::kFail;
  c.detail = str(run, "failed_check");
  if (c.detail.empty()) c.detail = kind == "vm" && !str(vm, "end").empty() ? str(vm, "end") : kind;
  if (c.detail.empty()) c.detail = "failed";
}

std::string cell_text(const CellResult& c) {
  switch (c.verdict) {
    case Verdict::kPass: return "pass";
    case Verdict::kFail: return fit("FAIL " + c.detail, kMaxCellText);
    case Verdict::kCrash: return "CRASH " + c.detail.substr(0, 8);
    case Verdict::kSkip: return fit("skip " + c.detail, kMaxCellText);
  }
  return "?";
}

std::string cell_line(const CellResult& c) {
  static const char* const kWord[] = {"PASS ", "FAIL ", "CRASH", "SKIP "};
  std::string line = fmt::format("{} [{:>6.1f}s] {} on {} {}", kWord[static_cast<int>(c.verdict)], c.wall_s, c.test,
                                 kernel_text(c), c.topology);
  if (!c.sched_args_from_spec)
    line += c.sched_args.empty() ? " without scheduler arguments" : " with " + sched_args_text(c.sched_args);
  std::vector<std::string> ids;
  if (c.run_id) ids.push_back(fmt::format("run {}", c.run_id));
  if (!c.crash_id.empty()) ids.push_back("crash " + c.crash_id);
  if (!ids.empty()) {
    line += " (";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + ids[i];
    line += ")";
  }
  if (c.verdict == Verdict::kFail && !c.detail.empty()) line += ": " + c.detail;
  if (c.verdict == Verdict::kSkip && !c.detail.empty()) line += ": " + c.detail;
  if (c.verdict != Verdict::kPass && !c.reason.empty() && c.reason != c.detail) line += ": " + c.reason;
  return line;
}

std::string render_grid(const GridLabels& L, const std::vector<CellResult>& cells, size_t width) {
  const size_t T = L.tests.size(), A = L.sched_args.size(), K = L.kernels.size(), P = L.topologies.size();
  if (T * A * K * P == 0) return "";
  auto text_at = [&](size_t t, size_t a, size_t k, size_t p) -> std::string {
    size_t i = ((t * A + a) * K + k) * P + p;
    return i < cells.size() ? cell_text(cells[i]) : "";
  };
  constexpr size_t kMaxLabel = 32;
  size_t test_w = 4;  // "test"
  for (auto& t : L.tests) test_w = std::max(test_w, std::min(t.size(), kMaxLabel));
  size_t args_w = 0;
  if (L.show_sched_args) {
    args_w = 10;  // "sched-args"
    for (auto& a : L.sched_args) args_w = std::max(args_w, std::min(a.size(), kMaxLabel));
  }
  const size_t label_w = test_w + (L.show_sched_args ? 2 + args_w : 0);

  struct Column {
    size_t kernel, topo, width;
  };
  std::vector<Column> columns;
  for (size_t k = 0; k < K; ++k)
    for (size_t p = 0; p < P; ++p) {
      size_t w = std::max(L.topologies[p].size(), L.kernels[k].size());
      for (size_t t = 0; t < T; ++t)
        for (size_t a = 0; a < A; ++a) w = std::max(w, text_at(t, a, k, p).size());
      columns.push_back({k, p, w});
    }

  std::string out;
  for (size_t first = 0; first < columns.size();) {
    size_t end = first, used = label_w;
    while (end < columns.size() && (end == first || used + 2 + columns[end].width <= width))
      used += 2 + columns[end++].width;
    if (first > 0) out += "\n";
    std::string kernels = pad("kernel", label_w), heads = pad("test", test_w);
    if (L.show_sched_args) heads += "  " + pad("sched-args", args_w);
    for (size_t c = first; c < end; ++c) {
      bool group_start = c == first || columns[c].kernel != columns[c - 1].kernel;
      kernels += "  " + pad(group_start ? L.kernels[columns[c].kernel] : "", columns[c].width);
      heads += "  " + pad(L.topologies[columns[c].topo], columns[c].width);
    }
    out += rtrim(kernels) + "\n" + rtrim(heads) + "\n";
    for (size_t t = 0; t < T; ++t)
      for (size_t a = 0; a < A; ++a) {
        std::string row = pad(fit(L.tests[t], kMaxLabel), test_w);
        if (L.show_sched_args) row += "  " + pad(fit(L.sched_args[a], kMaxLabel), args_w);
        for (size_t c = first; c < end; ++c)
          row += "  " + pad(text_at(t, a, columns[c].kernel, columns[c].topo), columns[c].width);
        out += rtrim(row) + "\n";
      }
    first = end;
  }
  return out;
}

GauntletTally tally_cells(const std::vector<CellResult>& cells) {
  GauntletTally t;
  t.cells = cells.size();
  for (auto& c : cells) {
    switch (c.verdict) {
      case Verdict::kPass: ++t.passed; break;
      case Verdict::kFail: ++t.failed; break;
      case Verdict::kCrash: ++t.crashed; break;
      case Verdict::kSkip: ++t.skipped; break;
    }
  }
  return t;
}

std::string summary_line(const GauntletTally& t) {
  return fmt::format("{} cell{}: {} passed, {} failed, {} crashed, {} skipped", t.cells, t.cells == 1 ? "" : "s",
                     t.passed, t.failed, t.crashed, t.skipped);
}

int gauntlet_exit_status(const GauntletTally& t) { return t.passed == t.cells ? kExitOk : kExitTestFailed; }

nlohmann::json gauntlet_json(const std::vector<CellResult>& cells) {
  nlohmann::json arr = nlohmann::json::array();
  for (auto& c : cells) {
    arr.push_back({{"test", c.test},
                   {"sched_args", c.sched_args},
                   {"sched_args_from_spec", c.sched_args_from_spec},
                   {"kernel", {{"ref", c.kernel_ref}, {"id", c.kernel_id}, {"version", c.kernel_version}}},
                   {"topology", c.topology},
                   {"verdict", verdict_name(c.verdict)},
                   {"detail", c.detail},
                   {"reason", c.reason},
                   {"messages", c.messages},
                   {"run_id", c.run_id ? nlohmann::json(c.run_id) : nlohmann::json(nullptr)},
                   {"crash_id", c.crash_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.crash_id)},
                   {"wall_s", c.wall_s}});
  }
  GauntletTally t = tally_cells(cells);
  return {{"cells", arr},
          {"summary",
           {{"cells", t.cells}, {"passed", t.passed}, {"failed", t.failed}, {"crashed", t.crashed},
            {"skipped", t.skipped}}}};
}

}  // namespace ktstr::runner
