// Auto-repro outcomes kept with their crash (schema version 3, table
// `repros`): one row per repro run, newest last. `ktstr crash show` and
// `ktstr repro` read them back.
#pragma once

#include "core/result.hpp"
#include "db/store.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ktstr::db {

struct ReproRecord {
  int64_t id = 0;                // rowid, set by put_repro
  std::string crash_id;
  int64_t created_at = 0;        // unix seconds
  bool reproduced = false;
  int64_t duration_ms = 0;       // repro VM wall time
  std::string result_json;       // to_json(ReproResult)
  std::string report;            // render_repro(ReproResult)
};

// Appends a repro; returns its id.
Result<int64_t> put_repro(Store& store, const ReproRecord& repro);
// The crash's repros, oldest first.
Result<std::vector<ReproRecord>> list_repros(Store& store, const std::string& crash_id);
// The newest repro of the crash, if any.
Result<std::optional<ReproRecord>> latest_repro(Store& store, const std::string& crash_id);

}  // namespace ktstr::db
