// `ktstr runs list|show|compare`: the stored test runs. Selection and the
// comparison arithmetic are in core/run_compare; this file reads the store
// and prints.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "core/local_time.hpp"
#include "core/result.hpp"
#include "core/run_compare.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iostream>

namespace ktstr::cmd {
namespace {

const std::vector<std::string> kSubcommands = {"list", "show", "compare"};

std::vector<RunStats> stored_runs(db::Store& store) {
  std::vector<RunStats> out;
  for (const auto& r : value_or_die(store.list_runs(0))) {
    auto s = run_stats(r);
    if (s) out.push_back(std::move(*s));  // a run without a readable result has nothing to compare
  }
  return out;
}

std::string kernel_text(const RunStats& r) {
  return !r.kernel_version.empty() ? r.kernel_version : r.kernel_id.empty() ? "-" : r.kernel_id;
}

int list_runs(db::Store& store, const std::string& filter, int limit, bool json) {
  std::optional<RunSelector> sel;
  if (!filter.empty()) sel = value_or_die(parse_run_selector(filter));
  auto records = value_or_die(store.list_runs(0));
  nlohmann::json arr = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {{"ID", "WHEN", "STATUS", "TEST", "KERNEL", "SCHEDULER", "SECONDS"}};
  for (const auto& r : records) {
    if (limit > 0 && static_cast<int>(rows.size()) > limit) break;
    auto s = run_stats(r);
    if (!s) continue;
    if (sel && !selector_matches(*sel, *s)) continue;
    arr.push_back({{"id", r.id}, {"test", r.test_name}, {"status", r.status}, {"reason", r.reason},
                   {"kernel", kernel_text(*s)}, {"scheduler", r.scheduler}, {"topology", r.topology},
                   {"scenario", r.scenario}, {"started_at", r.started_at}, {"duration_ms", r.duration_ms}});
    rows.push_back({std::to_string(r.id), local_time(r.started_at), r.status, r.test_name, kernel_text(*s), r.scheduler,
                    fmt::format("{:.1f}", r.duration_ms / 1000.0)});
  }
  if (json) {
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  if (rows.size() == 1) {
    std::cout << (filter.empty() ? "no runs stored ('ktstr test' stores every run)\n" : "no stored run matches '" + filter + "'\n");
    return kExitOk;
  }
  std::cout << render_table(rows);
  return kExitOk;
}

const RunRecord* find_record(const std::vector<RunRecord>& records, int64_t id) {
  for (const auto& r : records)
    if (r.id == id) return &r;
  return nullptr;
}

int show_run(db::Store& store, const std::string& id_text, bool json) {
  auto sel = value_or_die(parse_run_selector(id_text));
  if (sel.ids.size() != 1) throw Fatal(Error("'" + id_text + "' is not one run id", "'ktstr runs list' shows the ids"));
  auto records = value_or_die(store.list_runs(0));
  const RunRecord* r = find_record(records, sel.ids[0]);
  if (!r) throw Fatal(Error("no run " + id_text + " in the store", "'ktstr runs list' shows the ids"));
  if (json) {
    auto j = nlohmann::json::parse(r->result_json, nullptr, false);
    if (!j.is_object()) j = nlohmann::json::object();
    j["run_id"] = r->id;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  auto s = value_or_die(run_stats(*r));
  std::cout << fmt::format("run {}: {} {} ({}){}\n", r->id, r->test_name, r->status, local_time(r->started_at),
                           r->reason.empty() ? "" : ": " + r->reason)
            << fmt::format("kernel {}, scheduler {}, topology {}, {:.1f} s\n", kernel_text(s), r->scheduler, r->topology,
                           r->duration_ms / 1000.0);
  // The seed the scheduler got (runs stored before seeds existed have none).
  if (auto j = nlohmann::json::parse(r->result_json, nullptr, false);
      j.is_object() && j.contains("seed") && j["seed"].is_number_unsigned())
    std::cout << fmt::format("seed {} (replay: ktstr test --seed {})\n", j["seed"].get<uint64_t>(),
                             j["seed"].get<uint64_t>());
  RunComparison one = compare_runs({s}, {});
  for (const auto& m : one.metrics)
    std::cout << fmt::format("  {:<12} {:<18} {}\n", m.cgroup, m.metric, fmt::format("{:.6g}", m.a.mean));
  return kExitOk;
}

std::vector<RunStats> select(const std::vector<RunStats>& all, const std::string& text, int last) {
  auto sel = value_or_die(parse_run_selector(text));
  // Filters compare healthy runs unless they name a status: a crashed run's
  // stats stop at the crash.
  bool has_status = std::any_of(sel.filters.begin(), sel.filters.end(), [](auto& f) { return f.first == "status"; });
  if (!sel.filters.empty() && !has_status) sel.filters.emplace_back("status", "pass");
  std::vector<RunStats> out;
  for (const auto& r : all)  // newest first
    if (selector_matches(sel, r)) out.push_back(r);
  for (int64_t id : sel.ids)
    if (std::none_of(out.begin(), out.end(), [&](auto& r) { return r.run_id == id; }))
      throw Fatal(Error("no run " + std::to_string(id) + " in the store (selector '" + text + "')",
                        "'ktstr runs list' shows the ids"));
  if (!sel.filters.empty() && last > 0 && static_cast<int>(out.size()) > last) out.resize(static_cast<size_t>(last));
  if (out.empty())
    throw Fatal(Error("no stored run matches '" + text + "'" + (has_status ? "" : " (with status pass)"),
                      "'ktstr runs list' shows the stored runs; add status=fail to compare failed runs"));
  std::reverse(out.begin(), out.end());  // oldest first, like the ids
  return out;
}

std::string label(const char* side, const std::vector<RunStats>& runs, const std::string& text) {
  std::string ids;
  for (const auto& r : runs) ids += (ids.empty() ? "#" : " #") + std::to_string(r.run_id);
  const RunStats& f = runs.front();
  return fmt::format("{}: {} ({} run{}: {}) {}, kernel {}, {}", side, text, runs.size(), runs.size() == 1 ? "" : "s",
                     ids, f.test_name, kernel_text(f), f.scheduler);
}

int compare(db::Store& store, const std::string& a_text, const std::string& b_text, double alpha, int last, bool json) {
  auto all = stored_runs(store);
  auto a = select(all, a_text, last);
  auto b = select(all, b_text, last);
  RunComparison c = compare_runs(a, b, alpha);
  if (json) {
    auto j = to_json(c);
    j["a"] = a_text;
    j["b"] = b_text;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << render_comparison(c, label("A", a, a_text), label("B", b, b_text));
  return kExitOk;
}

// The command line: what cmd_runs parses and completion reads.
struct RunsCli {
  CLI::App app{"Browse stored test runs and compare their statistics.", "ktstr runs"};
  bool list_json = false;
  std::string list_filter;
  int list_limit = 50;
  std::string show_id;
  bool show_json = false;
  std::string a_text, b_text;
  double alpha = 0.05;
  int last = 20;
  bool compare_json = false;
  CLI::App* list = app.add_subcommand("list", "one line per stored run, newest first");
  CLI::App* show = app.add_subcommand("show", "one run's metrics per cgroup");
  CLI::App* cmp =
      app.add_subcommand("compare", "per-cgroup (and, for single runs, per-worker) stats of two sets of runs");

  RunsCli() {
    app.footer(
        "RUNS (compare): run ids (17, 12..17, 12,14,15) or filters (kernel=7.3, scheduler=scx_simple,test=steady;\n"
        "keys test, kernel, scheduler, topology, status). Filters take the newest --last runs with status pass.\n"
        "With 2 or more runs on each side every difference gets Welch's t-test p-value.\n");
    app.require_subcommand(1);
    list->add_option("FILTER", list_filter, "only runs matching these filters or ids (as for compare)");
    list->add_option("--limit", list_limit, "at most this many lines (0: all)")->check(CLI::NonNegativeNumber);
    list->add_flag("--json", list_json, "print a JSON array");
    show->add_option("ID", show_id, "run id")->required();
    show->add_flag("--json", show_json, "print the stored result as JSON");
    cmp->add_option("A", a_text, "the first side: run ids or filters")->required();
    cmp->add_option("B", b_text, "the second side")->required();
    cmp->add_option("--alpha", alpha, "significance level of the t-test")->check(CLI::Range(0.0001, 0.5));
    cmp->add_option("--last", last, "with filters: the newest N matching runs per side")->check(CLI::PositiveNumber);
    cmp->add_flag("--json", compare_json, "print the comparison as JSON");
  }
};

}  // namespace

void describe_runs(const AppUse& use) { RunsCli cli; use("", cli.app); }

int cmd_runs(Context& ctx, const std::vector<std::string>& args) {
  RunsCli c;
  if (args.empty())
    throw Fatal(Error("runs: a subcommand is required", "use list, show or compare; see 'ktstr runs --help'"));
  const bool known = std::find(kSubcommands.begin(), kSubcommands.end(), args[0]) != kSubcommands.end();
  if (!known && args[0].rfind('-', 0) != 0)
    throw Fatal(Error("runs: '" + args[0] + "' is not a runs command", "use list, show or compare"));
  if (!parse_command_line(c.app, args, "runs")) return kExitOk;

  // Bad selectors fail before the store is opened.
  if (*c.cmp) {
    value_or_die(parse_run_selector(c.a_text));
    value_or_die(parse_run_selector(c.b_text));
  }
  db::Store& store = ctx.open_store();
  if (*c.list) return list_runs(store, c.list_filter, c.list_limit, c.list_json);
  if (*c.show) return show_run(store, c.show_id, c.show_json);
  return compare(store, c.a_text, c.b_text, c.alpha, c.last, c.compare_json);
}

}  // namespace ktstr::cmd
