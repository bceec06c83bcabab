// Small statistics for comparing repeated measurements: a sample's summary
// and Welch's two-sample t-test (unequal variances), as `ktstr runs compare`
// uses to say whether a difference between two sets of runs is significant.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace ktstr {

struct SampleSummary {
  size_t n = 0;
  double mean = 0;
  double sd = 0;  // sample standard deviation (n - 1); 0 when n < 2
  double min = 0, max = 0;
};

SampleSummary summarize(const std::vector<double>& xs);

// Regularized incomplete beta function I_x(a, b), a, b > 0, 0 <= x <= 1.
double incomplete_beta(double x, double a, double b);

// Two-sided p-value of Student's t distribution with `df` degrees of
// freedom (df > 0, not necessarily whole) at statistic t.
double t_two_sided_p(double t, double df);

struct WelchResult {
  double t = 0;
  double df = 0;
  double p = 1;  // two-sided
};

// Welch's t-test of "the means are equal". Needs n >= 2 on both sides;
// nullopt otherwise. With no variance on either side the means either agree
// (p = 1) or differ in every run (p = 0).
std::optional<WelchResult> welch_t_test(const SampleSummary& a, const SampleSummary& b);

}  // namespace ktstr
