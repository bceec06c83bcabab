// db::Store: schema and migrations, refusing newer or foreign files without
// touching them, unwritable and full directories, real concurrent processes,
// kernels and runs.
#include "core/fs.hpp"
#include "db/schema.hpp"
#include "db/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <set>
#include <tuple>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

using namespace ktstr;
using ktstr::db::Store;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-store-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

std::string sha(const std::string& path) {
  auto h = sha256_file_hex(path);
  return h ? *h : "unreadable: " + h.error().msg;
}

// Runs raw SQL on a file through the SQLite API, as another program would.
void raw_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << msg;
}

// First column of the first row of `sql` as text.
std::string query_text(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* s = nullptr;
  std::string out = "<prepare failed>";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK) {
    out = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0)
              ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0))
              : "<no row>";
  }
  sqlite3_finalize(s);
  return out;
}

KernelRecord kernel(const std::string& id, const std::string& version, const std::string& name, int64_t added_at) {
  KernelRecord k;
  k.id = id;
  k.version = version;
  k.name = name;
  k.source = "file:/tmp/vmlinuz-" + version;
  k.image_path = "/cache/artifacts/kernels/" + id + "/bzImage";
  k.config_path = "/cache/artifacts/kernels/" + id + "/config";
  k.vmlinux_path = "/cache/artifacts/kernels/" + id + "/vmlinux";
  k.image_sha256 = id + std::string(48, '0');
  k.image_size = 12345678901ull;
  k.sched_ext = true;
  k.tracepoints = {"sched_ext_exit", "sched_ext_dump"};
  k.added_at = added_at;
  return k;
}

auto fields(const KernelRecord& k) {
  return std::tie(k.id, k.version, k.name, k.source, k.image_path, k.config_path, k.vmlinux_path, k.image_sha256,
                  k.image_size, k.sched_ext, k.tracepoints, k.added_at);
}

auto fields(const RunRecord& r) {
  return std::tie(r.id, r.test_name, r.kernel_id, r.scheduler, r.topology, r.scenario, r.status, r.reason,
                  r.started_at, r.duration_ms, r.result_json);
}

RunRecord run(const std::string& test, int64_t started_at) {
  RunRecord r;
  r.test_name = test;
  r.kernel_id = "0123456789abcdef";
  r.scheduler = "scx-ktstr";
  r.topology = "1n1l4c1t";
  r.scenario = "steady";
  r.status = "fail";
  r.reason = "worker 3 starved for 2.1 s";
  r.started_at = started_at;
  r.duration_ms = 4321;
  r.result_json = R"({"test":")" + test + R"("})";
  return r;
}

// Forks `n` processes that start together (all block on a gate pipe until
// the parent closes it) and run body(i); returns what each reported (empty
// means success) or a note about how it died.
std::vector<std::string> run_together(int n, const std::function<std::string(int)>& body) {
  int gate[2];
  if (::pipe(gate) != 0) throw std::runtime_error("pipe");
  std::vector<std::pair<pid_t, int>> children;
  for (int i = 0; i < n; ++i) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe");
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(gate[1]);
      ::close(out[0]);
      char c;
      while (::read(gate[0], &c, 1) < 0 && errno == EINTR) {
      }
      std::string report = body(i);
      if (!report.empty() && ::write(out[1], report.data(), report.size()) < 0) ::_exit(3);
      ::_exit(0);
    }
    ::close(out[1]);
    children.emplace_back(pid, out[0]);
  }
  ::close(gate[0]);
  ::close(gate[1]);  // go
  std::vector<std::string> reports;
  for (auto [pid, fd] : children) {
    std::string report;
    char buf[4096];
    ssize_t got;
    while ((got = ::read(fd, buf, sizeof buf)) > 0) report.append(buf, static_cast<size_t>(got));
    ::close(fd);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      report += " (child exited abnormally, status " + std::to_string(status) + ")";
    reports.push_back(report);
  }
  return reports;
}

std::string run_in_child(const std::function<std::string()>& body) {
  return run_together(1, [&](int) { return body(); }).front();
}

}  // namespace

TEST(StoreMigrations, FreshDatabaseGetsCurrentSchemaWalAndArtifacts) {
  auto tmp = temp_dir();
  std::string dir = tmp.path() + "/cache/nested";
  auto store = Store::open(dir);
  ASSERT_TRUE(store) << store.error().msg;
  EXPECT_GE(Store::schema_version(), 1);
  EXPECT_TRUE(path_exists(dir + "/ktstr.db"));
  EXPECT_TRUE(path_exists((*store)->artifacts_dir()));
  sqlite3* h = (*store)->handle();
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), std::to_string(Store::schema_version()));
  EXPECT_EQ(query_text(h, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_text(h, "SELECT count(*) FROM sqlite_schema WHERE type='table' AND name IN ('kernels','runs')"), "2");
}

TEST(StoreMigrations, OlderDatabasesMigrateForward) {
  auto tmp = temp_dir();
  // An empty file is a valid version-0 database.
  std::string empty_dir = tmp.path() + "/empty";
  ASSERT_TRUE(make_dirs(empty_dir));
  ASSERT_TRUE(write_file_atomic(empty_dir + "/ktstr.db", ""));
  {
    auto store = Store::open(empty_dir);
    ASSERT_TRUE(store) << store.error().msg;
    EXPECT_EQ(query_text((*store)->handle(), "PRAGMA user_version"), std::to_string(Store::schema_version()));
  }
  // A version-0 database with data of its own keeps it.
  std::string v0_dir = tmp.path() + "/v0";
  ASSERT_TRUE(make_dirs(v0_dir));
  raw_sql(v0_dir + "/ktstr.db", "CREATE TABLE notes(t TEXT); INSERT INTO notes VALUES ('kept')");
  auto store = Store::open(v0_dir);
  ASSERT_TRUE(store) << store.error().msg;
  sqlite3* h = (*store)->handle();
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), std::to_string(Store::schema_version()));
  EXPECT_EQ(query_text(h, "SELECT t FROM notes"), "kept");
  ASSERT_TRUE((*store)->put_kernel(kernel("0123456789abcdef", "7.3.4", "", 1)));
}

TEST(StoreMigrations, StepsApplyInOrderAndAFailingStepRollsBackWhole) {
  auto tmp = temp_dir();
  std::string path = tmp.path() + "/m.db";
  const db::Migration steps[] = {
      {"a", "CREATE TABLE a(x)"},
      {"b", "CREATE TABLE b(x); INSERT INTO b VALUES (1)"},
      {"broken", "CREATE TABLE c(x); INSERT INTO no_such_table VALUES (1)"},
  };
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_TRUE(db::migrate(h, std::span(steps, 2)));
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), "2");
  EXPECT_EQ(query_text(h, "SELECT count(*) FROM b"), "1");
  ASSERT_TRUE(db::migrate(h, std::span(steps, 2)));  // already there: nothing runs twice
  EXPECT_EQ(query_text(h, "SELECT count(*) FROM b"), "1");

  auto broken = db::migrate(h, std::span(steps, 3));
  ASSERT_FALSE(broken);
  EXPECT_NE(broken.error().msg.find("schema version 3 (broken)"), std::string::npos) << broken.error().msg;
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), "2");
  EXPECT_EQ(query_text(h, "SELECT count(*) FROM sqlite_schema WHERE name = 'c'"), "0");

  auto newer = db::migrate(h, std::span(steps, 1));
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().msg.find("has schema version 2, newer than this ktstr's 1"), std::string::npos);
  sqlite3_close(h);
}

class StoreNewer : public ::testing::TestWithParam<const char*> {};

TEST_P(StoreNewer, IsRefusedAndLeftByteForByte) {
  auto tmp = temp_dir();
  std::string path = tmp.path() + "/ktstr.db";
  int newer = Store::schema_version() + 7;
  raw_sql(path, std::string("PRAGMA journal_mode = ") + GetParam() +
                    "; CREATE TABLE kernels(id TEXT, future TEXT); INSERT INTO kernels VALUES ('k', 'f');"
                    "PRAGMA user_version = " + std::to_string(newer));
  std::string before = sha(path);
  auto store = Store::open(tmp.path());
  ASSERT_FALSE(store);
  EXPECT_EQ(store.error().msg, "database '" + path + "' has schema version " + std::to_string(newer) +
                                   ", newer than this ktstr's " + std::to_string(Store::schema_version()));
  EXPECT_NE(store.error().hint.find("upgrade ktstr"), std::string::npos);
  EXPECT_NE(store.error().hint.find("KTSTR_CACHE_DIR"), std::string::npos);
  EXPECT_EQ(sha(path), before);
  EXPECT_FALSE(path_exists(tmp.path() + "/artifacts"));
}

INSTANTIATE_TEST_SUITE_P(JournalModes, StoreNewer, ::testing::Values("DELETE", "WAL"));

TEST(Store, NonDatabaseFilesAreRefusedAndLeftAlone) {
  std::string sqlite_header("SQLite format 3\0", 16);
  std::string garbage;
  for (int i = 0; i < 8192; ++i) garbage += static_cast<char>((i * 7919) % 251);
  for (const std::string& content : {std::string("not a database, just text\n").append(4000, 'x'),
                                     sqlite_header + garbage}) {
    auto tmp = temp_dir();
    std::string path = tmp.path() + "/ktstr.db";
    ASSERT_TRUE(write_file_atomic(path, content));
    std::string before = sha(path);
    auto store = Store::open(tmp.path());
    ASSERT_FALSE(store);
    EXPECT_NE(store.error().msg.find("'" + path + "' is not a ktstr database or is corrupt"), std::string::npos)
        << store.error().msg;
    EXPECT_NE(store.error().hint.find("mv '" + path + "'"), std::string::npos) << store.error().hint;
    EXPECT_EQ(sha(path), before);
  }
}

TEST(Store, UnusableLocationsGiveAnError) {
  auto tmp = temp_dir();
  std::string file = tmp.path() + "/a-file";
  ASSERT_TRUE(write_file_atomic(file, "x"));
  auto under_file = Store::open(file + "/cache");  // ENOTDIR, even for root
  ASSERT_FALSE(under_file);
  EXPECT_NE(under_file.error().msg.find("cannot create directory '" + file + "/cache'"), std::string::npos)
      << under_file.error().msg;

  EXPECT_FALSE(Store::open("/proc/ktstr-store-test"));  // procfs takes no new directories

  ASSERT_TRUE(make_dirs(tmp.path() + "/dbdir/ktstr.db"));  // the database name taken by a directory
  auto dir_db = Store::open(tmp.path() + "/dbdir");
  ASSERT_FALSE(dir_db);
  EXPECT_NE(dir_db.error().msg.find("cannot open database"), std::string::npos) << dir_db.error().msg;
}

// Root ignores permission bits, so the unwritable cases run in a child that
// has become `nobody`.
TEST(Store, ReadOnlyDirectoriesGiveAClearErrorAndNoFiles) {
  auto tmp = temp_dir();
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0755), 0);
  std::string ro_empty = tmp.path() + "/ro-empty";
  std::string ro_db = tmp.path() + "/ro-db";
  {
    auto store = Store::open(ro_db);
    ASSERT_TRUE(store) << store.error().msg;
    ASSERT_TRUE((*store)->put_kernel(kernel("0123456789abcdef", "7.3.4", "", 1)));
  }
  ASSERT_TRUE(make_dirs(ro_empty));
  for (const auto& d : {ro_empty, ro_db, ro_db + "/artifacts"}) ASSERT_EQ(::chmod(d.c_str(), 0555), 0);
  ASSERT_EQ(::chmod((ro_db + "/ktstr.db").c_str(), 0444), 0);
  std::string before = sha(ro_db + "/ktstr.db");

  std::string report = run_in_child([&]() -> std::string {
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) return "SKIP";
    std::string out;
    for (const auto& d : {ro_empty, ro_db, ro_empty + "/sub"}) {
      auto s = Store::open(d);
      out += s ? "opened '" + d + "'" : s.error().msg + " | hint: " + s.error().hint;
      out += "\n";
    }
    return out;
  });
  if (report == "SKIP") GTEST_SKIP() << "cannot switch to user nobody";
  std::vector<std::string> lines;
  for (size_t start = 0, nl; (nl = report.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(report.substr(start, nl - start));
  ASSERT_EQ(lines.size(), 3u) << report;
  for (const auto& line : lines) {
    EXPECT_EQ(line.find("opened"), std::string::npos) << line;
    EXPECT_NE(line.find("KTSTR_CACHE_DIR"), std::string::npos) << "no hint in: " << line;
  }
  EXPECT_NE(lines[0].find("read-only"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("read-only"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("cannot create directory"), std::string::npos) << lines[2];
  EXPECT_FALSE(path_exists(ro_empty + "/ktstr.db"));
  EXPECT_FALSE(path_exists(ro_empty + "/artifacts"));
  EXPECT_EQ(sha(ro_db + "/ktstr.db"), before);
}

// A file size limit makes writes fail like a full disk: the failing write
// reports an error and every earlier commit survives intact.
TEST(Store, FullDiskGivesAnErrorAndKeepsEarlierCommits) {
  auto tmp = temp_dir();
  { ASSERT_TRUE(Store::open(tmp.path())); }
  std::string report = run_in_child([&]() -> std::string {
    std::signal(SIGXFSZ, SIG_IGN);
    auto store = Store::open(tmp.path());
    if (!store) return "open failed: " + store.error().msg;
    struct stat st {};
    ::stat((tmp.path() + "/ktstr.db").c_str(), &st);
    rlimit limit{static_cast<rlim_t>(st.st_size) + 256 * 1024, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return "setrlimit failed";
    RunRecord r = run("big", 1);
    r.result_json.append(4096, 'j');
    for (int n = 0; n < 5000; ++n) {
      auto id = (*store)->add_run(r);
      if (!id) return std::to_string(n) + "\n" + id.error().msg + "\n" + id.error().hint;
    }
    return "no error after 5000 runs";
  });
  size_t nl = report.find('\n');
  ASSERT_NE(nl, std::string::npos) << report;
  int committed = std::stoi(report.substr(0, nl));
  EXPECT_GT(committed, 0);
  EXPECT_NE(report.find("cannot store the run of 'big'"), std::string::npos) << report;
  EXPECT_NE(report.find("file size limit"), std::string::npos) << report;

  auto store = Store::open(tmp.path());
  ASSERT_TRUE(store) << store.error().msg;
  EXPECT_EQ(query_text((*store)->handle(), "PRAGMA integrity_check"), "ok");
  auto runs = (*store)->list_runs(0);
  ASSERT_TRUE(runs);
  EXPECT_EQ(static_cast<int>(runs->size()), committed);
}

// SQLITE_FULL, what a full disk gives, comes from max_page_count too.
TEST(Store, DatabaseFullGivesTheNoSpaceError) {
  auto tmp = temp_dir();
  auto opened = Store::open(tmp.path());
  ASSERT_TRUE(opened) << opened.error().msg;
  Store& store = **opened;
  int pages = std::stoi(query_text(store.handle(), "PRAGMA page_count"));
  query_text(store.handle(), "PRAGMA max_page_count = " + std::to_string(pages + 8));
  RunRecord r = run("big", 1);
  r.result_json.append(3000, 'j');
  int committed = 0;
  Status last;
  while (committed < 1000 && (last = store.add_run(r).map([](int64_t) {})))
    ++committed;
  ASSERT_FALSE(last) << "no error after 1000 runs";
  EXPECT_GT(committed, 0);
  EXPECT_EQ(last.error().msg, "cannot store the run of 'big': no space left on the device holding '" +
                                  tmp.path() + "/ktstr.db'");
  EXPECT_NE(last.error().hint.find("free some disk space"), std::string::npos);
  EXPECT_EQ(query_text(store.handle(), "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(static_cast<int>(store.list_runs(0)->size()), committed);
}

TEST(Store, KernelsPutGetListFindRemove) {
  auto tmp = temp_dir();
  auto opened = Store::open(tmp.path());
  ASSERT_TRUE(opened) << opened.error().msg;
  Store& store = **opened;
  ASSERT_TRUE(store.put_kernel(kernel("a1b2c3d4e5f60718", "7.3.4+deb13-cloud-amd64", "main", 100)));
  ASSERT_TRUE(store.put_kernel(kernel("a1b2c3d4ffff0000", "6.17.13+deb13-cloud-amd64", "", 300)));
  ASSERT_TRUE(store.put_kernel(kernel("0123456789abcdef", "7.3.4+deb13-cloud-amd64", "x' OR '1'='1", 200)));
  EXPECT_FALSE(store.put_kernel(kernel("", "1.0", "", 1)));

  auto got = store.get_kernel("a1b2c3d4e5f60718");
  ASSERT_TRUE(got && *got);
  KernelRecord want = kernel("a1b2c3d4e5f60718", "7.3.4+deb13-cloud-amd64", "main", 100);
  EXPECT_EQ(fields(**got), fields(want));
  auto missing = store.get_kernel("a1b2");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);

  auto list = store.list_kernels();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, "a1b2c3d4ffff0000");  // newest first
  EXPECT_EQ((*list)[1].id, "0123456789abcdef");
  EXPECT_EQ((*list)[2].id, "a1b2c3d4e5f60718");

  // Put replaces by id.
  KernelRecord renamed = kernel("a1b2c3d4ffff0000", "6.17.13+deb13-cloud-amd64", "old", 300);
  renamed.tracepoints.clear();
  renamed.sched_ext = false;
  ASSERT_TRUE(store.put_kernel(renamed));
  got = store.get_kernel("a1b2c3d4ffff0000");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ((*got)->name, "old");
  EXPECT_TRUE((*got)->tracepoints.empty());
  EXPECT_FALSE((*got)->sched_ext);
  EXPECT_EQ(store.list_kernels()->size(), 3u);

  auto find_id = [&](const std::string& ref) -> std::string {
    auto k = store.find_kernel(ref);
    if (!k) return "error: " + k.error().msg + " | " + k.error().hint;
    return *k ? (*k)->id : "none";
  };
  EXPECT_EQ(find_id("0123456789abcdef"), "0123456789abcdef");     // exact id
  EXPECT_EQ(find_id("0123"), "0123456789abcdef");                 // unique prefix
  EXPECT_EQ(find_id("A1B2C3D4E"), "none");                        // ids are lowercase
  EXPECT_EQ(find_id("a1b2c3d4e"), "a1b2c3d4e5f60718");
  EXPECT_EQ(find_id("012"), "none");                              // shorter than 4: not a prefix
  EXPECT_EQ(find_id("6.17.13+deb13-cloud-amd64"), "a1b2c3d4ffff0000");  // version
  EXPECT_EQ(find_id("main"), "a1b2c3d4e5f60718");                 // name
  EXPECT_EQ(find_id("old"), "a1b2c3d4ffff0000");
  EXPECT_EQ(find_id("x' OR '1'='1"), "0123456789abcdef");         // values are bound, not spliced
  EXPECT_EQ(find_id("' OR 1=1 --"), "none");
  EXPECT_EQ(find_id("7.3"), "none");
  std::string ambiguous = find_id("a1b2");
  EXPECT_NE(ambiguous.find("error: kernel id prefix 'a1b2' is ambiguous"), std::string::npos) << ambiguous;
  EXPECT_NE(ambiguous.find("a1b2c3d4e5f60718 (7.3.4+deb13-cloud-amd64, main)"), std::string::npos) << ambiguous;
  EXPECT_NE(ambiguous.find("a1b2c3d4ffff0000 (6.17.13+deb13-cloud-amd64, old)"), std::string::npos) << ambiguous;
  std::string same_version = find_id("7.3.4+deb13-cloud-amd64");
  EXPECT_NE(same_version.find("error: kernel version '7.3.4+deb13-cloud-amd64' is ambiguous"), std::string::npos)
      << same_version;
  EXPECT_TRUE(find_id("").starts_with("error: "));

  ASSERT_TRUE(store.remove_kernel("a1b2c3d4e5f60718"));
  EXPECT_FALSE(*store.get_kernel("a1b2c3d4e5f60718"));
  EXPECT_EQ(find_id("a1b2"), "a1b2c3d4ffff0000");  // no longer ambiguous
  auto again = store.remove_kernel("a1b2c3d4e5f60718");
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().msg.find("no such kernel"), std::string::npos);
  EXPECT_EQ(store.list_kernels()->size(), 2u);
}

TEST(Store, RunsAddAndListNewestFirst) {
  auto tmp = temp_dir();
  auto opened = Store::open(tmp.path());
  ASSERT_TRUE(opened) << opened.error().msg;
  Store& store = **opened;
  std::vector<int64_t> ids;
  for (int64_t started : {50, 10, 40, 20, 30}) {
    auto id = store.add_run(run("t" + std::to_string(started), started));
    ASSERT_TRUE(id) << id.error().msg;
    ids.push_back(*id);
  }
  EXPECT_EQ(std::set<int64_t>(ids.begin(), ids.end()).size(), 5u);
  auto all = store.list_runs(0);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  std::vector<std::string> names;
  for (const auto& r : *all) names.push_back(r.test_name);
  EXPECT_EQ(names, (std::vector<std::string>{"t50", "t40", "t30", "t20", "t10"}));
  const RunRecord& first = all->front();
  RunRecord want = run("t50", 50);
  want.id = ids[0];
  EXPECT_EQ(fields(first), fields(want));
  auto two = store.list_runs(2);
  ASSERT_TRUE(two);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].test_name, "t40");
}

// Real processes: writers on one store that all create it at the same
// moment, then rounds of processes racing to create brand-new databases.
TEST(StoreConcurrency, ProcessesNeverFailOrCorrupt) {
  auto tmp = temp_dir();
  const int kWriters = 8, kRuns = 150, kKernels = 15;
  std::string shared = tmp.path() + "/shared";
  auto reports = run_together(kWriters, [&](int w) -> std::string {
    auto store = Store::open(shared);
    if (!store) return "open: " + store.error().msg;
    for (int i = 0; i < kRuns; ++i) {
      auto id = (*store)->add_run(run("w" + std::to_string(w) + "-" + std::to_string(i), i));
      if (!id) return "add_run: " + id.error().msg;
      if (i % 10 == 0) {
        char id_hex[17];
        std::snprintf(id_hex, sizeof id_hex, "%08x%08x", w, i);
        if (auto st = (*store)->put_kernel(kernel(id_hex, "v" + std::to_string(w), "", i)); !st)
          return "put_kernel: " + st.error().msg;
        auto runs = (*store)->list_runs(5);
        if (!runs || runs->empty()) return "list_runs: " + (runs ? "empty" : runs.error().msg);
      }
    }
    return "";
  });
  for (int w = 0; w < kWriters; ++w) EXPECT_EQ(reports[w], "") << "writer " << w;

  auto store = Store::open(shared);
  ASSERT_TRUE(store) << store.error().msg;
  EXPECT_EQ(query_text((*store)->handle(), "PRAGMA integrity_check"), "ok");
  auto runs = (*store)->list_runs(0);
  ASSERT_TRUE(runs);
  std::set<std::string> names;
  for (const auto& r : *runs) names.insert(r.test_name);
  EXPECT_EQ(runs->size(), static_cast<size_t>(kWriters * kRuns));
  EXPECT_EQ(names.size(), static_cast<size_t>(kWriters * kRuns));
  EXPECT_EQ((*store)->list_kernels()->size(), static_cast<size_t>(kWriters * kKernels));

  for (int round = 0; round < 5; ++round) {
    std::string fresh = tmp.path() + "/fresh" + std::to_string(round);
    auto racers = run_together(6, [&](int r) -> std::string {
      auto s = Store::open(fresh);
      if (!s) return "open: " + s.error().msg;
      auto id = (*s)->add_run(run("racer" + std::to_string(r), r));
      return id ? "" : "add_run: " + id.error().msg;
    });
    for (size_t r = 0; r < racers.size(); ++r) EXPECT_EQ(racers[r], "") << "round " << round << " racer " << r;
    auto s = Store::open(fresh);
    ASSERT_TRUE(s) << s.error().msg;
    EXPECT_EQ(query_text((*s)->handle(), "PRAGMA integrity_check"), "ok");
    EXPECT_EQ(query_text((*s)->handle(), "PRAGMA user_version"), std::to_string(Store::schema_version()));
    EXPECT_EQ((*s)->list_runs(0)->size(), 6u);
  }
}
