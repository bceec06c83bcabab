#include "run/junit.hpp"

#include "core/fs.hpp"
#include "core/run_result_json.hpp"
#include "kbuild/bzimage.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>

namespace ktstr::runner {
namespace {

// CI shows <system-out> in a page; a scheduler log can be megabytes (the
// collector's bound). The start is kept, as the collector keeps it.
constexpr size_t kMaxSystemOutBytes = 1u << 20;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the UTF-8 sequence XML 1.0 allows at s[i], 0 when the
// bytes there are not one (malformed, overlong, a surrogate, U+FFFE/U+FFFF,
// a forbidden C0 control).
size_t xml_char_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto cont = [&](size_t k) { return (b(k) & 0xC0u) == 0x80u; };
  const unsigned c = b(0);
  if (c < 0x80) return c >= 0x20 || c == '\t' || c == '\n' || c == '\r' ? 1 : 0;
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;                         // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;                        // a surrogate
    if (c == 0xEF && b(1) == 0xBF && (b(2) == 0xBE || b(2) == 0xBF)) return 0;  // U+FFFE, U+FFFF
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) >= 0x90)) return 0;  // overlong, past U+10FFFF
    return 4;
  }
  return 0;
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// The spec file's name without its directory and ".toml": what CI shows
// as the class of its tests.
std::string classname_of(const std::string& spec_file) {
  std::string name = spec_file.substr(spec_file.rfind('/') == std::string::npos ? 0 : spec_file.rfind('/') + 1);
  if (name.size() > 5 && name.ends_with(".toml")) name.resize(name.size() - 5);
  return name.empty() ? "ktstr" : name;
}

std::string time_text(double s) { return fmt::format("{:.3f}", std::isfinite(s) && s > 0 ? s : 0.0); }

std::string timestamp_text(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  localtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

// The run as recorded; a result that does not read back (it was just
// written from one) gives an empty run rather than no case.
RunResult read_run(const nlohmann::json& result) {
  auto r = run_result_from_json(result);
  return r ? std::move(*r) : RunResult{};
}

JunitCase run_case(const TestSpec& spec, const WorkerRun& run, const RunResult& r, const std::string& name) {
  JunitCase c;
  c.name = name;
  c.classname = classname_of(spec.source_file);
  c.time_s = r.wall_s;
  if (r.sched) c.system_out = r.sched->log;
  if (run.outline.passed) return c;
  c.outcome = CaseOutcome::kFailed;
  c.report = run.failure;
  c.message = first_line(run.failure);
  if (c.message.empty()) c.message = r.reason.empty() ? "failed" : r.reason;
  c.type = r.failure_kind == "check" && !r.failed_check.empty() ? r.failed_check : r.failure_kind;
  if (c.type.empty()) c.type = "failure";
  return c;
}

JunitCase cell_case(const std::vector<TestSpec>& specs, const CellResult& cell) {
  JunitCase c;
  c.name = cell_case_name(cell);
  c.classname = classname_of(specs.at(cell.at.test).source_file);
  c.time_s = cell.wall_s;
  c.system_out = cell.sched_log;
  switch (cell.verdict) {
    case Verdict::kPass:
      break;
    case Verdict::kFail:
    case Verdict::kCrash:
      c.outcome = CaseOutcome::kFailed;
      c.report = !cell.report.empty() ? cell.report : cell.reason + "\n";
      c.message = first_line(c.report);
      c.type = cell.verdict == Verdict::kCrash ? "crash" : cell.detail;
      break;
    case Verdict::kSkip:
      // The worker failed or ran nothing: ktstr's error, not the test's.
      if (cell.detail == "error" || cell.detail == "no run") {
        c.outcome = CaseOutcome::kError;
        c.report = cell.reason + "\n";
        c.message = cell.reason;
        c.type = cell.detail;
      } else {
        c.outcome = CaseOutcome::kSkipped;
        c.message = cell.detail + (cell.reason.empty() ? "" : ": " + cell.reason);
      }
      break;
  }
  if (c.type.empty()) c.type = "failure";
  return c;
}

struct Counts {
  size_t tests = 0, failures = 0, errors = 0, skipped = 0;
  double time_s = 0;
  void add(const JunitCase& c) {
    ++tests;
    failures += c.outcome == CaseOutcome::kFailed;
    errors += c.outcome == CaseOutcome::kError;
    skipped += c.outcome == CaseOutcome::kSkipped;
    time_s += std::isfinite(c.time_s) && c.time_s > 0 ? c.time_s : 0;
  }
  std::string attributes() const {
    return fmt::format("tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\"", tests, failures,
                       errors, skipped, time_text(time_s));
  }
};

std::string attr(std::string_view text) { return xml_escape(text, true); }

void render_case(std::string& out, const JunitCase& c) {
  out += fmt::format("    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"", attr(c.name), attr(c.classname),
                     time_text(c.time_s));
  if (c.outcome == CaseOutcome::kPassed && c.system_out.empty()) {
    out += "/>\n";
    return;
  }
  out += ">\n";
  if (c.outcome == CaseOutcome::kSkipped) {
    out += fmt::format("      <skipped message=\"{}\"/>\n", attr(c.message));
  } else if (c.outcome != CaseOutcome::kPassed) {
    const char* element = c.outcome == CaseOutcome::kFailed ? "failure" : "error";
    out += fmt::format("      <{} message=\"{}\" type=\"{}\">{}</{}>\n", element, attr(c.message), attr(c.type),
                       xml_escape(c.report, false), element);
  }
  if (!c.system_out.empty()) {
    std::string_view log = c.system_out;
    std::string more;
    if (log.size() > kMaxSystemOutBytes) {
      more = fmt::format("\n[ktstr: {} more bytes of the scheduler log left out]\n", log.size() - kMaxSystemOutBytes);
      log = log.substr(0, kMaxSystemOutBytes);  // a cut character becomes U+FFFD
    }
    out += "      <system-out>" + xml_escape(log, false) + more + "</system-out>\n";
  }
  out += "    </testcase>\n";
}

}  // namespace

JunitSuite& JunitReport::suite(const std::string& spec_file) {
  for (auto& s : suites)
    if (s.name == spec_file) return s;
  suites.push_back(JunitSuite{spec_file, {}});
  return suites.back();
}

std::string scheduler_log_of(const nlohmann::json& result) {
  RunResult r = read_run(result);
  return r.sched ? std::move(r.sched->log) : "";
}

void add_test_runs(JunitReport& report, const TestSpec& spec, const std::vector<WorkerRun>& runs, unsigned repeat) {
  JunitSuite& suite = report.suite(spec.source_file);
  if (repeat <= 1) {
    for (const WorkerRun& run : runs) suite.cases.push_back(run_case(spec, run, read_run(run.result), spec.name));
    return;
  }
  // By repetition, whatever order they came in; the missing ones never ran.
  std::map<unsigned, JunitCase> by_repetition;
  for (const WorkerRun& run : runs) {
    RunResult r = read_run(run.result);
    by_repetition.emplace(r.repetition, run_case(spec, run, r, ""));
  }
  for (unsigned i = 1; i <= repeat; ++i) {
    const std::string name = fmt::format("{}#{}", spec.name, i);
    if (auto it = by_repetition.find(i); it != by_repetition.end()) {
      it->second.name = name;
      suite.cases.push_back(std::move(it->second));
      continue;
    }
    JunitCase skipped;
    skipped.name = name;
    skipped.classname = classname_of(spec.source_file);
    skipped.outcome = CaseOutcome::kSkipped;
    skipped.message = "the repetition never ran (no VM could start for it)";
    suite.cases.push_back(std::move(skipped));
  }
}

JunitReport gauntlet_junit(int64_t started, const std::vector<TestSpec>& specs,
                           const std::vector<CellResult>& cells) {
  JunitReport report{started, {}};
  for (const CellResult& c : cells) report.suite(specs.at(c.at.test).source_file).cases.push_back(cell_case(specs, c));
  return report;
}

std::string cell_case_name(const CellResult& c) {
  std::string kernel = !c.kernel_ref.empty()       ? c.kernel_ref
                       : !c.kernel_version.empty() ? kbuild::upstream_version(c.kernel_version)
                                                   : "(spec)";
  std::string args = c.sched_args_from_spec ? "" : " " + sched_args_text(c.sched_args);
  return fmt::format("{} [{} {}{}]", c.test, kernel, c.topology, args);
}

std::string xml_escape(std::string_view text, bool attribute) {
  std::string out;
  out.reserve(text.size() + text.size() / 16);
  for (size_t i = 0; i < text.size();) {
    const size_t n = xml_char_length(text, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text, i, n);
      i += n;
      continue;
    }
    switch (const char ch = text[i++]) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      case '\r': out += "&#13;"; break;
      case '\t': out += attribute ? "&#9;" : "\t"; break;
      case '\n': out += attribute ? "&#10;" : "\n"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string render_junit(const JunitReport& report) {
  Counts all;
  std::string body;
  for (const JunitSuite& s : report.suites) {
    Counts counts;
    std::string cases;
    for (const JunitCase& c : s.cases) {
      counts.add(c);
      all.add(c);
      render_case(cases, c);
    }
    std::string stamp = report.timestamp > 0 ? " timestamp=\"" + timestamp_text(report.timestamp) + "\"" : "";
    body += fmt::format("  <testsuite name=\"{}\" {}{}>\n{}  </testsuite>\n", attr(s.name.empty() ? "ktstr" : s.name),
                        counts.attributes(), stamp, cases);
  }
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ktstr\" " + all.attributes() + ">\n" + body +
         "</testsuites>\n";
}

Status check_junit_path(const std::string& path) {
  const std::string hint = "give a file in an existing, writable directory, e.g. --junit junit.xml";
  if (path.empty()) return fail("--junit needs a file name", hint);
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail("--junit: directory '" + dir + "' does not exist", hint);
  if (::access(dir.c_str(), W_OK) != 0)
    return fail("--junit: cannot write in '" + dir + "': " + std::strerror(errno), hint);
  if (slash + 1 == path.size() || (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)))
    return fail("--junit: '" + path + "' is a directory", hint);
  return {};
}

Status write_junit(const std::string& path, const JunitReport& report) {
  return write_file_atomic(path, render_junit(report));
}

}  // namespace ktstr::runner
