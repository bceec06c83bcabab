// `ktstr crash list|show`: browse the crash database. Parsing and printing
// only; the records are in db/crashes.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "core/local_time.hpp"
#include "core/crash_parse.hpp"
#include "core/result.hpp"
#include "core/spec.hpp"
#include "db/crashes.hpp"
#include "db/repros.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <iostream>

namespace ktstr::cmd {
namespace {

const std::vector<std::string> kSubcommands = {"list", "show"};

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

nlohmann::json to_json(const db::CrashSignatureGroup& g) {
  return {{"signature_key", g.signature_key}, {"kind", g.kind},
          {"reason", exit_reason_for_kind(g.kind)}, {"message", g.message},
          {"bpf_prog", g.bpf_prog}, {"source", g.source},
          {"signature", db::signature_text(g.kind, g.message, g.bpf_prog)},
          {"count", g.count}, {"first_seen", g.first_seen},
          {"last_seen", g.last_seen}, {"latest_id", g.latest_id},
          {"latest_summary", g.latest_summary}, {"tests", g.test_names}};
}

nlohmann::json to_json(const CrashRecord& c) {
  return {{"id", c.id}, {"signature_key", c.signature_key}, {"kind", c.kind},
          {"message", c.message}, {"bpf_prog", c.bpf_prog}, {"source", c.source},
          {"summary", c.summary}, {"test", c.test_name}, {"kernel_id", c.kernel_id},
          {"scheduler", c.scheduler}, {"scheduler_sha256", c.scheduler_sha256},
          {"sched_args", c.sched_args}, {"topology", c.topology}, {"spec_toml", c.spec_toml},
          {"seed", c.seed}, {"run_id", c.run_id}, {"created_at", c.created_at},
          {"report", c.report}, {"artifacts_dir", c.artifacts_dir},
          {"repro_command", "ktstr repro " + c.id}, {"pin_command", "ktstr pin " + c.id}};
}

int list_crashes(db::Store& store, bool json) {
  auto groups = value_or_die(db::list_crash_groups(store));
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& g : groups) arr.push_back(to_json(g));
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  if (groups.empty()) {
    std::cout << "no crashes recorded (a failing 'ktstr test' whose scheduler dies records one)\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"ID (latest)", "COUNT", "FIRST SEEN", "LAST SEEN", "KIND", "SIGNATURE"}};
  for (auto& g : groups)
    rows.push_back({g.latest_id, std::to_string(g.count), local_time(g.first_seen), local_time(g.last_seen), std::to_string(g.kind),
                    db::signature_text(g.kind, g.message, g.bpf_prog)});
  std::cout << render_table(rows);
  return kExitOk;
}

// The map writes of the spec as run, "  .bss crash = 1 (after 0 ms)".
std::string map_writes(const CrashRecord& c) {
  if (c.spec_toml.empty()) return "  (no spec recorded)\n";
  auto specs = parse_spec_text(c.spec_toml, "crash " + c.id);
  if (!specs || specs->empty()) return "  (spec does not parse: " + (specs ? std::string("empty") : specs.error().msg) + ")\n";
  std::string out;
  for (auto& w : specs->front().bpf_map_writes)
    out += fmt::format("  {} {} = {} (after {} ms)\n", w.map, w.var, w.value, w.after_ms);
  return out.empty() ? "  none\n" : out;
}

int show_crash(db::Store& store, const std::string& id, bool json) {
  auto found = value_or_die(db::find_crash(store, id));
  if (!found) throw Fatal(Error("no crash matches '" + id + "'", "'ktstr crash list' shows the crash ids"));
  const CrashRecord& c = *found;
  auto same = value_or_die(db::list_crashes(store, c.signature_key));
  if (json) {
    auto j = to_json(c);
    j["occurrences"] = same.size();
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  if (!c.report.empty()) std::cout << c.report << (c.report.back() == '\n' ? "" : "\n") << "\n";
  std::string args = c.sched_args.empty() ? "(none)" : join(c.sched_args, " ");
  std::cout << "--- replay record ---\n"
            << fmt::format("crash:      {} (recorded {})\n", c.id, local_time(c.created_at))
            << fmt::format("signature:  {} {} ({} occurrence{})\n", c.signature_key,
                           db::signature_text(c.kind, c.message, c.bpf_prog), same.size(), same.size() == 1 ? "" : "s")
            << fmt::format("summary:    {}\n", c.summary)
            << fmt::format("source:     {}\n", c.source.empty() ? "-" : c.source)
            << fmt::format("test:       {}\n", c.test_name)
            << fmt::format("kernel:     {}\n", c.kernel_id.empty() ? "-" : c.kernel_id)
            << fmt::format("scheduler:  {} (sha256 {})\n", c.scheduler, c.scheduler_sha256.empty() ? "unknown" : c.scheduler_sha256)
            << fmt::format("args:       {}\n", args)
            << fmt::format("topology:   {}\n", c.topology)
            << fmt::format("seed:       {}\n", c.seed)
            << fmt::format("run:        {}\n", c.run_id)
            << fmt::format("artifacts:  {}\n", c.artifacts_dir.empty() ? "-" : c.artifacts_dir)
            << "map writes:\n" << map_writes(c)
            << "spec:\n";
  std::string spec = c.spec_toml.empty() ? "(none)\n" : c.spec_toml;
  for (size_t at = 0; at < spec.size();) {
    size_t nl = spec.find('\n', at);
    if (nl == std::string::npos) nl = spec.size();
    std::cout << "  " << spec.substr(at, nl - at) << "\n";
    at = nl + 1;
  }
  // Replays run later with `ktstr repro` (auto-repro is already in the report).
  auto repros = value_or_die(db::list_repros(store, c.id));
  if (!repros.empty()) {
    std::cout << "\n--- repros (" << repros.size() << ") ---\n";
    for (auto& r : repros)
      std::cout << fmt::format("{}  reproduced: {}  repro VM {:.1f}s\n", local_time(r.created_at), r.reproduced ? "yes" : "no",
                               r.duration_ms / 1000.0);
    const auto& latest = repros.back();
    if (!latest.report.empty() && c.report.find(latest.report) == std::string::npos)
      std::cout << "latest:\n" << latest.report << (latest.report.back() == '\n' ? "" : "\n");
  }
  std::cout << "\nreplay with probes:   ktstr repro " << c.id << "\n"
            << "pin as a regression:  ktstr pin " << c.id << "\n";
  return kExitOk;
}

// The command line: what cmd_crash parses and completion reads.
struct CrashCli {
  CLI::App app{"Browse recorded crashes: one line per signature, or one crash in full.", "ktstr crash"};
  bool list_json = false;
  std::string show_id;
  bool show_json = false;
  CLI::App* list = app.add_subcommand("list", "one line per crash signature: count, first and last seen");
  CLI::App* show = app.add_subcommand("show", "print a crash's report and its replay record");

  CrashCli() {
    app.footer("ID: a crash id or a unique prefix of at least 4 hex digits (as in git).\n");
    app.require_subcommand(1);
    list->add_flag("--json", list_json, "print a JSON array");
    show->add_option("ID", show_id, "crash id or unique prefix")->required()->type_name("CRASH");
    show->add_flag("--json", show_json, "print the record as JSON");
  }
};

}  // namespace

void describe_crash(const AppUse& use) { CrashCli cli; use("", cli.app); }

int cmd_crash(Context& ctx, const std::vector<std::string>& args) {
  CrashCli c;
  if (args.empty())
    throw Fatal(Error("crash: a subcommand is required", "use list or show; see 'ktstr crash --help'"));
  const bool known = std::find(kSubcommands.begin(), kSubcommands.end(), args[0]) != kSubcommands.end();
  if (!known && args[0].rfind('-', 0) != 0)
    throw Fatal(Error("crash: '" + args[0] + "' is not a crash command", "use list or show"));
  if (!parse_command_line(c.app, args, "crash")) return kExitOk;

  db::Store& store = ctx.open_store();
  if (*c.list) return list_crashes(store, c.list_json);
  return show_crash(store, c.show_id, c.show_json);
}

}  // namespace ktstr::cmd
