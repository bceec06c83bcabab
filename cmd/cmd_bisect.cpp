// `ktstr bisect`: find the commit (or kernel version) where a crash
// signature appears, or with --fixed where it stops appearing; `bisect
// list | log ID | resume ID`. Parsing and the checks on the inputs live
// here; cmd/bisect_session.* runs it, cmd/bisect_target.* knows the
// candidates, cmd/bisect_signature.* the matchers and verdicts.
#include "bisectrun/session.hpp"
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/pipeline.hpp"
#include "core/seed.hpp"
#include "db/bisects.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>

namespace ktstr::cmd {
using namespace ktstr::runner;
using namespace ktstr::bisectrun;
namespace {

struct BisectArgs {
  std::string signature;
  std::string sched_repo, kernel_repo, kernel_range;
  std::vector<std::string> good;
  std::string bad, build, artifact, kernel, spec;
  std::vector<std::string> filters;
  BisectOptions opt;
  bool first_parent = false;
  bool json = false;
  std::string seed;  // --seed, as given
};

KernelRecord scheduler_kernel(db::Store& store, const std::string& ref) {
  KernelRecord k = value_or_die(
      kbuild::resolve_kernel(store, ref, [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); }));
  if (!k.sched_ext)
    throw Fatal(Error("kernel '" + k.version + "' (" + k.id + ") has no sched_ext",
                      "use a kernel with CONFIG_SCHED_CLASS_EXT=y, e.g. 'ktstr kernel fetch'"));
  return k;
}

void print_outcome(const BisectOutcome& o, bool json) {
  if (json) std::printf("%s\n", o.result.dump(2).c_str());
  else std::printf("%s", render_bisect_result(o.result).c_str());
  std::fflush(stdout);
}

Result<int64_t> parse_session_id(const std::string& s) {
  try {
    size_t used = 0;
    long long v = std::stoll(s, &used);
    if (used == s.size() && v > 0) return v;
  } catch (...) {
  }
  return fail("'" + s + "' is not a bisect session id", "see 'ktstr bisect list'");
}

db::BisectSession get_session(db::Store& store, const std::string& arg) {
  int64_t id = value_or_die(parse_session_id(arg));
  auto s = value_or_die(db::get_bisect(store, id));
  if (!s) throw Fatal(Error("no bisect session " + arg, "see 'ktstr bisect list'"));
  return *s;
}

std::string range_of(const db::BisectSession& s) {
  auto p = SessionParams::from_json(s.params_json);
  if (!p) return "?";
  if (p->target.kind == "kernel-range") return p->target.range;
  std::string g;
  for (auto& x : p->target.good) g += (g.empty() ? "" : ",") + x.substr(0, 12);
  return g + ".." + p->target.bad.substr(0, 12);
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
  const bool json = cli.json;
  db::Store& store = ctx.open_store();
  auto sessions = value_or_die(db::list_bisects(store));
  nlohmann::json arr = nlohmann::json::array();
  std::vector<std::vector<std::string>> rows = {{"ID", "KIND", "RANGE", "STATE", "CULPRIT", "RUNS"}};
  for (auto& s : sessions) {
    auto steps = value_or_die(db::bisect_steps(store, s.id));
    auto r = nlohmann::json::parse(s.result_json.empty() ? "{}" : s.result_json, nullptr, false);
    std::string culprit;
    if (r.is_object() && r.contains("culprit") && r["culprit"].is_object()) culprit = r["culprit"].value("id", "");
    arr.push_back({{"id", s.id}, {"kind", s.kind}, {"range", range_of(s)}, {"state", s.state},
                   {"culprit", culprit.empty() ? nlohmann::json(nullptr) : nlohmann::json(culprit)},
                   {"runs", steps.size()}, {"created_at", s.created_at}, {"updated_at", s.updated_at}});
    rows.push_back({std::to_string(s.id), s.kind, range_of(s), s.state, culprit.empty() ? "-" : culprit.substr(0, 12),
                    std::to_string(steps.size())});
  }
  if (json) {
    std::printf("%s\n", arr.dump(2).c_str());
    return kExitOk;
  }
  if (sessions.empty()) {
    std::printf("no bisect sessions (start one with 'ktstr bisect --signature ...')\n");
    return kExitOk;
  }
  std::vector<size_t> w(rows[0].size(), 0);
  for (auto& row : rows)
    for (size_t i = 0; i < row.size(); ++i) w[i] = std::max(w[i], row[i].size());
  for (auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) line += i + 1 == row.size() ? row[i] : fmt::format("{:<{}}  ", row[i], w[i]);
    std::printf("%s\n", line.c_str());
  }
  return kExitOk;
}

int bisect_log(Context& ctx, const std::vector<std::string>& argv) {
  SessionCli cli = log_cli();
  if (!parse_command_line(cli.app, argv, "bisect log")) return kExitOk;
  const std::string& id = cli.id;
  const bool json = cli.json;
  db::Store& store = ctx.open_store();
  db::BisectSession s = get_session(store, id);
  auto steps = value_or_die(db::bisect_steps(store, s.id));
  if (json) {
    nlohmann::json j = {{"id", s.id}, {"kind", s.kind}, {"state", s.state}, {"created_at", s.created_at},
                        {"updated_at", s.updated_at}};
    j["params"] = nlohmann::json::parse(s.params_json, nullptr, false);
    j["result"] = s.result_json.empty() ? nlohmann::json(nullptr) : nlohmann::json::parse(s.result_json, nullptr, false);
    j["steps"] = nlohmann::json::array();
    auto p = SessionParams::from_json(s.params_json);
    for (auto& st : steps) {
      j["steps"].push_back({{"seq", st.seq}, {"commit", st.commit}, {"phase", st.phase}, {"build", st.build},
                            {"verdict", st.verdict}, {"crash_id", st.crash_id}, {"run_id", st.run_id},
                            {"detail", st.detail}, {"at", st.at}});
      // A step that ran (it has a run) ran with its seed.
      if (auto seed = p ? p->options.step_seed(st.seq) : std::nullopt; seed && st.run_id > 0)
        j["steps"].back()["seed"] = *seed;
    }
    std::printf("%s\n", j.dump(2).c_str());
    return kExitOk;
  }
  auto p = SessionParams::from_json(s.params_json);
  std::printf("# bisect %lld (%s) %s: %s\n", static_cast<long long>(s.id), s.kind.c_str(), range_of(s).c_str(),
              s.state.c_str());
  if (p) std::printf("# signature: %s\n", p->signature.describe().c_str());
  if (p && p->options.seed) std::printf("# seed: %llu (step k runs with seed + k)\n",
                                        static_cast<unsigned long long>(*p->options.seed));
  for (auto& st : steps) {
    auto seed = p && st.run_id > 0 ? p->options.step_seed(st.seq) : std::nullopt;
    std::printf("%-5s %s  # %lld %s%s%s%s\n", st.verdict.c_str(), st.commit.c_str(), static_cast<long long>(st.seq),
                st.phase.c_str(), st.build.empty() ? "" : (", " + st.build).c_str(),
                seed ? fmt::format(", seed {}", *seed).c_str() : "", st.detail.empty() ? "" : (": " + st.detail).c_str());
  }
  auto r = nlohmann::json::parse(s.result_json.empty() ? "{}" : s.result_json, nullptr, false);
  if (r.is_object() && r.contains("message")) std::printf("# %s: %s\n", s.state.c_str(), r.value("message", "").c_str());
  return kExitOk;
}

int bisect_resume(Context& ctx, const std::vector<std::string>& argv) {
  SessionCli cli = resume_cli();
  if (!parse_command_line(cli.app, argv, "bisect resume")) return kExitOk;
  const std::string& id = cli.id;
  const bool json = cli.json;
  db::Store& store = ctx.open_store();
  db::BisectSession s = get_session(store, id);
  if (s.state != "running")
    throw Fatal(Error("bisect " + id + " has already finished (" + s.state + ")", "see 'ktstr bisect log " + id + "'"));
  SessionParams params = value_or_die(SessionParams::from_json(s.params_json));
  if (!params.signature.test) throw Fatal(Error("bisect " + id + " has no test stored"));
  auto target = value_or_die(open_target(store, params.target));
  if (params.target.kind == "sched") target->set_kernel(scheduler_kernel(store, params.target.kernel));
  auto steps = value_or_die(db::bisect_steps(store, s.id));
  BisectReporter out(json);
  BisectSession session(store, *target, params, out);
  auto outcome = value_or_die(session.resume(s, steps));
  print_outcome(outcome, json);
  return outcome.exit_code;
}

// The options, on `app`; returns --seed (to tell "given").
CLI::Option* add_bisect_options(CLI::App& app, BisectArgs& a) {
  app.footer(
      "Also: ktstr bisect list | log ID | resume ID   (each with --json)\n"
      "Exit status: 0 a culprit reached the confidence and verified, 1 none did (or the\n"
      "signature did not reproduce at the bad end), 2 bad input (nothing is written).");
  app.add_option("--signature", a.signature,
                 "crash id or unique prefix, a pinned spec file, a literal, or /regex/")
      ->required()
      ->type_name("CRASH");
  app.add_option("--sched-repo", a.sched_repo, "bisect scheduler commits of this git repository")->type_name("DIR");
  app.add_option("--good", a.good, "a commit without the signature (repeatable)")->allow_extra_args(false);
  app.add_option("--bad", a.bad, "a commit with the signature");
  app.add_option("--build", a.build, "command that builds the scheduler in a checkout (no shell; quoted words)");
  app.add_option("--artifact", a.artifact, "the built scheduler binary, relative to the checkout");
  app.add_option("--kernel-range", a.kernel_range, "bisect prebuilt kernel versions A..B (e.g. 6.17..7.3)");
  app.add_option("--kernel-repo", a.kernel_repo, "bisect kernel commits of this git repository (each built with 'ktstr kernel build')")
      ->type_name("DIR");
  app.add_option("--spec", a.spec, "the test to run (default: the crash's own test)")->type_name("SPEC");
  app.add_option("-E,--filter", a.filters, "pick one test of --spec (or of a spec --signature), nextest style")
      ->allow_extra_args(false);
  app.add_option("--kernel", a.kernel, "kernel for scheduler bisects (default: the crash's kernel)")->type_name("KERNEL");
  app.add_option("--confidence", a.opt.confidence, "stop when the best culprit is this probable")->capture_default_str();
  app.add_option("--max-runs", a.opt.max_runs, "at most this many search runs (0: the engine's default)")->capture_default_str();
  app.add_flag("--first-parent", a.first_parent, "follow only the first parent of merges");
  app.add_flag("--fixed", a.opt.fixed, "find the first commit where the signature stops appearing");
  app.add_option("--confirm-runs", a.opt.confirm_runs,
                 "clean runs asked of the good end and the culprit's parents; the bad end gets 4x to reproduce")
      ->capture_default_str();
  app.add_flag("--verify-culprit", a.opt.verify_culprit, "also revert the culprit on the bad end and check the signature is gone");
  app.add_option("--memory", a.opt.memory_mb, "guest memory in MB (overrides the spec)");
  CLI::Option* seed_option = app.add_option(
      "--seed", a.seed,
      "the session's seed S: the run of step k gets S + k as KTSTR_SEED (default: a random S, stored for resume)")
      ->type_name("S");
  app.add_flag("-v,--verbose", a.opt.verbose, "verbose guest console");
  app.add_flag("--json", a.json, "print the result as one JSON document");
  return seed_option;
}

// The command line, bound to `a`: what cmd_bisect parses and completion reads.
struct BisectCli {
  BisectArgs a;
  CLI::App app{"find the commit where a crash signature appears (or, with --fixed, stops appearing)", "ktstr bisect"};
  CLI::Option* seed_option = add_bisect_options(app, a);
};

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
  BisectArgs& a = cli.a;
  CLI::Option* seed_option = cli.seed_option;
  if (!parse_command_line(cli.app, argv, "bisect")) return kExitOk;

  // The inputs, before anything is opened or written.
  a.opt.seed = seed_option->count() > 0 ? value_or_die(parse_seed(a.seed)) : random_seed();
  int targets = !a.sched_repo.empty() + !a.kernel_range.empty() + !a.kernel_repo.empty();
  if (targets != 1)
    throw Fatal(Error("bisect: give exactly one of --sched-repo, --kernel-range, --kernel-repo",
                      "see 'ktstr bisect --help'"));
  if (!(a.opt.confidence > 0 && a.opt.confidence < 1))
    throw Fatal(Error("--confidence must be between 0 and 1", "e.g. --confidence 0.95"));
  if (a.opt.confirm_runs < 1 || a.opt.confirm_runs > 100)
    throw Fatal(Error("--confirm-runs must be 1 to 100", "e.g. --confirm-runs 2"));
  if (a.opt.max_runs < 0) throw Fatal(Error("--max-runs must not be negative", "0 lets the engine choose"));
  TargetParams tp;
  if (!a.sched_repo.empty()) {
    tp.kind = "sched";
    if (a.good.empty() || a.bad.empty())
      throw Fatal(Error("bisect: --sched-repo needs --good and --bad", "e.g. --good v1.0.2 --bad main"));
    if (a.build.empty() || a.artifact.empty())
      throw Fatal(Error("bisect: --sched-repo needs --build and --artifact",
                        "e.g. --build 'make -C scheds/c scx_qmap' --artifact scheds/c/build/scx_qmap"));
    tp.repo = a.sched_repo;
    tp.good = a.good;
    tp.bad = a.bad;
    tp.build = a.build;
    tp.artifact = a.artifact;
    tp.first_parent = a.first_parent;
  } else if (!a.kernel_repo.empty()) {
    tp.kind = "kernel-repo";
    if (a.good.empty() || a.bad.empty())
      throw Fatal(Error("bisect: --kernel-repo needs --good and --bad", "e.g. --good v6.12 --bad sched_ext/for-next"));
    if (!a.build.empty() || !a.artifact.empty())
      throw Fatal(Error("bisect: --kernel-repo takes no --build or --artifact",
                        "each commit is built with 'ktstr kernel build'"));
    if (a.opt.verify_culprit)
      throw Fatal(Error("--verify-culprit is not available for kernel commits", "verify the culprit by hand"));
    tp.repo = a.kernel_repo;
    tp.good = a.good;
    tp.bad = a.bad;
    tp.first_parent = a.first_parent;
  } else {
    tp.kind = "kernel-range";
    if (!a.good.empty() || !a.bad.empty() || !a.build.empty() || !a.artifact.empty())
      throw Fatal(Error("bisect: --kernel-range takes no --good, --bad, --build or --artifact",
                        "the range A..B names the good and bad versions"));
    if (a.opt.verify_culprit)
      throw Fatal(Error("--verify-culprit needs a scheduler repository", "kernel versions cannot be reverted"));
    tp.range = a.kernel_range;
  }
  if (a.opt.verify_culprit && a.opt.fixed)
    throw Fatal(Error("--verify-culprit and --fixed do not go together", "verify a fix by hand"));

  db::Store& store = ctx.open_store();
  BisectSignature sig = value_or_die(resolve_signature(store, a.signature, a.spec, a.filters));
  sig.test = bisect_run_spec(*sig.test);
  if (tp.kind == "sched") {
    tp.kernel = !a.kernel.empty() ? a.kernel : !sig.kernel_ref.empty() ? sig.kernel_ref : sig.test->kernel;
  } else {
    if (!a.kernel.empty())
      throw Fatal(Error("--kernel does not go with --" + tp.kind, "the bisect builds or names the kernels"));
    if (!sig.test->uses_bpf_scheduler())
      throw Fatal(Error("test '" + sig.test->name + "' runs no sched_ext scheduler", "give a test with a scheduler via --spec"));
    value_or_die(check_scheduler(*sig.test));
    if (tp.kind == "kernel-range") tp.versions = value_or_die(known_kernel_versions(store));
  }
  auto target = value_or_die(open_target(store, tp));
  // Resume must see the same commits even when branches move.
  tp.bad = target->bad();
  if (tp.kind != "kernel-range") tp.good = target->good();

  SessionParams params;
  params.target = tp;
  params.signature = sig;
  params.options = a.opt;
  params.spec_file = a.spec;
  BisectReporter out(a.json);
  BisectSession session(store, *target, params, out);
  value_or_die(session.preflight());
  if (tp.kind == "sched") {
    // Resolved after the builds (a broken build command needs no kernel) and
    // before any row; kept by id so a resumed session runs the same kernel.
    KernelRecord k = scheduler_kernel(store, tp.kernel);
    target->set_kernel(k);
    params.target.kernel = k.id;
    session.set_params(params);
  }
  auto outcome = value_or_die(session.start());
  print_outcome(outcome, a.json);
  return outcome.exit_code;
}

}  // namespace ktstr::cmd
