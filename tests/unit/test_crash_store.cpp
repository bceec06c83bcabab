// db/crashes: the crashes table (schema version 2), lookup by unique id
// prefix, grouping by signature; and `ktstr crash` on a real store.
#include "core/crash_parse.hpp"
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/crashes.hpp"
#include "db/schema.hpp"
#include "db/sql.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>

using namespace ktstr;
using db::Store;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-crash-test");
  EXPECT_TRUE(t);
  return std::move(*t);
}

std::unique_ptr<Store> open_store(const std::string& dir) {
  auto s = Store::open(dir);
  EXPECT_TRUE(s) << s.error().msg;
  return s ? std::move(*s) : nullptr;
}

std::string query_text(sqlite3* h, const std::string& sql) {
  auto s = db::Stmt::prepare(h, sql);
  if (!s || s->step() != SQLITE_ROW) return "<error>";
  return s->text(0);
}

SchedExit fixture_exit(const std::string& rel) {
  auto text = read_file(std::string(KTSTR_SOURCE_DIR) + "/tests/data/sched_output/" + rel);
  EXPECT_TRUE(text);
  auto e = parse_sched_log(text ? *text : "");
  EXPECT_TRUE(e);
  return e ? *e : SchedExit{};
}

CrashRecord crash(const std::string& id, const SchedExit& exit, const std::string& test, int64_t at) {
  CrashRecord c;
  db::set_crash_signature(c, exit);
  c.id = id;
  c.test_name = test;
  c.kernel_id = "0123456789abcdef";
  c.scheduler = "scx-ktstr";
  c.scheduler_sha256 = std::string(64, 'a');
  c.sched_args = {"--slice-us", "20000", "arg with spaces"};
  c.topology = "1n1l4c1t";
  c.spec_toml = "[[test]]\nname = \"" + test + "\"\n";
  c.seed = 0xfedcba9876543210ULL;  // above INT64_MAX: survives the int64 column
  c.run_id = 7;
  c.created_at = at;
  c.report = "BUG SUMMARY: " + exit.summary() + "\n";
  c.result_json = "{}";
  c.artifacts_dir = "/tmp/x/" + id;
  return c;
}

}  // namespace

TEST(CrashStore, MigrationFromVersion1KeepsKernelsAndRuns) {
  auto tmp = temp_dir();
  const std::string path = tmp.path() + "/ktstr.db";
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_TRUE(db::migrate(h, db::migrations().subspan(0, 1)));
  ASSERT_TRUE(db::exec(h,
                       "INSERT INTO kernels (id, version, image_path) VALUES ('0123456789abcdef', '7.3.4', '/k');"
                       "INSERT INTO runs (test_name, status) VALUES ('t1', 'fail');",
                       "seed v1"));
  EXPECT_EQ(query_text(h, "PRAGMA user_version"), "1");
  sqlite3_close(h);

  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  EXPECT_GE(Store::schema_version(), 2);
  EXPECT_EQ(query_text(store->handle(), "PRAGMA user_version"), std::to_string(Store::schema_version()));
  EXPECT_EQ(query_text(store->handle(), "SELECT version FROM kernels"), "7.3.4");
  EXPECT_EQ(query_text(store->handle(), "SELECT test_name FROM runs"), "t1");
  EXPECT_EQ(query_text(store->handle(), "SELECT count(*) FROM crashes"), "0");
  EXPECT_EQ(query_text(store->handle(), "SELECT count(*) FROM sqlite_schema WHERE name = 'crashes_by_signature'"), "1");
  auto k = store->find_kernel("7.3.4");
  ASSERT_TRUE(k && *k);
  ASSERT_TRUE(db::put_crash(*store, crash("aaaa00000001", fixture_exit("7.3/crash/sched.log"), "t1", 100)));
}

// Version 5 rewrites signatures stored with the BPF source's directory
// ("bpf/scx_ktstr.bpf.c:N: ...") to what the parser gives today, so old and
// new occurrences of one crash are one group.
TEST(CrashStore, MigrationToVersion5DropsDirectoriesFromStoredSignatures) {
  auto tmp = temp_dir();
  const std::string path = tmp.path() + "/ktstr.db";
  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &h), SQLITE_OK);
  ASSERT_TRUE(db::migrate(h, db::migrations().subspan(0, 4)));
  Signature old{1025, "bpf/scx_ktstr.bpf.c:N: ktstr: host-triggered crash", "ktstr_dispatch", "bpf/scx_ktstr.bpf.c:115"};
  Signature stall{1026, "runnable task stall (TASK[N] failed to run for Nms)", "", ""};
  {
    auto ins = db::Stmt::prepare(h, "INSERT INTO crashes (id, signature_key, kind, message, bpf_prog, source) VALUES "
                                    "('aaaa00000001', ?1, 1025, ?2, ?3, ?4), ('aaaa00000002', ?5, 1026, ?6, '', '')");
    ASSERT_TRUE(ins);
    ins->bind(1, old.key()).bind(2, old.message).bind(3, old.bpf_prog).bind(4, old.source);
    ins->bind(5, stall.key()).bind(6, stall.message);
    ASSERT_TRUE(ins->run("seed v4"));
  }  // the statement is finalised before the handle closes
  ASSERT_EQ(sqlite3_close(h), SQLITE_OK);

  auto store = open_store(tmp.path());
  const CrashRecord fresh = crash("bbbb00000001", fixture_exit("7.3/crash/sched.log"), "t1", 100);
  auto got = db::find_crash(*store, "aaaa00000001");
  ASSERT_TRUE(got && *got);
  EXPECT_NE((*got)->signature_key, old.key());
  EXPECT_EQ((*got)->signature_key, fresh.signature_key);
  EXPECT_EQ((*got)->message, "scx_ktstr.bpf.c:N: ktstr: host-triggered crash");
  EXPECT_EQ((*got)->source, "scx_ktstr.bpf.c:115");
  auto unchanged = db::find_crash(*store, "aaaa00000002");
  ASSERT_TRUE(unchanged && *unchanged);
  EXPECT_EQ((*unchanged)->signature_key, stall.key());
}

TEST(CrashStore, PutFindRoundTripsEveryField) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  const CrashRecord c = crash("0a1b2c3d4e5f", fixture_exit("7.3/crash/sched.log"), "crash_test", 1000);
  ASSERT_TRUE(db::put_crash(*store, c));
  auto got = db::find_crash(*store, "0a1b2c3d4e5f");
  ASSERT_TRUE(got && *got) << (got ? "" : got.error().msg);
  const CrashRecord& g = **got;
  EXPECT_EQ(g.id, c.id);
  EXPECT_EQ(g.signature_key, c.signature_key);
  EXPECT_EQ(g.kind, 1025);
  EXPECT_EQ(g.message, "scx_ktstr.bpf.c:N: ktstr: host-triggered crash");
  EXPECT_EQ(g.bpf_prog, "ktstr_dispatch");
  EXPECT_EQ(g.source, "scx_ktstr.bpf.c:115");
  EXPECT_EQ(g.summary, "scx_bpf_error (bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash)");
  EXPECT_EQ(g.sched_args, c.sched_args);
  EXPECT_EQ(g.seed, c.seed);
  for (auto [a, b] : {std::pair{g.test_name, c.test_name}, {g.kernel_id, c.kernel_id}, {g.scheduler, c.scheduler},
                      {g.scheduler_sha256, c.scheduler_sha256}, {g.topology, c.topology}, {g.spec_toml, c.spec_toml},
                      {g.report, c.report}, {g.result_json, c.result_json}, {g.artifacts_dir, c.artifacts_dir}})
    EXPECT_EQ(a, b);
  EXPECT_EQ(g.run_id, 7);
  EXPECT_EQ(g.created_at, 1000);

  // Prefixes, case-insensitive; put replaces by id.
  for (const char* ref : {"0a1b", "0A1B2C", "0a1b2c3d4e5"}) {
    auto p = db::find_crash(*store, ref);
    ASSERT_TRUE(p && *p) << ref;
    EXPECT_EQ((*p)->id, c.id);
  }
  CrashRecord changed = c;
  changed.test_name = "renamed";
  ASSERT_TRUE(db::put_crash(*store, changed));
  EXPECT_EQ((*db::find_crash(*store, c.id))->test_name, "renamed");
  EXPECT_EQ(db::list_crashes(*store)->size(), 1u);

  // No match: nullopt; too short: an error with a hint; non-hex: no match.
  for (const char* ref : {"abc1", "0a1b2c3d4e5f0", "zzzz", "0a1b-"}) {
    auto p = db::find_crash(*store, ref);
    ASSERT_TRUE(p) << ref << ": " << p.error().msg;
    EXPECT_FALSE(*p) << ref;
  }
  auto short_ref = db::find_crash(*store, "0a1");
  ASSERT_FALSE(short_ref);
  EXPECT_EQ(short_ref.error().msg, "crash id prefix '0a1' is too short");
  EXPECT_FALSE(short_ref.error().hint.empty());
  EXPECT_FALSE(db::put_crash(*store, crash("not-hex!", fixture_exit("7.3/crash/sched.log"), "t", 1)));
}

TEST(CrashStore, AmbiguousPrefixListsCandidates) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  auto e = fixture_exit("7.3/crash/sched.log");
  ASSERT_TRUE(db::put_crash(*store, crash("beef00000001", e, "a", 1)));
  ASSERT_TRUE(db::put_crash(*store, crash("beef00000002", e, "b", 2)));
  ASSERT_TRUE(db::put_crash(*store, crash("beef10000003", e, "c", 3)));
  auto amb = db::find_crash(*store, "beef0");
  ASSERT_FALSE(amb);
  EXPECT_EQ(amb.error().msg, "crash id prefix 'beef0' is ambiguous");
  EXPECT_NE(amb.error().hint.find("beef00000001, beef00000002"), std::string::npos) << amb.error().hint;
  EXPECT_EQ(amb.error().hint.find("beef10000003"), std::string::npos);
  auto one = db::find_crash(*store, "beef1");
  ASSERT_TRUE(one && *one);
  EXPECT_EQ((*one)->id, "beef10000003");
  auto exact = db::find_crash(*store, "beef00000002");
  ASSERT_TRUE(exact && *exact);
  EXPECT_EQ((*exact)->test_name, "b");
}

TEST(CrashStore, GroupsCountOccurrencesPerSignature) {
  auto tmp = temp_dir();
  auto store = open_store(tmp.path());
  ASSERT_TRUE(store);
  auto c73 = fixture_exit("7.3/crash/sched.log");
  auto c617 = fixture_exit("6.17/crash/sched.log");
  auto s73 = fixture_exit("7.3/stall/sched.log");
  // Same crash on two kernels and two tests, out of time order; one stall.
  ASSERT_TRUE(db::put_crash(*store, crash("c00000000002", c617, "crash_b", 300)));
  ASSERT_TRUE(db::put_crash(*store, crash("c00000000001", c73, "crash_a", 100)));
  ASSERT_TRUE(db::put_crash(*store, crash("c00000000003", c73, "crash_a", 200)));
  ASSERT_TRUE(db::put_crash(*store, crash("500000000001", s73, "stall_a", 250)));
  auto groups = db::list_crash_groups(*store);
  ASSERT_TRUE(groups) << groups.error().msg;
  ASSERT_EQ(groups->size(), 2u);
  const auto& crash_group = (*groups)[0];  // last seen 300: first
  EXPECT_EQ(crash_group.count, 3);
  EXPECT_EQ(crash_group.first_seen, 100);
  EXPECT_EQ(crash_group.last_seen, 300);
  EXPECT_EQ(crash_group.latest_id, "c00000000002");
  EXPECT_EQ(crash_group.kind, 1025);
  EXPECT_EQ(crash_group.bpf_prog, "ktstr_dispatch");
  EXPECT_EQ(crash_group.source, "scx_ktstr.bpf.c:115");
  EXPECT_EQ(crash_group.test_names, (std::vector<std::string>{"crash_a", "crash_b"}));
  EXPECT_EQ(crash_group.signature_key, signature_of(c73).key());
  const auto& stall_group = (*groups)[1];
  EXPECT_EQ(stall_group.count, 1);
  EXPECT_EQ(stall_group.kind, 1026);
  EXPECT_EQ(stall_group.first_seen, 250);
  EXPECT_EQ(stall_group.latest_id, "500000000001");
  EXPECT_EQ(db::signature_text(crash_group.kind, crash_group.message, crash_group.bpf_prog),
            "scx_bpf_error: scx_ktstr.bpf.c:N: ktstr: host-triggered crash [ktstr_dispatch]");
  EXPECT_EQ(db::signature_text(stall_group.kind, stall_group.message, stall_group.bpf_prog),
            "runnable task stall: TASK[N] failed to run for Ns");
  auto occurrences = db::list_crashes(*store, crash_group.signature_key);
  ASSERT_TRUE(occurrences);
  ASSERT_EQ(occurrences->size(), 3u);
  EXPECT_EQ(occurrences->front().id, "c00000000001");  // oldest first
  EXPECT_TRUE(db::list_crash_groups(*open_store(tmp.path() + "/empty"))->empty());
}

TEST(CrashStore, NewIdsAreTwelveHexAndDistinct) {
  CrashRecord c = crash("", fixture_exit("7.3/crash/sched.log"), "t", 5);
  std::set<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    std::string id = db::new_crash_id(c);  // same run, same second, same signature
    ASSERT_EQ(id.size(), 12u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 200u);
}

// `ktstr crash` against a real store, through the built binary.
class CrashCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    bin_ = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
    if (!path_exists(bin_)) GTEST_SKIP() << "'" << bin_ << "' is not built";
    auto store = open_store(tmp_.path());
    ASSERT_TRUE(store);
    auto e = fixture_exit("7.3/crash/sched.log");
    CrashRecord c = crash("d00d00000001", e, "crash_a", 100);
    c.spec_toml = "[[test]]\nname = \"crash_a\"\nscheduler = \"scx-ktstr\"\n"
                  "bpf_map_write = [{ map = \".bss\", var = \"crash\", value = 1 }]\n";
    ASSERT_TRUE(db::put_crash(*store, c));
    ASSERT_TRUE(db::put_crash(*store, crash("d00d00000002", e, "crash_b", 200)));
  }
  // status, stdout, stderr
  std::tuple<int, std::string, std::string> run(std::vector<std::string> args) {
    args.insert(args.begin(), {bin_, "crash"});
    SpawnOptions opts;
    opts.env_extra = {"KTSTR_CACHE_DIR=" + tmp_.path()};
    auto r = ktstr::run(args, opts, std::chrono::seconds(60));
    EXPECT_TRUE(r) << (r ? "" : r.error().msg);
    if (!r) return {-1, "", ""};
    return {r->status, r->out, r->err};
  }
  TempDir tmp_ = temp_dir();
  std::string bin_;
};

TEST_F(CrashCommand, ListShowAndUnknownIds) {
  auto [st, out, err] = run({"list"});
  EXPECT_EQ(st, 0) << err;
  EXPECT_NE(out.find("ID (latest)"), std::string::npos) << out;
  EXPECT_NE(out.find("d00d00000002  2"), std::string::npos) << out;
  EXPECT_NE(out.find("scx_bpf_error: scx_ktstr.bpf.c:N: ktstr: host-triggered crash [ktstr_dispatch]"),
            std::string::npos) << out;

  auto [jst, jout, jerr] = run({"list", "--json"});
  ASSERT_EQ(jst, 0) << jerr;
  auto j = nlohmann::json::parse(jout, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << jout;
  EXPECT_EQ(j[0]["count"], 2);
  EXPECT_EQ(j[0]["latest_id"], "d00d00000002");

  auto [sst, sout, serr] = run({"show", "d00d00000001"});
  EXPECT_EQ(sst, 0) << serr;
  for (const char* want : {"BUG SUMMARY: scx_bpf_error (bpf/scx_ktstr.bpf.c:115", "kernel:     0123456789abcdef",
                           "--slice-us 20000 arg with spaces", "topology:   1n1l4c1t", ".bss crash = 1",
                           "ktstr repro d00d00000001", "ktstr pin d00d00000001", "2 occurrences"})
    EXPECT_NE(sout.find(want), std::string::npos) << want << "\n" << sout;

  auto [ast, aout, aerr] = run({"show", "d00d0"});
  EXPECT_EQ(ast, 2);
  EXPECT_NE(aerr.find("ambiguous"), std::string::npos) << aerr;

  auto [ust, uout, uerr] = run({"show", "abc1"});
  EXPECT_EQ(ust, 2);
  EXPECT_NE(uerr.find("ktstr: error: no crash matches 'abc1'"), std::string::npos) << uerr;
  EXPECT_NE(uerr.find("ktstr crash list"), std::string::npos) << uerr;
}
