// A unit of work that an executor runs somewhere: one process, given as an
// argv vector, whose standard output is its result. Units of one job live in
// a job directory that every node sees at the same path:
//   units/N.json   the unit (argv, name), written by the submitter
//   out/N          its standard output (the result), log/N its standard error
//   status/N.json  {status, host, started, ended}, written last, atomically:
//                  its presence means the unit has finished.
#pragma once

#include "core/result.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::executor {

struct WorkUnit {
  std::string name;               // for progress lines and messages
  std::vector<std::string> argv;  // argv[0] is a path valid on the nodes
  unsigned cpus = 1;              // what the unit needs (Slurm: -c, --mem)
  unsigned memory_mb = 512;
};

struct UnitOutcome {
  size_t index = 0;
  int status = -1;        // shell-style exit status; -1 when the unit never reported
  std::string result;     // its standard output
  std::string log_path;   // its standard error (a file in the job directory; empty for a local unit)
  std::string log;        // its standard error's text, as far as the executor read it
  std::string host;       // where it ran
  int64_t started_ms = 0, ended_ms = 0;  // wall clock, milliseconds since the epoch
  std::string error;      // why there is no status (lost, cancelled), else empty
};

// The job directory's files.
std::string unit_path(const std::string& job_dir, size_t index);
std::string out_path(const std::string& job_dir, size_t index);
std::string log_path(const std::string& job_dir, size_t index);
std::string status_path(const std::string& job_dir, size_t index);

// Write units/N.json for every unit (creating the directories).
Status write_units(const std::string& job_dir, const std::vector<WorkUnit>& units);

// What one array task does (`ktstr run-unit DIR N`): read units/N.json, run
// its argv with stdout to out/N and stderr to log/N, then write status/N.json.
// Returns the unit's exit status; an unreadable unit is an error.
Result<int> run_unit(const std::string& job_dir, size_t index);

// The outcome of unit `index` once status/N.json exists; nullopt before.
Result<std::optional<UnitOutcome>> read_outcome(const std::string& job_dir, size_t index);

}  // namespace ktstr::executor
