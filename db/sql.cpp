#include "db/sql.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ktstr::db {
namespace {

// Back-off steps in ms, as SQLite's own busy timeout uses; then 100 ms each.
constexpr int kDelaysMs[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
constexpr int kSteps = sizeof(kDelaysMs) / sizeof(kDelaysMs[0]);

int delay_ms(int n) { return n < kSteps ? kDelaysMs[n] : kDelaysMs[kSteps - 1]; }

int total_before_ms(int n) {
  int total = 0;
  for (int i = 0; i < n && i < kSteps; ++i) total += kDelaysMs[i];
  if (n > kSteps) total += (n - kSteps) * kDelaysMs[kSteps - 1];
  return total;
}

// Jitter keeps processes that hit the lock together from retrying together.
void sleep_with_jitter(int ms) {
  thread_local std::minstd_rand rng(static_cast<unsigned>(::getpid()) ^
                                    static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
  int jitter = static_cast<int>(rng() % static_cast<unsigned>(ms / 2 + 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(ms + jitter));
}

int busy_handler(void*, int count) {
  int waited = total_before_ms(count);
  if (waited >= kBusyTimeoutMs) return 0;
  if (waited < 2000 && waited + delay_ms(count) >= 2000)
    spdlog::info("waiting for another ktstr process to release the database");
  sleep_with_jitter(delay_ms(count));
  return 1;
}

std::string parent_dir(const std::string& path) {
  auto p = std::filesystem::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

}  // namespace

void install_busy_handler(sqlite3* db) { sqlite3_busy_handler(db, busy_handler, nullptr); }

bool is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_PROTOCOL; }

int backoff_sleep(int n) {
  sleep_with_jitter(delay_ms(n));
  return total_before_ms(n + 1);
}

std::string db_path(sqlite3* db) {
  const char* f = db ? sqlite3_db_filename(db, "main") : nullptr;
  return f ? f : "";
}

Error sql_error(sqlite3* db, int rc, const std::string& what) {
  std::string path = db_path(db);
  std::string dir = parent_dir(path);
  int primary = rc & 0xff;
  // SQLite's system errno is the errno when the error surfaced, which later
  // calls may have overwritten; only trust it for the codes it explains.
  int sys = db ? sqlite3_system_errno(db) : 0;
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  bool io = primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN || primary == SQLITE_PERM;
  bool write_io = rc == SQLITE_IOERR_WRITE || rc == SQLITE_IOERR_TRUNCATE || rc == SQLITE_IOERR_FSYNC ||
                  rc == SQLITE_IOERR_SHMSIZE || rc == SQLITE_IOERR_SHMMAP;
  const std::string space_hint = "free some disk space, or set KTSTR_CACHE_DIR to another directory";
  if (primary == SQLITE_FULL || (io && (sys == ENOSPC || sys == EDQUOT)))
    return Error(what + ": no space left on the device holding '" + path + "'", space_hint);
  if (write_io || (io && sys == EFBIG)) {
    rlimit fsize{};
    if (sys == EFBIG || (::getrlimit(RLIMIT_FSIZE, &fsize) == 0 && fsize.rlim_cur != RLIM_INFINITY))
      return Error(what + ": file size limit exceeded writing '" + path + "'",
                   "raise the file size limit (ulimit -f), or set KTSTR_CACHE_DIR elsewhere");
    struct statvfs fs {};
    if (::statvfs(dir.c_str(), &fs) == 0 && fs.f_bavail * fs.f_frsize < (1u << 20))
      return Error(what + ": no space left on the device holding '" + path + "'", space_hint);
    return Error(what + ": cannot write '" + path + "': " + detail,
                 "check free space and quota of the file system holding '" + dir + "'");
  }
  if (primary == SQLITE_READONLY || (io && (sys == EACCES || sys == EROFS || sys == EPERM)))
    return Error(what + ": database '" + path + "' is read-only",
                 "make '" + dir + "' and its files writable, or set KTSTR_CACHE_DIR to a writable directory");
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT)
    return Error(what + ": '" + path + "' is not a ktstr database or is corrupt",
                 "move it away (mv '" + path + "' '" + path + ".bad'); ktstr then creates a new one");
  if (is_busy(rc))
    return Error(what + ": database '" + path + "' stayed locked for " + std::to_string(kBusyTimeoutMs / 1000) + " s",
                 "another ktstr process is holding it; wait for it to finish or stop it");
  if (sys != 0 && io) detail += std::string(" (") + std::strerror(sys) + ")";
  return Error(what + ": " + detail);
}

Result<Stmt> Stmt::prepare(sqlite3* db, std::string_view sql, const std::string& what) {
  sqlite3_stmt* s = nullptr;
  int rc = retry_busy([&] {
    return sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  });
  if (rc != SQLITE_OK)
    return fail(sql_error(db, rc, what.empty() ? "cannot query database '" + db_path(db) + "'" : what));
  return Stmt(db, s);
}

Stmt::~Stmt() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Stmt& Stmt::bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::bind(int i, int64_t value) {
  sqlite3_bind_int64(stmt_, i, value);
  return *this;
}

int Stmt::step() {
  if (stepped_ || !sqlite3_get_autocommit(db_)) return sqlite3_step(stmt_);
  stepped_ = true;
  return retry_busy([&] {
    int rc = sqlite3_step(stmt_);
    if (is_busy(rc)) sqlite3_reset(stmt_);
    return rc;
  });
}

Status Stmt::run(const std::string& what) {
  int rc;
  while ((rc = step()) == SQLITE_ROW) {
  }
  if (rc != SQLITE_DONE) return fail(sql_error(db_, rc, what));
  return {};
}

std::string Stmt::text(int col) const {
  auto p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

int64_t Stmt::integer(int col) const { return sqlite3_column_int64(stmt_, col); }

Status exec(sqlite3* db, const char* sql, const std::string& what) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return fail(sql_error(db, rc, what));
  return {};
}

Status begin_immediate(sqlite3* db, const std::string& what) {
  // The busy handler covers most waits; the retry covers WAL recovery and
  // journal-mode switches by other processes, where SQLite does not wait.
  int rc = retry_busy([&] { return sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr); });
  if (rc != SQLITE_OK) return fail(sql_error(db, rc, what));
  return {};
}

Status commit(sqlite3* db, const std::string& what) {
  // A busy COMMIT keeps the transaction open, so trying again is safe.
  int rc = retry_busy([&] { return sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); });
  if (rc != SQLITE_OK) return fail(sql_error(db, rc, what));
  return {};
}

void rollback(sqlite3* db) {
  if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
}

std::string string_list_to_json(const std::vector<std::string>& items) { return nlohmann::json(items).dump(); }

std::vector<std::string> string_list_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const auto& e : j)
    if (e.is_string()) out.push_back(e.get<std::string>());
  return out;
}

}  // namespace ktstr::db
