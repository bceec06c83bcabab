// Topology strings: parse/print round trip, rejected strings, and the guest
// cpulists a topology must produce (QEMU numbers vCPUs socket-major).
#include "core/topology.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using ktstr::Topology;
using Lists = std::vector<std::string>;

namespace {

Topology parse_ok(const std::string& s) {
  auto t = Topology::parse(s);
  EXPECT_TRUE(t.has_value()) << s << ": " << (t ? "" : t.error().msg);
  return t ? *t : Topology{};
}

}  // namespace

TEST(Topology, RoundTripsThroughToString) {
  for (const char* s : {"1n1l4c1t", "1n2l4c2t", "2n2l1c2t", "2n4l2c2t", "1n1l128c1t", "4n8l2c2t"}) {
    Topology t = parse_ok(s);
    EXPECT_EQ(t.to_string(), s);
    EXPECT_EQ(parse_ok(t.to_string()), t);
  }
}

TEST(Topology, ParsesEachField) {
  Topology t = parse_ok("2n4l3c2t");
  EXPECT_EQ(t.nodes, 2u);
  EXPECT_EQ(t.llcs, 4u);
  EXPECT_EQ(t.cores_per_llc, 3u);
  EXPECT_EQ(t.threads_per_core, 2u);
  EXPECT_EQ(t.cpus(), 24u);
  EXPECT_EQ(t.llcs_per_node(), 2u);
  EXPECT_EQ(t.cpus_per_llc(), 6u);
  EXPECT_EQ(t.cpus_per_node(), 12u);
}

TEST(Topology, SingleLlcFourCores) {
  Topology t = parse_ok("1n1l4c1t");
  EXPECT_EQ(t.cpus(), 4u);
  EXPECT_EQ(t.expected_llc_groups(), (Lists{"0-3"}));
  EXPECT_EQ(t.expected_node_cpus(), (Lists{"0-3"}));
  EXPECT_EQ(t.expected_smt_groups(), (Lists{"0", "1", "2", "3"}));
}

TEST(Topology, TwoLlcsWithSmt) {
  Topology t = parse_ok("1n2l4c2t");
  EXPECT_EQ(t.cpus(), 16u);
  EXPECT_EQ(t.expected_llc_groups(), (Lists{"0-7", "8-15"}));
  EXPECT_EQ(t.expected_node_cpus(), (Lists{"0-15"}));
  EXPECT_EQ(t.expected_smt_groups(),
            (Lists{"0-1", "2-3", "4-5", "6-7", "8-9", "10-11", "12-13", "14-15"}));
  EXPECT_EQ(t.llc_of_cpu(7), 0u);
  EXPECT_EQ(t.llc_of_cpu(8), 1u);
  EXPECT_EQ(t.core_of_cpu(9), 4u);
}

TEST(Topology, TwoNodesOneCoreEach) {
  Topology t = parse_ok("2n2l1c2t");
  EXPECT_EQ(t.cpus(), 4u);
  EXPECT_EQ(t.expected_llc_groups(), (Lists{"0-1", "2-3"}));
  EXPECT_EQ(t.expected_node_cpus(), (Lists{"0-1", "2-3"}));
  EXPECT_EQ(t.expected_smt_groups(), (Lists{"0-1", "2-3"}));
  EXPECT_EQ(t.node_of_cpu(1), 0u);
  EXPECT_EQ(t.node_of_cpu(2), 1u);
}

TEST(Topology, TwoNodesFourLlcs) {
  Topology t = parse_ok("2n4l2c2t");
  EXPECT_EQ(t.cpus(), 16u);
  EXPECT_EQ(t.expected_llc_groups(), (Lists{"0-3", "4-7", "8-11", "12-15"}));
  EXPECT_EQ(t.expected_node_cpus(), (Lists{"0-7", "8-15"}));
  EXPECT_EQ(t.expected_smt_groups().size(), 8u);
  EXPECT_EQ(t.expected_smt_groups().front(), "0-1");
  EXPECT_EQ(t.expected_smt_groups().back(), "14-15");
  // Every LLC lies inside one node.
  for (unsigned cpu = 0; cpu < t.cpus(); ++cpu)
    EXPECT_EQ(t.node_of_cpu(cpu), t.llc_of_cpu(cpu) / t.llcs_per_node()) << cpu;
}

TEST(Topology, GroupsCoverEveryCpuOnce) {
  // Independent of the formatting: the lists partition 0..cpus-1 in order.
  auto expand = [](const Lists& groups) {
    std::vector<unsigned> cpus;
    for (auto& g : groups) {
      auto dash = g.find('-');
      unsigned a = std::stoul(g.substr(0, dash));
      unsigned b = dash == std::string::npos ? a : std::stoul(g.substr(dash + 1));
      for (unsigned c = a; c <= b; ++c) cpus.push_back(c);
    }
    return cpus;
  };
  for (const char* s : {"1n1l4c1t", "1n2l4c2t", "2n2l1c2t", "2n4l2c2t", "4n8l3c2t"}) {
    Topology t = parse_ok(s);
    std::vector<unsigned> all(t.cpus());
    for (unsigned i = 0; i < t.cpus(); ++i) all[i] = i;
    EXPECT_EQ(expand(t.expected_llc_groups()), all) << s;
    EXPECT_EQ(expand(t.expected_node_cpus()), all) << s;
    EXPECT_EQ(expand(t.expected_smt_groups()), all) << s;
    EXPECT_EQ(t.expected_llc_groups().size(), t.llcs) << s;
    EXPECT_EQ(t.expected_node_cpus().size(), t.nodes) << s;
    EXPECT_EQ(t.expected_smt_groups().size(), t.llcs * t.cores_per_llc) << s;
  }
}

struct BadTopology {
  const char* text;
  const char* why;  // a fragment of the message
};

class TopologyRejects : public testing::TestWithParam<BadTopology> {};

TEST_P(TopologyRejects, WithReasonAndHint) {
  auto t = Topology::parse(GetParam().text);
  ASSERT_FALSE(t.has_value()) << GetParam().text << " parsed as " << t->to_string();
  const std::string& msg = t.error().msg;
  EXPECT_EQ(msg.rfind("invalid topology '" + std::string(GetParam().text) + "'", 0), 0u) << msg;
  EXPECT_NE(msg.find(GetParam().why), std::string::npos) << msg;
  EXPECT_NE(t.error().hint.find("1n2l4c2t"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Topology, TopologyRejects,
    testing::Values(BadTopology{"0n1l1c1t", "at least one NUMA node"},
                    BadTopology{"1n0l1c1t", "at least one LLC"},
                    BadTopology{"1n1l0c1t", "at least one core"},
                    BadTopology{"1n1l1c0t", "at least one thread"},
                    BadTopology{"3n2l1c1t", "multiple of the node count"},
                    BadTopology{"1n1l200c1t", "200 CPUs"},
                    BadTopology{"1n1l129c1t", "129 CPUs"},
                    BadTopology{"", "expected a number"},
                    BadTopology{"garbage", "expected a number"},
                    BadTopology{"1x1l1c1t", "expected 'n'"},
                    BadTopology{"1n1l1c", "expected a number before 't'"},
                    BadTopology{"n1l1c1t", "expected a number"},
                    BadTopology{"-1n1l1c1t", "expected a number"},
                    BadTopology{"1n1l1c1tx", "trailing 'x'"},
                    BadTopology{"1n1l1c1t ", "trailing ' '"},
                    BadTopology{"1n1l1c1t1n", "trailing '1n'"},
                    BadTopology{"99999n1l1c1t", "expected a number"}));
