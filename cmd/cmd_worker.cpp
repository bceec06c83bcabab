// `ktstr worker REQUEST`: one unit of a `test --jobs`, `--executor slurm` or
// `gauntlet` run (run/worker.hpp): runs it without opening the store and
// prints its result document for the submitter, which records it. Plumbing,
// like git's upload-pack: users do not type it.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "run/worker.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

namespace ktstr::cmd {

int cmd_worker(Context&, const std::vector<std::string>& args) {
  CLI::App app{"Run one unit of work described by REQUEST and print its runs (what ktstr's workers run)",
               "ktstr worker"};
  std::string text;
  app.add_option("request", text, "the unit, as the JSON request the submitter wrote")->required();
  if (!parse_command_line(app, args, "worker")) return kExitOk;
  runner::WorkerRequest request = value_or_die(runner::parse_worker_request(text));
  TestSpec spec = value_or_die(runner::worker_test(request));
  runner::WorkerOutput out = runner::run_worker(request, spec);
  std::printf("%s\n", runner::worker_output_json(out).dump().c_str());
  return kExitOk;
}

}  // namespace ktstr::cmd
