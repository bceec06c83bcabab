// Topology strings such as "1n2l4c2t": NUMA nodes, LLCs in total (a multiple
// of the nodes), cores per LLC, threads per core. Parses and prints back
// unchanged; maps onto QEMU sockets (one socket per LLC, since under TCG dies
// do not split the L3 but sockets do) and NUMA nodes.
#pragma once

#include "core/result.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace ktstr {

struct Topology {
  unsigned nodes = 1;
  unsigned llcs = 1;             // in total, across all nodes
  unsigned cores_per_llc = 1;
  unsigned threads_per_core = 1;

  static constexpr unsigned kMaxCpus = 128;

  static Result<Topology> parse(std::string_view s);
  std::string to_string() const;

  unsigned cpus() const { return llcs * cores_per_llc * threads_per_core; }
  unsigned llcs_per_node() const { return llcs / nodes; }
  unsigned cpus_per_llc() const { return cores_per_llc * threads_per_core; }
  unsigned cpus_per_node() const { return cpus() / nodes; }

  // QEMU numbers vCPUs socket-major, then core, then thread, so CPU ids of
  // an LLC (socket) are contiguous and so are a node's.
  unsigned llc_of_cpu(unsigned cpu) const { return cpu / cpus_per_llc(); }
  unsigned node_of_cpu(unsigned cpu) const { return cpu / cpus_per_node(); }
  unsigned core_of_cpu(unsigned cpu) const { return cpu / threads_per_core; }

  // Expected guest views, as sysfs cpulist strings ("0-3", "4-7", ...):
  std::vector<std::string> expected_llc_groups() const;   // one per LLC
  std::vector<std::string> expected_node_cpus() const;    // one per node
  std::vector<std::string> expected_smt_groups() const;   // one per core

  bool operator==(const Topology&) const = default;
};

// "0-3" / "0,2" style list of a contiguous range.
std::string cpu_range(unsigned first, unsigned count);

}  // namespace ktstr
