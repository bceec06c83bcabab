#include "db/schema.hpp"

#include "db/sql.hpp"

#include "core/crash_parse.hpp"

#include <vector>

#include <string>

namespace ktstr::db {
namespace {

// Version 1: the records of core/records.hpp. kernels.tracepoints is a JSON
// array of names. Times are unix seconds.
constexpr const char* kV1KernelsAndRuns = R"sql(
CREATE TABLE kernels (
  id            TEXT PRIMARY KEY NOT NULL,
  version       TEXT NOT NULL,
  name          TEXT NOT NULL DEFAULT '',
  source        TEXT NOT NULL DEFAULT '',
  image_path    TEXT NOT NULL,
  config_path   TEXT NOT NULL DEFAULT '',
  vmlinux_path  TEXT NOT NULL DEFAULT '',
  image_sha256  TEXT NOT NULL DEFAULT '',
  image_size    INTEGER NOT NULL DEFAULT 0,
  sched_ext     INTEGER NOT NULL DEFAULT 0,
  tracepoints   TEXT NOT NULL DEFAULT '[]',
  added_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kernels_by_version ON kernels(version);
CREATE INDEX kernels_by_name ON kernels(name);
CREATE INDEX kernels_by_added_at ON kernels(added_at);

CREATE TABLE runs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  test_name     TEXT NOT NULL,
  kernel_id     TEXT NOT NULL DEFAULT '',
  scheduler     TEXT NOT NULL DEFAULT '',
  topology      TEXT NOT NULL DEFAULT '',
  scenario      TEXT NOT NULL DEFAULT '',
  status        TEXT NOT NULL,
  reason        TEXT NOT NULL DEFAULT '',
  started_at    INTEGER NOT NULL DEFAULT 0,
  duration_ms   INTEGER NOT NULL DEFAULT 0,
  result_json   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_by_started_at ON runs(started_at);
CREATE INDEX runs_by_kernel ON runs(kernel_id);
)sql";

// Version 2: crash occurrences (core/records.hpp CrashRecord). sched_args is
// a JSON array of strings; seed is the uint64 stored as its int64 bit pattern.
// Occurrences with one signature_key are one crash (`ktstr crash list`).
constexpr const char* kV2Crashes = R"sql(
CREATE TABLE crashes (
  id                TEXT PRIMARY KEY NOT NULL,
  signature_key     TEXT NOT NULL,
  kind              INTEGER NOT NULL DEFAULT -1,
  message           TEXT NOT NULL DEFAULT '',
  bpf_prog          TEXT NOT NULL DEFAULT '',
  source            TEXT NOT NULL DEFAULT '',
  summary           TEXT NOT NULL DEFAULT '',
  test_name         TEXT NOT NULL DEFAULT '',
  kernel_id         TEXT NOT NULL DEFAULT '',
  scheduler         TEXT NOT NULL DEFAULT '',
  scheduler_sha256  TEXT NOT NULL DEFAULT '',
  sched_args        TEXT NOT NULL DEFAULT '[]',
  topology          TEXT NOT NULL DEFAULT '',
  spec_toml         TEXT NOT NULL DEFAULT '',
  seed              INTEGER NOT NULL DEFAULT 0,
  run_id            INTEGER NOT NULL DEFAULT 0,
  created_at        INTEGER NOT NULL DEFAULT 0,
  report            TEXT NOT NULL DEFAULT '',
  result_json       TEXT NOT NULL DEFAULT '',
  artifacts_dir     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX crashes_by_signature ON crashes(signature_key, created_at);
CREATE INDEX crashes_by_created_at ON crashes(created_at);
)sql";

// Version 3: auto-repro outcomes (db/repros.hpp), several per crash.
constexpr const char* kV3Repros = R"sql(
CREATE TABLE repros (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  crash_id      TEXT NOT NULL,
  created_at    INTEGER NOT NULL DEFAULT 0,
  reproduced    INTEGER NOT NULL DEFAULT 0,
  duration_ms   INTEGER NOT NULL DEFAULT 0,
  result_json   TEXT NOT NULL DEFAULT '',
  report        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX repros_by_crash ON repros(crash_id, created_at);
)sql";

// Version 4: bisect sessions and steps (db/bisects.hpp) and the scheduler
// build cache index (schedbuild/). A step's commit column is commit_id
// (COMMIT is an SQL keyword); sched_builds.command is a JSON array of argv.
constexpr const char* kV4Bisects = R"sql(
CREATE TABLE bisect_sessions (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  kind          TEXT NOT NULL,
  params_json   TEXT NOT NULL DEFAULT '{}',
  state         TEXT NOT NULL DEFAULT 'running',
  result_json   TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL DEFAULT 0,
  updated_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bisect_sessions_by_created_at ON bisect_sessions(created_at);

CREATE TABLE bisect_steps (
  session_id    INTEGER NOT NULL,
  seq           INTEGER NOT NULL,
  commit_id     TEXT NOT NULL DEFAULT '',
  phase         TEXT NOT NULL DEFAULT '',
  build         TEXT NOT NULL DEFAULT '',
  verdict       TEXT NOT NULL DEFAULT '',
  crash_id      TEXT NOT NULL DEFAULT '',
  run_id        INTEGER NOT NULL DEFAULT 0,
  detail        TEXT NOT NULL DEFAULT '',
  at            INTEGER NOT NULL DEFAULT 0,
  UNIQUE (session_id, seq)
);

CREATE TABLE sched_builds (
  key           TEXT PRIMARY KEY NOT NULL,
  tree          TEXT NOT NULL,
  command       TEXT NOT NULL DEFAULT '[]',
  artifact      TEXT NOT NULL DEFAULT '',
  compiler      TEXT NOT NULL DEFAULT '',
  ok            INTEGER NOT NULL DEFAULT 0,
  duration_ms   INTEGER NOT NULL DEFAULT 0,
  binary_name   TEXT NOT NULL DEFAULT '',
  error_excerpt TEXT NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sched_builds_by_tree ON sched_builds(tree);
)sql";

// Version 5: crash signatures without the directory of the BPF source file
// (core/crash_parse.hpp), so a scheduler built in another checkout groups
// with its earlier crashes. Rows are rewritten in C++: the key is a hash.
constexpr const char* kV5SignatureFileNames = "-- rows rewritten by rewrite_crash_signatures";

Status rewrite_crash_signatures(sqlite3* db) {
  const std::string what = "cannot rewrite crash signatures in database '" + db_path(db) + "'";
  auto rows = Stmt::prepare(db, "SELECT id, kind, message, bpf_prog, source FROM crashes", what);
  if (!rows) return fail(rows.error());
  struct Row {
    std::string id;
    Signature sig;
  };
  std::vector<Row> changed;
  int rc;
  while ((rc = rows->step()) == SQLITE_ROW) {
    Signature stored{rows->integer(1), rows->text(2), rows->text(3), rows->text(4)};
    Signature now = upgrade_stored_signature(stored);
    if (!(now == stored)) changed.push_back({rows->text(0), std::move(now)});
  }
  if (rc != SQLITE_DONE) return fail(sql_error(db, rc, what));
  for (auto& row : changed) {
    auto up = Stmt::prepare(db, "UPDATE crashes SET signature_key = ?1, message = ?2, source = ?3 WHERE id = ?4", what);
    if (!up) return fail(up.error());
    up->bind(1, row.sig.key()).bind(2, row.sig.message).bind(3, row.sig.source).bind(4, row.id);
    if (auto st = up->run(what); !st) return fail(st.error());
  }
  return {};
}

// Version 6: the kernel build cache index (db/kernel_builds.hpp, kbuild/kernel_build.hpp).
constexpr const char* kV6KernelBuilds = R"sql(
CREATE TABLE kernel_builds (
  key           TEXT PRIMARY KEY NOT NULL,
  request_key   TEXT NOT NULL DEFAULT '',
  kernel_id     TEXT NOT NULL,
  tree_id       TEXT NOT NULL,
  source        TEXT NOT NULL DEFAULT '',
  commit_id     TEXT NOT NULL DEFAULT '',
  dirty         INTEGER NOT NULL DEFAULT 0,
  config_sha256 TEXT NOT NULL DEFAULT '',
  compiler      TEXT NOT NULL DEFAULT '',
  build_dir     TEXT NOT NULL DEFAULT '',
  worktree      TEXT NOT NULL DEFAULT '',
  duration_ms   INTEGER NOT NULL DEFAULT 0,
  created_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX kernel_builds_by_request ON kernel_builds(request_key);
CREATE INDEX kernel_builds_by_kernel ON kernel_builds(kernel_id);
)sql";

constexpr Migration kMigrations[] = {
    {"kernels and runs", kV1KernelsAndRuns},
    {"crashes", kV2Crashes},
    {"repros", kV3Repros},
    {"bisects and scheduler builds", kV4Bisects},
    {"crash signatures without directories", kV5SignatureFileNames, rewrite_crash_signatures},
    {"kernel builds", kV6KernelBuilds},
    // later issues append here
};

Result<int> read_user_version(sqlite3* db) {
  auto stmt = Stmt::prepare(db, "PRAGMA user_version");
  if (!stmt) return fail(stmt.error());
  int rc = stmt->step();
  if (rc != SQLITE_ROW)
    return fail(sql_error(db, rc, "cannot read the schema version of database '" + db_path(db) + "'"));
  return static_cast<int>(stmt->integer(0));
}

Status set_user_version(sqlite3* db, int version) {
  // PRAGMA takes no bound parameters; the value is our own integer.
  std::string sql = "PRAGMA user_version = " + std::to_string(version);
  return exec(db, sql.c_str(), "cannot set the database schema version");
}

}  // namespace

std::span<const Migration> migrations() { return kMigrations; }

Result<int> read_schema_version(sqlite3* db) {
  // Parsing the schema catches files whose header looks valid but whose
  // pages do not; user_version alone only reads the header.
  const std::string what = "cannot open database '" + db_path(db) + "'";
  auto stmt = Stmt::prepare(db, "SELECT count(*) FROM sqlite_schema", what);
  if (!stmt) return fail(stmt.error());
  int rc = stmt->step();
  if (rc != SQLITE_ROW) return fail(sql_error(db, rc, what));
  return read_user_version(db);
}

Error newer_schema_error(const std::string& path, int theirs, int ours) {
  return Error("database '" + path + "' has schema version " + std::to_string(theirs) +
                   ", newer than this ktstr's " + std::to_string(ours),
               "upgrade ktstr, or point KTSTR_CACHE_DIR to another directory");
}

Status migrate(sqlite3* db, std::span<const Migration> steps) {
  const int target = static_cast<int>(steps.size());
  for (;;) {
    auto st = write_txn(db, "cannot migrate database '" + db_path(db) + "'", [&]() -> Result<bool> {
      auto version = read_user_version(db);
      if (!version) return fail(version.error());
      if (*version > target) return fail(newer_schema_error(db_path(db), *version, target));
      if (*version == target) return false;
      const Migration& m = steps[static_cast<size_t>(*version)];
      std::string what = "cannot migrate database '" + db_path(db) + "' to schema version " +
                         std::to_string(*version + 1) + " (" + m.what + ")";
      if (auto s = exec(db, m.sql, what); !s) return fail(s.error());
      if (m.rewrite)
        if (auto s = m.rewrite(db); !s) return fail(Error(what + ": " + s.error().msg, s.error().hint));
      if (auto s = set_user_version(db, *version + 1); !s) return fail(s.error());
      return true;
    });
    if (!st) return fail(st.error());
    if (!*st) return {};
  }
}

}  // namespace ktstr::db
