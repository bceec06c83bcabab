// core/stats: summaries, the incomplete beta function and Welch's t-test,
// checked against closed forms of Student's t (df = 1: Cauchy; df = 2).
#include "core/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace ktstr {
namespace {

TEST(Stats, SummaryMeanAndSampleSd) {
  auto s = summarize({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_EQ(s.n, 8u);
  EXPECT_DOUBLE_EQ(s.mean, 5);
  EXPECT_NEAR(s.sd, std::sqrt(32.0 / 7), 1e-12);  // n - 1 in the denominator
  EXPECT_EQ(s.min, 2);
  EXPECT_EQ(s.max, 9);
  EXPECT_EQ(summarize({3}).sd, 0);
  EXPECT_EQ(summarize({}).n, 0u);
}

TEST(Stats, IncompleteBetaKnownValues) {
  EXPECT_NEAR(incomplete_beta(0.3, 1, 1), 0.3, 1e-12);             // uniform
  EXPECT_NEAR(incomplete_beta(0.5, 7.5, 7.5), 0.5, 1e-12);         // symmetric
  EXPECT_NEAR(incomplete_beta(0.2, 2, 1), 0.04, 1e-12);            // x^2
  EXPECT_NEAR(incomplete_beta(0.2, 1, 3), 1 - std::pow(0.8, 3), 1e-12);
  EXPECT_EQ(incomplete_beta(0, 2, 3), 0);
  EXPECT_EQ(incomplete_beta(1, 2, 3), 1);
}

TEST(Stats, StudentTMatchesClosedForms) {
  const double pi = std::acos(-1.0);
  for (double t : {0.0, 0.5, 1.0, 3.0, 12.0}) {
    EXPECT_NEAR(t_two_sided_p(t, 1), 1 - 2 / pi * std::atan(t), 1e-10) << t;    // Cauchy
    EXPECT_NEAR(t_two_sided_p(t, 2), 1 - t / std::sqrt(2 + t * t), 1e-10) << t;
    EXPECT_NEAR(t_two_sided_p(-t, 2), t_two_sided_p(t, 2), 1e-12);
  }
  // Large df: the normal distribution, P(|Z| > 1.959964) = 0.05.
  EXPECT_NEAR(t_two_sided_p(1.959964, 1e7), 0.05, 1e-5);
}

TEST(Stats, WelchTestStatisticAndDegreesOfFreedom) {
  auto a = summarize({1, 2, 3, 4, 5});     // mean 3, var 2.5
  auto b = summarize({2, 4, 6, 8, 10});    // mean 6, var 10
  auto w = welch_t_test(a, b);
  ASSERT_TRUE(w);
  EXPECT_NEAR(w->t, 3 / std::sqrt(2.5 / 5 + 10.0 / 5), 1e-12);
  double v = 2.5 / 5 + 10.0 / 5;
  EXPECT_NEAR(w->df, v * v / ((0.5 * 0.5) / 4 + (2.0 * 2.0) / 4), 1e-12);
  EXPECT_NEAR(w->p, t_two_sided_p(w->t, w->df), 1e-15);
  // R: t.test(1:5, c(2,4,6,8,10)) gives t = -1.8974, df = 5.8824, p-value = 0.1075.
  EXPECT_NEAR(w->t, 1.8974, 5e-5);
  EXPECT_NEAR(w->df, 5.8824, 5e-5);
  EXPECT_NEAR(w->p, 0.1075, 5e-5);
}

TEST(Stats, WelchSeparatesClearDifferencesOnly) {
  auto base = summarize({100, 101, 99, 100.5, 99.5});
  auto same = summarize({100.2, 99.8, 100.4, 99.6, 100});
  auto faster = summarize({110, 111, 109, 110.5, 109.5});
  EXPECT_GT(welch_t_test(base, same)->p, 0.5);
  EXPECT_LT(welch_t_test(base, faster)->p, 1e-6);
  EXPECT_FALSE(welch_t_test(summarize({1}), base));  // one run: no test
  // No variance: equal means agree, different means differ in every run.
  EXPECT_EQ(welch_t_test(summarize({2, 2}), summarize({2, 2, 2}))->p, 1);
  EXPECT_EQ(welch_t_test(summarize({2, 2}), summarize({3, 3}))->p, 0);
}

}  // namespace
}  // namespace ktstr
