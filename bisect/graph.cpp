#include "bisect/graph.hpp"

#include <unordered_map>
#include <utility>

namespace ktstr::bisect {

struct CandidateGraph::Data {
  std::vector<std::string> ids;                 // by index
  std::unordered_map<std::string, size_t> index;
  std::vector<std::vector<size_t>> parents;     // by index, within the set
  bool linear = true;
  size_t words = 0;                             // per ancestor row
  std::vector<uint64_t> ancestors;              // size() rows of `words` (non-linear only)
};

Result<CandidateGraph> CandidateGraph::build(std::vector<CommitNode> commits, const std::string& bad,
                                             bool first_parent) {
  if (commits.empty()) return fail("no commits to bisect");
  std::unordered_map<std::string, size_t> input;
  input.reserve(commits.size());
  for (size_t i = 0; i < commits.size(); ++i) {
    if (!input.emplace(commits[i].id, i).second)
      return fail("commit '" + commits[i].id + "' is listed twice");
  }
  auto bad_it = input.find(bad);
  if (bad_it == input.end())
    return fail("bad commit '" + bad + "' is not among the candidates",
                "the bad end must be one of the listed commits (is it an ancestor of a good end?)");

  // The edges that count, as input positions.
  auto edges = [&](size_t i) {
    std::vector<size_t> out;
    const auto& ps = commits[i].parents;
    for (size_t k = 0; k < ps.size(); ++k) {
      if (first_parent && k > 0) break;
      auto it = input.find(ps[k]);
      if (it != input.end()) out.push_back(it->second);
    }
    return out;
  };

  // Iterative post-order DFS from bad: ancestors get their index before
  // their descendants; the walk order (listed parent order) fixes the ties.
  enum : uint8_t { kNew, kOpen, kDone };
  std::vector<uint8_t> state(commits.size(), kNew);
  std::vector<size_t> order;  // input positions in post-order
  struct Frame {
    size_t node;
    std::vector<size_t> next;
    size_t pos = 0;
  };
  std::vector<Frame> stack;
  stack.push_back({bad_it->second, edges(bad_it->second)});
  state[bad_it->second] = kOpen;
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.pos < f.next.size()) {
      size_t p = f.next[f.pos++];
      if (state[p] == kOpen) return fail("the commit graph has a cycle through '" + commits[p].id + "'");
      if (state[p] == kNew) {
        state[p] = kOpen;
        stack.push_back({p, edges(p)});
      }
      continue;
    }
    state[f.node] = kDone;
    order.push_back(f.node);
    stack.pop_back();
  }

  auto d = std::make_shared<Data>();
  const size_t n = order.size();
  std::vector<size_t> index_of_input(commits.size(), SIZE_MAX);
  for (size_t i = 0; i < n; ++i) index_of_input[order[i]] = i;
  d->ids.resize(n);
  d->parents.resize(n);
  d->index.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    d->ids[i] = std::move(commits[order[i]].id);
    d->index.emplace(d->ids[i], i);
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t p : edges(order[i])) {
      // edges() reads commits[].parents only, which were not moved
      d->parents[i].push_back(index_of_input[p]);
    }
    bool chain_link = i == 0 ? d->parents[i].empty()
                             : d->parents[i].size() == 1 && d->parents[i][0] == i - 1;
    if (!chain_link) d->linear = false;
  }

  if (!d->linear) {
    if (n > kMaxDagSize)
      return fail("too many candidate commits with merges (" + std::to_string(n) + ", at most " +
                      std::to_string(kMaxDagSize) + ")",
                  "narrow the range with another good commit, or bisect first-parent commits only");
    d->words = (n + 63) / 64;
    d->ancestors.assign(n * d->words, 0);
    for (size_t i = 0; i < n; ++i) {
      uint64_t* row = &d->ancestors[i * d->words];
      row[i / 64] |= uint64_t{1} << (i % 64);
      for (size_t p : d->parents[i]) {
        const uint64_t* prow = &d->ancestors[p * d->words];
        for (size_t w = 0; w <= p / 64; ++w) row[w] |= prow[w];
      }
    }
  }
  return CandidateGraph(std::move(d));
}

size_t CandidateGraph::size() const { return d_->ids.size(); }
const std::string& CandidateGraph::id(size_t i) const { return d_->ids.at(i); }
std::optional<size_t> CandidateGraph::index_of(const std::string& id) const {
  auto it = d_->index.find(id);
  if (it == d_->index.end()) return std::nullopt;
  return it->second;
}
size_t CandidateGraph::bad() const { return d_->ids.size() - 1; }
bool CandidateGraph::linear() const { return d_->linear; }
const std::vector<size_t>& CandidateGraph::parents(size_t i) const { return d_->parents.at(i); }

bool CandidateGraph::reaches(size_t ancestor, size_t descendant) const {
  if (ancestor >= size() || descendant >= size()) return false;
  if (d_->linear) return ancestor <= descendant;
  const uint64_t* row = ancestor_row(descendant);
  return (row[ancestor / 64] >> (ancestor % 64)) & 1;
}

const uint64_t* CandidateGraph::ancestor_row(size_t d) const { return &d_->ancestors[d * d_->words]; }

}  // namespace ktstr::bisect
