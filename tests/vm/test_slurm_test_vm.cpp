// `ktstr test --executor slurm` end to end (label vm;slurm): the test starts
// a one-node Slurm itself (tests/slurm/one_node_slurm.hpp), runs a small
// matrix through it — a passing EEVDF test and the README's crash
// (tests/demo/crash_demo.toml) with its auto-repro, seeds fixed by --seed —
// into store A, and the same matrix with `--executor local --jobs 2` into
// store B. From the two SQLite files: the same tests, verdicts and crash
// signatures, the crash recorded with its repro in both. And the workers
// never opened the store: fanotify reports every process that opens A's
// ktstr.db while the Slurm run goes on, and that is the submitting ktstr
// alone (not its array tasks, which run under slurmstepd). 6 VM boots: in
// each store the two tests and the crash's repro.
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "slurm/one_node_slurm.hpp"
#include "vm/vm_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <stdexcept>

namespace ktstr::testing {
namespace {

const std::string kCrashDemo = std::string(KTSTR_SOURCE_DIR) + "/tests/demo/crash_demo.toml";

std::string write_spec(const std::string& dir) {
  auto demo = read_file(kCrashDemo);
  if (!demo) throw std::runtime_error(demo.error().msg);
  // The demo's crash on 2 CPUs: the one-node cluster offers the host's
  // CPUs, and a task asking for more would never leave the queue.
  std::string crash = *demo;
  if (auto at = crash.find("1n1l4c1t"); at != std::string::npos) crash.replace(at, 8, "1n1l2c1t");
  std::string toml = crash +
                     "\n[[test]]\nname = \"slurm_pass\"\nscenario = \"steady\"\ntopology = \"1n1l1c1t\"\n"
                     "duration_s = 1\n";
  std::string path = dir + "/matrix.toml";
  auto st = write_file_atomic(path, toml);
  if (!st) throw std::runtime_error(st.error().msg);
  return path;
}

// Rows of a query on a store's SQLite file, each row's columns joined by '|'.
std::multiset<std::string> rows(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::multiset<std::string> out;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db_path;
    sqlite3_close(db);
    return out;
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  } else {
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        const unsigned char* t = sqlite3_column_text(st, c);
        row += (c ? "|" : "") + std::string(t ? reinterpret_cast<const char*>(t) : "NULL");
      }
      out.insert(row);
    }
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return out;
}

// Every process that opens `path` from now on (fanotify, root only).
class OpenWatch {
 public:
  explicit OpenWatch(const std::string& path) {
    fd_ = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
    if (fd_ < 0) return;
    if (fanotify_mark(fd_, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, path.c_str()) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~OpenWatch() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  // The pids of the opens so far.
  std::set<pid_t> openers() {
    alignas(fanotify_event_metadata) char buf[8192];
    for (;;) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      auto* m = reinterpret_cast<fanotify_event_metadata*>(buf);
      for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
        if (m->fd >= 0) ::close(m->fd);
        pids_.insert(m->pid);
      }
    }
    return pids_;
  }

 private:
  int fd_ = -1;
  std::set<pid_t> pids_;
};

struct Timed {
  Completed done;
  pid_t pid = 0;
  double seconds = 0;
};

// `ktstr ARGS` in `store` (its cache and test dir, as VmStore::ktstr), its
// pid known (for the fanotify check); its output in files under `dir`.
Timed ktstr_in(const VmStore& store, std::vector<std::string> args, const std::vector<std::string>& env,
               const std::string& dir) {
  args.insert(args.begin(), kKtstrBin);
  SpawnOptions o;
  o.env_extra = {"KTSTR_CACHE_DIR=" + store.path() + "/cache", "KTSTR_TEST_DIR=" + store.path() + "/tests"};
  o.env_extra.insert(o.env_extra.end(), env.begin(), env.end());
  o.stdout_path = dir + "/out";
  o.stderr_path = dir + "/err";
  Timed t;
  auto start = std::chrono::steady_clock::now();
  auto child = spawn(args, o);
  if (!child) {
    ADD_FAILURE() << child.error().msg;
    return t;
  }
  t.pid = child->pid;
  t.done.status = wait_child(child->pid, std::chrono::minutes(15));
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  t.done.out = read_file(o.stdout_path).value_or("");
  t.done.err = read_file(o.stderr_path).value_or("");
  return t;
}

TEST(SlurmTestVm, SlurmRunsRecordTheSameVerdictsAsLocalAndOnlyTheSubmitterWritesTheStore) {
  std::string missing = slurm_missing();
  KTSTR_VM_REQUIRE(missing.empty(), missing);
  KTSTR_VM_STORE(a);
  KTSTR_VM_STORE(b);
  OneNodeSlurm slurm;
  ASSERT_TRUE(slurm.ok()) << slurm.error();
  auto dir = TempDir::create("ktstr-slurm-matrix");
  ASSERT_TRUE(dir);
  const std::string spec = write_spec(dir->path());
  const std::string db_a = a.path() + "/cache/ktstr.db", db_b = b.path() + "/cache/ktstr.db";
  ASSERT_TRUE(path_exists(db_a));  // `kernel add` made it

  std::vector<std::string> env = slurm.env();
  if (const char* lock = std::getenv("KTSTR_VM_LOCK")) env.push_back(std::string("KTSTR_VM_LOCK=") + lock);
  Timed sl, lo;
  std::set<pid_t> openers_a, openers_b;
  {
    OpenWatch watch(db_a);
    ASSERT_TRUE(watch.ok()) << "fanotify on " << db_a << " failed (needs root)";
    sl = ktstr_in(a, {"test", "--json", "--seed", "7", "--executor", "slurm", "--slurm-dir", a.path() + "/jobs", spec},
                  env, a.path());
    openers_a = watch.openers();
  }
  {
    OpenWatch watch(db_b);
    ASSERT_TRUE(watch.ok());
    lo = ktstr_in(b, {"test", "--json", "--seed", "7", "--executor", "local", "--jobs", "2", spec}, env, b.path());
    openers_b = watch.openers();
  }
  std::printf("[ matrix  ] --executor slurm %.1f s, --executor local --jobs 2 %.1f s\n", sl.seconds, lo.seconds);
  RecordProperty("slurm_s", std::to_string(sl.seconds));
  RecordProperty("local_s", std::to_string(lo.seconds));

  for (const Timed* t : {&sl, &lo}) {
    EXPECT_EQ(t->done.status, 1) << t->done.err;  // the crash fails its test
    auto doc = nlohmann::json::parse(t->done.out, nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << t->done.err << t->done.out;
    ASSERT_EQ(doc["tests"].size(), 2u) << doc.dump(1).substr(0, 3000);
    EXPECT_EQ(doc["tests"][0]["name"], "crash_demo");
    EXPECT_EQ(doc["tests"][1]["name"], "slurm_pass");
    EXPECT_EQ(doc["tests"][1]["status"], "pass") << doc["tests"][1].dump(1).substr(0, 3000);
    EXPECT_TRUE(doc["tests"][0].contains("crash_id")) << doc["tests"][0].dump(1).substr(0, 3000);
    EXPECT_TRUE(doc["tests"][0].contains("repro")) << doc["tests"][0].dump(1).substr(0, 3000);
  }

  // Only the submitting ktstr opened the store while its units ran, in
  // both executors (the local workers are its children: a different pid).
  EXPECT_EQ(openers_a, std::set<pid_t>{sl.pid});
  EXPECT_EQ(openers_b, std::set<pid_t>{lo.pid});
  // The watch does see a process that opens the store (so an opener on
  // the node would have shown): `ktstr runs list` in A.
  {
    OpenWatch watch(db_a);
    ASSERT_TRUE(watch.ok());
    Timed list = ktstr_in(a, {"runs", "list", "--json"}, {}, dir->path());
    EXPECT_EQ(list.done.status, 0) << list.done.err;
    EXPECT_EQ(watch.openers(), std::set<pid_t>{list.pid});
  }

  // The same runs and verdicts, crashes and signatures, from the files.
  const std::string runs = "SELECT test_name, kernel_id, scheduler, topology, status FROM runs";
  const std::string crashes = "SELECT test_name, signature_key, kind, message, bpf_prog, source, summary FROM crashes";
  auto runs_a = rows(db_a, runs);
  EXPECT_EQ(runs_a.size(), 2u);
  EXPECT_EQ(runs_a, rows(db_b, runs));
  auto crashes_a = rows(db_a, crashes);
  ASSERT_EQ(crashes_a.size(), 1u);
  EXPECT_EQ(crashes_a, rows(db_b, crashes));
  // The seeds went where --seed said, in both.
  const std::string seeds = "SELECT test_name, json_extract(result_json, '$.seed') FROM runs";
  EXPECT_EQ(rows(db_a, seeds), (std::multiset<std::string>{"crash_demo|7", "slurm_pass|7"}));
  EXPECT_EQ(rows(db_b, seeds), rows(db_a, seeds));
  // The crash has its repro in A, recorded by the submitter from what the
  // node ran, and `crash show` prints it.
  const std::string repros =
      "SELECT c.test_name, r.reproduced FROM repros r JOIN crashes c ON c.id = r.crash_id";
  auto repros_a = rows(db_a, repros);
  ASSERT_EQ(repros_a.size(), 1u);
  EXPECT_EQ(repros_a, rows(db_b, repros));
  std::string crash_id = *rows(db_a, "SELECT id FROM crashes").begin();
  auto show = a.ktstr({"crash", "show", crash_id});
  EXPECT_EQ(show.status, 0) << show.err;
  EXPECT_NE(show.out.find("--- auto-repro ---"), std::string::npos) << show.out.substr(0, 3000);
  // The crash's run row is the crashed run (its crash id in the crash).
  EXPECT_EQ(rows(db_a, "SELECT r.test_name FROM crashes c JOIN runs r ON r.id = c.run_id"),
            std::multiset<std::string>{"crash_demo"});
  // The units ran as the cluster's array tasks: their status files (written
  // by `ktstr run-unit` on the node) are there, one per test.
  size_t statuses = 0;
  for (auto& job : std::filesystem::directory_iterator(a.path() + "/jobs"))
    for (auto& st : std::filesystem::directory_iterator(job.path() / "status")) {
      auto text = read_file(st.path().string());
      ASSERT_TRUE(text);
      auto j = nlohmann::json::parse(*text, nullptr, false);
      std::string host = j.value("host", "");
      EXPECT_EQ(host.substr(0, host.find('.')), slurm.node()) << *text;
      EXPECT_EQ(j.value("status", -1), 0) << *text;  // the worker ran; the verdicts are in its result
      ++statuses;
    }
  EXPECT_EQ(statuses, 2u);
}

}  // namespace
}  // namespace ktstr::testing
