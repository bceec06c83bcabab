// The store: one SQLite database (ktstr.db) plus an artifact directory
// (artifacts/) under cache_dir(). WAL, a busy timeout, writes in
// BEGIN IMMEDIATE transactions, schema version in PRAGMA user_version with
// forward migrations. A newer or corrupt database is reported and left as is.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"

#include <memory>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace ktstr::db {

class Store {
 public:
  // Opens (creating if needed) <dir>/ktstr.db and <dir>/artifacts/, migrating
  // the schema forward. Errors: unwritable dir, not a database, newer schema.
  static Result<std::unique_ptr<Store>> open(const std::string& dir);
  ~Store();

  const std::string& dir() const { return dir_; }
  std::string artifacts_dir() const { return dir_ + "/artifacts"; }
  static int schema_version();   // the version this build writes

  // kernels
  Status put_kernel(const KernelRecord& k);                 // insert or replace by id
  Result<std::vector<KernelRecord>> list_kernels();         // newest first
  Result<std::optional<KernelRecord>> get_kernel(const std::string& id);
  // Resolve an id, unique id prefix, version or name. Ambiguous -> error
  // listing candidates; no match -> nullopt.
  Result<std::optional<KernelRecord>> find_kernel(const std::string& ref);
  Status remove_kernel(const std::string& id);

  // runs
  Result<int64_t> add_run(const RunRecord& r);
  Result<std::vector<RunRecord>> list_runs(int limit = 100);

  sqlite3* handle() { return db_; }  // for later modules' tables (crashes, ...)

 private:
  Store(std::string dir, sqlite3* db) : dir_(std::move(dir)), db_(db) {}
  std::string dir_;
  sqlite3* db_ = nullptr;
};

}  // namespace ktstr::db
