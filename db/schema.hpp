// The schema: forward migrations kept in one list. Migration i takes a
// database from user_version i to i+1. To add a table (crashes, repros, ...)
// append one step to kMigrations in schema.cpp; never edit a shipped step.
#pragma once

#include "core/result.hpp"

#include <span>
#include <string>

struct sqlite3;

namespace ktstr::db {

struct Migration {
  const char* what;  // "kernels and runs", for error messages
  const char* sql;   // statements without values, run by sqlite3_exec
  // Row rewrites SQL cannot express (a key hashed in C++), run after `sql` in
  // the same transaction; null for most steps.
  Status (*rewrite)(sqlite3* db) = nullptr;
};

// The shipped migrations; their count is the schema version this build writes.
std::span<const Migration> migrations();

// Reads PRAGMA user_version without writing anything. Fails with a
// "not a ktstr database or is corrupt" error for other files.
Result<int> read_schema_version(sqlite3* db);

// Error for a database newer than `ours`.
Error newer_schema_error(const std::string& path, int theirs, int ours);

// Applies the steps the database lacks, each in its own BEGIN IMMEDIATE
// transaction that re-reads user_version under the write lock, so processes
// migrating at once apply every step exactly once. A failing step is rolled
// back whole. `steps` is a parameter so tests can migrate with their own list.
Status migrate(sqlite3* db, std::span<const Migration> steps);

}  // namespace ktstr::db
