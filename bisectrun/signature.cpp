#include "bisectrun/signature.hpp"

#include "core/crash_parse.hpp"
#include "core/filterset.hpp"
#include "core/fs.hpp"
#include "core/matcher.hpp"
#include "core/pin.hpp"
#include "db/crashes.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>

namespace ktstr::bisectrun {
namespace {

bool all_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// The raw message of a crash: the summary reads "reason (msg)".
std::string crash_message(const CrashRecord& c) {
  std::string msg = c.summary;
  if (auto open = msg.find(" ("); open != std::string::npos && !msg.empty() && msg.back() == ')')
    msg = msg.substr(open + 2, msg.size() - open - 3);
  return msg;
}

// A spec holding only the matchers, for evaluate_matchers.
TestSpec matcher_spec(const BisectSignature& s) {
  TestSpec t;
  t.expect_err = true;
  t.expect_scx_bpf_error_contains = s.contains;
  t.expect_scx_bpf_error_matches = s.matches;
  return t;
}

Result<TestSpec> spec_from_file(const std::string& path, const std::vector<std::string>& filters) {
  auto specs = load_spec_file(path);
  if (!specs) return tl::unexpected(specs.error());
  std::vector<TestSpec> kept;
  for (auto& s : *specs) {
    bool keep = filters.empty();
    for (auto& f : filters) {
      auto set = Filterset::parse(f);
      if (!set) return tl::unexpected(set.error());
      if (set->matches(s.name)) keep = true;
    }
    if (keep) kept.push_back(s);
  }
  if (kept.empty()) return fail("no test in '" + path + "' matches the filter", "list them with 'ktstr test --list " + path + "'");
  if (kept.size() > 1) {
    std::vector<std::string> names;
    for (auto& s : kept) names.push_back(s.name);
    return fail("'" + path + "' holds " + std::to_string(kept.size()) + " tests (" + join_quoted(names) + ")",
                "choose one with -E 'test(=NAME)'");
  }
  return kept.front();
}

}  // namespace

std::string portable_message_regex(const std::string& msg) {
  std::string loc = source_location_of(msg);  // "dir/file.c:12"
  if (loc.empty()) return pinned_regex(msg);
  size_t colon = loc.rfind(':');
  std::string file = loc.substr(0, colon);
  std::string base = file.substr(file.find_last_of('/') == std::string::npos ? 0 : file.find_last_of('/') + 1);
  // msg = "<file>:<line>: rest"
  size_t rest_at = msg.find(':', file.size() + 1);
  std::string rest = rest_at == std::string::npos ? "" : msg.substr(rest_at);
  return "(?:[^\\s:]*/)?" + regex_escape(base) + ":\\d+" + pinned_regex(rest);
}

std::string BisectSignature::describe() const {
  std::string out;
  if (contains) out = "contains '" + *contains + "'";
  if (matches) out += (out.empty() ? "" : " and ") + std::string("matches /") + *matches + "/";
  return out;
}

bool BisectSignature::matched_by(const std::string& corpus) const {
  return evaluate_matchers(matcher_spec(*this), corpus).ok;
}

nlohmann::json BisectSignature::to_json() const {
  nlohmann::json j = {{"arg", arg}, {"source", source}, {"crash_id", crash_id}, {"kernel_ref", kernel_ref}};
  j["contains"] = contains ? nlohmann::json(*contains) : nlohmann::json(nullptr);
  j["matches"] = matches ? nlohmann::json(*matches) : nlohmann::json(nullptr);
  j["test_toml"] = test ? spec_to_toml(*test) : "";
  return j;
}

Result<BisectSignature> BisectSignature::from_json(const nlohmann::json& j) {
  BisectSignature s;
  try {
    s.arg = j.at("arg").get<std::string>();
    s.source = j.at("source").get<std::string>();
    s.crash_id = j.value("crash_id", "");
    s.kernel_ref = j.value("kernel_ref", "");
    if (!j.at("contains").is_null()) s.contains = j.at("contains").get<std::string>();
    if (!j.at("matches").is_null()) s.matches = j.at("matches").get<std::string>();
    std::string toml = j.value("test_toml", "");
    if (!toml.empty()) {
      auto specs = parse_spec_text(toml, "the bisect session");
      if (!specs) return tl::unexpected(specs.error());
      if (specs->size() == 1) s.test = specs->front();
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("the stored bisect signature is malformed: ") + e.what());
  }
  return s;
}

Result<BisectSignature> resolve_signature(db::Store& store, const std::string& arg, const std::string& spec_file,
                                          const std::vector<std::string>& filters) {
  BisectSignature s;
  s.arg = arg;
  if (arg.empty()) return fail("--signature is empty", "give a crash id, a spec file, a literal or /regex/");
  std::error_code ec;
  if (arg.size() >= 2 && arg.front() == '/' && arg.back() == '/' && !std::filesystem::exists(arg, ec)) {
    s.source = "regex";
    s.matches = arg.substr(1, arg.size() - 2);
    if (auto st = validate_match_regex(*s.matches); !st)
      return fail("--signature: " + st.error().msg, "write a PCRE2 regex between slashes, e.g. '/bisect: .* crash/'");
  } else if (std::filesystem::is_regular_file(arg, ec)) {
    s.source = "spec";
    auto t = spec_from_file(arg, filters);
    if (!t) return tl::unexpected(t.error());
    if (!t->expect_scx_bpf_error_contains && !t->expect_scx_bpf_error_matches)
      return fail("test '" + t->name + "' in '" + arg + "' pins no signature",
                  "give a spec with expect_scx_bpf_error_contains or _matches (see 'ktstr pin')");
    s.contains = t->expect_scx_bpf_error_contains;
    s.matches = t->expect_scx_bpf_error_matches;
    s.test = *t;
    s.kernel_ref = t->kernel;
  } else if (arg.size() >= db::kMinCrashPrefix && all_hex(arg)) {
    auto crash = db::find_crash(store, arg);
    if (!crash) return tl::unexpected(crash.error());
    if (!*crash) return fail("no crash matches '" + arg + "'", "see 'ktstr crash list'; a literal message needs quotes and words");
    s.source = "crash";
    s.crash_id = (*crash)->id;
    std::string msg = crash_message(**crash);
    std::string contains = stable_message_part(msg);
    if (contains.empty()) return fail("crash '" + s.crash_id + "' has no message to bisect for");
    s.contains = contains;
    s.matches = portable_message_regex(msg);
    auto t = pin_spec(**crash, (*crash)->test_name.empty() ? "bisect" : (*crash)->test_name);
    if (!t) return tl::unexpected(t.error());
    s.test = *t;
    s.kernel_ref = (*crash)->kernel_id;
  } else {
    s.source = "literal";
    s.contains = arg;
    if (auto st = validate_contains_literal(arg); !st)
      return fail("--signature: " + st.error().msg, "give the message text to look for");
  }
  if (auto st = validate_matcher_patterns(s.contains, s.matches); !st)
    return fail(st.error().msg, st.error().hint.empty() ? "check the matchers of --signature" : st.error().hint);

  if (!spec_file.empty()) {
    auto t = spec_from_file(spec_file, filters);
    if (!t) return tl::unexpected(t.error());
    s.test = *t;
  } else if (!s.test) {
    // The newest recorded crash the literal/regex matches gives the test.
    auto crashes = db::list_crashes(store);
    if (!crashes) return tl::unexpected(crashes.error());
    for (auto it = crashes->rbegin(); it != crashes->rend(); ++it) {
      if (!s.matched_by(it->summary)) continue;
      auto t = pin_spec(*it, it->test_name.empty() ? "bisect" : it->test_name);
      if (!t) continue;
      s.test = *t;
      s.crash_id = it->id;
      s.kernel_ref = it->kernel_id;
      break;
    }
    if (!s.test)
      return fail("signature '" + arg + "' matches no recorded crash, so there is no test to run",
                  "give the test with --spec FILE, or pick a crash from 'ktstr crash list'");
  }
  return s;
}

TestSpec bisect_run_spec(TestSpec spec) {
  spec.expect_err = false;
  spec.expect_scx_bpf_error_contains.reset();
  spec.expect_scx_bpf_error_matches.reset();
  spec.auto_repro = false;
  return spec;
}

const char* verdict_name(RunVerdict v) {
  switch (v) {
    case RunVerdict::Bad: return "bad";
    case RunVerdict::Other: return "other";
    case RunVerdict::Good: return "good";
    case RunVerdict::Skip: return "skip";
  }
  return "skip";
}

std::optional<RunVerdict> parse_verdict(const std::string& text) {
  for (RunVerdict v : {RunVerdict::Bad, RunVerdict::Other, RunVerdict::Good, RunVerdict::Skip})
    if (text == verdict_name(v)) return v;
  return std::nullopt;
}

VerdictInfo classify_run(const RunResult& r, const BisectSignature& sig) {
  if (r.passed) return {RunVerdict::Good, "clean run"};
  static const std::vector<std::string> kSchedFailures = {"scheduler_died", "stall", "verifier", "attach_failed"};
  bool died = std::find(kSchedFailures.begin(), kSchedFailures.end(), r.failure_kind) != kSchedFailures.end();
  if (died) {
    std::string corpus = matcher_corpus(r.sched ? r.sched->log : "", r.sched_ext_dump);
    std::string what = r.exit ? r.exit->summary() : r.reason;
    if (sig.matched_by(corpus)) return {RunVerdict::Bad, what};
    return {RunVerdict::Other, what};
  }
  // The scheduler lived: a workload check failing is not our signature.
  if (r.failure_kind == "check") return {RunVerdict::Good, "scheduler alive; " + r.reason};
  return {RunVerdict::Skip, r.reason.empty() ? "the run did not complete" : r.reason};
}

}  // namespace ktstr::bisectrun
