#include "guest/agent/topology_report.hpp"

#include "guest/agent/util.hpp"

#include <algorithm>
#include <dirent.h>
#include <set>

namespace ktstr::agent {

namespace {

// Unique cpulists ordered by their first CPU ("2-3" before "10-11").
std::vector<std::string> sorted_groups(const std::set<std::string>& groups) {
  std::vector<std::string> out(groups.begin(), groups.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return first_cpu(a) < first_cpu(b);
  });
  return out;
}

// The cache index whose level is 3 (index3 on x86, but do not assume).
std::optional<std::string> llc_list(const std::string& cpu_dir) {
  for (int i = 0; i < 8; ++i) {
    std::string index = cpu_dir + "/cache/index" + std::to_string(i);
    auto level = read_trimmed(index + "/level");
    if (!level) continue;
    if (*level == "3") return read_trimmed(index + "/shared_cpu_list");
  }
  return std::nullopt;
}

std::vector<std::string> node_cpulists(const std::string& sysfs) {
  std::string dir = sysfs + "/devices/system/node";
  std::vector<std::pair<unsigned, std::string>> nodes;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("node", 0) != 0 || name.size() == 4) continue;
      auto id = parse_cpulist(name.substr(4));  // digits only
      if (!id || id->size() != 1) continue;
      auto cpus = read_trimmed(dir + "/" + name + "/cpulist");
      if (cpus && !cpus->empty()) nodes.emplace_back(id->front(), *cpus);
    }
    ::closedir(d);
  }
  std::sort(nodes.begin(), nodes.end());
  std::vector<std::string> out;
  for (auto& [id, cpus] : nodes) out.push_back(cpus);
  return out;
}

}  // namespace

proto::TopologyMsg read_topology(const std::string& sysfs) {
  proto::TopologyMsg msg;
  std::string cpu_root = sysfs + "/devices/system/cpu";
  msg.cpus_online = read_trimmed(cpu_root + "/online").value_or("");
  auto online = parse_cpulist(msg.cpus_online).value_or(std::vector<unsigned>{});
  msg.cpus = static_cast<uint32_t>(online.size());

  std::set<std::string> llcs, smts;
  for (unsigned cpu : online) {
    std::string dir = cpu_root + "/cpu" + std::to_string(cpu);
    if (auto llc = llc_list(dir)) llcs.insert(*llc);
    if (auto smt = read_trimmed(dir + "/topology/thread_siblings_list")) smts.insert(*smt);
  }
  msg.llc_groups = sorted_groups(llcs);
  msg.smt_groups = sorted_groups(smts);
  msg.numa_nodes = node_cpulists(sysfs);
  return msg;
}

}  // namespace ktstr::agent
