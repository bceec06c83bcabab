// `ktstr run-unit DIR N`: what one task of a job array runs on its node
// (--executor slurm, executor/slurm.hpp): work unit N of the job directory
// DIR, its output and status written back there. Plumbing, like git's
// upload-pack: users do not type it.
#include "cmd/cli.hpp"
#include "cmd/commands.hpp"
#include "executor/work_unit.hpp"

#include <CLI/CLI.hpp>

namespace ktstr::cmd {

int cmd_run_unit(Context&, const std::vector<std::string>& args) {
  CLI::App app{"Run work unit N of a job directory (a Slurm array task runs this)", "ktstr run-unit"};
  std::string dir;
  size_t index = 0;
  app.add_option("dir", dir, "the job directory (units/, out/, log/, status/)")->required();
  app.add_option("index", index, "the unit's index ($SLURM_ARRAY_TASK_ID)")->required();
  if (!parse_command_line(app, args, "run-unit")) return kExitOk;
  auto status = executor::run_unit(dir, index);
  if (!status) throw Fatal(status.error());
  // The unit's own status goes to Slurm too (sacct shows it).
  return *status > 255 ? 255 : *status;
}

}  // namespace ktstr::cmd
