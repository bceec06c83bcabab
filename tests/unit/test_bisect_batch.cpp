// Batches of runs at one commit (runs in one boot) against simulated verdicts.
#include "bisect/batch.hpp"
#include "unit/bisect_sim.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

using namespace ktstr::bisect;
using sim::chain;
using sim::Rng;

namespace {

struct Drive {
  int runs = 0, boots = 0;
  Next done;
};

// The caller's loop with batches: every batch is one boot.
Drive drive(Search& s, const std::function<Outcome(size_t)>& verdict, const BatchOptions& bo, bool batched) {
  Drive d;
  for (int guard = 0; guard < 10000; ++guard) {
    Next nx = s.next();
    if (nx.kind == Next::Kind::Done) {
      d.done = nx;
      return d;
    }
    int n = batched ? plan_batch(s, nx.commit, bo) : 1;
    EXPECT_GE(n, 1);
    EXPECT_LE(n, bo.max_batch);
    ++d.boots;
    for (int i = 0; i < n; ++i, ++d.runs) s.observe(nx.commit, verdict(nx.commit));
  }
  ADD_FAILURE() << "the search never ended";
  return d;
}

}  // namespace

// The predictive probability at the bad end before any run is the prior's:
// P(a culprit) * E[p], E[p] = P(p = 1) + P(p < 1) * E[Beta(1, 2)].
TEST(BisectBatch, HitProbabilityBeforeAnyRunIsThePriors) {
  CandidateGraph g = chain(16);
  SearchOptions o;
  Search s(g, o);
  double mean_p = o.p_deterministic + (1 - o.p_deterministic) * o.p_alpha / (o.p_alpha + o.p_beta);
  double expected = (1 - o.no_culprit_prior) * mean_p + o.no_culprit_prior * o.epsilon;
  EXPECT_NEAR(s.hit_probability(g.bad()), expected, 0.02);
  // After hits at the bad end a run there almost surely hits again.
  for (int i = 0; i < 4; ++i) s.observe(g.bad(), Outcome::Hit);
  EXPECT_GT(s.hit_probability(g.bad()), 0.9);
}

// A bad end that keeps missing is asked again and again: the whole batch.
TEST(BisectBatch, ABadEndThatKeepsMissingGetsAFullBatch) {
  CandidateGraph g = chain(16);
  Search s(g, SearchOptions{});
  for (int i = 0; i < 3; ++i) s.observe(g.bad(), Outcome::Miss);
  ASSERT_EQ(s.next().commit, g.bad());
  BatchOptions bo;
  EXPECT_EQ(plan_batch(s, g.bad(), bo), bo.max_batch);
  bo.max_batch = 2;
  EXPECT_EQ(plan_batch(s, g.bad(), bo), 2);
}

// A run the search is never sure to ask for joins no batch, and a batch
// never passes the run budget.
TEST(BisectBatch, CostAndBudgetBoundTheBatch) {
  CandidateGraph g = chain(16);
  SearchOptions so;
  Search s(g, so);
  for (int i = 0; i < 3; ++i) s.observe(g.bad(), Outcome::Miss);
  BatchOptions bo;
  bo.min_asked = 1.01;
  EXPECT_EQ(plan_batch(s, g.bad(), bo), 1);
  so.max_runs = 5;
  Search tight(g, so);
  for (int i = 0; i < 3; ++i) tight.observe(g.bad(), Outcome::Miss);
  ASSERT_EQ(tight.next().kind, Next::Kind::Run);
  EXPECT_EQ(plan_batch(tight, g.bad(), BatchOptions{}), 2);
}

// Deterministic signatures: batching adds at most two runs over one-at-a-time
// and never more boots, for every culprit position; the culprit is the same.
TEST(BisectBatch, DeterministicCostsAtMostTwoMoreRuns) {
  CandidateGraph g = chain(16);
  for (size_t culprit = 0; culprit < g.size(); ++culprit) {
    auto verdict = [&](size_t x) { return g.reaches(culprit, x) ? Outcome::Hit : Outcome::Miss; };
    Search one(g, SearchOptions{}), many(g, SearchOptions{});
    Drive a = drive(one, verdict, BatchOptions{}, false);
    Drive b = drive(many, verdict, BatchOptions{}, true);
    EXPECT_EQ(b.done.reason, StopReason::ConfidenceReached);
    EXPECT_EQ(many.best(), culprit);
    EXPECT_LE(b.runs, a.runs + 2) << "culprit " << culprit;
    EXPECT_LE(b.boots, a.boots) << "culprit " << culprit;
  }
}

// p = 0.5: batches save more than a third of the boots and cost at most a few
// runs more, while naming the culprit as often as single runs do.
TEST(BisectBatch, FlakySignaturesShareBoots) {
  CandidateGraph g = chain(16);
  const int histories = 150;
  int right[2] = {0, 0}, runs[2] = {0, 0}, boots[2] = {0, 0};
  for (int batched = 0; batched < 2; ++batched) {
    Rng rng{777};
    for (int h = 0; h < histories; ++h) {
      size_t culprit = rng.next() % g.size();
      Search s(g, SearchOptions{});
      Drive d = drive(s, [&](size_t x) { return x >= culprit && rng.uniform() < 0.5 ? Outcome::Hit : Outcome::Miss; },
                      BatchOptions{}, batched != 0);
      if (d.done.reason == StopReason::ConfidenceReached && s.best() == culprit) ++right[batched];
      runs[batched] += d.runs;
      boots[batched] += d.boots;
    }
  }
  EXPECT_EQ(boots[0], runs[0]);
  EXPECT_LT(boots[1], runs[1] * 65 / 100) << "boots " << boots[1] << " runs " << runs[1];
  EXPECT_LT(runs[1], runs[0] * 13 / 10) << "runs " << runs[1] << " against " << runs[0];
  EXPECT_GE(right[1], right[0] - histories / 50);
  // What a run costs on TCG: a boot (0.55 of a fresh run) per batch plus
  // 0.45 per run; batches must come out cheaper.
  const double c = 0.45;
  EXPECT_LT(boots[1] * (1 - c) + runs[1] * c, runs[0] * 1.0);
  std::printf("[batch figures] p=0.5 N=16: single runs %.1f/bisect; batched %.1f runs in %.1f boots; right %d vs %d of %d\n",
              runs[0] / double(histories), runs[1] / double(histories), boots[1] / double(histories), right[0],
              right[1], histories);
}
