// Reading a run's JSON back: the inverse of to_json(RunResult) (report.hpp)
// and to_json(ReproResult) (repro.hpp). A worker (`ktstr test --jobs`, a
// Slurm array task) hands its runs back as that JSON and the submitting
// ktstr records them, so the text may come from another machine: a field of
// the wrong type or an out-of-range number is an error naming the field,
// never a throw. Absent optional fields read as their defaults; keys it does
// not know are ignored (a newer worker).
#pragma once

#include "core/result.hpp"
#include "core/run_result.hpp"

#include <nlohmann/json.hpp>

namespace ktstr {

// to_json(run_result_from_json(to_json(r))) == to_json(r) for every r.
// Fields to_json derives (status, exit.summary, repro.reproduced, ...) are
// not read back; fields it leaves out (exit.dump, exit.exit_line) stay empty.
Result<RunResult> run_result_from_json(const nlohmann::json& j);
Result<ReproResult> repro_result_from_json(const nlohmann::json& j);

}  // namespace ktstr
