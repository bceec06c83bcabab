#include "db/repros.hpp"

#include "db/sql.hpp"

namespace ktstr::db {
namespace {

constexpr const char* kColumns = "id, crash_id, created_at, reproduced, duration_ms, result_json, report";

Result<std::vector<ReproRecord>> query(Store& store, const std::string& tail, const std::string& crash_id) {
  auto s = Stmt::prepare(store.handle(), std::string("SELECT ") + kColumns + " FROM repros WHERE crash_id = ?1 " + tail);
  if (!s) return fail(s.error());
  s->bind(1, crash_id);
  std::vector<ReproRecord> out;
  for (;;) {
    int rc = s->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW)
      return fail(sql_error(store.handle(), rc, "cannot read repros of crash '" + crash_id + "'"));
    ReproRecord r;
    r.id = s->integer(0);
    r.crash_id = s->text(1);
    r.created_at = s->integer(2);
    r.reproduced = s->integer(3) != 0;
    r.duration_ms = s->integer(4);
    r.result_json = s->text(5);
    r.report = s->text(6);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

Result<int64_t> put_repro(Store& store, const ReproRecord& r) {
  const std::string what = "cannot store the repro of crash '" + r.crash_id + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Result<int64_t> {
    auto s = Stmt::prepare(db, "INSERT INTO repros (crash_id, created_at, reproduced, duration_ms, result_json, report) "
                               "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    if (!s) return fail(s.error());
    s->bind(1, r.crash_id).bind(2, r.created_at).bind(3, static_cast<int64_t>(r.reproduced));
    s->bind(4, r.duration_ms).bind(5, r.result_json).bind(6, r.report);
    if (auto st = s->run(what); !st) return fail(st.error());
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db));
  });
}

Result<std::vector<ReproRecord>> list_repros(Store& store, const std::string& crash_id) {
  return query(store, "ORDER BY created_at, id", crash_id);
}

Result<std::optional<ReproRecord>> latest_repro(Store& store, const std::string& crash_id) {
  auto rows = query(store, "ORDER BY created_at DESC, id DESC LIMIT 1", crash_id);
  if (!rows) return fail(rows.error());
  if (rows->empty()) return std::optional<ReproRecord>();
  return std::optional<ReproRecord>(rows->front());
}

}  // namespace ktstr::db
