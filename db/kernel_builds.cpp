#include "db/kernel_builds.hpp"

#include "db/sql.hpp"

#include <ctime>

namespace ktstr::db {
namespace {

constexpr const char* kColumns =
    "key, request_key, kernel_id, tree_id, source, commit_id, dirty, config_sha256, compiler, build_dir, "
    "worktree, duration_ms, created_at";

KernelBuildRecord build_row(const Stmt& s) {
  KernelBuildRecord r;
  r.key = s.text(0);
  r.request_key = s.text(1);
  r.kernel_id = s.text(2);
  r.tree_id = s.text(3);
  r.source = s.text(4);
  r.commit_id = s.text(5);
  r.dirty = s.integer(6) != 0;
  r.config_sha256 = s.text(7);
  r.compiler = s.text(8);
  r.build_dir = s.text(9);
  r.worktree = s.text(10);
  r.duration_ms = s.integer(11);
  r.created_at = s.integer(12);
  return r;
}

Result<std::vector<KernelBuildRecord>> query(Store& store, const std::string& tail, const std::string& arg) {
  const std::string what = "cannot read kernel builds";
  auto s = Stmt::prepare(store.handle(), std::string("SELECT ") + kColumns + " FROM kernel_builds " + tail, what);
  if (!s) return fail(s.error());
  if (!arg.empty()) s->bind(1, arg);
  std::vector<KernelBuildRecord> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) out.push_back(build_row(*s));
  if (rc != SQLITE_DONE) return fail(sql_error(store.handle(), rc, what));
  return out;
}

Result<std::optional<KernelBuildRecord>> first(Result<std::vector<KernelBuildRecord>> rows) {
  if (!rows) return fail(rows.error());
  if (rows->empty()) return std::optional<KernelBuildRecord>();
  return std::optional<KernelBuildRecord>(std::move(rows->front()));
}

}  // namespace

Status put_kernel_build(Store& store, const KernelBuildRecord& r) {
  const std::string what = "cannot store kernel build '" + r.key + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, std::string("INSERT OR REPLACE INTO kernel_builds (") + kColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
    if (!s) return fail(s.error());
    s->bind(1, r.key).bind(2, r.request_key).bind(3, r.kernel_id).bind(4, r.tree_id).bind(5, r.source);
    s->bind(6, r.commit_id).bind(7, static_cast<int64_t>(r.dirty)).bind(8, r.config_sha256).bind(9, r.compiler);
    s->bind(10, r.build_dir).bind(11, r.worktree).bind(12, r.duration_ms);
    s->bind(13, r.created_at ? r.created_at : static_cast<int64_t>(std::time(nullptr)));
    return s->run(what);
  });
}

Result<std::optional<KernelBuildRecord>> get_kernel_build(Store& store, const std::string& key) {
  return first(query(store, "WHERE key = ?1", key));
}

Result<std::optional<KernelBuildRecord>> find_kernel_build_by_request(Store& store, const std::string& request_key) {
  return first(query(store, "WHERE request_key = ?1 ORDER BY created_at DESC", request_key));
}

Result<std::vector<KernelBuildRecord>> list_kernel_builds(Store& store) {
  return query(store, "ORDER BY created_at DESC, rowid DESC", "");
}

Status remove_kernel_builds_of(Store& store, const std::string& kernel_id) {
  const std::string what = "cannot remove the build records of kernel '" + kernel_id + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, "DELETE FROM kernel_builds WHERE kernel_id = ?1");
    if (!s) return fail(s.error());
    s->bind(1, kernel_id);
    return s->run(what);
  });
}

}  // namespace ktstr::db
