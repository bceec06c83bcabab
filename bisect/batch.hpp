// How many runs to ask of one commit at once, when runs in one booted VM
// are cheaper than runs that each boot (a repeat costs `repeat_cost` of a
// fresh run: on TCG about 3.5 s of 7.9 s).
//
// The search asks for one run at a time; a batch only pays when the search
// would have asked for the same commit again anyway. A further run joins the
// batch while the probability that the search asks for it (it picks this
// commit again after every verdict the batch has seen so far, hits and misses
// weighted by the search's own predictive probabilities) is at least
// repeat_cost: its expected saving then outweighs its cost. Observing the
// whole batch is still sound (a verdict is evidence wherever it was taken);
// it only costs the runs the search would not have asked for.
#pragma once

#include "bisect/search.hpp"

namespace ktstr::bisect {

struct BatchOptions {
  int max_batch = 4;          // runs in one boot at most (what a kill -9 can lose)
  double repeat_cost = 0.45;  // a repeat's cost as a share of a fresh run's
};

// The number of runs (>= 1) to take at `commit` now; `commit` is what
// s.next() asked for. Never more than the run budget left.
int plan_batch(const Search& s, size_t commit, const BatchOptions& o = {});

}  // namespace ktstr::bisect
