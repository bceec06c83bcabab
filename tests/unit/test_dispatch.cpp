// Command dispatch, through the real ktstr binary: built-ins, ktstr-<cmd>
// links, external commands from PATH, unknown commands and their hints.
#include "core/fs.hpp"
#include "core/subprocess.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <string>

namespace ktstr {
namespace {

const std::string kBin = std::string(KTSTR_BINARY_DIR) + "/bin";

Completed ktstr(std::vector<std::string> args, std::vector<std::string> env = {},
                const std::string& exe = "ktstr") {
  args.insert(args.begin(), kBin + "/" + exe);
  SpawnOptions o;
  o.env_extra = std::move(env);
  auto r = run(args, o, std::chrono::seconds(30));
  EXPECT_TRUE(r.has_value());
  return r ? *r : Completed{};
}

TEST(Dispatch, VersionAndHelp) {
  auto v = ktstr({"--version"});
  EXPECT_EQ(v.status, 0);
  EXPECT_EQ(v.out.rfind("ktstr version ", 0), 0u) << v.out;
  auto h = ktstr({"help"});
  EXPECT_EQ(h.status, 0);
  for (auto* c : {"test", "kernel", "repro", "pin", "bisect"}) EXPECT_NE(h.out.find(c), std::string::npos) << c;
  auto ht = ktstr({"help", "test"});
  EXPECT_EQ(ht.status, 0);
  EXPECT_NE(ht.out.find("--scenario"), std::string::npos) << ht.out;
}

TEST(Dispatch, UnknownCommandHasHintAndStatus2) {
  auto r = ktstr({"tset"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("ktstr: error: 'tset' is not a ktstr command"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("hint:"), std::string::npos);
  EXPECT_NE(r.err.find("'test'"), std::string::npos) << r.err;
  auto far = ktstr({"zzzzzzzz"});
  EXPECT_EQ(far.status, 2);
  EXPECT_NE(far.err.find("ktstr help"), std::string::npos) << far.err;
}

TEST(Dispatch, ExternalCommandGetsArgsAndEnvironment) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string script = dir->path() + "/ktstr-hello";
  ASSERT_TRUE(write_file_atomic(script, "#!/bin/sh\necho \"hello $1 $2 $KTSTR_PROBE\"\nexit 7\n", 0755));
  std::string path = dir->path() + ":" + std::getenv("PATH");
  auto r = ktstr({"hello", "a b", "c"}, {"PATH=" + path, "KTSTR_PROBE=env-ok"});
  EXPECT_EQ(r.status, 7);
  EXPECT_EQ(r.out, "hello a b c env-ok\n");
}

TEST(Dispatch, LinksBehaveLikeBuiltins) {
  for (auto* c : {"test", "repro", "bisect", "pin", "kernel"}) {
    struct stat st {};
    EXPECT_EQ(::stat((kBin + "/ktstr-" + c).c_str(), &st), 0) << c;
  }
  auto t = ktstr({"--help"}, {}, "ktstr-test");
  EXPECT_EQ(t.status, 0);
  EXPECT_NE(t.out.find("--scenario"), std::string::npos);
  auto bisect = ktstr({"abc"}, {}, "ktstr-bisect");
  EXPECT_EQ(bisect.status, 2);
  EXPECT_NE(bisect.err.find("ktstr: error: bisect: "), std::string::npos) << bisect.err;
}

TEST(Dispatch, BadTestInputIsStatus2AndLeavesNoStore) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string cache = dir->path() + "/cache";
  std::vector<std::string> env = {"KTSTR_CACHE_DIR=" + cache};
  auto missing = ktstr({"test", dir->path() + "/nope.toml"}, env);
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("ktstr: error: cannot read spec"), std::string::npos) << missing.err;
  auto topo = ktstr({"test", "--scenario", "steady", "--topo", "0n1l1c1t"}, env);
  EXPECT_EQ(topo.status, 2);
  EXPECT_NE(topo.err.find("invalid topology '0n1l1c1t'"), std::string::npos) << topo.err;
  EXPECT_NE(topo.err.find("hint:"), std::string::npos);
  auto big = ktstr({"test", "--scenario", "steady", "--topo", "1n4l16c4t"}, env);
  EXPECT_EQ(big.status, 2);
  std::string bad = dir->path() + "/bad.toml";
  ASSERT_TRUE(write_file_atomic(bad, "[[test]]\nname = \"x\"\nduraton_s = 2\n"));
  auto unknown = ktstr({"test", bad}, env);
  EXPECT_EQ(unknown.status, 2);
  EXPECT_NE(unknown.err.find("bad.toml:3"), std::string::npos) << unknown.err;
  for (std::string jobs : {"0", "33", "two", "-1", ""}) {
    auto r = ktstr({"test", "--scenario", "steady", "--jobs", jobs}, env);
    EXPECT_EQ(r.status, 2) << "--jobs '" << jobs << "': " << r.err;
    EXPECT_EQ(r.err.rfind("ktstr: error: --jobs ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("\nhint: use 1 to 32"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2) << r.err;
  }
  EXPECT_FALSE(path_exists(cache)) << "bad input must not create the store";
}

TEST(Dispatch, ABadSeedIsOneErrorWithAHintAndLeavesNoStore) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string cache = dir->path() + "/cache";
  std::vector<std::string> env = {"KTSTR_CACHE_DIR=" + cache};
  const std::vector<std::vector<std::string>> commands = {
      {"test", "--scenario", "steady", "--seed"},
      {"bisect", "--signature", "x", "--kernel-range", "6.17..7.3", "--seed"},
  };
  for (const auto& command : commands)
    for (std::string seed : {"abc", "-1", "18446744073709551616", "1.5", ""}) {
      auto args = command;
      args.push_back(seed);
      auto r = ktstr(args, env);
      EXPECT_EQ(r.status, 2) << args[0] << " --seed '" << seed << "': " << r.err;
      EXPECT_EQ(r.err, "ktstr: error: --seed '" + seed + "' is not a seed\nhint: give an integer from 0 to "
                       "18446744073709551615 (decimal, or hex with 0x), as a run's report prints it\n");
      EXPECT_TRUE(r.out.empty()) << r.out;
    }
  EXPECT_FALSE(path_exists(cache)) << "bad input must not create the store";
}

TEST(Dispatch, UnusableCacheDirIsOneErrorLine) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string file = dir->path() + "/plainfile";
  ASSERT_TRUE(write_file_atomic(file, "x"));
  // A cache dir below a regular file cannot be created, even by root.
  auto r = ktstr({"kernel", "list"}, {"KTSTR_CACHE_DIR=" + file + "/cache"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("ktstr: error: ", 0), 0u) << r.err;
  std::string notdb = dir->path() + "/notdb";
  ASSERT_TRUE(make_dirs(notdb));
  ASSERT_TRUE(write_file_atomic(notdb + "/ktstr.db", std::string(4096, 'z')));
  auto before = sha256_file_hex(notdb + "/ktstr.db");
  auto r2 = ktstr({"kernel", "list"}, {"KTSTR_CACHE_DIR=" + notdb});
  EXPECT_EQ(r2.status, 2);
  EXPECT_NE(r2.err.find("ktstr: error: "), std::string::npos);
  EXPECT_EQ(sha256_file_hex(notdb + "/ktstr.db"), before);
}

TEST(Dispatch, FilterAndListSelectTests) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string spec = dir->path() + "/t.toml";
  ASSERT_TRUE(write_file_atomic(spec,
                                "[[test]]\nname = \"alpha_steady\"\n[[test]]\nname = \"beta_yield\"\n"
                                "scenario = \"yield_heavy\"\n[[test]]\nname = \"gamma_steady\"\n"));
  std::vector<std::string> env = {"KTSTR_CACHE_DIR=" + dir->path() + "/cache"};
  auto all = ktstr({"test", "--list", spec}, env);
  EXPECT_EQ(all.status, 0) << all.err;
  EXPECT_EQ(all.out, "alpha_steady\nbeta_yield\ngamma_steady\n");
  auto some = ktstr({"test", "--list", "-E", "test(steady) and not test(=gamma_steady)", spec}, env);
  EXPECT_EQ(some.out, "alpha_steady\n") << some.err;
  auto re = ktstr({"test", "--list", "-E", "test(/^b/) or test(/^g/)", spec}, env);
  EXPECT_EQ(re.out, "beta_yield\ngamma_steady\n") << re.err;
  auto bad = ktstr({"test", "--list", "-E", "test(foo", spec}, env);
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("invalid filter"), std::string::npos) << bad.err;
  // The default test directory comes from KTSTR_TEST_DIR.
  env.push_back("KTSTR_TEST_DIR=" + dir->path());
  auto dflt = ktstr({"test", "--list", "-E", "test(beta)"}, env);
  EXPECT_EQ(dflt.out, "beta_yield\n") << dflt.err;
  EXPECT_FALSE(path_exists(dir->path() + "/cache")) << "listing must not create the store";
}

TEST(Dispatch, SchedulerPathErrorsComeBeforeBoot) {
  auto dir = TempDir::create("ktstr-dispatch");
  ASSERT_TRUE(dir);
  std::string spec = dir->path() + "/t.toml";
  std::string sched = dir->path() + "/not_exec";
  ASSERT_TRUE(write_file_atomic(sched, "#!/bin/sh\n", 0644));
  ASSERT_TRUE(write_file_atomic(spec, "[[test]]\nname = \"x\"\nscheduler = \"" + sched + "\"\n"));
  auto r = ktstr({"test", spec, "--kernel", "/nonexistent/bzImage"}, {"KTSTR_CACHE_DIR=" + dir->path() + "/cache"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.rfind("ktstr: error: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace ktstr
