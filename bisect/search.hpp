// The flake-aware bisect search: which candidate commit introduced (or, in
// `fixed` mode, fixed) a crash signature, from run verdicts that may be flaky.
//
// Model. The hypotheses are "commit c is the culprit" for every candidate c,
// plus "no culprit in the range". Under "c is the culprit" a commit x is
// affected when c reaches x (c is an ancestor-or-self of x). An affected
// commit shows the signature with an unknown rate p, an unaffected one with a
// small false-hit rate epsilon; runs are independent. p is integrated out on a
// grid: a prior mass at p = 1 (deterministic signatures, the common case) and
// a Beta(p_alpha, p_beta) over (0, 1) for the rest. Hits at several commits
// with no miss at a commit known to be bad drive the p posterior to 1, so a
// miss becomes near-conclusive; one miss at a commit known to be bad (a hit
// there or at an ancestor) rules p = 1 out and the search turns cautious.
//
// The cost of a deterministic signature is a trade-off no prior escapes: a
// run sequence that names c after one miss at c's parent is also what a p =
// 0.7 signature produces when it missed at the true culprit (c's parent), so
// stopping that early names the wrong commit for flaky signatures. With the
// default prior (p_deterministic 0.35, Beta(1, 2)) a deterministic signature
// costs ceil(log2 N) + 2 runs plus about 2-3 (re-runs of the boundary's miss
// until it is conclusive; with 5 % Others and 3 % skips: 7.8, 12.7, 17.0
// runs for N = 16, 256, 4096; with ktstr's two confirm-good runs and its two
// verification runs at the culprit's parent: 11.6, 16.6, 21.0) and a p = 0.7
// one is named right (or in a skipped set) 99.0-99.8 % of the time with the
// verification fed back (counting the search's own clean runs at the parent as
// the verification would save two runs at p = 1 and triple the p = 0.7
// errors: the fresh runs catch a flaky culprit's single miss);
// with p_deterministic 0.9 (for a signature
// known to reproduce every time) the deterministic cost is 5.4, 9.9, 14.1
// runs, within ceil(log2 N) + 2, but a p = 0.7 signature is then named wrongly
// 33-53 % of the time (bench/bench_bisect.cpp, bench/README.md). Rare
// signatures are bounded too: at p = 0.3 with 5 % Others a verdict carries at
// most 0.17 bits about the culprit, so naming one of N commits takes at least
// log2(N) / 0.17 runs on average (24 for N = 16, 71 for N = 4096). By Fano's
// inequality, naming it right 98 % of the time needs at least (log2 N -
// h(0.02) - 0.02 log2 N) / 0.167 runs even with p known: 22.6, 46, 70 for N =
// 16, 256, 4096, above half of syzkaller's 10 runs per tested commit (19.9,
// 39.9, 60.0 on the bench), so "98 % at p = 0.3 with half syzkaller's runs"
// cannot be met by any policy; ours is at 0.9-1.1 of syzkaller's runs there.
//
// In `fixed` mode commits before the fix show the signature at rate p,
// commits after it at epsilon, and "no culprit" means nothing in the range
// fixes it. Everything is in log space (safe for thousands of commits and
// runs).
//
// Outcomes. Other (a different death) and Skip (could not test) carry no
// evidence; they are counted. A commit with skip_limit skips, or with
// other_limit Others and three times more Others than verdicts, is not asked
// again ("effectively skipped"). Culprits that only such commits separate
// cannot be told apart: when their group is what remains, the search ends with
// "only skipped commits left" and ambiguous() lists the group, like git's "the
// first bad commit could be any of".
//
// Choosing. next() asks, in order: nothing when max_runs are spent; (normal
// mode) the bad end while it has no hit yet, so the caller's loop needs no
// separate confirmation step (after bad_end_tries runs there without a hit,
// Others included: Done, "the bad end does not reproduce"; a skip there:
// Done, "the bad end cannot be tested"); once the most probable culprit
// reaches `confidence`: (normal mode) that culprit itself while it has no hit
// of its own (KernelCI's "the culprit reproduces": in a DAG, hits on both
// sides of a merge can make a commit that never ran the most probable; its
// misses send the search on), else nothing; nothing once "no culprit"
// reaches `confidence`; otherwise the commit
// whose verdict has the largest expected information gain about the culprit,
// discounted for Others seen there. Ties go to the lowest index.
//
// Verification. The caller then runs the culprit's parents (ktstr bisect:
// --confirm-runs each, in one boot) and feeds those runs here too; when they
// take the culprit below `confidence` (a parent that shows the signature, or
// clean runs that make a flaky boundary doubtful), next() asks for runs again
// and the search goes on. On the bench this halves the wrong answers at p =
// 0.3 (a run of hits that makes a flaky signature look deterministic, so that
// one miss at the true culprit seemed conclusive, is the usual cause).
//
// Determinism: the state is a function of the observations in order; replaying
// them into a fresh Search (same graph, same options) gives the same state.
#pragma once

#include "bisect/graph.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace ktstr::bisect {

enum class Outcome { Hit, Miss, Other, Skip };
//  Hit: the signature appeared. Miss: a clean run. Other: the scheduler/kernel
//  died with a DIFFERENT signature (no evidence either way about ours; never
//  counted as a hit). Skip: could not test (build failed, no boot, agent never
//  started, timeout without a scheduler death).

const char* outcome_name(Outcome o);  // "hit", "miss", "other", "skip"

struct SearchOptions {
  double confidence = 0.95;  // stop when P(best culprit) >= confidence
  int max_runs = 0;          // 0: default_max_runs(graph size)
  bool fixed = false;        // find the first commit where the signature STOPS appearing
  // Model parameters.
  double epsilon = 0.001;        // P(signature) at an unaffected commit
  double p_deterministic = 0.35;  // prior mass of p = 1
  double p_alpha = 1.0;           // Beta prior of p for the rest of the mass
  double p_beta = 2.0;            // (leaning low: optimism about p is what names wrong commits)
  double no_culprit_prior = 0.05;  // prior of "no culprit in the range"
  int bad_end_tries = 20;          // runs at the bad end without a hit before giving up
  int skip_limit = 1;              // skips after which a commit is not asked again
  int other_limit = 3;             // Others (without verdicts) after which likewise
};

// The run budget when SearchOptions::max_runs is 0: 20 runs per bisection
// step plus 40, i.e. 20 * ceil(log2 n) + 40 (twice syzkaller's 10 runs per
// tested commit, plus the bad-end confirmation and the verification): enough
// for rates down to about 0.3 (15 * ceil(log2 n) + 30 left 2 % of p = 0.3
// bisects of 16 commits out of budget); rarer signatures need a larger one.
int default_max_runs(size_t n);

struct Evidence {
  int runs = 0, hit = 0, miss = 0, other = 0, skip = 0;
};

// Why the search stopped (the rules above, in the order next() checks them).
enum class StopReason {
  MaxRunsSpent,            // "max runs spent"
  BadEndCannotBeTested,    // "the bad end cannot be tested"
  BadEndDoesNotReproduce,  // "the bad end does not reproduce"
  ConfidenceReached,       // "confidence reached"
  NoCulpritInRange,        // "no culprit in the range"
  OnlySkippedLeft,         // "only skipped commits left"
  NoInformativeCommit,     // "no informative commit left"
};
// The text above, for printing and storing (ktstr bisect's result "reason").
const char* stop_reason_name(StopReason r);
// The reason a stored text names; nothing for an unknown text.
std::optional<StopReason> parse_stop_reason(const std::string& text);

struct Next {
  enum class Kind { Run, Done } kind = Kind::Done;
  size_t commit = 0;                 // for Run
  std::optional<StopReason> reason;  // for Done
};

class Search {
 public:
  // Keeps a copy of g (copies share the data).
  Search(const CandidateGraph& g, SearchOptions o);

  void observe(size_t commit, Outcome o);  // one run's verdict at a candidate
  // One run at a good end (outside the candidates), e.g. the caller's
  // confirm-good runs. In fixed mode a good end shows the signature at rate
  // p, so its hits teach the engine p: the engine cannot ask for it, so the
  // caller confirms the good (old) end reproduces before the search and feeds
  // those runs here (a few hits there save runs when the fix is early). In
  // normal mode they are counted only. Counts towards runs().
  void observe_good(Outcome o);

  Next next() const;       // the commit to run next, or Done
  size_t best() const;     // most probable culprit
  double probability(size_t commit) const;  // P(culprit == commit)
  double no_culprit_probability() const;    // P(no commit in range introduces the signature)
  // The predictive probability that the next run at `commit` shows the
  // signature (the posterior mean over culprits and p), as choose() uses it.
  double hit_probability(size_t commit) const;
  const Evidence& evidence(size_t commit) const;
  const Evidence& good_evidence() const;    // runs fed to observe_good
  int runs() const;                         // runs observed so far (both kinds)
  int max_runs() const;                     // the budget in force
  // When skips leave several candidates that no testable commit separates and
  // together they reach `confidence` (like git's "the first bad commit could
  // be any of"), those candidates in index order; else empty.
  std::vector<size_t> ambiguous() const;
  // P(p = 1): how sure the engine is that the signature is deterministic.
  double deterministic_probability() const;
  bool excluded(size_t commit) const;       // effectively skipped

  const CandidateGraph& graph() const { return g_; }
  const SearchOptions& options() const { return o_; }

 private:
  struct Mix {
    double log_like = 0;  // log sum_k w_k p_k^h (1-p_k)^m
    double mean_p = 0;    // posterior mean of p given (h, m)
    double det = 0;       // posterior P(p = 1) given (h, m)
    double mean_p_entropy = 0;  // binary entropy of mean_p (bits)
  };
  const Mix& mix(int h, int m) const;
  void update();
  Next decide(std::vector<size_t>* ambiguous) const;
  bool choose(size_t* commit) const;
  void classes(std::vector<size_t>* best_class, double* mass) const;

  CandidateGraph g_;
  SearchOptions o_;
  // p grid: values and log prior weights; the last point is p = 1.
  std::vector<double> grid_p_, grid_logw_;
  std::vector<Evidence> ev_;
  Evidence good_;
  int runs_ = 0;
  int hits_ = 0, misses_ = 0;        // over all candidates
  std::vector<int> hit_desc_, miss_desc_;  // per c: verdicts at commits c reaches
  // Derived state (a function of the above), refreshed by update().
  std::vector<double> prob_;         // P(culprit == c)
  std::vector<double> mean_p_;       // E[p | culprit == c]
  std::vector<double> mean_p_entropy_;
  double none_ = 0, none_mean_p_ = 0, det_ = 0;
  size_t best_ = 0;
  Next next_;
  std::vector<size_t> ambiguous_;
  mutable std::unordered_map<uint64_t, Mix> mix_cache_;
};

}  // namespace ktstr::bisect
