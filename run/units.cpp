#include "run/units.hpp"

#include "core/file_lock.hpp"

#include "core/fs.hpp"
#include "core/run_result_json.hpp"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <tuple>

namespace ktstr::runner {

unsigned parts_per_test(size_t tests, unsigned repeat, unsigned jobs) {
  if (tests == 0 || repeat <= 1 || jobs <= tests) return 1;
  return std::max(1u, std::min(repeat, static_cast<unsigned>(jobs / tests)));
}

std::vector<std::pair<unsigned, unsigned>> split_repeat(unsigned repeat, unsigned parts_wanted) {
  std::vector<std::pair<unsigned, unsigned>> out;
  const unsigned nparts = std::max(1u, std::min(parts_wanted, std::max(repeat, 1u)));
  unsigned first = 1;
  for (unsigned b = 0; b < nparts; ++b) {
    unsigned count = repeat / nparts + (b < repeat % nparts ? 1 : 0);
    out.emplace_back(first, count);
    first += count;
  }
  return out;
}

std::vector<TestUnit> plan_units(size_t tests, unsigned repeat, unsigned jobs) {
  std::vector<TestUnit> units;
  const unsigned nparts = parts_per_test(tests, repeat, jobs);
  for (size_t t = 0; t < tests; ++t) {
    auto parts = split_repeat(std::max(repeat, 1u), nparts);
    for (unsigned b = 0; b < parts.size(); ++b) {
      TestUnit u;
      u.test = t;
      u.part = b + 1;
      u.parts = static_cast<unsigned>(parts.size());
      u.first = parts[b].first;
      u.count = parts[b].second;
      units.push_back(u);
    }
  }
  return units;
}

HostResources host_resources() {
  HostResources h;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    h.cpus = static_cast<unsigned>(CPU_COUNT(&set));
  } else {
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    h.cpus = n > 0 ? static_cast<unsigned>(n) : 1;
  }
  if (auto text = read_file("/proc/meminfo", 1 << 16)) {
    std::istringstream in(*text);
    std::string key;
    uint64_t kb = 0;
    std::string unit;
    while (in >> key >> kb) {
      std::getline(in, unit);
      if (key == "MemAvailable:") {
        h.available_mb = kb / 1024;
        break;
      }
    }
  }
  return h;
}

unsigned default_jobs(const HostResources& host, const VmNeed& need, size_t units) {
  unsigned by_cpus = host.cpus / std::max(1u, need.cpus);
  uint64_t per_vm_mb = static_cast<uint64_t>(need.memory_mb) + kQemuOverheadMb;
  uint64_t by_memory = host.available_mb / per_vm_mb;
  uint64_t n = std::min<uint64_t>({by_cpus, by_memory, units, kMaxJobs});
  return static_cast<unsigned>(std::max<uint64_t>(n, 1));
}

unsigned jobs_or_default(std::optional<unsigned> jobs, const VmNeed& need, size_t units) {
  if (jobs) return *jobs;
  if (const char* lock = std::getenv(kVmLockEnv); lock && *lock) return 1;
  return default_jobs(host_resources(), need, units);
}

Result<unsigned> parse_jobs(const std::string& text) {
  const std::string hint = "use 1 to " + std::to_string(kMaxJobs) + ", or leave --jobs out for the host's default";
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return fail("--jobs '" + text + "' is not a number", hint);
  errno = 0;
  unsigned long v = std::strtoul(text.c_str(), nullptr, 10);
  if (errno == ERANGE || v < 1 || v > kMaxJobs) return fail("--jobs " + text + " is out of range", hint);
  return static_cast<unsigned>(v);
}

std::string format_worker_runs(const TestUnit& u) {
  return std::to_string(u.first) + ":" + std::to_string(u.count) + ":" + std::to_string(u.part) + ":" +
         std::to_string(u.parts);
}

Result<TestUnit> parse_worker_runs(const std::string& text) {
  std::vector<unsigned> v;
  bool ok = !text.empty() && text.back() != ':';
  std::istringstream in(text);
  for (std::string part; ok && std::getline(in, part, ':');) {
    ok = !part.empty() && part.size() <= 6 && part.find_first_not_of("0123456789") == std::string::npos;
    if (ok) v.push_back(static_cast<unsigned>(std::stoul(part)));
  }
  if (!ok || v.size() != 4 || v[0] < 1 || v[1] < 1 || v[2] < 1 || v[3] < 1 || v[2] > v[3])
    return fail("the worker's runs '" + text + "' are not FIRST:COUNT:BATCH:BATCHES");
  TestUnit u;
  u.first = v[0];
  u.count = v[1];
  u.part = v[2];
  u.parts = v[3];
  return u;
}

Status apply_cell_overrides(TestSpec& spec, const CellOverrides& o) {
  if (o.sched_args && !o.sched_args->empty() && !spec.uses_bpf_scheduler())
    return fail("test '" + spec.name + "' runs eevdf, which takes no scheduler arguments");
  if (o.topology) spec.topology = *o.topology;
  if (o.sched_args) spec.sched_args = *o.sched_args;
  return {};
}

nlohmann::json worker_output_json(const WorkerOutput& w) {
  nlohmann::json runs = nlohmann::json::array();
  for (const WorkerRun& r : w.runs) {
    runs.push_back({{"result", r.result}});
    if (r.replayed_with >= 0) runs.back()["replayed_with"] = r.replayed_with;
  }
  return {{"ktstr_worker", 2}, {"runs", runs}, {"vms", w.vms}, {"skipped", w.skipped},
          {"peak_rss_kb", w.peak_rss_kb}, {"started_at", w.started_at}};
}

Result<WorkerOutput> parse_worker_output(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || doc.value("ktstr_worker", 0) != 2 || !doc.contains("runs") ||
      !doc["runs"].is_array())
    return fail("the worker printed no result document");
  try {
    WorkerOutput w;
    w.vms = doc.value("vms", 1u);
    w.skipped = doc.value("skipped", 0u);
    w.peak_rss_kb = doc.value("peak_rss_kb", 0L);
    w.started_at = doc.value("started_at", int64_t{0});
    for (const auto& j : doc["runs"]) {
      WorkerRun r;
      r.result = j.at("result");
      // It came from another process, maybe another machine: a run the
      // parent could not record is the worker's failure, named here.
      if (auto run = run_result_from_json(r.result); !run)
        return fail("the worker's result document is malformed: " + run.error().msg);
      r.replayed_with = j.value("replayed_with", -1);
      if (r.replayed_with >= static_cast<int>(w.runs.size()))
        return fail("the worker's result document is malformed: 'replayed_with' names a later run");
      w.runs.push_back(std::move(r));
    }
    return w;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("the worker's result document is malformed: ") + e.what());
  }
}

std::vector<TestRuns> merge_units(size_t tests, const std::vector<TestUnit>& units,
                                  const std::vector<WorkerOutput>& outputs) {
  std::vector<TestRuns> out(tests);
  // Units are planned in (test, part) order; sort a copy of the indexes
  // anyway so the merge does not depend on how the caller kept them.
  std::vector<size_t> order(std::min(units.size(), outputs.size()));
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(units[a].test, units[a].first) < std::tie(units[b].test, units[b].first);
  });
  for (size_t i : order) {
    if (units[i].test >= tests) continue;
    TestRuns& t = out[units[i].test];
    t.runs.insert(t.runs.end(), outputs[i].runs.begin(), outputs[i].runs.end());
    t.vms += outputs[i].vms;
    t.skipped += outputs[i].skipped;
  }
  return out;
}

}  // namespace ktstr::runner
