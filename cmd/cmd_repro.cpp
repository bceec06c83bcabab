// `ktstr repro <crash-id> [--json]`: replay a recorded crash in a VM with
// probes on its crash chain, print the `--- auto-repro ---` section and keep
// the outcome with the crash (repros table).
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/progress.hpp"
#include "run/repro.hpp"
#include "db/crashes.hpp"
#include "db/repros.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <ctime>

namespace ktstr::cmd {
using namespace ktstr::runner;

namespace {

// The command line: what cmd_repro parses and completion reads.
struct ReproCli {
  std::string id;
  bool json = false;
  bool verbose = false;
  CLI::App app{"replay a recorded crash with probes attached", "ktstr repro"};
  ReproCli() {
    app.add_option("crash-id", id, "crash id or unique prefix (see 'ktstr crash list')")->required()->type_name("CRASH");
    app.add_flag("--json", json, "print the repro as one JSON document");
    app.add_flag("-v,--verbose", verbose, "verbose guest console");
  }
};

}  // namespace

void describe_repro(const AppUse& use) { ReproCli cli; use("", cli.app); }

int cmd_repro(Context& ctx, const std::vector<std::string>& argv) {
  ReproCli cli;
  if (!parse_command_line(cli.app, argv, "repro")) return kExitOk;
  const std::string& id = cli.id;
  const bool json = cli.json, verbose = cli.verbose;

  db::Store& store = ctx.open_store();
  auto found = value_or_die(db::find_crash(store, id));
  if (!found) throw Fatal(Error("no crash matches '" + id + "'", "'ktstr crash list' shows the crash ids"));
  const CrashRecord& crash = *found;

  Progress progress(!json);
  PipelineOptions popt;
  popt.verbose = verbose || ctx.verbosity > 0;
  popt.progress = [&](const std::string& s) { progress.update(s); };
  auto rr = run_repro(store, crash, popt);
  progress.clear();
  if (!rr) throw Fatal(rr.error(), kExitTestFailed);

  db::ReproRecord rec;
  rec.crash_id = crash.id;
  rec.created_at = std::time(nullptr);
  rec.reproduced = rr->reproduced();
  rec.duration_ms = static_cast<int64_t>(rr->duration_s * 1000);
  rec.result_json = to_json(*rr).dump();
  rec.report = render_repro(*rr);
  if (auto stored = db::put_repro(store, rec); !stored)
    rr->notes.push_back("could not store the repro: " + stored.error().msg);

  if (json) {
    std::printf("%s\n", to_json(*rr).dump(2).c_str());
  } else {
    std::printf("crash %s: %s\n", crash.id.c_str(), crash.summary.c_str());
    std::printf("%s", render_repro(*rr).c_str());
  }
  return rr->reproduced() ? kExitOk : kExitTestFailed;
}

}  // namespace ktstr::cmd
