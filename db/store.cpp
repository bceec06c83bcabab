// db::Store: opening (checks before any write), kernels and runs.
#include "db/store.hpp"

#include "core/fs.hpp"
#include "db/schema.hpp"
#include "db/sql.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

namespace ktstr::db {
namespace {

struct CloseDb {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, CloseDb>;

Error open_error(sqlite3* db, int rc, const std::string& dir, const std::string& path) {
  std::string what = "cannot open database '" + path + "'";
  // SQLite's errno is from its last fallback (a read-only open), so ask the
  // file system directly why the database cannot be created.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return Error(what + ": it is a directory", "move it away; ktstr then creates a new database");
  if (::access(dir.c_str(), W_OK) != 0 && (errno == EACCES || errno == EROFS || errno == EPERM))
    return Error(what + ": directory '" + dir + "' is read-only",
                 "make '" + dir + "' writable, or set KTSTR_CACHE_DIR to a writable directory");
  return sql_error(db, rc, what);
}

// WAL lets readers run beside one writer. The switch needs an exclusive
// lock and SQLite returns BUSY there without calling the busy handler, so
// retry; two processes creating the database at once meet exactly here.
Status enable_wal(sqlite3* db, const std::string& path) {
  std::string mode;
  int rc = retry_busy([&] {
    sqlite3_stmt* s = nullptr;
    int r = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &s, nullptr);
    if (r == SQLITE_OK) {
      r = sqlite3_step(s);
      if (r == SQLITE_ROW) {
        auto t = sqlite3_column_text(s, 0);
        mode = t ? reinterpret_cast<const char*>(t) : "";
        r = SQLITE_OK;
      }
    }
    sqlite3_finalize(s);
    return r;
  });
  if (rc != SQLITE_OK) return fail(sql_error(db, rc, "cannot enable WAL mode on '" + path + "'"));
  // A file system without shared memory keeps the rollback journal: slower
  // under contention, still correct with BEGIN IMMEDIATE and the busy handler.
  if (mode != "wal") spdlog::warn("database '{}' stays in '{}' journal mode, WAL is not supported here", path, mode);
  return {};
}

constexpr const char* kKernelColumns =
    "id, version, name, source, image_path, config_path, vmlinux_path, image_sha256, image_size, "
    "sched_ext, tracepoints, added_at";

KernelRecord kernel_from_row(const Stmt& s) {
  KernelRecord k;
  k.id = s.text(0);
  k.version = s.text(1);
  k.name = s.text(2);
  k.source = s.text(3);
  k.image_path = s.text(4);
  k.config_path = s.text(5);
  k.vmlinux_path = s.text(6);
  k.image_sha256 = s.text(7);
  k.image_size = static_cast<uint64_t>(s.integer(8));
  k.sched_ext = s.integer(9) != 0;
  k.tracepoints = string_list_from_json(s.text(10));
  k.added_at = s.integer(11);
  return k;
}

Result<std::vector<KernelRecord>> query_kernels(sqlite3* db, const std::string& where_and_order,
                                                const std::string& param = {}, bool bind_param = false) {
  auto s = Stmt::prepare(db, std::string("SELECT ") + kKernelColumns + " FROM kernels " + where_and_order);
  if (!s) return fail(s.error());
  if (bind_param) s->bind(1, param);
  std::vector<KernelRecord> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) out.push_back(kernel_from_row(*s));
  if (rc != SQLITE_DONE) return fail(sql_error(db, rc, "cannot read kernels"));
  return out;
}

bool is_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdefABCDEF") == std::string::npos;
}

std::string list_candidates(const std::vector<KernelRecord>& ks) {
  std::string out;
  for (const auto& k : ks) {
    if (!out.empty()) out += ", ";
    out += k.id + " (" + k.version + (k.name.empty() ? "" : ", " + k.name) + ")";
  }
  return out;
}

// Shortest id prefix git-style abbreviation accepts.
constexpr size_t kMinPrefix = 4;

}  // namespace

int Store::schema_version() { return static_cast<int>(migrations().size()); }

Result<std::unique_ptr<Store>> Store::open(const std::string& dir) {
  if (dir.empty()) return fail("cannot open the ktstr store: empty directory name");
  if (auto st = make_dirs(dir); !st) {
    Error e = st.error();
    if (e.hint.empty()) e.hint = "set KTSTR_CACHE_DIR to a directory ktstr can create and write";
    return fail(e);
  }
  const std::string path = dir + "/ktstr.db";

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) return fail(open_error(raw, rc, dir, path));
  sqlite3_extended_result_codes(db.get(), 1);
  install_busy_handler(db.get());

  // Everything up to here only reads: a newer or foreign file stays as it is.
  auto version = read_schema_version(db.get());
  if (!version) return fail(version.error());
  if (*version > schema_version()) return fail(newer_schema_error(path, *version, schema_version()));
  if (sqlite3_db_readonly(db.get(), "main") == 1)
    return fail(sql_error(db.get(), SQLITE_READONLY, "cannot open database '" + path + "'"));

  if (auto st = enable_wal(db.get(), path); !st) return fail(st.error());
  // In WAL mode NORMAL never corrupts; it may lose the last commits on power loss.
  if (auto st = exec(db.get(), "PRAGMA synchronous = NORMAL", "cannot configure '" + path + "'"); !st)
    return fail(st.error());
  if (*version < schema_version())
    if (auto st = migrate(db.get(), migrations()); !st) return fail(st.error());
  if (auto st = make_dirs(dir + "/artifacts"); !st) return fail(st.error());
  return std::unique_ptr<Store>(new Store(dir, db.release()));
}

Store::~Store() { sqlite3_close_v2(db_); }

Status Store::put_kernel(const KernelRecord& k) {
  if (k.id.empty()) return fail("cannot store a kernel without an id");
  return write_txn(db_, "cannot store kernel '" + k.id + "'", [&]() -> Status {
    auto s = Stmt::prepare(db_, std::string("INSERT OR REPLACE INTO kernels (") + kKernelColumns +
                                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
    if (!s) return fail(s.error());
    s->bind(1, k.id).bind(2, k.version).bind(3, k.name).bind(4, k.source);
    s->bind(5, k.image_path).bind(6, k.config_path).bind(7, k.vmlinux_path).bind(8, k.image_sha256);
    s->bind(9, static_cast<int64_t>(k.image_size)).bind(10, int64_t{k.sched_ext ? 1 : 0});
    s->bind(11, string_list_to_json(k.tracepoints)).bind(12, k.added_at);
    return s->run("cannot store kernel '" + k.id + "'");
  });
}

Result<std::vector<KernelRecord>> Store::list_kernels() {
  return query_kernels(db_, "ORDER BY added_at DESC, rowid DESC");
}

Result<std::optional<KernelRecord>> Store::get_kernel(const std::string& id) {
  auto ks = query_kernels(db_, "WHERE id = ?1", id, true);
  if (!ks) return fail(ks.error());
  if (ks->empty()) return std::optional<KernelRecord>();
  return std::optional<KernelRecord>(ks->front());
}

Result<std::optional<KernelRecord>> Store::find_kernel(const std::string& ref) {
  if (ref.empty()) return fail("cannot look up a kernel: empty kernel reference");
  auto exact = get_kernel(ref);
  if (!exact || *exact) return exact;

  // An id prefix only when it could be one: hex, at least kMinPrefix long.
  if (ref.size() >= kMinPrefix && is_hex(ref)) {
    // substr() rather than LIKE: no wildcard escaping, values stay bound.
    auto ks = query_kernels(db_, "WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id", ref, true);
    if (!ks) return fail(ks.error());
    if (ks->size() == 1) return std::optional<KernelRecord>(ks->front());
    if (ks->size() > 1)
      return fail("kernel id prefix '" + ref + "' is ambiguous",
                  "candidates: " + list_candidates(*ks) + "; give more digits of the id");
  }
  for (const char* column : {"version", "name"}) {
    auto ks = query_kernels(db_, std::string("WHERE ") + column + " = ?1 ORDER BY added_at DESC, id", ref, true);
    if (!ks) return fail(ks.error());
    if (ks->size() == 1) return std::optional<KernelRecord>(ks->front());
    if (ks->size() > 1)
      return fail("kernel " + std::string(column) + " '" + ref + "' is ambiguous",
                  "candidates: " + list_candidates(*ks) + "; use the kernel id instead");
  }
  return std::optional<KernelRecord>();
}

Status Store::remove_kernel(const std::string& id) {
  return write_txn(db_, "cannot remove kernel '" + id + "'", [&]() -> Status {
    auto s = Stmt::prepare(db_, "DELETE FROM kernels WHERE id = ?1");
    if (!s) return fail(s.error());
    s->bind(1, id);
    if (auto st = s->run("cannot remove kernel '" + id + "'"); !st) return st;
    if (sqlite3_changes(db_) == 0)
      return fail("cannot remove kernel '" + id + "': no such kernel", "'ktstr kernel list' shows the kernel ids");
    return {};
  });
}

Result<int64_t> Store::add_run(const RunRecord& r) {
  return write_txn(db_, "cannot store the run of '" + r.test_name + "'", [&]() -> Result<int64_t> {
    auto s = Stmt::prepare(db_,
                           "INSERT INTO runs (test_name, kernel_id, scheduler, topology, scenario, status, reason, "
                           "started_at, duration_ms, result_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    if (!s) return fail(s.error());
    s->bind(1, r.test_name).bind(2, r.kernel_id).bind(3, r.scheduler).bind(4, r.topology).bind(5, r.scenario);
    s->bind(6, r.status).bind(7, r.reason).bind(8, r.started_at).bind(9, r.duration_ms).bind(10, r.result_json);
    if (auto st = s->run("cannot store the run of '" + r.test_name + "'"); !st) return fail(st.error());
    return sqlite3_last_insert_rowid(db_);
  });
}

Result<std::vector<RunRecord>> Store::list_runs(int limit) {
  auto s = Stmt::prepare(db_,
                         "SELECT id, test_name, kernel_id, scheduler, topology, scenario, status, reason, started_at, "
                         "duration_ms, result_json FROM runs ORDER BY started_at DESC, id DESC LIMIT ?1");
  if (!s) return fail(s.error());
  s->bind(1, int64_t{limit <= 0 ? -1 : limit});  // LIMIT -1: all rows
  std::vector<RunRecord> out;
  int rc;
  while ((rc = s->step()) == SQLITE_ROW) {
    RunRecord r;
    r.id = s->integer(0);
    r.test_name = s->text(1);
    r.kernel_id = s->text(2);
    r.scheduler = s->text(3);
    r.topology = s->text(4);
    r.scenario = s->text(5);
    r.status = s->text(6);
    r.reason = s->text(7);
    r.started_at = s->integer(8);
    r.duration_ms = s->integer(9);
    r.result_json = s->text(10);
    out.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return fail(sql_error(db_, rc, "cannot read runs"));
  return out;
}

}  // namespace ktstr::db
