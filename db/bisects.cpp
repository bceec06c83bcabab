#include "db/bisects.hpp"

#include "db/sql.hpp"

#include <ctime>

namespace ktstr::db {
namespace {

int64_t now() { return static_cast<int64_t>(std::time(nullptr)); }

constexpr const char* kSessionColumns = "id, kind, params_json, state, result_json, created_at, updated_at";
constexpr const char* kStepColumns =
    "session_id, seq, commit_id, phase, build, verdict, crash_id, run_id, detail, at";
constexpr const char* kBuildColumns =
    "key, tree, command, artifact, compiler, ok, duration_ms, binary_name, error_excerpt, created_at";

BisectSession session_row(const Stmt& s) {
  BisectSession b;
  b.id = s.integer(0);
  b.kind = s.text(1);
  b.params_json = s.text(2);
  b.state = s.text(3);
  b.result_json = s.text(4);
  b.created_at = s.integer(5);
  b.updated_at = s.integer(6);
  return b;
}

Result<std::vector<BisectSession>> query_sessions(Store& store, const std::string& tail, int64_t id) {
  auto s = Stmt::prepare(store.handle(), std::string("SELECT ") + kSessionColumns + " FROM bisect_sessions " + tail);
  if (!s) return fail(s.error());
  if (id) s->bind(1, id);
  std::vector<BisectSession> out;
  for (;;) {
    int rc = s->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return fail(sql_error(store.handle(), rc, "cannot read bisect sessions"));
    out.push_back(session_row(*s));
  }
  return out;
}

// Whether session `id` exists; inside the caller's transaction.
Result<bool> session_exists(sqlite3* db, int64_t id) {
  auto s = Stmt::prepare(db, "SELECT 1 FROM bisect_sessions WHERE id = ?1");
  if (!s) return fail(s.error());
  s->bind(1, id);
  int rc = s->step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return fail(sql_error(db, rc, "cannot read bisect " + std::to_string(id)));
}

}  // namespace

Result<int64_t> add_bisect(Store& store, const BisectSession& b) {
  const std::string what = "cannot store a new " + b.kind + " bisect";
  sqlite3* db = store.handle();
  const int64_t created = b.created_at ? b.created_at : now();
  return write_txn(db, what, [&]() -> Result<int64_t> {
    auto s = Stmt::prepare(db, "INSERT INTO bisect_sessions (kind, params_json, state, result_json, created_at, "
                               "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s) return fail(s.error());
    s->bind(1, b.kind).bind(2, b.params_json).bind(3, b.state.empty() ? std::string("running") : b.state);
    s->bind(4, b.result_json).bind(5, created).bind(6, b.updated_at ? b.updated_at : created);
    if (auto st = s->run(what); !st) return fail(st.error());
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
  });
}

Status finish_bisect(Store& store, int64_t id, const std::string& state, const std::string& result_json) {
  const std::string what = "cannot store the result of bisect " + std::to_string(id);
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, "UPDATE bisect_sessions SET state = ?2, result_json = ?3, updated_at = ?4 WHERE id = ?1");
    if (!s) return fail(s.error());
    s->bind(1, id).bind(2, state).bind(3, result_json).bind(4, now());
    if (auto st = s->run(what); !st) return st;
    if (sqlite3_changes(db) == 0) return fail(what + ": no such bisect");
    return {};
  });
}

Result<std::optional<BisectSession>> get_bisect(Store& store, int64_t id) {
  auto rows = query_sessions(store, "WHERE id = ?1", id);
  if (!rows) return fail(rows.error());
  if (rows->empty()) return std::optional<BisectSession>();
  return std::optional<BisectSession>(rows->front());
}

Result<std::vector<BisectSession>> list_bisects(Store& store) {
  return query_sessions(store, "ORDER BY created_at DESC, id DESC", 0);
}

Status add_bisect_step(Store& store, const BisectStep& step) {
  const std::string what =
      "cannot store step " + std::to_string(step.seq) + " of bisect " + std::to_string(step.session_id);
  sqlite3* db = store.handle();
  const int64_t at = step.at ? step.at : now();
  return write_txn(db, what, [&]() -> Status {
    auto exists = session_exists(db, step.session_id);
    if (!exists) return fail(exists.error());
    if (!*exists) return fail(what + ": no such bisect");
    auto s = Stmt::prepare(db, std::string("INSERT INTO bisect_steps (") + kStepColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!s) return fail(s.error());
    s->bind(1, step.session_id).bind(2, step.seq).bind(3, step.commit).bind(4, step.phase).bind(5, step.build);
    s->bind(6, step.verdict).bind(7, step.crash_id).bind(8, step.run_id).bind(9, step.detail).bind(10, at);
    int rc = s->step();
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
      return fail(what + ": the bisect already has a step " + std::to_string(step.seq));
    if (rc != SQLITE_DONE) return fail(sql_error(db, rc, what));
    auto u = Stmt::prepare(db, "UPDATE bisect_sessions SET updated_at = max(updated_at, ?2) WHERE id = ?1");
    if (!u) return fail(u.error());
    u->bind(1, step.session_id).bind(2, at);
    return u->run(what);
  });
}

Result<std::vector<BisectStep>> bisect_steps(Store& store, int64_t session_id) {
  auto s = Stmt::prepare(store.handle(),
                         std::string("SELECT ") + kStepColumns + " FROM bisect_steps WHERE session_id = ?1 ORDER BY seq");
  if (!s) return fail(s.error());
  s->bind(1, session_id);
  std::vector<BisectStep> out;
  for (;;) {
    int rc = s->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW)
      return fail(sql_error(store.handle(), rc, "cannot read the steps of bisect " + std::to_string(session_id)));
    BisectStep b;
    b.session_id = s->integer(0);
    b.seq = s->integer(1);
    b.commit = s->text(2);
    b.phase = s->text(3);
    b.build = s->text(4);
    b.verdict = s->text(5);
    b.crash_id = s->text(6);
    b.run_id = s->integer(7);
    b.detail = s->text(8);
    b.at = s->integer(9);
    out.push_back(std::move(b));
  }
  return out;
}

Status put_sched_build(Store& store, const SchedBuildRecord& r) {
  const std::string what = "cannot store scheduler build '" + r.key + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, std::string("INSERT OR REPLACE INTO sched_builds (") + kBuildColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!s) return fail(s.error());
    s->bind(1, r.key).bind(2, r.tree).bind(3, string_list_to_json(r.command)).bind(4, r.artifact);
    s->bind(5, r.compiler).bind(6, static_cast<int64_t>(r.ok)).bind(7, r.duration_ms).bind(8, r.binary_name);
    s->bind(9, r.error_excerpt).bind(10, r.created_at ? r.created_at : now());
    return s->run(what);
  });
}

Result<std::optional<SchedBuildRecord>> get_sched_build(Store& store, const std::string& key) {
  auto s = Stmt::prepare(store.handle(), std::string("SELECT ") + kBuildColumns + " FROM sched_builds WHERE key = ?1");
  if (!s) return fail(s.error());
  s->bind(1, key);
  int rc = s->step();
  if (rc == SQLITE_DONE) return std::optional<SchedBuildRecord>();
  if (rc != SQLITE_ROW) return fail(sql_error(store.handle(), rc, "cannot read scheduler build '" + key + "'"));
  SchedBuildRecord r;
  r.key = s->text(0);
  r.tree = s->text(1);
  r.command = string_list_from_json(s->text(2));
  r.artifact = s->text(3);
  r.compiler = s->text(4);
  r.ok = s->integer(5) != 0;
  r.duration_ms = s->integer(6);
  r.binary_name = s->text(7);
  r.error_excerpt = s->text(8);
  r.created_at = s->integer(9);
  return std::optional<SchedBuildRecord>(std::move(r));
}

Status remove_sched_build(Store& store, const std::string& key) {
  const std::string what = "cannot remove scheduler build '" + key + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, "DELETE FROM sched_builds WHERE key = ?1");
    if (!s) return fail(s.error());
    s->bind(1, key);
    return s->run(what);
  });
}

}  // namespace ktstr::db
