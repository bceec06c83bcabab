// `ktstr verifier SCHEDULER [--kernel K] [--json] [--compare OTHER]`: the
// verifier's own statistics for every BPF program of a scheduler, loaded in
// a VM on the kernel under test; with --compare, a second build's programs
// loaded in the same VM and the per-program deltas.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/progress.hpp"
#include "run/verifier_run.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>

namespace ktstr::cmd {
using namespace ktstr::runner;
namespace {

// "scx-ktstr" names the fixture, as in test specs; anything else is a path.
VerifierInput input_or_die(const std::string& arg) {
  std::string path = arg;
  if (arg == "scx-ktstr") path = value_or_die(find_fixture_scheduler());
  return value_or_die(read_verifier_input(path));
}

// The command line: what cmd_verifier parses and completion reads.
struct VerifierCli {
  std::string scheduler, compare, kernel_ref;
  bool json = false;
  bool verbose = false;
  CLI::App app{"show the BPF verifier's statistics for each program of a scheduler", "ktstr verifier"};
  VerifierCli() {
    app.add_option("scheduler", scheduler,
                   "a BPF object (.bpf.o), a scheduler binary with an embedded skeleton, or scx-ktstr")
        ->required()
        ->type_name("FILE");
    app.add_option("--kernel", kernel_ref, "kernel id, id prefix, version, name or bzImage path")->type_name("KERNEL");
    app.add_option("--compare", compare, "a second object or binary, loaded in the same VM; prints the deltas")
        ->type_name("FILE");
    app.add_flag("--json", json, "print the result as one JSON document");
    app.add_flag("-v,--verbose", verbose, "verbose guest console");
  }
};

}  // namespace

void describe_verifier(const AppUse& use) { VerifierCli cli; use("", cli.app); }

int cmd_verifier(Context& ctx, const std::vector<std::string>& argv) {
  VerifierCli cli;
  if (!parse_command_line(cli.app, argv, "verifier")) return kExitOk;
  const std::string &scheduler = cli.scheduler, &compare = cli.compare, &kernel_ref = cli.kernel_ref;
  const bool json = cli.json, verbose = cli.verbose;

  // Bad input fails here, before a kernel is resolved or a VM boots.
  VerifierInput a = input_or_die(scheduler);
  std::optional<VerifierInput> b;
  if (!compare.empty()) b = input_or_die(compare);

  Progress progress(!json);
  auto progress_fn = [&](const std::string& s) { progress.update(s); };
  db::Store& store = ctx.open_store();
  auto kernel = value_or_die(kbuild::resolve_kernel(store, kernel_ref, progress_fn));
  if (!kernel.sched_ext)
    throw Fatal(Error("kernel '" + kernel.version + "' (" + kernel.id + ") has no sched_ext",
                      "use a kernel with CONFIG_SCHED_CLASS_EXT=y, e.g. 'ktstr kernel fetch'"));
  PipelineOptions popt;
  popt.verbose = verbose || ctx.verbosity > 0;
  popt.progress = progress_fn;
  auto run = run_verifier(store, kernel, a, b ? &*b : nullptr, popt);
  progress.clear();
  if (!run) throw Fatal(run.error(), kExitTestFailed);

  bool ok = run->a.ok() && (!run->b || run->b->ok());
  if (json) {
    nlohmann::json doc = run->b ? verifier_compare_json(run->a, *run->b) : to_json(run->a);
    doc["kernel"] = kernel.version;
    doc["accel"] = run->accel;
    doc["wall_s"] = run->wall_s;
    doc["ok"] = ok;
    doc["diagnostics"] = run->diagnostics;
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("kernel %s (%s, %.1f s)\n", kernel.version.c_str(), run->accel.c_str(), run->wall_s);
    std::printf("%s", (run->b ? render_verifier_compare(run->a, *run->b) : render_verifier_table(run->a)).c_str());
    if (!ok)
      for (const std::string& d : run->diagnostics) std::fprintf(stderr, "ktstr: note: %s\n", d.c_str());
  }
  return ok ? kExitOk : kExitTestFailed;
}

}  // namespace ktstr::cmd
