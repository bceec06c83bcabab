// db/bisects: the bisect tables and the scheduler build index (schema
// version 4): migration from version 3 keeping data, round trips, ordering,
// steps committed one at a time, duplicate steps refused.
#include "core/fs.hpp"
#include "db/bisects.hpp"
#include "db/schema.hpp"
#include "db/sql.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ctime>
#include <tuple>

using namespace ktstr;
using db::Store;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-bisect-store-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

std::unique_ptr<Store> open_store(const std::string& dir) {
  auto s = Store::open(dir);
  if (!s) throw std::runtime_error(s.error().msg);
  return std::move(*s);
}

std::string query_text(sqlite3* h, const std::string& sql) {
  auto s = db::Stmt::prepare(h, sql);
  if (!s || s->step() != SQLITE_ROW) return "<error>";
  return s->text(0);
}

db::BisectSession session(const std::string& kind, int64_t at) {
  db::BisectSession b;
  b.kind = kind;
  b.params_json = R"({"repo":"/src/scx","good":["v1.0"],"bad":"main","build":"make -j2 'CFLAGS=-O2 -g'"})";
  b.state = "running";
  b.created_at = at;
  b.updated_at = at;
  return b;
}

db::BisectStep step(int64_t session_id, int64_t seq, const std::string& verdict, int64_t at) {
  db::BisectStep s;
  s.session_id = session_id;
  s.seq = seq;
  s.commit = "0123456789abcdef0123456789abcdef0123456" + std::to_string(seq % 10);
  s.phase = seq == 1 ? "confirm-bad" : "search";
  s.build = seq % 2 ? "built" : "cached";
  s.verdict = verdict;
  s.crash_id = verdict == "bad" ? "a1b2c3d4e5f6" : "";
  s.run_id = 100 + seq;
  s.detail = "run " + std::to_string(seq) + ": \"quoted\" and 'single' text";
  s.at = at;
  return s;
}

auto fields(const db::BisectSession& b) {
  return std::tie(b.id, b.kind, b.params_json, b.state, b.result_json, b.created_at, b.updated_at);
}
auto fields(const db::BisectStep& s) {
  return std::tie(s.session_id, s.seq, s.commit, s.phase, s.build, s.verdict, s.crash_id, s.run_id, s.detail, s.at);
}
auto fields(const db::SchedBuildRecord& r) {
  return std::tie(r.key, r.tree, r.command, r.artifact, r.compiler, r.ok, r.duration_ms, r.binary_name,
                  r.error_excerpt, r.created_at);
}

}  // namespace

TEST(BisectStore, MigrationFromVersion3KeepsEverything) {
  auto tmp = temp_dir();
  const std::string path = tmp.path() + "/ktstr.db";
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_TRUE(db::migrate(h, db::migrations().subspan(0, 3)));
  ASSERT_TRUE(db::exec(h,
                       "INSERT INTO kernels (id, version, image_path) VALUES ('0123456789abcdef', '7.3.4', '/k');"
                       "INSERT INTO runs (test_name, status) VALUES ('t1', 'fail');"
                       "INSERT INTO crashes (id, signature_key) VALUES ('aaaa00000001', 'sig');"
                       "INSERT INTO repros (crash_id, reproduced) VALUES ('aaaa00000001', 1);",
                       "seed v3"));
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), "3");
  sqlite3_close(h);

  auto store = open_store(tmp.path());
  sqlite3* s = store->handle();
  EXPECT_GE(Store::schema_version(), 4);
  EXPECT_EQ(query_text(s, "PRAGMA user_version"), std::to_string(Store::schema_version()));
  EXPECT_EQ(query_text(s, "SELECT version FROM kernels"), "7.3.4");
  EXPECT_EQ(query_text(s, "SELECT test_name FROM runs"), "t1");
  EXPECT_EQ(query_text(s, "SELECT signature_key FROM crashes"), "sig");
  EXPECT_EQ(query_text(s, "SELECT reproduced FROM repros"), "1");
  EXPECT_EQ(query_text(s, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                          "('bisect_sessions', 'bisect_steps', 'sched_builds')"),
            "3");
  auto id = db::add_bisect(*store, session("sched", 10));
  ASSERT_TRUE(id) << id.error().msg;
  EXPECT_TRUE(db::add_bisect_step(*store, step(*id, 1, "bad", 11)));
}

TEST(BisectStore, SessionsRoundTripAndListNewestFirst) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  auto a = db::add_bisect(*store, session("sched", 1000));
  auto b = db::add_bisect(*store, session("kernel-range", 3000));
  auto c = db::add_bisect(*store, session("kernel-commit", 2000));
  ASSERT_TRUE(a && b && c);
  EXPECT_NE(*a, *b);

  auto got = db::get_bisect(*store, *b);
  ASSERT_TRUE(got && *got);
  db::BisectSession want = session("kernel-range", 3000);
  want.id = *b;
  EXPECT_EQ(fields(**got), fields(want));

  auto missing = db::get_bisect(*store, 9999);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);

  auto all = db::list_bisects(*store);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, *b);
  EXPECT_EQ((*all)[1].id, *c);
  EXPECT_EQ((*all)[2].id, *a);

  const std::string result = R"({"culprit":"abc","probability":0.97})";
  ASSERT_TRUE(db::finish_bisect(*store, *a, "found", result));
  auto done = db::get_bisect(*store, *a);
  EXPECT_EQ((*done)->state, "found");
  EXPECT_EQ((*done)->result_json, result);
  EXPECT_GE((*done)->updated_at, static_cast<int64_t>(std::time(nullptr)) - 60);
  EXPECT_EQ((*done)->created_at, 1000);

  auto unknown = db::finish_bisect(*store, 9999, "found", "{}");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().msg.find("no such bisect"), std::string::npos) << unknown.error().msg;

  // Defaults: state "running", times now.
  db::BisectSession bare;
  bare.kind = "sched";
  auto d = db::add_bisect(*store, bare);
  ASSERT_TRUE(d);
  auto dd = db::get_bisect(*store, *d);
  EXPECT_EQ((*dd)->state, "running");
  EXPECT_GT((*dd)->created_at, 0);
  EXPECT_EQ((*dd)->updated_at, (*dd)->created_at);
}

TEST(BisectStore, StepsRoundTripInSeqOrderPerSession) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  auto a = db::add_bisect(*store, session("sched", 100));
  auto b = db::add_bisect(*store, session("sched", 100));
  ASSERT_TRUE(a && b);
  // Inserted out of order, and interleaved with another session's.
  for (int64_t seq : {3, 1, 2, 5, 4}) {
    ASSERT_TRUE(db::add_bisect_step(*store, step(*a, seq, seq % 2 ? "bad" : "good", 200 + seq)));
    ASSERT_TRUE(db::add_bisect_step(*store, step(*b, seq, "skip", 300 + seq)));
  }
  auto steps = db::bisect_steps(*store, *a);
  ASSERT_TRUE(steps) << steps.error().msg;
  ASSERT_EQ(steps->size(), 5u);
  for (int64_t i = 0; i < 5; ++i) {
    const int64_t seq = i + 1;
    EXPECT_EQ(fields((*steps)[static_cast<size_t>(i)]), fields(step(*a, seq, seq % 2 ? "bad" : "good", 200 + seq)));
  }
  EXPECT_EQ(db::bisect_steps(*store, *b)->size(), 5u);
  EXPECT_TRUE(db::bisect_steps(*store, 9999)->empty());
  // The session's updated_at follows its newest step.
  EXPECT_EQ((*db::get_bisect(*store, *a))->updated_at, 205);

  auto dup = db::add_bisect_step(*store, step(*a, 3, "good", 999));
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().msg.find("already has a step 3"), std::string::npos) << dup.error().msg;
  EXPECT_EQ((*db::bisect_steps(*store, *a))[2].verdict, "bad");  // the first one stays

  auto orphan = db::add_bisect_step(*store, step(9999, 1, "bad", 1));
  ASSERT_FALSE(orphan);
  EXPECT_NE(orphan.error().msg.find("no such bisect"), std::string::npos);
}

TEST(BisectStore, EachStepIsCommittedWhenAddReturns) {
  auto tmp = temp_dir();
  int64_t id = 0;
  {
    auto store = open_store(tmp.path());
    auto a = db::add_bisect(*store, session("sched", 100));
    ASSERT_TRUE(a);
    id = *a;
  }
  // A child adds steps and is killed with SIGKILL right after the third
  // returns; every step it reported as added is in the database.
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(report[0]);
    auto store = Store::open(tmp.path());
    if (!store) ::_exit(3);
    for (int64_t seq = 1; seq <= 3; ++seq) {
      if (!db::add_bisect_step(**store, step(id, seq, "bad", 100 + seq))) ::_exit(4);
      char c = 'x';
      if (::write(report[1], &c, 1) != 1) ::_exit(5);
    }
    ::pause();  // killed here, with the store still open
    ::_exit(0);
  }
  ::close(report[1]);
  int added = 0;
  char c;
  while (added < 3 && ::read(report[0], &c, 1) == 1) ++added;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(report[0]);
  ASSERT_EQ(added, 3);
  ASSERT_TRUE(WIFSIGNALED(status));

  auto store = open_store(tmp.path());
  auto steps = db::bisect_steps(*store, id);
  ASSERT_TRUE(steps);
  EXPECT_EQ(steps->size(), 3u);
}

TEST(BisectStore, SchedBuildsPutGetReplaceRemove) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  db::SchedBuildRecord r;
  r.key = std::string(64, 'a');
  r.tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
  r.command = {"make", "-j2", "CFLAGS=-O2 -g", "it's"};
  r.artifact = "build/scx_foo";
  r.compiler = "cc (Debian 12.2.0-14) 12.2.0; Debian clang version 14.0.6";
  r.ok = false;
  r.duration_ms = 12345;
  r.binary_name = "";
  r.error_excerpt = "main.c:3: error: expected ';'\n";
  r.created_at = 1700000000;
  ASSERT_TRUE(db::put_sched_build(*store, r));
  auto got = db::get_sched_build(*store, r.key);
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(fields(**got), fields(r));

  r.ok = true;
  r.binary_name = "scx_foo";
  r.error_excerpt.clear();
  ASSERT_TRUE(db::put_sched_build(*store, r));  // replaces
  EXPECT_EQ(fields(**db::get_sched_build(*store, r.key)), fields(r));
  EXPECT_EQ(query_text(store->handle(), "SELECT count(*) FROM sched_builds"), "1");

  EXPECT_FALSE(*db::get_sched_build(*store, std::string(64, 'b')));
  ASSERT_TRUE(db::remove_sched_build(*store, r.key));
  EXPECT_FALSE(*db::get_sched_build(*store, r.key));
}
