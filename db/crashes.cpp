// Crash records in the store (schema version 2, table `crashes`).
#include "db/crashes.hpp"

#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "db/sql.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>

#include <sys/random.h>

namespace ktstr::db {
namespace {

constexpr const char* kColumns =
    "id, signature_key, kind, message, bpf_prog, source, summary, test_name, kernel_id, scheduler, "
    "scheduler_sha256, sched_args, topology, spec_toml, seed, run_id, created_at, report, result_json, "
    "artifacts_dir";

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

CrashRecord read_row(const Stmt& s) {
  CrashRecord c;
  c.id = s.text(0);
  c.signature_key = s.text(1);
  c.kind = s.integer(2);
  c.message = s.text(3);
  c.bpf_prog = s.text(4);
  c.source = s.text(5);
  c.summary = s.text(6);
  c.test_name = s.text(7);
  c.kernel_id = s.text(8);
  c.scheduler = s.text(9);
  c.scheduler_sha256 = s.text(10);
  c.sched_args = string_list_from_json(s.text(11));
  c.topology = s.text(12);
  c.spec_toml = s.text(13);
  c.seed = static_cast<uint64_t>(s.integer(14));  // stored as its int64 bit pattern
  c.run_id = s.integer(15);
  c.created_at = s.integer(16);
  c.report = s.text(17);
  c.result_json = s.text(18);
  c.artifacts_dir = s.text(19);
  return c;
}

// Rows of `SELECT <all> FROM crashes <where>`, with ?1 bound to `arg` when given.
Result<std::vector<CrashRecord>> query(Store& store, const std::string& where, const std::string* arg) {
  auto s = Stmt::prepare(store.handle(), std::string("SELECT ") + kColumns + " FROM crashes " + where);
  if (!s) return fail(s.error());
  if (arg) s->bind(1, *arg);
  std::vector<CrashRecord> out;
  for (;;) {
    int rc = s->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return fail(sql_error(store.handle(), rc, "cannot read crashes from '" + db_path(store.handle()) + "'"));
    out.push_back(read_row(*s));
  }
  return out;
}

}  // namespace

Status put_crash(Store& store, const CrashRecord& c) {
  if (c.id.empty() || !is_hex(c.id)) return fail("cannot store crash '" + c.id + "': the id is not hex digits");
  const std::string what = "cannot store crash '" + c.id + "'";
  sqlite3* db = store.handle();
  return write_txn(db, what, [&]() -> Status {
    auto s = Stmt::prepare(db, std::string("INSERT OR REPLACE INTO crashes (") + kColumns +
                                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                                   "?16, ?17, ?18, ?19, ?20)");
    if (!s) return fail(s.error());
    s->bind(1, lower(c.id)).bind(2, c.signature_key).bind(3, c.kind).bind(4, c.message).bind(5, c.bpf_prog);
    s->bind(6, c.source).bind(7, c.summary).bind(8, c.test_name).bind(9, c.kernel_id).bind(10, c.scheduler);
    s->bind(11, c.scheduler_sha256).bind(12, string_list_to_json(c.sched_args)).bind(13, c.topology);
    s->bind(14, c.spec_toml).bind(15, static_cast<int64_t>(c.seed)).bind(16, c.run_id).bind(17, c.created_at);
    s->bind(18, c.report).bind(19, c.result_json).bind(20, c.artifacts_dir);
    return s->run(what);
  });
}

Result<std::optional<CrashRecord>> find_crash(Store& store, const std::string& id_or_prefix) {
  const std::string ref = lower(id_or_prefix);
  if (!is_hex(ref)) return std::optional<CrashRecord>();
  auto exact = query(store, "WHERE id = ?1", &ref);
  if (!exact) return fail(exact.error());
  if (!exact->empty()) return std::optional<CrashRecord>(exact->front());
  if (ref.size() < kMinCrashPrefix)
    return fail("crash id prefix '" + id_or_prefix + "' is too short",
                "give at least " + std::to_string(kMinCrashPrefix) + " hex digits; 'ktstr crash list' shows the ids");
  // substr() rather than LIKE: no wildcard escaping, the value stays bound.
  auto found = query(store, "WHERE substr(id, 1, length(?1)) = ?1 ORDER BY id", &ref);
  if (!found) return fail(found.error());
  if (found->empty()) return std::optional<CrashRecord>();
  if (found->size() == 1) return std::optional<CrashRecord>(found->front());
  std::string candidates;
  for (auto& c : *found) candidates += (candidates.empty() ? "" : ", ") + c.id;
  return fail("crash id prefix '" + id_or_prefix + "' is ambiguous",
              "candidates: " + candidates + "; give more digits of the id");
}

Result<std::vector<CrashRecord>> list_crashes(Store& store, const std::string& signature_key) {
  if (signature_key.empty()) return query(store, "ORDER BY created_at, rowid", nullptr);
  return query(store, "WHERE signature_key = ?1 ORDER BY created_at, rowid", &signature_key);
}

Result<std::vector<CrashSignatureGroup>> list_crash_groups(Store& store) {
  // Only the columns a group needs; reports and results stay on disk.
  auto s = Stmt::prepare(store.handle(),
                         "SELECT id, signature_key, kind, message, bpf_prog, source, summary, test_name, created_at "
                         "FROM crashes ORDER BY created_at, rowid");
  if (!s) return fail(s.error());
  std::vector<CrashSignatureGroup> groups;
  std::map<std::string, size_t> index;
  for (;;) {
    int rc = s->step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return fail(sql_error(store.handle(), rc, "cannot read crashes from '" + db_path(store.handle()) + "'"));
    const std::string key = s->text(1);
    auto [it, added] = index.emplace(key, groups.size());
    if (added) {
      groups.emplace_back();
      groups.back().signature_key = key;
      groups.back().first_seen = s->integer(8);
    }
    auto& g = groups[it->second];
    // Rows come oldest first: the last one seen is the latest occurrence.
    g.kind = s->integer(2);
    g.message = s->text(3);
    g.bpf_prog = s->text(4);
    g.source = s->text(5);
    g.latest_summary = s->text(6);
    g.latest_id = s->text(0);
    g.last_seen = s->integer(8);
    ++g.count;
    std::string test = s->text(7);
    if (!test.empty() && std::find(g.test_names.begin(), g.test_names.end(), test) == g.test_names.end())
      g.test_names.push_back(std::move(test));
  }
  std::stable_sort(groups.begin(), groups.end(), [](auto& a, auto& b) { return a.last_seen > b.last_seen; });
  return groups;
}

std::string new_crash_id(const CrashRecord& c) {
  unsigned char random[16] = {};
  if (getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
    std::random_device rd;  // getrandom cannot fail for 16 bytes, but be safe
    for (auto& b : random) b = static_cast<unsigned char>(rd());
  }
  std::string text = std::to_string(c.run_id) + '\0' + std::to_string(c.created_at) + '\0' + c.signature_key + '\0';
  text.append(reinterpret_cast<const char*>(random), sizeof random);
  return sha256_hex(text).substr(0, 12);
}

void set_crash_signature(CrashRecord& c, const SchedExit& exit) {
  Signature sig = signature_of(exit);
  c.signature_key = sig.key();
  c.kind = sig.kind;
  c.message = sig.message;
  c.bpf_prog = sig.bpf_prog;
  c.source = sig.source;
  c.summary = exit.summary();
}

std::string signature_text(int64_t kind, const std::string& message, const std::string& bpf_prog) {
  std::string reason = exit_reason_for_kind(kind);
  if (reason.empty()) reason = kind >= 0 ? "exit kind " + std::to_string(kind) : "unknown exit";
  std::string out = reason;
  if (!message.empty() && message != reason) out += ": " + message;
  if (!bpf_prog.empty()) out += " [" + bpf_prog + "]";
  return out;
}

}  // namespace ktstr::db
