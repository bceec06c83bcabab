// The posterior over culprits (p integrated out on a grid) and the choice of
// the next commit by expected information gain. See search.hpp for the model.
#include "bisect/search.hpp"

#include "core/splitmix64.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

namespace ktstr::bisect {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
constexpr int kGridPoints = 40;      // midpoints of (0, 1), plus p = 1
constexpr double kMinGain = 1e-7;    // bits: below this a run teaches nothing
constexpr int kOtherDiscount = 4;    // pseudo-verdicts when discounting Others

// Binary entropy in bits.
double entropy(double q) {
  if (q <= 0 || q >= 1) return 0;
  return -(q * std::log2(q) + (1 - q) * std::log2(1 - q));
}

double log_sum_exp(const std::vector<double>& v) {
  double mx = kNegInf;
  for (double x : v) mx = std::max(mx, x);
  if (mx == kNegInf) return kNegInf;
  double s = 0;
  for (double x : v) s += std::exp(x - mx);
  return mx + std::log(s);
}


}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Hit: return "hit";
    case Outcome::Miss: return "miss";
    case Outcome::Other: return "other";
    case Outcome::Skip: return "skip";
  }
  return "?";
}

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::MaxRunsSpent: return "max runs spent";
    case StopReason::BadEndCannotBeTested: return "the bad end cannot be tested";
    case StopReason::BadEndDoesNotReproduce: return "the bad end does not reproduce";
    case StopReason::ConfidenceReached: return "confidence reached";
    case StopReason::NoCulpritInRange: return "no culprit in the range";
    case StopReason::OnlySkippedLeft: return "only skipped commits left";
    case StopReason::NoInformativeCommit: return "no informative commit left";
  }
  return "?";
}

std::optional<StopReason> parse_stop_reason(const std::string& text) {
  for (StopReason r : {StopReason::MaxRunsSpent, StopReason::BadEndCannotBeTested, StopReason::BadEndDoesNotReproduce,
                       StopReason::ConfidenceReached, StopReason::NoCulpritInRange, StopReason::OnlySkippedLeft,
                       StopReason::NoInformativeCommit})
    if (text == stop_reason_name(r)) return r;
  return std::nullopt;
}

int default_max_runs(size_t n) {
  int steps = 0;
  while ((size_t{1} << steps) < n) ++steps;
  return 20 * steps + 40;
}

Search::Search(const CandidateGraph& g, SearchOptions o) : g_(g), o_(o) {
  const size_t n = g_.size();
  ev_.assign(n, {});
  hit_desc_.assign(n, 0);
  miss_desc_.assign(n, 0);
  prob_.assign(n, 0);
  mean_p_.assign(n, 0);
  mean_p_entropy_.assign(n, 0);

  // p grid: Beta(alpha, beta) weights on midpoints carry 1 - p_deterministic
  // of the mass, the point p = 1 the rest.
  double det = std::clamp(o_.p_deterministic, 0.0, 1.0);
  std::vector<double> logpdf;
  for (int k = 0; k < kGridPoints; ++k) {
    double p = (k + 0.5) / kGridPoints;
    grid_p_.push_back(p);
    logpdf.push_back((o_.p_alpha - 1) * std::log(p) + (o_.p_beta - 1) * std::log1p(-p));
  }
  double norm = log_sum_exp(logpdf);
  for (double lp : logpdf) grid_logw_.push_back(det < 1 ? std::log1p(-det) + lp - norm : kNegInf);
  grid_p_.push_back(1.0);
  grid_logw_.push_back(det > 0 ? std::log(det) : kNegInf);
  update();
}

const Search::Mix& Search::mix(int h, int m) const {
  uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(h)) << 32) | static_cast<uint32_t>(m);
  auto it = mix_cache_.find(key);
  if (it != mix_cache_.end()) return it->second;
  const size_t k = grid_p_.size();
  std::vector<double> t(k);
  for (size_t i = 0; i < k; ++i) {
    double p = grid_p_[i];
    double lm = p >= 1 ? (m > 0 ? kNegInf : 0.0) : m * std::log1p(-p);
    t[i] = grid_logw_[i] == kNegInf || lm == kNegInf ? kNegInf : grid_logw_[i] + h * std::log(p) + lm;
  }
  Mix r;
  r.log_like = log_sum_exp(t);
  if (r.log_like != kNegInf) {
    double s = 0;
    for (size_t i = 0; i < k; ++i) {
      double w = std::exp(t[i] - r.log_like);
      s += w * grid_p_[i];
    }
    r.mean_p = s;
    r.det = std::exp(t[k - 1] - r.log_like);
    r.mean_p_entropy = entropy(r.mean_p);
  }
  return mix_cache_.emplace(key, r).first->second;
}

void Search::observe(size_t commit, Outcome o) {
  if (commit >= ev_.size()) throw std::out_of_range("bisect: commit index out of range");
  Evidence& e = ev_[commit];
  ++e.runs;
  ++runs_;
  switch (o) {
    case Outcome::Hit:
      ++e.hit;
      ++hits_;
      g_.for_each_ancestor(commit, [&](size_t c) { ++hit_desc_[c]; });
      break;
    case Outcome::Miss:
      ++e.miss;
      ++misses_;
      g_.for_each_ancestor(commit, [&](size_t c) { ++miss_desc_[c]; });
      break;
    case Outcome::Other: ++e.other; break;
    case Outcome::Skip: ++e.skip; break;
  }
  update();
}

void Search::observe_good(Outcome o) {
  ++good_.runs;
  ++runs_;
  switch (o) {
    case Outcome::Hit: ++good_.hit; break;
    case Outcome::Miss: ++good_.miss; break;
    case Outcome::Other: ++good_.other; break;
    case Outcome::Skip: ++good_.skip; break;
  }
  update();
}

void Search::update() {
  const size_t n = g_.size();
  const double leps = std::log(o_.epsilon), l1eps = std::log1p(-o_.epsilon);
  const double prior_none = std::clamp(o_.no_culprit_prior, 0.0, 1.0);
  const double log_prior_c = std::log1p(-prior_none) - std::log(static_cast<double>(n));
  std::vector<double> logpost(n);
  std::vector<double> det(n);
  // Neighbours usually share their verdict counts (always in a chain, between
  // tested commits): reuse the last lookup.
  const Mix* last = nullptr;
  int last_h = -1, last_m = -1;
  for (size_t c = 0; c < n; ++c) {
    int ha = hit_desc_[c], ma = miss_desc_[c];
    int h = o_.fixed ? hits_ - ha + good_.hit : ha;
    int m = o_.fixed ? misses_ - ma + good_.miss : ma;
    if (!last || h != last_h || m != last_m) {
      last = &mix(h, m);
      last_h = h;
      last_m = m;
    }
    logpost[c] = log_prior_c + last->log_like +
                 (o_.fixed ? ha * leps + ma * l1eps : (hits_ - ha) * leps + (misses_ - ma) * l1eps);
    mean_p_[c] = last->mean_p;
    mean_p_entropy_[c] = last->mean_p_entropy;
    det[c] = last->det;
  }
  double log_none = kNegInf, none_det = std::clamp(o_.p_deterministic, 0.0, 1.0);
  none_mean_p_ = 0;
  if (prior_none > 0) {
    if (!o_.fixed) {
      log_none = std::log(prior_none) + hits_ * leps + misses_ * l1eps;
    } else {
      const Mix& mx = mix(hits_ + good_.hit, misses_ + good_.miss);
      log_none = std::log(prior_none) + mx.log_like;
      none_mean_p_ = mx.mean_p;
      none_det = mx.det;
    }
  }
  // Normalise in log space.
  double mx = log_none;
  for (double v : logpost) mx = std::max(mx, v);
  // exp() once per run of equal values (chains have few distinct ones)
  std::vector<double> ex(n);
  for (size_t c = 0; c < n; ++c) ex[c] = c > 0 && logpost[c] == logpost[c - 1] ? ex[c - 1] : std::exp(logpost[c] - mx);
  double total = log_none == kNegInf ? 0 : std::exp(log_none - mx);
  for (double v : ex) total += v;
  best_ = 0;
  det_ = 0;
  for (size_t c = 0; c < n; ++c) {
    prob_[c] = ex[c] / total;
    det_ += prob_[c] * det[c];
    if (prob_[c] > prob_[best_]) best_ = c;
  }
  none_ = log_none == kNegInf ? 0 : std::exp(log_none - mx) / total;
  det_ += none_ * none_det;

  ambiguous_.clear();
  next_ = decide(&ambiguous_);
}

bool Search::excluded(size_t commit) const {
  const Evidence& e = ev_.at(commit);
  if (e.skip >= std::max(1, o_.skip_limit)) return true;
  return e.other >= std::max(1, o_.other_limit) && e.other >= 3 * (e.hit + e.miss);
}

Next Search::decide(std::vector<size_t>* amb) const {
  Next done;
  done.kind = Next::Kind::Done;
  if (runs_ >= max_runs()) {
    done.reason = StopReason::MaxRunsSpent;
    return done;
  }
  const size_t bad = g_.bad();
  if (!o_.fixed && ev_[bad].hit == 0) {
    // Others at the bad end only count towards bad_end_tries here: the
    // caller asked for this signature, so a masking crash is given its tries.
    if (ev_[bad].skip >= std::max(1, o_.skip_limit)) {
      done.reason = StopReason::BadEndCannotBeTested;
      return done;
    }
    if (ev_[bad].runs - ev_[bad].skip >= o_.bad_end_tries) {
      done.reason = StopReason::BadEndDoesNotReproduce;
      return done;
    }
    return Next{Next::Kind::Run, bad, {}};
  }
  if (prob_[best_] >= o_.confidence) {
    // Verify as KernelCI does before naming it: the culprit reproduces by
    // itself. A posterior can reach the confidence on hits at descendants
    // and misses at the parent alone; a culprit named too early (its
    // descendant is the real one) never shows a hit, and every miss asked
    // here moves the mass back until the search goes on elsewhere.
    if (!o_.fixed && ev_[best_].hit == 0 && !excluded(best_)) return Next{Next::Kind::Run, best_, {}};
    done.reason = StopReason::ConfidenceReached;
    return done;
  }
  if (none_ >= o_.confidence) {
    done.reason = StopReason::NoCulpritInRange;
    return done;
  }
  bool any_excluded = false;
  for (size_t x = 0; x < ev_.size() && !any_excluded; ++x) any_excluded = excluded(x);
  std::vector<size_t> cls;
  double mass = 0;
  if (any_excluded) {
    classes(&cls, &mass);
    if (cls.size() > 1 && mass >= o_.confidence) {
      *amb = cls;
      done.reason = StopReason::OnlySkippedLeft;
      return done;
    }
  }
  size_t x = 0;
  if (choose(&x)) return Next{Next::Kind::Run, x, {}};
  if (any_excluded) {
    if (cls.size() > 1) *amb = cls;
    done.reason = StopReason::OnlySkippedLeft;
  } else {
    done.reason = StopReason::NoInformativeCommit;
  }
  return done;
}

// The most probable group of culprits that no testable commit tells apart:
// c and c' are together when the commits they affect differ only in
// effectively skipped commits.
void Search::classes(std::vector<size_t>* best_class, double* mass) const {
  const size_t n = g_.size();
  std::vector<uint64_t> key(n, 0);
  if (g_.linear()) {
    // c and c + 1 differ in commit c alone.
    uint64_t k = 0;
    for (size_t c = 0; c < n; ++c) {
      key[c] = k;
      if (!excluded(c)) ++k;
    }
  } else {
    for (size_t x = 0; x < n; ++x) {
      if (excluded(x)) continue;
      uint64_t m = splitmix64(x);  // a fixed key per commit
      g_.for_each_ancestor(x, [&](size_t c) { key[c] ^= m; });
    }
  }
  // Class masses; the heaviest class wins, the lowest key on ties.
  std::vector<std::pair<uint64_t, double>> masses;
  if (g_.linear()) {
    for (size_t c = 0; c < n; ++c) {
      if (masses.empty() || masses.back().first != key[c]) masses.push_back({key[c], 0});
      masses.back().second += prob_[c];
    }
  } else {
    std::map<uint64_t, double> by_key;
    for (size_t c = 0; c < n; ++c) by_key[key[c]] += prob_[c];
    masses.assign(by_key.begin(), by_key.end());
  }
  uint64_t best_key = masses.front().first;
  double best_mass = masses.front().second;
  for (auto& [k, m] : masses) {
    if (m > best_mass) {
      best_mass = m;
      best_key = k;
    }
  }
  best_class->clear();
  for (size_t c = 0; c < n; ++c)
    if (key[c] == best_key) best_class->push_back(c);
  *mass = best_mass;
}

// The commit whose verdict tells the most about the culprit: expected
// information gain (bits) of a hit/miss verdict, discounted by the share of
// Others seen there.
bool Search::choose(size_t* commit) const {
  const size_t n = g_.size();
  const double eps = o_.epsilon, h_eps = entropy(eps);
  std::vector<double> pq(n), ph(n);
  double t1 = 0, t2 = 0;
  for (size_t c = 0; c < n; ++c) {
    pq[c] = prob_[c] * mean_p_[c];
    ph[c] = prob_[c] * mean_p_entropy_[c];
    t1 += pq[c];
    t2 += ph[c];
  }
  auto gain = [&](double s0, double s1, double e1) {
    double phit, cond;
    if (!o_.fixed) {
      double rest = std::max(0.0, 1 - s0);
      phit = s1 + rest * eps;
      cond = e1 + rest * h_eps;
    } else {
      phit = s0 * eps + (t1 - s1) + none_ * none_mean_p_;
      cond = s0 * h_eps + (t2 - e1) + none_ * entropy(none_mean_p_);
    }
    return std::max(0.0, entropy(std::clamp(phit, 0.0, 1.0)) - cond);
  };
  double best_score = 0;
  bool found = false;
  double s0 = 0, s1 = 0, e1 = 0;
  for (size_t x = 0; x < n; ++x) {
    if (g_.linear()) {
      s0 += prob_[x];
      s1 += pq[x];
      e1 += ph[x];
    } else {
      s0 = s1 = e1 = 0;
      g_.for_each_ancestor(x, [&](size_t c) {
        s0 += prob_[c];
        s1 += pq[c];
        e1 += ph[c];
      });
    }
    // A verdict says no more than whether x is affected: nothing when that
    // is (nearly) certain.
    if (std::min(s0, 1 - s0) < 1e-9 || excluded(x)) continue;
    const Evidence& e = ev_[x];
    double verdicts = e.hit + e.miss + kOtherDiscount;
    double score = gain(s0, s1, e1) * verdicts / (verdicts + e.other);
    if (score > kMinGain && score > best_score) {
      best_score = score;
      *commit = x;
      found = true;
    }
  }
  return found;
}

Next Search::next() const { return next_; }
size_t Search::best() const { return best_; }
double Search::probability(size_t commit) const { return prob_.at(commit); }
double Search::hit_probability(size_t x) const {
  // s0: P(x is affected), s1: P(x affected and a hit), over the culprits x reaches from.
  double s0 = 0, s1 = 0, t1 = 0;
  for (size_t c = 0; c < g_.size(); ++c) {
    t1 += prob_[c] * mean_p_[c];
    if (g_.reaches(c, x)) {
      s0 += prob_[c];
      s1 += prob_[c] * mean_p_[c];
    }
  }
  const double eps = o_.epsilon;
  double p = !o_.fixed ? s1 + std::max(0.0, 1 - s0) * eps : s0 * eps + (t1 - s1) + none_ * none_mean_p_;
  return std::clamp(p, 0.0, 1.0);
}

double Search::no_culprit_probability() const { return none_; }
const Evidence& Search::evidence(size_t commit) const { return ev_.at(commit); }
const Evidence& Search::good_evidence() const { return good_; }
int Search::runs() const { return runs_; }
int Search::max_runs() const { return o_.max_runs > 0 ? o_.max_runs : default_max_runs(g_.size()); }
std::vector<size_t> Search::ambiguous() const { return ambiguous_; }
double Search::deterministic_probability() const { return det_; }

}  // namespace ktstr::bisect
