// What `ktstr test` and `ktstr gauntlet` share on their command lines: the
// executor's options read into the worker pool's, and --junit.
#pragma once

#include "run/junit.hpp"
#include "run/workers.hpp"
#include "core/result.hpp"
#include "executor/executor.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace ktstr::cmd {

// --executor, --slurm-dir and --slurm-partition as given; the Slurm ones
// only go with the Slurm executor.
inline runner::WorkerPoolOptions pool_options(const std::string& executor, const std::string& slurm_dir,
                                              const std::string& slurm_partition) {
  runner::WorkerPoolOptions pool;
  pool.executor = value_or_die(executor::parse_executor_name(executor));
  if (pool.executor != executor::ExecutorKind::kSlurm && (!slurm_dir.empty() || !slurm_partition.empty()))
    throw Fatal(Error("--slurm-dir and --slurm-partition need --executor slurm", "add '--executor slurm'"));
  pool.slurm_dir = slurm_dir;
  pool.slurm_partition = slurm_partition;
  return pool;
}

// --junit FILE, checked as it is parsed (run/junit.hpp check_junit_path):
// a file that could not be written is an error, with its hint, before
// anything is opened or booted.
inline void add_junit_option(CLI::App& app, std::string& path) {
  app.add_option("--junit", path,
                 "when the run ends, write its results to FILE as JUnit XML (for CI: a testsuite per spec file, "
                 "a testcase per run)")
      ->type_name("FILE")
      ->check([](const std::string& p) {
        value_or_die(runner::check_junit_path(p));  // a Fatal, not CLI11's message: it keeps the hint
        return std::string();
      });
}

}  // namespace ktstr::cmd
