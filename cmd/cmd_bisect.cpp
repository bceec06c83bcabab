// `ktstr bisect`: find the commit (or kernel version) where a crash
// signature appears, or with --fixed where it stops appearing; `bisect
// list | log ID | resume ID`. Parsing and printing live here; the checks,
// the target and the session are bisectrun/'s (driver.hpp).
#include "bisectrun/driver.hpp"
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "core/seed.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace ktstr::cmd {
using namespace ktstr::bisectrun;
namespace {

void print_outcome(const BisectOutcome& o, bool json) {
  if (json) std::printf("%s\n", o.result.dump(2).c_str());
  else std::printf("%s", render_bisect_result(o.result).c_str());
  std::fflush(stdout);
}

// `bisect list`'s, `log ID`'s and `resume ID`'s command lines: what they
// parse and completion reads.
struct SessionCli {
  std::string sub;
  std::string id;
  bool json = false;
  CLI::App app;
  SessionCli(const std::string& name, const std::string& about, const std::string& json_help)
      : sub(name), app(about, "ktstr bisect " + name) {
    if (sub != "list") app.add_option("ID", id, "session id (see 'ktstr bisect list')")->required();
    app.add_flag("--json", json, json_help);
  }
};
SessionCli list_cli() { return {"list", "list bisect sessions", "print a JSON array"}; }
SessionCli log_cli() {
  return {"log", "print a bisect session's steps, one line each", "print the session and its steps as JSON"};
}
SessionCli resume_cli() { return {"resume", "continue a bisect session that was interrupted", "print the result as JSON"}; }

int bisect_list(Context& ctx, const std::vector<std::string>& argv) {
  SessionCli cli = list_cli();
  if (!parse_command_line(cli.app, argv, "bisect list")) return kExitOk;
  auto sessions = value_or_die(list_sessions(ctx.open_store()));
  if (cli.json) std::printf("%s\n", sessions_json(sessions).dump(2).c_str());
  else std::printf("%s", sessions_table(sessions).c_str());
  return kExitOk;
}

int bisect_log(Context& ctx, const std::vector<std::string>& argv) {
  SessionCli cli = log_cli();
  if (!parse_command_line(cli.app, argv, "bisect log")) return kExitOk;
  SessionLog log = value_or_die(session_log(ctx.open_store(), cli.id));
  if (cli.json) std::printf("%s\n", session_log_json(log).dump(2).c_str());
  else std::printf("%s", session_log_text(log).c_str());
  return kExitOk;
}

int bisect_resume(Context& ctx, const std::vector<std::string>& argv) {
  SessionCli cli = resume_cli();
  if (!parse_command_line(cli.app, argv, "bisect resume")) return kExitOk;
  db::Store& store = ctx.open_store();
  BisectReporter out(cli.json);
  auto outcome = value_or_die(resume_bisect(store, cli.id, out));
  print_outcome(outcome, cli.json);
  return outcome.exit_code;
}

// The command line, bound to a BisectRequest: what cmd_bisect parses and
// completion reads.
struct BisectCli {
  BisectRequest a;
  bool json = false;
  std::string seed;  // --seed, as given
  CLI::App app{"find the commit where a crash signature appears (or, with --fixed, stops appearing)", "ktstr bisect"};
  CLI::Option* seed_option = nullptr;
  BisectCli();
};

BisectCli::BisectCli() {
  app.footer(
      "Also: ktstr bisect list | log ID | resume ID   (each with --json)\n"
      "Exit status: 0 a culprit reached the confidence and verified, 1 none did (or the\n"
      "signature did not reproduce at the bad end), 2 bad input (nothing is written).");
  app.add_option("--signature", a.signature, "crash id or unique prefix, a pinned spec file, a literal, or /regex/")
      ->required()
      ->type_name("CRASH");
  app.add_option("--sched-repo", a.sched_repo, "bisect scheduler commits of this git repository")->type_name("DIR");
  app.add_option("--good", a.good, "a commit without the signature (repeatable)")->allow_extra_args(false);
  app.add_option("--bad", a.bad, "a commit with the signature");
  app.add_option("--build", a.build, "command that builds the scheduler in a checkout (no shell; quoted words)");
  app.add_option("--artifact", a.artifact, "the built scheduler binary, relative to the checkout");
  app.add_option("--kernel-range", a.kernel_range, "bisect prebuilt kernel versions A..B (e.g. 6.17..7.3)");
  app.add_option("--kernel-repo", a.kernel_repo,
                 "bisect kernel commits of this git repository (each built with 'ktstr kernel build')")
      ->type_name("DIR");
  app.add_option("--spec", a.spec, "the test to run (default: the crash's own test)")->type_name("SPEC");
  app.add_option("-E,--filter", a.filters, "pick one test of --spec (or of a spec --signature), nextest style")
      ->allow_extra_args(false);
  app.add_option("--kernel", a.kernel, "kernel for scheduler bisects (default: the crash's kernel)")->type_name("KERNEL");
  BisectOptions& opt = a.options;
  app.add_option("--confidence", opt.confidence, "stop when the best culprit is this probable")->capture_default_str();
  app.add_option("--max-runs", opt.max_runs, "at most this many search runs (0: the engine's default)")->capture_default_str();
  app.add_flag("--first-parent", a.first_parent, "follow only the first parent of merges");
  app.add_flag("--fixed", opt.fixed, "find the first commit where the signature stops appearing");
  app.add_option("--confirm-runs", opt.confirm_runs,
                 "clean runs asked of the good end and the culprit's parents; the bad end gets 4x to reproduce")
      ->capture_default_str();
  app.add_flag("--verify-culprit", opt.verify_culprit, "also revert the culprit on the bad end and check the signature is gone");
  app.add_option("--memory", opt.memory_mb, "guest memory in MB (overrides the spec)");
  seed_option = app.add_option(
      "--seed", seed,
      "the session's seed S: the run of step k gets S + k as KTSTR_SEED (default: a random S, stored for resume)")
      ->type_name("S");
  app.add_flag("-v,--verbose", opt.verbose, "verbose guest console");
  app.add_flag("--json", json, "print the result as one JSON document");
}

}  // namespace

void describe_bisect(const AppUse& use) {
  BisectCli cli;
  use("", cli.app);
  for (auto make : {list_cli, log_cli, resume_cli}) {
    SessionCli sub = make();
    use(sub.sub, sub.app);
  }
}

int cmd_bisect(Context& ctx, const std::vector<std::string>& argv) {
  if (!argv.empty()) {
    if (argv[0] == "list") return bisect_list(ctx, {argv.begin() + 1, argv.end()});
    if (argv[0] == "log") return bisect_log(ctx, {argv.begin() + 1, argv.end()});
    if (argv[0] == "resume") return bisect_resume(ctx, {argv.begin() + 1, argv.end()});
  }
  BisectCli cli;
  if (!parse_command_line(cli.app, argv, "bisect")) return kExitOk;
  // The inputs, before anything is opened or written.
  BisectRequest& a = cli.a;
  a.options.seed = cli.seed_option->count() > 0 ? value_or_die(parse_seed(cli.seed)) : random_seed();
  TargetParams tp = value_or_die(check_request(a));
  db::Store& store = ctx.open_store();
  BisectReporter out(cli.json);
  auto outcome = value_or_die(start_bisect(store, a, tp, out));
  print_outcome(outcome, cli.json);
  return outcome.exit_code;
}

}  // namespace ktstr::cmd
