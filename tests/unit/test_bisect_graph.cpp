// The candidate graph: which commits are candidates, their order and ancestry.
#include "bisect/graph.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <string>
#include <vector>

using ktstr::bisect::CandidateGraph;
using ktstr::bisect::CommitNode;

namespace {

// g (good, not listed) <- a <- b <- m (merge) ; a <- s1 <- s2 -> m
// Newest first, as rev-list prints.
std::vector<CommitNode> merge_history() {
  return {{"m", {"b", "s2"}}, {"s2", {"s1"}}, {"b", {"a"}}, {"s1", {"a"}}, {"a", {"g"}}};
}

size_t at(const CandidateGraph& g, const std::string& id) {
  auto i = g.index_of(id);
  EXPECT_TRUE(i.has_value()) << id;
  return i.value_or(0);
}

}  // namespace

TEST(BisectGraph, ChainIsLinearOldestFirst) {
  std::vector<CommitNode> list{{"c3", {"c2"}}, {"c2", {"c1"}}, {"c1", {"g"}}};
  auto g = CandidateGraph::build(list, "c3", false);
  ASSERT_TRUE(g.has_value()) << g.error().msg;
  EXPECT_TRUE(g->linear());
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ(g->id(0), "c1");
  EXPECT_EQ(g->id(1), "c2");
  EXPECT_EQ(g->id(g->bad()), "c3");
  EXPECT_EQ(g->bad(), 2u);
  EXPECT_TRUE(g->reaches(0, 2));
  EXPECT_TRUE(g->reaches(1, 1));
  EXPECT_FALSE(g->reaches(2, 0));
  EXPECT_FALSE(g->index_of("g").has_value());  // the good end is no candidate
}

TEST(BisectGraph, MergesKeepBothSidesAndTheirAncestry) {
  auto g = CandidateGraph::build(merge_history(), "m", false);
  ASSERT_TRUE(g.has_value()) << g.error().msg;
  EXPECT_FALSE(g->linear());
  ASSERT_EQ(g->size(), 5u);
  EXPECT_EQ(g->id(g->bad()), "m");
  size_t a = at(*g, "a"), b = at(*g, "b"), s1 = at(*g, "s1"), s2 = at(*g, "s2"), m = at(*g, "m");
  for (size_t x : {a, b, s1, s2, m}) EXPECT_TRUE(g->reaches(x, m)) << g->id(x);
  EXPECT_TRUE(g->reaches(a, s2));
  EXPECT_TRUE(g->reaches(s1, s2));
  EXPECT_FALSE(g->reaches(b, s2));  // other side of the merge
  EXPECT_FALSE(g->reaches(s1, b));
  EXPECT_FALSE(g->reaches(m, a));
  // topological: every parent has a smaller index
  for (size_t i = 0; i < g->size(); ++i)
    for (size_t p : g->parents(i)) EXPECT_LT(p, i);
  std::vector<size_t> seen;
  g->for_each_ancestor(s2, [&](size_t x) { seen.push_back(x); });
  std::vector<size_t> want{a, s1, s2};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(seen, want);
}

TEST(BisectGraph, FirstParentDropsTheMergedSide) {
  auto g = CandidateGraph::build(merge_history(), "m", true);
  ASSERT_TRUE(g.has_value()) << g.error().msg;
  EXPECT_TRUE(g->linear());
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ(g->id(0), "a");
  EXPECT_EQ(g->id(1), "b");
  EXPECT_EQ(g->id(2), "m");
  EXPECT_FALSE(g->index_of("s1").has_value());
}

TEST(BisectGraph, BadEndMustBeListed) {
  auto g = CandidateGraph::build(merge_history(), "nope", false);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.error().msg, "bad commit 'nope' is not among the candidates");
  EXPECT_FALSE(g.error().hint.empty());
}

TEST(BisectGraph, RejectsEmptyDuplicatesAndCycles) {
  EXPECT_FALSE(CandidateGraph::build({}, "x", false).has_value());
  auto dup = CandidateGraph::build({{"a", {}}, {"a", {}}}, "a", false);
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().msg, "commit 'a' is listed twice");
  auto cyc = CandidateGraph::build({{"a", {"b"}}, {"b", {"a"}}}, "a", false);
  ASSERT_FALSE(cyc.has_value());
  EXPECT_NE(cyc.error().msg.find("cycle"), std::string::npos);
}

TEST(BisectGraph, DropsCommitsTheBadEndDoesNotReach) {
  // "b" is a descendant of the bad end "a", "x" unrelated: neither is a candidate.
  auto g = CandidateGraph::build({{"b", {"a"}}, {"x", {}}, {"a", {"g"}}}, "a", false);
  ASSERT_TRUE(g.has_value()) << g.error().msg;
  EXPECT_EQ(g->size(), 1u);
  EXPECT_EQ(g->id(g->bad()), "a");
}

TEST(BisectGraph, SameInputSameIndexes) {
  auto g1 = CandidateGraph::build(merge_history(), "m", false);
  auto g2 = CandidateGraph::build(merge_history(), "m", false);
  ASSERT_TRUE(g1 && g2);
  for (size_t i = 0; i < g1->size(); ++i) EXPECT_EQ(g1->id(i), g2->id(i));
}
