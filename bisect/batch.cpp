#include "bisect/batch.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace ktstr::bisect {

int plan_batch(const Search& s, size_t commit, const BatchOptions& o) {
  const int budget = std::max(1, s.max_runs() - s.runs());
  const int cap = std::min(o.max_batch, budget);
  // The search states after k verdicts at `commit` after which it would still
  // ask for `commit`, each with its probability.
  std::vector<std::pair<Search, double>> frontier;
  frontier.emplace_back(s, 1.0);
  int batch = 1;
  while (batch < cap) {
    std::vector<std::pair<Search, double>> next;
    double asked = 0;
    for (auto& [state, weight] : frontier) {
      const double hit = state.hit_probability(commit);
      for (Outcome v : {Outcome::Hit, Outcome::Miss}) {
        const double w = weight * (v == Outcome::Hit ? hit : 1 - hit);
        if (w <= 0) continue;
        Search after = state;
        after.observe(commit, v);
        Next n = after.next();
        if (n.kind == Next::Kind::Run && n.commit == commit) {
          asked += w;
          next.emplace_back(std::move(after), w);
        }
      }
    }
    if (asked < o.min_asked) break;
    ++batch;
    frontier = std::move(next);
  }
  return batch;
}

}  // namespace ktstr::bisect
