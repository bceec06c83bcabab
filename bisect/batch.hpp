// How many runs to ask of one commit at once, when runs in one booted VM
// are cheaper than runs that each boot (on TCG well under half the cost of
// a run that boots: bench/README.md).
//
// The search asks for one run at a time; a batch only pays when the search
// would have asked for the same commit again anyway. A further run joins the
// batch while the probability that the search asks for it (it picks this
// commit again after every verdict the batch has seen so far, hits and misses
// weighted by the search's own predictive probabilities) is at least
// min_asked. Observing the whole batch is sound (a verdict is evidence
// wherever it was taken), but runs the search did not ask for shift where it
// stops: with the break-even share (0.45) as the bar, p = 0.7 signatures were
// named right 4 points less often on the bench (bench/bench_bisect.cpp,
// `--min-asked`); at 0.6 accuracy is unchanged and a flaky bisect still
// boots about 40 % less.
#pragma once

#include "bisect/search.hpp"

namespace ktstr::bisect {

struct BatchOptions {
  int max_batch = 3;       // runs in one boot at most
  double min_asked = 0.6;  // the probability that the search asks for a further run
};

// The number of runs (>= 1) to take at `commit` now; `commit` is what
// s.next() asked for. Never more than the run budget left.
int plan_batch(const Search& s, size_t commit, const BatchOptions& o = {});

}  // namespace ktstr::bisect
