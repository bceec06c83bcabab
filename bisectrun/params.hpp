// A bisect session's parameters: everything `resume` needs, stored as the
// session row's params_json (old stores read back: the keys never change).
#pragma once

#include "bisectrun/mode.hpp"
#include "bisectrun/signature.hpp"
#include "bisectrun/target.hpp"
#include "core/result.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace ktstr::bisectrun {

struct BisectOptions {
  double confidence = 0.95;
  int max_runs = 0;             // 0: the engine's default
  bool fixed = false;
  int confirm_runs = 2;         // clean runs asked of the good end (and of the culprit's parents)
  bool verify_culprit = false;  // also revert the culprit on the bad end
  bool verbose = false;
  unsigned memory_mb = 0;
  // The session's seed S: the run of step `seq` gets seed_at(S, seq)
  // (core/seed.hpp) as KTSTR_SEED. Absent in sessions stored before seeds
  // existed: their runs get none.
  std::optional<uint64_t> seed;
  // The seed of step `seq`'s run, if the session has one.
  std::optional<uint64_t> step_seed(int64_t seq) const;

  // The bad end (or the culprit) must show the signature within this many runs.
  int reproduce_bound() const { return 4 * confirm_runs; }
  // What the commits besides the search's must show, and how they are checked.
  BisectMode mode() const { return BisectMode(fixed, confirm_runs, reproduce_bound()); }
  nlohmann::json to_json() const;
  static BisectOptions from_json(const nlohmann::json& j);
};

// Everything `resume` needs, stored as the session's params_json.
struct SessionParams {
  TargetParams target;
  BisectSignature signature;
  BisectOptions options;
  std::string spec_file;        // as given (the test itself is in the signature)
  nlohmann::json to_json() const;
  static Result<SessionParams> from_json(const std::string& text);
};

}  // namespace ktstr::bisectrun
