// The candidate graph: which commits are candidates, their order and ancestry.
#include "bisect/graph.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using ktstr::bisect::CandidateGraph;
using ktstr::bisect::CommitNode;

TEST(BisectGraph, ChainIsLinearOldestFirst) {
  // newest first, as rev-list prints; "g" is the good end (not listed)
  std::vector<CommitNode> list{{"c3", {"c2"}}, {"c2", {"c1"}}, {"c1", {"g"}}};
  auto g = CandidateGraph::build(list, "c3", false);
  ASSERT_TRUE(g.has_value()) << g.error().msg;
  EXPECT_TRUE(g->linear());
  ASSERT_EQ(g->size(), 3u);
  EXPECT_EQ(g->id(0), "c1");
  EXPECT_EQ(g->id(g->bad()), "c3");
  EXPECT_TRUE(g->reaches(0, 2));
  EXPECT_FALSE(g->reaches(2, 0));
}
