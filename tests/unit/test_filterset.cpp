// `ktstr test -E` filtersets: each predicate and operator, precedence and
// associativity, and parse errors with their offsets.
#include "core/filterset.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace ktstr;

namespace {

const std::vector<std::string> kTests = {"steady", "steady_smt", "crash_regression", "crash", "stall_watchdog",
                                         "yield-heavy.2", "mixed"};

// The tests of kTests that `filter` selects, in order.
std::vector<std::string> selected(const std::string& filter) {
  auto f = Filterset::parse(filter);
  EXPECT_TRUE(f.has_value()) << filter << ": " << (f ? "" : f.error().msg);
  std::vector<std::string> out;
  if (!f) return out;
  for (auto& t : kTests)
    if (f->matches(t)) out.push_back(t);
  return out;
}

using Names = std::vector<std::string>;

std::string error_of(const std::string& filter) {
  auto f = Filterset::parse(filter);
  EXPECT_FALSE(f.has_value()) << "parsed: " << filter;
  return f ? "" : f.error().msg;
}

}  // namespace

TEST(Filterset, TestPredicateMatchers) {
  EXPECT_EQ(selected("test(crash)"), (Names{"crash_regression", "crash"}));   // contains by default
  EXPECT_EQ(selected("test(~crash)"), (Names{"crash_regression", "crash"}));
  EXPECT_EQ(selected("test(=crash)"), (Names{"crash"}));
  EXPECT_EQ(selected("test(/^st/)"), (Names{"steady", "steady_smt", "stall_watchdog"}));
  EXPECT_EQ(selected("test(/_(smt|regression)$/)"), (Names{"steady_smt", "crash_regression"}));
  EXPECT_EQ(selected("test(#s*y)"), (Names{"steady"}));
  EXPECT_EQ(selected("test(#*.[0-9])"), (Names{"yield-heavy.2"}));
  EXPECT_EQ(selected("test( =mixed )"), (Names{"mixed"}));  // spaces around the matcher dropped
  EXPECT_EQ(selected("test(nothing_like_it)"), Names{});
}

TEST(Filterset, AllAndNone) {
  EXPECT_EQ(selected("all()"), kTests);
  EXPECT_EQ(selected("none()"), Names{});
  EXPECT_EQ(selected(" all( ) "), kTests);
}

TEST(Filterset, Not) {
  EXPECT_EQ(selected("not test(st)"), (Names{"crash_regression", "crash", "yield-heavy.2", "mixed"}));
  EXPECT_EQ(selected("!test(st)"), selected("not test(st)"));
  EXPECT_EQ(selected("not not test(=crash)"), (Names{"crash"}));
  EXPECT_EQ(selected("!!test(=crash)"), (Names{"crash"}));
  EXPECT_EQ(selected("not(test(st))"), selected("not test(st)"));
}

TEST(Filterset, AndOrDifference) {
  EXPECT_EQ(selected("test(st) and test(smt)"), (Names{"steady_smt"}));
  EXPECT_EQ(selected("test(st) & test(smt)"), (Names{"steady_smt"}));
  EXPECT_EQ(selected("test(=crash) or test(=mixed)"), (Names{"crash", "mixed"}));
  EXPECT_EQ(selected("test(=crash) | test(=mixed)"), (Names{"crash", "mixed"}));
  EXPECT_EQ(selected("test(=crash) + test(=mixed)"), (Names{"crash", "mixed"}));
  EXPECT_EQ(selected("test(steady) - test(smt)"), (Names{"steady"}));
  EXPECT_EQ(selected("all() - test(crash) - test(st)"), (Names{"yield-heavy.2", "mixed"}));
  EXPECT_EQ(selected("test(=a)|test(=mixed)"), (Names{"mixed"}));  // no spaces needed
}

TEST(Filterset, PrecedenceNotThenAndThenOr) {
  // and binds tighter than or: a | (b & c), not (a | b) & c.
  EXPECT_EQ(selected("test(=mixed) | test(st) & test(smt)"), (Names{"steady_smt", "mixed"}));
  EXPECT_EQ(selected("(test(=mixed) | test(st)) & test(smt)"), (Names{"steady_smt"}));
  EXPECT_EQ(selected("test(st) & test(smt) | test(=mixed)"), (Names{"steady_smt", "mixed"}));
  // not binds tighter than and/or: (not a) & b.
  EXPECT_EQ(selected("not test(smt) and test(steady)"), (Names{"steady"}));
  EXPECT_EQ(selected("not (test(smt) or test(steady))"), (Names{"crash_regression", "crash", "stall_watchdog",
                                                               "yield-heavy.2", "mixed"}));
  EXPECT_EQ(selected("not test(smt) or test(steady)"), kTests);
  // - is at the and level: a | b - c is a | (b - c).
  EXPECT_EQ(selected("test(=steady_smt) | test(st) - test(smt)"), (Names{"steady", "steady_smt", "stall_watchdog"}));
  EXPECT_EQ(selected("(test(=steady_smt) | test(st)) - test(smt)"), (Names{"steady", "stall_watchdog"}));
}

TEST(Filterset, KeywordsNeedWordBoundaries) {
  // "notx" is not "not x": it is an unknown predicate.
  EXPECT_EQ(error_of("nottest(a)"), "invalid filter 'nottest(a)': unknown predicate 'nottest' at offset 0");
  EXPECT_EQ(selected("test(=crash)or test(=mixed)"), (Names{"crash", "mixed"}));
  EXPECT_EQ(selected("test(=crash)|not(test(a))"), (Names{"crash", "mixed"}));
}

TEST(Filterset, MatcherEscapes) {
  auto f = Filterset::parse(R"(test(=a\)b))");
  ASSERT_TRUE(f.has_value()) << f.error().msg;
  EXPECT_TRUE(f->matches("a)b"));
  f = Filterset::parse(R"(test(/a\/b/))");
  ASSERT_TRUE(f.has_value()) << f.error().msg;
  EXPECT_TRUE(f->matches("xa/b"));
  f = Filterset::parse(R"(test(/^\d+$/))");
  ASSERT_TRUE(f.has_value()) << f.error().msg;
  EXPECT_TRUE(f->matches("123"));
  EXPECT_FALSE(f->matches("12a"));
  f = Filterset::parse(R"(test(/(a|b)\)/))");  // parentheses inside the regex
  ASSERT_TRUE(f.has_value()) << f.error().msg;
  EXPECT_TRUE(f->matches("b)"));
  EXPECT_EQ(f->text(), R"(test(/(a|b)\)/))");
}

TEST(Filterset, ErrorsNameTheOffset) {
  EXPECT_EQ(error_of("test(foo"), "invalid filter 'test(foo': expected ')' at offset 8");
  EXPECT_EQ(error_of(""), "invalid filter '': expected an expression at offset 0");
  EXPECT_EQ(error_of("   "), "invalid filter '   ': expected an expression at offset 3");
  EXPECT_EQ(error_of("test(a) and"), "invalid filter 'test(a) and': expected an expression at offset 11");
  EXPECT_EQ(error_of("test(a) test(b)"),
            "invalid filter 'test(a) test(b)': expected an operator or the end of the filter at offset 8");
  EXPECT_EQ(error_of("(test(a)"), "invalid filter '(test(a)': expected ')' at offset 8");
  EXPECT_EQ(error_of("test(a))"), "invalid filter 'test(a))': unexpected ')' at offset 7");
  EXPECT_EQ(error_of("test"), "invalid filter 'test': expected '(' after 'test' at offset 4");
  EXPECT_EQ(error_of("all(x)"), "invalid filter 'all(x)': expected ')' at offset 4");
  EXPECT_EQ(error_of("test()"), "invalid filter 'test()': expected a name matcher at offset 5");
  EXPECT_EQ(error_of("test(=)"), "invalid filter 'test(=)': expected a name matcher at offset 6");
  EXPECT_EQ(error_of("test(/abc)"),
            "invalid filter 'test(/abc)': expected '/' to close the regex at offset 10");
  EXPECT_EQ(error_of("test(//)"), "invalid filter 'test(//)': expected a regex between '/' and '/' at offset 6");
  EXPECT_EQ(error_of("test(/(a/)"),
            "invalid filter 'test(/(a/)': invalid regex '(a': missing closing parenthesis at offset 8");
  EXPECT_EQ(error_of("test(/a/ x)"), "invalid filter 'test(/a/ x)': expected ')' at offset 9");
  EXPECT_EQ(error_of("and test(a)"), "invalid filter 'and test(a)': expected an expression at offset 0");
  EXPECT_EQ(error_of("test(a) & & test(b)"), "invalid filter 'test(a) & & test(b)': expected an expression at offset 10");
  EXPECT_EQ(error_of("!"), "invalid filter '!': expected an expression at offset 1");
}

TEST(Filterset, UnknownPredicatesGetAHint) {
  auto f = Filterset::parse("tset(a)");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().msg, "invalid filter 'tset(a)': unknown predicate 'tset' at offset 0");
  EXPECT_EQ(f.error().hint, "did you mean 'test'?");
  f = Filterset::parse("test(a) | package(ktstr)");
  ASSERT_FALSE(f.has_value());
  EXPECT_EQ(f.error().msg, "invalid filter 'test(a) | package(ktstr)': unknown predicate 'package' at offset 10");
  EXPECT_EQ(f.error().hint, "ktstr filters know 'test', 'all', 'none'");
}
