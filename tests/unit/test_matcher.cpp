// The scx_bpf_error matchers: Rust-regex-crate semantics on top of PCRE2,
// load-time validation, AND evaluation against a real crash corpus, and the
// failure message's excerpt.
#include "core/matcher.hpp"
#include "core/spec.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace ktstr;

namespace {

const std::string kCrashDir = std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/7.3/crash/";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sched_ext_dump payloads of a trace, one per line (what the guest
// captures as the dump).
std::string dump_payloads(const std::string& trace) {
  const std::string tag = "sched_ext_dump: ";
  std::istringstream in(trace);
  std::string line, out;
  while (std::getline(in, line))
    if (size_t at = line.find(tag); at != std::string::npos) out += line.substr(at + tag.size()) + "\n";
  return out;
}

// The real 7.3 crash: scheduler log + the dump from the trace.
std::string crash_corpus() {
  return matcher_corpus(slurp(kCrashDir + "sched.log"), dump_payloads(slurp(kCrashDir + "trace.txt")));
}

bool matches(const std::string& pattern, const std::string& subject) {
  auto regex = Regex::compile(pattern);
  EXPECT_TRUE(regex.has_value()) << (regex ? "" : regex.error().msg);
  if (!regex) return false;
  auto found = regex->is_match(subject);
  EXPECT_TRUE(found.has_value());
  return found && *found;
}

// Strict UTF-8 check, written independently of the code under test.
bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += len;
  }
  return true;
}

TestSpec spec_with(std::optional<std::string> contains, std::optional<std::string> regex) {
  TestSpec s;
  s.name = "crash_regression";
  s.expect_err = true;
  s.expect_scx_bpf_error_contains = std::move(contains);
  s.expect_scx_bpf_error_matches = std::move(regex);
  return s;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

TEST(Regex, CompileErrorCarriesPcre2MessageAndOffset) {
  auto r = Regex::compile("(a");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().msg, "invalid regex '(a': missing closing parenthesis at offset 2");
  auto detailed = Regex::try_compile("ab[c");
  ASSERT_FALSE(detailed.has_value());
  EXPECT_EQ(detailed.error().offset, 4u);
  EXPECT_NE(detailed.error().message.find("missing terminating ]"), std::string::npos) << detailed.error().message;
}

TEST(Regex, AnchorsAreWholeSubjectBoundariesUnlessMultiline) {
  EXPECT_TRUE(matches("^foo$", "foo"));
  EXPECT_FALSE(matches("^bar$", "foo\nbar\nbaz"));
  EXPECT_TRUE(matches("(?m)^bar$", "foo\nbar\nbaz"));
  // $ is the very end: not before a final newline (PCRE2's default would).
  EXPECT_FALSE(matches("foo$", "foo\n"));
  EXPECT_TRUE(matches("(?m)foo$", "foo\n"));
  EXPECT_FALSE(matches("^bar", "foo\nbar"));
  EXPECT_TRUE(matches("(?m)^bar", "foo\nbar"));
  // Rust's (?m)^ also matches after a final newline.
  EXPECT_TRUE(matches("(?m)^$", "a\n"));
  EXPECT_FALSE(matches("^$", "a\n"));
}

TEST(Regex, DotStopsAtLineFeedOnlyUnlessDotall) {
  EXPECT_FALSE(matches("a.b", "a\nb"));
  EXPECT_TRUE(matches("(?s)a.b", "a\nb"));
  EXPECT_TRUE(matches("a.b", "a\rb"));        // \r is an ordinary character
  EXPECT_FALSE(matches("(?m)a$", "a\r\nb"));  // only \n ends a line
  EXPECT_TRUE(matches("(?m)a\\r$", "a\r\nb"));
}

TEST(Regex, UnicodeAware) {
  EXPECT_TRUE(matches("^.$", "é"));                        // one code point, two bytes
  EXPECT_TRUE(matches("^\\d$", "\xd9\xa3"));               // ARABIC-INDIC DIGIT THREE
  EXPECT_TRUE(matches("(?i)^ÉTÉ$", "été"));
}

TEST(Regex, FindReportsTheLeftmostSpan) {
  auto r = Regex::compile("c:\\d+");
  ASSERT_TRUE(r.has_value());
  auto span = r->find("a.bpf.c:115: x c:7");
  ASSERT_TRUE(span.has_value());
  ASSERT_TRUE(span->has_value());
  EXPECT_EQ(**span, (MatchSpan{6, 5}));
  EXPECT_FALSE(r->find("no digits")->has_value());
}

TEST(Regex, InvalidUtf8SubjectIsSearchedNotRejected) {
  const std::string subject = "abc\xff\xfe" "def \xc3(";
  EXPECT_TRUE(matches("def", subject));
  EXPECT_FALSE(matches("c.d", subject));   // invalid bytes are never part of a match
  EXPECT_FALSE(matches("c..d", subject));
  EXPECT_TRUE(matches("\\($", subject));
}

TEST(MatcherCorpus, IsLogNewlineDump) {
  EXPECT_EQ(matcher_corpus("log", "dump"), "log\ndump");
  EXPECT_EQ(matcher_corpus("", ""), "\n");
}

TEST(ValidateMatchers, RejectsEmptyPatterns) {
  auto st = validate_matcher_patterns(std::string(), std::nullopt);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().msg, "'expect_scx_bpf_error_contains': substring must not be empty");
  st = validate_matcher_patterns(std::nullopt, std::string());
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().msg, "'expect_scx_bpf_error_matches': regex must not be empty");
  EXPECT_TRUE(validate_matcher_patterns(std::nullopt, std::nullopt).has_value());
}

TEST(ValidateMatchers, RejectsInvalidRegexWithPcre2Message) {
  auto st = validate_matcher_patterns("crash", std::string("(a"));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().msg,
            "'expect_scx_bpf_error_matches': invalid regex '(a': missing closing parenthesis at offset 2");
}

TEST(ValidateMatchers, RejectsRegexesThatMatchTheEmptyString) {
  for (const char* re : {"a?", ".*", "^$", "(?:)", "x*", "(?m)^", "$", "a|", "(?!a)", "\\z"}) {
    auto st = validate_match_regex(re);
    ASSERT_FALSE(st.has_value()) << re;
    EXPECT_EQ(st.error().msg, "regex '" + std::string(re) + "' matches the empty string");
    EXPECT_FALSE(st.error().hint.empty());
  }
}

TEST(ValidateMatchers, AcceptsRealAndZeroWidthPatterns) {
  for (const char* re : {"a+", "\\.bpf\\.c:\\d+: ktstr: host-triggered crash", "src/bpf/main\\.bpf\\.c:\\d+",
                         "(?=a)", "\\b", "^EXIT:", "(?m)^x$"})
    EXPECT_TRUE(validate_match_regex(re).has_value()) << re;
  EXPECT_TRUE(validate_contains_literal("host-triggered crash").has_value());
  EXPECT_TRUE(validate_contains_literal(".*").has_value());  // a literal, not a regex
}

TEST(ValidateMatchers, SpecLoaderReportsRegexProblemsAtTheKeysLine) {
  auto specs = parse_spec_text("[[test]]\nname = \"m\"\nexpect_err = true\n\nexpect_scx_bpf_error_matches = '(a'\n",
                               "pins/m.toml");
  ASSERT_FALSE(specs.has_value());
  EXPECT_EQ(specs.error().msg,
            "pins/m.toml:5: 'expect_scx_bpf_error_matches' in test 'm': invalid regex '(a': missing closing "
            "parenthesis at offset 2");
  specs = parse_spec_text("[[test]]\nname = \"m\"\nexpect_err = true\nexpect_scx_bpf_error_matches = 'x*'\n", "t.toml");
  ASSERT_FALSE(specs.has_value());
  EXPECT_EQ(specs.error().msg, "t.toml:4: 'expect_scx_bpf_error_matches' in test 'm': regex 'x*' matches the empty string");
  // expect_err = true is still required first.
  specs = parse_spec_text("[[test]]\nname = \"m\"\nexpect_scx_bpf_error_matches = '(a'\n", "t.toml");
  ASSERT_FALSE(specs.has_value());
  EXPECT_EQ(specs.error().msg, "t.toml:3: 'expect_scx_bpf_error_matches' in test 'm' requires expect_err = true");
  // Specs built in code get the same check.
  auto st = validate_matchers(spec_with(std::nullopt, ".*"));
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().msg, "'expect_scx_bpf_error_matches' in test 'crash_regression': regex '.*' matches the empty string");
}

TEST(EvaluateMatchers, RecipeMatchersAgainstTheRealCrashCorpus) {
  const std::string corpus = crash_corpus();
  ASSERT_GT(corpus.size(), slurp(kCrashDir + "sched.log").size() + 5000);  // the log and the dump
  EXPECT_TRUE(evaluate_matchers(spec_with("host-triggered crash", std::nullopt), corpus).ok);
  EXPECT_TRUE(evaluate_matchers(spec_with(std::nullopt, R"(\.bpf\.c:\d+: ktstr: host-triggered crash)"), corpus).ok);
  // This scheduler's source is bpf/scx_ktstr.bpf.c, not the recipe's src/bpf/main.bpf.c.
  MatchOutcome miss = evaluate_matchers(spec_with(std::nullopt, R"(src/bpf/main\.bpf\.c:\d+)"), corpus);
  EXPECT_FALSE(miss.ok);
  EXPECT_EQ(first_line(miss.message),
            R"(expect_scx_bpf_error_matches("src/bpf/main\.bpf\.c:\d+"): regex did not match the scheduler log + sched_ext dump corpus)");
  EXPECT_TRUE(evaluate_matchers(spec_with(std::nullopt, R"(bpf/scx_ktstr\.bpf\.c:\d+)"), corpus).ok);
}

TEST(EvaluateMatchers, AnchorsSeeTheWholeCorpus) {
  const std::string corpus = crash_corpus();
  EXPECT_TRUE(evaluate_matchers(spec_with(std::nullopt, "^scx-ktstr: attached"), corpus).ok);
  // The EXIT: line is in the middle of the corpus (the dump follows the log).
  EXPECT_FALSE(evaluate_matchers(spec_with(std::nullopt, R"(^EXIT: scx_bpf_error)"), corpus).ok);
  EXPECT_TRUE(evaluate_matchers(spec_with(std::nullopt, R"((?m)^EXIT: scx_bpf_error \(.*crash\)$)"), corpus).ok);
  EXPECT_FALSE(evaluate_matchers(spec_with(std::nullopt, R"(triggered exit.*Backtrace)"), corpus).ok);
  EXPECT_TRUE(evaluate_matchers(spec_with(std::nullopt, R"((?s)triggered exit.*Backtrace)"), corpus).ok);
}

TEST(EvaluateMatchers, BothMatchersMustMatch) {
  const std::string corpus = crash_corpus();
  EXPECT_TRUE(evaluate_matchers(spec_with("host-triggered crash", R"(scx_ktstr\.bpf\.c:\d+)"), corpus).ok);

  MatchOutcome regex_miss = evaluate_matchers(spec_with("host-triggered crash", R"(src/bpf/main\.bpf\.c:\d+)"), corpus);
  EXPECT_FALSE(regex_miss.ok);
  EXPECT_EQ(regex_miss.message.find("expect_scx_bpf_error_contains"), std::string::npos);

  MatchOutcome literal_miss = evaluate_matchers(spec_with("guest-triggered crash", R"(scx_ktstr\.bpf\.c:\d+)"), corpus);
  EXPECT_FALSE(literal_miss.ok);
  EXPECT_EQ(first_line(literal_miss.message),
            R"(expect_scx_bpf_error_contains("guest-triggered crash"): substring not found in the scheduler log + sched_ext dump corpus)");
  EXPECT_EQ(literal_miss.message.find("expect_scx_bpf_error_matches"), std::string::npos);

  MatchOutcome both = evaluate_matchers(spec_with("guest-triggered crash", "nope+"), corpus);
  EXPECT_FALSE(both.ok);
  EXPECT_NE(both.message.find("expect_scx_bpf_error_contains(\"guest-triggered crash\")"), std::string::npos);
  EXPECT_NE(both.message.find("expect_scx_bpf_error_matches(\"nope+\")"), std::string::npos);

  // The literal is not a regex.
  EXPECT_FALSE(evaluate_matchers(spec_with("scx_ktstr.bpf.c:1.5", std::nullopt), corpus).ok);
  // No matchers: nothing to fail.
  EXPECT_EQ(evaluate_matchers(spec_with(std::nullopt, std::nullopt), corpus), MatchOutcome{});
}

TEST(EvaluateMatchers, FailureShowsCorpusSizeAndAnExcerptAroundTheExit) {
  const std::string corpus = crash_corpus();
  MatchOutcome miss = evaluate_matchers(spec_with("guest-triggered crash", std::nullopt), corpus);
  ASSERT_FALSE(miss.ok);
  size_t nl = miss.message.find('\n');
  ASSERT_NE(nl, std::string::npos);
  const std::string size_line = miss.message.substr(nl + 1, miss.message.find('\n', nl + 1) - nl - 1);
  EXPECT_EQ(size_line.rfind("corpus: " + std::to_string(corpus.size()) + " bytes", 0), 0u) << size_line;
  const std::string excerpt = miss.message.substr(miss.message.find('\n', nl + 1) + 1);
  EXPECT_LE(excerpt.size(), kExcerptMaxBytes);
  EXPECT_GT(excerpt.size(), kExcerptMaxBytes - 80);
  EXPECT_NE(excerpt.find("EXIT: scx_bpf_error (bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash)"),
            std::string::npos)
      << excerpt;
  // The excerpt is a piece of the corpus, at the offset it reports.
  CorpusExcerpt e = corpus_excerpt(corpus);
  EXPECT_EQ(corpus.substr(e.offset, e.text.size()), e.text);
  EXPECT_EQ(size_line, "corpus: " + std::to_string(corpus.size()) + " bytes, excerpt from byte " +
                           std::to_string(e.offset) + ":");
}

TEST(CorpusExcerpt, SmallCorpusIsShownWhole) {
  EXPECT_EQ(corpus_excerpt("short log").text, "short log");
  EXPECT_EQ(corpus_excerpt("short log").offset, 0u);
}

TEST(CorpusExcerpt, TailWhenThereIsNoExitAndNeverASplitSequence) {
  std::string corpus;
  for (int i = 0; i < 300; ++i) corpus += "é";  // 600 bytes, two-byte sequences
  corpus += "x";
  CorpusExcerpt e = corpus_excerpt(corpus);
  EXPECT_LE(e.text.size(), kExcerptMaxBytes);
  EXPECT_GE(e.text.size(), kExcerptMaxBytes - 1);
  EXPECT_TRUE(valid_utf8(e.text));
  EXPECT_EQ(e.text.back(), 'x');  // the tail
  EXPECT_EQ(corpus.substr(e.offset, e.text.size()), e.text);
}

TEST(CorpusExcerpt, WindowEndNeverSplitsASequence) {
  std::string corpus = "EXIT: ";
  for (int i = 0; i < 200; ++i) corpus += "€";  // three bytes each
  corpus += "\n" + std::string(300, 'z');
  CorpusExcerpt e = corpus_excerpt(corpus);
  EXPECT_EQ(e.offset, 0u);
  EXPECT_LE(e.text.size(), kExcerptMaxBytes);
  EXPECT_GE(e.text.size(), kExcerptMaxBytes - 3);
  EXPECT_TRUE(valid_utf8(e.text));
  EXPECT_EQ(e.text.rfind("EXIT: €", 0), 0u);
}

TEST(CorpusExcerpt, InvalidBytesShowAsQuestionMarks) {
  std::string corpus(500, 'a');
  corpus += "scx_bpf_error \xff\xc3 here";
  CorpusExcerpt e = corpus_excerpt(corpus);
  EXPECT_LE(e.text.size(), kExcerptMaxBytes);
  EXPECT_TRUE(valid_utf8(e.text));
  EXPECT_NE(e.text.find("scx_bpf_error ?? here"), std::string::npos) << e.text;
}

TEST(EvaluateMatchers, InvalidUtf8CorpusStillMatchesAndReportsValidText) {
  std::string corpus = std::string(600, '.') + "\nEXIT: scx_bpf_error (\xfe\xff boom)\n";
  EXPECT_TRUE(evaluate_matchers(spec_with("boom", R"((?m)^EXIT: scx_bpf_error \()"), corpus).ok);
  EXPECT_TRUE(evaluate_matchers(spec_with("boom", R"((?m)boom\)$)"), corpus).ok);
  // Invalid bytes are never part of a match.
  EXPECT_FALSE(evaluate_matchers(spec_with("boom", R"(\(.*boom)"), corpus).ok);
  MatchOutcome miss = evaluate_matchers(spec_with("bang", std::nullopt), corpus);
  EXPECT_FALSE(miss.ok);
  EXPECT_TRUE(valid_utf8(miss.message));
  EXPECT_NE(miss.message.find("EXIT: scx_bpf_error (?? boom)"), std::string::npos) << miss.message;
}

TEST(EvaluateMatchers, PatternsAreQuotedReadably) {
  MatchOutcome miss = evaluate_matchers(spec_with("say \"hi\"\n", std::nullopt), "nothing");
  EXPECT_EQ(first_line(miss.message),
            R"(expect_scx_bpf_error_contains("say \"hi\"\n"): substring not found in the scheduler log + sched_ext dump corpus)");
}

TEST(EvaluateMatchers, NoErrorMessage) {
  EXPECT_EQ(no_error_message(), "expected a scheduler error, none happened");
}
