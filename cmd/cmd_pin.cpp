// `ktstr pin <crash-id> [--name N] [--out DIR] [--verify N]`: write a
// regression test that expects a recorded crash's signature.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/pipeline.hpp"
#include "run/progress.hpp"
#include "run/repeat_run.hpp"
#include "run/repro.hpp"
#include "core/fs.hpp"
#include "core/pin.hpp"
#include "core/seed.hpp"
#include "db/crashes.hpp"
#include "kbuild/kernel_cache.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

namespace ktstr::cmd {
using namespace ktstr::runner;
namespace {

// Every test name already defined by the specs in `dir`.
Result<std::vector<std::pair<std::string, std::string>>> existing_tests(const std::string& dir) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".toml") continue;
    auto specs = load_spec_file(e.path().string());
    if (!specs) return tl::unexpected(specs.error());
    for (auto& s : *specs) out.emplace_back(s.name, e.path().string());
  }
  return out;
}

// The command line: what cmd_pin parses and completion reads.
struct PinCli {
  std::string id, name, out_dir;
  unsigned verify = 0;
  CLI::App app{"write a regression test that expects a recorded crash's signature", "ktstr pin"};
  PinCli() {
    app.add_option("crash-id", id, "crash id or unique prefix (see 'ktstr crash list')")->required()->type_name("CRASH");
    app.add_option("--name", name, "test name (default: <test>_regression)");
    app.add_option("--out", out_dir, "directory for the spec (default: $KTSTR_TEST_DIR or tests/ktstr)")
        ->type_name("DIR");
    app.add_option("--verify", verify, "run the new test N times first; write it only if it matches");
  }
};

}  // namespace

void describe_pin(const AppUse& use) { PinCli cli; use("", cli.app); }

int cmd_pin(Context& ctx, const std::vector<std::string>& argv) {
  PinCli cli;
  if (!parse_command_line(cli.app, argv, "pin")) return kExitOk;
  const std::string &id = cli.id, &name = cli.name;
  std::string& out_dir = cli.out_dir;
  const unsigned verify = cli.verify;
  if (verify > proto::kMaxRepeat)
    throw Fatal(Error("--verify " + std::to_string(verify) + " is out of range",
                      "use 1 to " + std::to_string(proto::kMaxRepeat) + " runs"));
  if (out_dir.empty()) {
    const char* d = std::getenv("KTSTR_TEST_DIR");
    out_dir = d && *d ? d : "tests/ktstr";
  }
  db::Store& store = ctx.open_store();
  auto crash = value_or_die(db::find_crash(store, id));
  if (!crash) throw Fatal(Error("no crash matches '" + id + "'", "see 'ktstr crash list'"));
  TestSpec spec = value_or_die(pin_spec(*crash, name));

  for (auto& [existing, file] : value_or_die(existing_tests(out_dir)))
    if (existing == spec.name)
      throw Fatal(Error("test '" + spec.name + "' already exists in '" + file + "'",
                        "choose another name with --name, or delete the old test"));
  std::string path = out_dir + "/" + spec.name + ".toml";
  if (path_exists(path))
    throw Fatal(Error("'" + path + "' already exists", "choose another name with --name"));

  if (verify > 0) {
    auto kernel = value_or_die(kbuild::resolve_kernel(store, crash->kernel_id, {}));
    Progress progress(true);
    unsigned matched = 0;
    // All N runs in as few boots as the guest allows (--repeat's machinery).
    PipelineOptions popt;
    popt.progress = [&](const std::string& s) { progress.update("verify: " + s); };
    // The first run replays the crash's seed, the others the next seeds (a
    // crash recorded without one: a random start).
    popt.seed = recorded_seed(*crash);
    if (!popt.seed) popt.seed = random_seed();
    auto runs = value_or_die(run_test_repeated(store.artifacts_dir(), spec, kernel, popt, verify));
    progress.clear();
    for (const RunResult& r : runs.runs) {
      if (r.passed) ++matched;
      else std::printf("verify run %u (seed %llu): %s\n", r.repetition,
                       static_cast<unsigned long long>(r.seed.value_or(0)), r.reason.c_str());
    }
    if (runs.skipped) std::printf("verify: %u runs could not run\n", runs.skipped);
    std::printf("verify: %u of %u runs matched the pinned signature\n", matched, verify);
    if (matched == 0)
      throw Fatal(Error("the pinned test never matched in " + std::to_string(verify) + " runs, so it was not written",
                        "check 'ktstr crash show " + crash->id + "'; the crash may be flaky or fixed"),
                  kExitTestFailed);
  }

  if (auto st = make_dirs(out_dir); !st) throw Fatal(st.error());
  std::string text = "# Pinned from crash " + crash->id + " (" + crash->summary + ") by 'ktstr pin'.\n" +
                     spec_to_toml(spec);
  if (auto st = write_file_atomic(path, text); !st) throw Fatal(st.error());
  std::printf("wrote %s\n", path.c_str());
  return kExitOk;
}

}  // namespace ktstr::cmd
