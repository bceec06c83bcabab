// Thin helpers over the SQLite C API: prepared statements with bound
// parameters, a busy handler, retries where SQLite returns SQLITE_BUSY
// without waiting, write transactions, and user-facing error messages.
#pragma once

#include "core/result.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <vector>
#include <string_view>
#include <utility>

namespace ktstr::db {

// How long any wait for another process's lock may last in total.
inline constexpr int kBusyTimeoutMs = 30000;

// Installs a busy handler that backs off (with jitter, so waiting processes
// do not wake in lockstep) until kBusyTimeoutMs has passed.
void install_busy_handler(sqlite3* db);

// True for SQLITE_BUSY (any extended code) and SQLITE_PROTOCOL, which a
// WAL reader can get under heavy contention; both are worth retrying.
bool is_busy(int rc);

// Calls `attempt` (returning an SQLite code) until it is not busy or
// kBusyTimeoutMs has passed. For the places SQLite does not call the busy
// handler: WAL recovery, journal-mode switches, racing schema creation.
template <typename F>
int retry_busy(F&& attempt);

// An error for failed SQLite code `rc`: "<what>: <detail>", with a hint for
// read-only, full, locked or corrupt databases.
Error sql_error(sqlite3* db, int rc, const std::string& what);

// The path of the "main" database of `db`.
std::string db_path(sqlite3* db);

// A prepared statement. Values go in through bind(), never into the SQL.
class Stmt {
 public:
  // `what` prefixes the error; by default "cannot query database '<path>'".
  static Result<Stmt> prepare(sqlite3* db, std::string_view sql, const std::string& what = {});
  Stmt(Stmt&& o) noexcept : db_(o.db_), stmt_(std::exchange(o.stmt_, nullptr)), stepped_(o.stepped_) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  ~Stmt();

  // Parameters are 1-based, as in SQLite.
  Stmt& bind(int i, std::string_view text);
  Stmt& bind(int i, int64_t value);

  // SQLITE_ROW, SQLITE_DONE or an error code. Outside a transaction a busy
  // first step is retried (the statement has not done anything yet).
  int step();
  // Steps to the end; for statements returning no rows.
  Status run(const std::string& what);

  std::string text(int col) const;
  int64_t integer(int col) const;

 private:
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), stmt_(s) {}
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  bool stepped_ = false;
};

// A list of strings kept in one TEXT column as a JSON array (kernels'
// tracepoints, crashes' sched_args). Reading is lenient: anything that is not
// an array of strings gives what strings it can, never an error.
std::string string_list_to_json(const std::vector<std::string>& items);
std::vector<std::string> string_list_from_json(const std::string& text);

// Runs statements without values (schema, pragmas) through sqlite3_exec.
Status exec(sqlite3* db, const char* sql, const std::string& what);

// BEGIN IMMEDIATE (waiting for the write lock), COMMIT, ROLLBACK.
Status begin_immediate(sqlite3* db, const std::string& what);
Status commit(sqlite3* db, const std::string& what);
void rollback(sqlite3* db);

// Runs body() inside BEGIN IMMEDIATE ... COMMIT; rolls back when it fails.
// body returns Status or Result<T>; `what` ("cannot store kernel 'x'")
// prefixes errors of BEGIN and COMMIT.
template <typename F>
auto write_txn(sqlite3* db, const std::string& what, F&& body) -> decltype(body()) {
  if (auto st = begin_immediate(db, what); !st) return fail(st.error());
  auto result = body();
  if (!result) {
    rollback(db);
    return result;
  }
  if (auto st = commit(db, what); !st) {
    rollback(db);
    return fail(st.error());
  }
  return result;
}

// Sleeps for the n-th back-off step; returns the milliseconds waited in
// total so far, so callers can stop at kBusyTimeoutMs.
int backoff_sleep(int n);

template <typename F>
int retry_busy(F&& attempt) {
  int rc = attempt();
  for (int n = 0; is_busy(rc) && backoff_sleep(n) < kBusyTimeoutMs; ++n) rc = attempt();
  return rc;
}

}  // namespace ktstr::db
