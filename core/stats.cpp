#include "core/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ktstr {

SampleSummary summarize(const std::vector<double>& xs) {
  SampleSummary s;
  s.n = xs.size();
  if (xs.empty()) return s;
  s.min = *std::min_element(xs.begin(), xs.end());
  s.max = *std::max_element(xs.begin(), xs.end());
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / static_cast<double>(s.n);
  if (s.n >= 2) {
    double ss = 0;  // two passes: stable for the large, close values runs produce
    for (double x : xs) ss += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(ss / static_cast<double>(s.n - 1));
  }
  return s;
}

namespace {

// The continued fraction of I_x(a, b) (modified Lentz), which converges
// quickly for x < (a + 1) / (a + b + 2).
double beta_fraction(double x, double a, double b) {
  constexpr double kTiny = 1e-300;
  constexpr double kEps = 1e-15;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double f = d;
  for (int m = 1; m <= 500; ++m) {
    double m2 = 2.0 * m;
    double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));  // even step
    d = 1 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    f *= d * c;
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));  // odd step
    d = 1 + num * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + num / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1) < kEps) break;
  }
  return f;
}

}  // namespace

double incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(log_front);
  // Use the fraction where it converges; the symmetry I_x(a,b) = 1 - I_{1-x}(b,a) elsewhere.
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(x, a, b) / a;
  return 1 - front * beta_fraction(1 - x, b, a) / b;
}

double t_two_sided_p(double t, double df) {
  if (!std::isfinite(t)) return 0;
  return incomplete_beta(df / (df + t * t), df / 2, 0.5);
}

std::optional<WelchResult> welch_t_test(const SampleSummary& a, const SampleSummary& b) {
  if (a.n < 2 || b.n < 2) return std::nullopt;
  double va = a.sd * a.sd / static_cast<double>(a.n);
  double vb = b.sd * b.sd / static_cast<double>(b.n);
  WelchResult r;
  if (va + vb == 0) {
    r.p = a.mean == b.mean ? 1 : 0;
    r.t = a.mean == b.mean ? 0 : std::numeric_limits<double>::infinity();
    r.df = static_cast<double>(a.n + b.n - 2);
    return r;
  }
  r.t = (b.mean - a.mean) / std::sqrt(va + vb);
  double den = 0;
  if (va > 0) den += va * va / static_cast<double>(a.n - 1);
  if (vb > 0) den += vb * vb / static_cast<double>(b.n - 1);
  r.df = (va + vb) * (va + vb) / den;  // Welch-Satterthwaite
  r.p = t_two_sided_p(r.t, r.df);
  return r;
}

}  // namespace ktstr
