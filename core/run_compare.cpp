#include "core/run_compare.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace ktstr {
namespace {

const std::set<std::string> kFilterKeys = {"test", "kernel", "scheduler", "topology", "status"};

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Result<int64_t> run_id(const std::string& s, const std::string& text) {
  if (!all_digits(s) || s.size() > 15)
    return fail("'" + text + "' is not a run selector: '" + s + "' is not a run id",
                "use run ids (17, 12..17, 12,14) or filters (kernel=7.3,test=steady); 'ktstr runs list' shows the ids");
  return std::stoll(s);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (true) {
    size_t p = s.find(sep, at);
    out.push_back(s.substr(at, p == std::string::npos ? std::string::npos : p - at));
    if (p == std::string::npos) break;
    at = p + 1;
  }
  return out;
}

std::string basename_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

Result<RunSelector> parse_run_selector(const std::string& text) {
  RunSelector sel;
  sel.text = text;
  if (text.empty()) return fail("empty run selector", "use run ids (17, 12..17) or filters (kernel=7.3)");
  for (const std::string& part : split(text, ',')) {
    if (part.empty()) return fail("'" + text + "' is not a run selector: empty item", "separate items with one ','");
    size_t eq = part.find('=');
    if (eq != std::string::npos) {
      std::string key = part.substr(0, eq), value = part.substr(eq + 1);
      if (!kFilterKeys.count(key))
        return fail("'" + text + "' is not a run selector: unknown filter '" + key + "'",
                    "filters are test=, kernel=, scheduler=, topology= and status=");
      if (value.empty()) return fail("'" + text + "' is not a run selector: '" + key + "=' has no value", "");
      sel.filters.emplace_back(key, value);
      continue;
    }
    size_t dots = part.find("..");
    if (dots != std::string::npos) {
      auto lo = run_id(part.substr(0, dots), text);
      if (!lo) return tl::unexpected(lo.error());
      auto hi = run_id(part.substr(dots + 2), text);
      if (!hi) return tl::unexpected(hi.error());
      if (*hi < *lo) return fail("'" + text + "' is not a run selector: the range " + part + " is empty", "write LOW..HIGH");
      if (*hi - *lo > 10000) return fail("'" + text + "' selects more than 10000 runs", "narrow the range");
      for (int64_t i = *lo; i <= *hi; ++i) sel.ids.push_back(i);
      continue;
    }
    auto id = run_id(part, text);
    if (!id) return tl::unexpected(id.error());
    sel.ids.push_back(*id);
  }
  if (!sel.ids.empty() && !sel.filters.empty())
    return fail("'" + text + "' mixes run ids and filters", "give either ids (12..17) or filters (kernel=7.3,test=steady)");
  std::sort(sel.ids.begin(), sel.ids.end());
  sel.ids.erase(std::unique(sel.ids.begin(), sel.ids.end()), sel.ids.end());
  return sel;
}

Result<RunStats> run_stats(const RunRecord& r) {
  RunStats s;
  s.run_id = r.id;
  s.test_name = r.test_name;
  s.scheduler = r.scheduler;
  s.topology = r.topology;
  s.status = r.status;
  s.kernel_id = r.kernel_id;
  auto j = nlohmann::json::parse(r.result_json, nullptr, false);
  if (!j.is_object()) return fail("run " + std::to_string(r.id) + " has no readable result", "");
  if (j.contains("kernel") && j["kernel"].is_object()) s.kernel_version = j["kernel"].value("version", "");
  if (j.contains("workers") && j["workers"].is_array()) {
    for (const auto& w : j["workers"]) {
      if (!w.is_object()) continue;
      WorkerStats ws;
      ws.cgroup = w.value("cgroup", "");
      ws.index = w.value("index", 0u);
      ws.work = w.value("work", "");
      ws.iterations = w.value("iterations", uint64_t{0});
      ws.cpu_time_ns = w.value("cpu_time_ns", uint64_t{0});
      ws.wall_ns = w.value("wall_ns", uint64_t{0});
      ws.migrations = w.value("migrations", uint64_t{0});
      ws.max_gap_ns = w.value("max_gap_ns", uint64_t{0});
      if (w.contains("cpus_used") && w["cpus_used"].is_array())
        for (const auto& c : w["cpus_used"])
          if (c.is_number_integer()) ws.cpus_used.push_back(c.get<int>());
      if (w.contains("counters") && w["counters"].is_object())
        for (auto it = w["counters"].begin(); it != w["counters"].end(); ++it)
          if (it.value().is_number_unsigned()) ws.counters[it.key()] = it.value().get<uint64_t>();
      s.workers.push_back(std::move(ws));
    }
  }
  return s;
}

bool selector_matches(const RunSelector& sel, const RunStats& r) {
  if (!sel.ids.empty()) return std::binary_search(sel.ids.begin(), sel.ids.end(), r.run_id);
  for (const auto& [key, value] : sel.filters) {
    bool ok = false;
    if (key == "test") ok = r.test_name == value;
    else if (key == "topology") ok = r.topology == value;
    else if (key == "status") ok = r.status == value;
    else if (key == "kernel") ok = r.kernel_version.rfind(value, 0) == 0 || r.kernel_id.rfind(value, 0) == 0;
    else if (key == "scheduler") ok = r.scheduler == value || basename_of(r.scheduler) == value;
    if (!ok) return false;
  }
  return true;
}

std::vector<std::pair<std::string, double>> cgroup_metrics(const std::vector<const WorkerStats*>& ws) {
  double rate_sum = 0, cpu_sum = 0, max_gap = 0, migrations = 0;
  double rate_min = 0, rate_max = 0;
  for (size_t i = 0; i < ws.size(); ++i) {
    const WorkerStats& w = *ws[i];
    double wall_s = static_cast<double>(w.wall_ns) / 1e9;
    double rate = wall_s > 0 ? static_cast<double>(w.iterations) / wall_s : 0;
    rate_sum += rate;
    rate_min = i == 0 ? rate : std::min(rate_min, rate);
    rate_max = i == 0 ? rate : std::max(rate_max, rate);
    cpu_sum += w.wall_ns ? 100.0 * static_cast<double>(w.cpu_time_ns) / static_cast<double>(w.wall_ns) : 0;
    max_gap = std::max(max_gap, static_cast<double>(w.max_gap_ns) / 1e6);
    migrations += static_cast<double>(w.migrations);
  }
  double n = static_cast<double>(ws.size());
  double mean_rate = ws.empty() ? 0 : rate_sum / n;
  std::vector<std::pair<std::string, double>> out = {
      {"workers", n},
      {"iterations_per_s", rate_sum},
      {"cpu_pct", ws.empty() ? 0 : cpu_sum / n},
      {"max_gap_ms", max_gap},
      {"migrations", migrations},
      // fairness: how far apart the fastest and slowest worker are
      {"spread_pct", mean_rate > 0 ? 100.0 * (rate_max - rate_min) / mean_rate : 0}};
  // The work type's counters (name order): counts as a rate summed over the
  // workers like iterations, latencies as the worst worker's, in us.
  std::map<std::string, double> counted, latency;
  for (const WorkerStats* w : ws) {
    double wall_s = static_cast<double>(w->wall_ns) / 1e9;
    for (const auto& [name, value] : w->counters) {
      const std::string ns_suffix = "_ns";
      if (name.rfind("wake_latency_", 0) == 0 && name.size() > ns_suffix.size()) {
        double& worst = latency[name.substr(0, name.size() - ns_suffix.size()) + "_us"];
        worst = std::max(worst, static_cast<double>(value) / 1e3);
      } else {
        counted[name + "_per_s"] += wall_s > 0 ? static_cast<double>(value) / wall_s : 0;
      }
    }
  }
  for (auto& kv : counted) out.push_back(kv);
  for (auto& kv : latency) out.push_back(kv);
  return out;
}

namespace {

using ByCgroup = std::map<std::string, std::vector<const WorkerStats*>>;

ByCgroup by_cgroup(const RunStats& r) {
  ByCgroup m;
  for (const auto& w : r.workers) m[w.cgroup].push_back(&w);
  return m;
}

// cgroup -> metric -> one value per run (runs without the cgroup add none).
using Samples = std::map<std::string, std::map<std::string, std::vector<double>>>;

Samples samples(const std::vector<RunStats>& runs, std::vector<std::string>* metric_order) {
  Samples out;
  for (const auto& r : runs)
    for (const auto& [cg, ws] : by_cgroup(r))
      for (const auto& [name, v] : cgroup_metrics(ws)) {
        out[cg][name].push_back(v);
        if (std::find(metric_order->begin(), metric_order->end(), name) == metric_order->end())
          metric_order->push_back(name);
      }
  return out;
}

std::string side_summary(const std::vector<RunStats>& runs, std::string RunStats::*field) {
  std::set<std::string> v;
  for (const auto& r : runs) v.insert(r.*field);
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + (x.empty() ? "-" : x);
  return s;
}

}  // namespace

RunComparison compare_runs(const std::vector<RunStats>& a, const std::vector<RunStats>& b, double alpha) {
  RunComparison c;
  c.alpha = alpha;
  for (const auto& r : a) c.a_runs.push_back(r.run_id);
  for (const auto& r : b) c.b_runs.push_back(r.run_id);
  std::vector<std::string> order;
  Samples sa = samples(a, &order), sb = samples(b, &order);
  std::set<std::string> cgroups;
  for (const auto& [cg, _] : sa) cgroups.insert(cg);
  for (const auto& [cg, _] : sb) cgroups.insert(cg);
  for (const auto& cg : cgroups) {
    for (const auto& metric : order) {
      MetricComparison m;
      m.cgroup = cg;
      m.metric = metric;
      m.a = summarize(sa[cg][metric]);
      m.b = summarize(sb[cg][metric]);
      if (m.a.n == 0 && m.b.n == 0) continue;
      m.delta = m.b.mean - m.a.mean;
      if (m.a.n && m.b.n && m.a.mean != 0) m.delta_pct = 100.0 * m.delta / std::fabs(m.a.mean);
      m.test = welch_t_test(m.a, m.b);
      m.significant = m.test && m.test->p < alpha;
      c.metrics.push_back(m);
    }
  }
  if (a.size() == 1 && b.size() == 1) {
    std::map<std::pair<std::string, unsigned>, WorkerComparison> w;
    for (const auto& x : a[0].workers) {
      auto& e = w[{x.cgroup, x.index}];
      e.cgroup = x.cgroup, e.index = x.index, e.work = x.work, e.a = x;
    }
    for (const auto& x : b[0].workers) {
      auto& e = w[{x.cgroup, x.index}];
      e.cgroup = x.cgroup, e.index = x.index, e.work = e.work.empty() ? x.work : e.work, e.b = x;
    }
    for (auto& [_, e] : w) c.workers.push_back(e);
  }
  for (auto field : {&RunStats::test_name, &RunStats::topology}) {
    std::string sa_ = side_summary(a, field), sb_ = side_summary(b, field);
    if (sa_ != sb_)
      c.notes.push_back(fmt::format("the sides ran different {}: {} against {}",
                                    field == &RunStats::test_name ? "tests" : "topologies", sa_, sb_));
  }
  if (a.size() < 2 || b.size() < 2)
    c.notes.push_back("significance needs at least 2 runs on each side (ktstr test --repeat N, or more run ids)");
  return c;
}

namespace {

std::string number(double v) {
  double a = std::fabs(v);
  if (v == std::floor(v) && a < 1e15) return fmt::format("{:.0f}", v);
  if (a >= 1000) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

std::string cell(const SampleSummary& s) {
  if (s.n == 0) return "-";
  if (s.n == 1) return number(s.mean);
  return number(s.mean) + " ± " + number(s.sd);
}

}  // namespace

std::string render_comparison(const RunComparison& c, const std::string& a_label, const std::string& b_label) {
  std::string out;
  out += a_label + "\n" + b_label + "\n";
  std::string cg;
  for (const auto& m : c.metrics) {
    if (m.cgroup != cg) {
      cg = m.cgroup;
      out += fmt::format("\ncgroup {:<20} {:>22} {:>22} {:>10} {:>8}\n", cg.empty() ? "-" : cg, "A", "B", "delta", "p");
    }
    std::string delta = m.delta_pct ? fmt::format("{:+.1f}%", *m.delta_pct) : (m.a.n && m.b.n ? number(m.delta) : "-");
    std::string p = m.test ? fmt::format("{:.3f}", m.test->p) : "-";
    out += fmt::format("  {:<25} {:>22} {:>22} {:>10} {:>8}{}\n", m.metric, cell(m.a), cell(m.b), delta, p,
                       m.significant ? "  significant" : "");
  }
  if (!c.workers.empty()) {
    out += "\nper worker (A -> B): iterations/s, cpu %, max gap ms, migrations\n";
    auto stats = [](const std::optional<WorkerStats>& w) -> std::string {
      if (!w) return "absent";
      double wall_s = static_cast<double>(w->wall_ns) / 1e9;
      return fmt::format("{} {} {} {}", number(wall_s > 0 ? static_cast<double>(w->iterations) / wall_s : 0),
                         number(w->wall_ns ? 100.0 * static_cast<double>(w->cpu_time_ns) / static_cast<double>(w->wall_ns) : 0),
                         number(static_cast<double>(w->max_gap_ns) / 1e6), w->migrations);
    };
    for (const auto& w : c.workers)
      out += fmt::format("  {}/{} ({}): {} -> {}\n", w.cgroup, w.index, w.work, stats(w.a), stats(w.b));
  }
  for (const auto& n : c.notes) out += "note: " + n + "\n";
  return out;
}

nlohmann::json to_json(const RunComparison& c) {
  auto summary = [](const SampleSummary& s) {
    return nlohmann::json{{"n", s.n}, {"mean", s.mean}, {"sd", s.sd}, {"min", s.min}, {"max", s.max}};
  };
  nlohmann::json j{{"a_runs", c.a_runs}, {"b_runs", c.b_runs}, {"alpha", c.alpha}, {"notes", c.notes}};
  auto& ms = j["metrics"] = nlohmann::json::array();
  for (const auto& m : c.metrics) {
    nlohmann::json e{{"cgroup", m.cgroup}, {"metric", m.metric}, {"a", summary(m.a)}, {"b", summary(m.b)},
                     {"delta", m.delta}, {"significant", m.significant}};
    e["delta_pct"] = m.delta_pct ? nlohmann::json(*m.delta_pct) : nlohmann::json(nullptr);
    e["p_value"] = m.test ? nlohmann::json(m.test->p) : nlohmann::json(nullptr);
    e["t"] = m.test && std::isfinite(m.test->t) ? nlohmann::json(m.test->t) : nlohmann::json(nullptr);
    ms.push_back(e);
  }
  auto& ws = j["workers"] = nlohmann::json::array();
  auto worker = [](const std::optional<WorkerStats>& w) -> nlohmann::json {
    if (!w) return nullptr;
    return {{"iterations", w->iterations}, {"cpu_time_ns", w->cpu_time_ns}, {"wall_ns", w->wall_ns},
            {"max_gap_ns", w->max_gap_ns}, {"migrations", w->migrations}};
  };
  for (const auto& w : c.workers)
    ws.push_back({{"cgroup", w.cgroup}, {"index", w.index}, {"work", w.work}, {"a", worker(w.a)}, {"b", worker(w.b)}});
  return j;
}

}  // namespace ktstr
