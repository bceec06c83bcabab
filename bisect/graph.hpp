// The candidate commits of a bisect and their ancestry. Knows no git: the
// caller lists the commits (as `git rev-list --parents bad --not good...`).
#pragma once

#include "core/result.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::bisect {

struct CommitNode {
  std::string id;
  std::vector<std::string> parents;
};

// The candidates: the commits reachable from `bad` and not from any good end
// (as `git rev-list bad --not good...`), the bad end included; parents outside
// the set are ignored, and listed commits `bad` does not reach are dropped.
// first_parent: only first-parent edges count. A linear ladder of kernel
// versions is a chain.
//
// Indexes are in topological order: every commit comes after its ancestors,
// so the bad end (which every candidate reaches) is size() - 1, and in a chain
// index order is history order (0 is the oldest). The order depends only on
// the input (parents are walked in the order listed), so the same list gives
// the same indexes.
//
// Copies share the data (cheap). A graph with merges keeps an ancestor bit
// matrix (size()^2 / 8 bytes); build() refuses one larger than kMaxDagSize.
class CandidateGraph {
 public:
  static constexpr size_t kMaxDagSize = 32768;

  // Errors: no commits, a commit listed twice, `bad` not listed, a cycle,
  // too many commits with merges.
  static Result<CandidateGraph> build(std::vector<CommitNode> commits, const std::string& bad,
                                      bool first_parent);

  size_t size() const;
  const std::string& id(size_t i) const;
  std::optional<size_t> index_of(const std::string& id) const;
  size_t bad() const;  // index of the bad end (size() - 1)
  // ancestor-or-self via parent edges (first-parent edges only when asked)
  bool reaches(size_t ancestor, size_t descendant) const;

  bool linear() const;  // a chain: reaches(a, d) == (a <= d)
  const std::vector<size_t>& parents(size_t i) const;  // within the set, in listed order

  // Calls f(a) for every ancestor-or-self a of d, in increasing index order.
  template <typename F>
  void for_each_ancestor(size_t d, F&& f) const {
    if (linear()) {
      for (size_t a = 0; a <= d; ++a) f(a);
      return;
    }
    const uint64_t* row = ancestor_row(d);
    for (size_t w = 0; w <= d / 64; ++w) {
      uint64_t bits = row[w];
      while (bits) {
        f(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
        bits &= bits - 1;
      }
    }
  }

 private:
  struct Data;
  explicit CandidateGraph(std::shared_ptr<const Data> d) : d_(std::move(d)) {}
  const uint64_t* ancestor_row(size_t d) const;
  std::shared_ptr<const Data> d_;
};

}  // namespace ktstr::bisect
