#include "core/topology.hpp"

#include <cctype>
#include <charconv>

namespace ktstr {
namespace {

const char* kTopoHint = "a topology reads <nodes>n<llcs>l<cores>c<threads>t, e.g. 1n2l4c2t";

}  // namespace

Result<Topology> Topology::parse(std::string_view s) {
  auto bad = [&](const std::string& why) {
    return fail("invalid topology '" + std::string(s) + "': " + why, kTopoHint);
  };
  const char suffixes[4] = {'n', 'l', 'c', 't'};
  unsigned values[4] = {};
  size_t pos = 0;
  for (int i = 0; i < 4; ++i) {
    size_t start = pos;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) ++pos;
    if (pos == start || pos - start > 4) return bad("expected a number before '" + std::string(1, suffixes[i]) + "'");
    std::from_chars(s.data() + start, s.data() + pos, values[i]);
    if (pos >= s.size() || s[pos] != suffixes[i])
      return bad("expected '" + std::string(1, suffixes[i]) + "' after " + std::string(s.substr(start, pos - start)));
    ++pos;
  }
  if (pos != s.size()) return bad("unexpected trailing '" + std::string(s.substr(pos)) + "'");
  Topology t{values[0], values[1], values[2], values[3]};
  if (t.nodes == 0) return bad("there must be at least one NUMA node");
  if (t.llcs == 0) return bad("there must be at least one LLC");
  if (t.cores_per_llc == 0) return bad("there must be at least one core per LLC");
  if (t.threads_per_core == 0) return bad("there must be at least one thread per core");
  if (t.llcs % t.nodes != 0)
    return bad("the LLC count (" + std::to_string(t.llcs) + ") must be a multiple of the node count (" +
               std::to_string(t.nodes) + ")");
  unsigned long long cpus = 1ULL * t.llcs * t.cores_per_llc * t.threads_per_core;
  if (cpus > kMaxCpus)
    return bad(std::to_string(cpus) + " CPUs is more than the " + std::to_string(kMaxCpus) + " allowed");
  return t;
}

std::string Topology::to_string() const {
  return std::to_string(nodes) + "n" + std::to_string(llcs) + "l" + std::to_string(cores_per_llc) + "c" +
         std::to_string(threads_per_core) + "t";
}

std::string cpu_range(unsigned first, unsigned count) {
  if (count == 1) return std::to_string(first);
  return std::to_string(first) + "-" + std::to_string(first + count - 1);
}

std::vector<std::string> Topology::expected_llc_groups() const {
  std::vector<std::string> out;
  for (unsigned l = 0; l < llcs; ++l) out.push_back(cpu_range(l * cpus_per_llc(), cpus_per_llc()));
  return out;
}

std::vector<std::string> Topology::expected_node_cpus() const {
  std::vector<std::string> out;
  for (unsigned n = 0; n < nodes; ++n) out.push_back(cpu_range(n * cpus_per_node(), cpus_per_node()));
  return out;
}

std::vector<std::string> Topology::expected_smt_groups() const {
  std::vector<std::string> out;
  unsigned cores = llcs * cores_per_llc;
  for (unsigned c = 0; c < cores; ++c) out.push_back(cpu_range(c * threads_per_core, threads_per_core));
  return out;
}

}  // namespace ktstr
