// schedbuild: real builds of a small C program checked out of a real git
// repository: first build, cache hit without running the command, keys,
// failed builds cached with their excerpt, a missing artifact, timeouts;
// split_command.
#include "schedbuild/builder.hpp"

#include "db/bisects.hpp"
#include "git_fixture.hpp"
#include "gitrepo/repo.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

using namespace ktstr;
using namespace ktstr::testing;
using schedbuild::BuildRequest;

namespace {

TempDir temp_dir() {
  auto t = TempDir::create("ktstr-schedbuild-test");
  if (!t) throw std::runtime_error(t.error().msg);
  return std::move(*t);
}

// build.sh appends a line to the file named by its first argument (outside
// the tree) every time it runs, then compiles: the count proves whether the
// command ran.
const char* kBuildScript = "#!/bin/sh\necho ran >> \"$1\"\nmkdir -p out\ncc -O0 -o out/sched main.c\n";

Files tree_printing(const std::string& text) {
  return {{"build.sh", {kBuildScript, GIT_FILEMODE_BLOB_EXECUTABLE}},
          {"main.c", {"#include <stdio.h>\nint main(void) { puts(\"" + text + "\"); return 0; }\n"}}};
}

class SchedBuildTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fixture_ = std::make_unique<GitFixture>(tmp_.path() + "/src");
    v1_ = fixture_->commit(tree_printing("v1"), {}, "v1");
    v2_ = fixture_->commit(tree_printing("v2"), {v1_}, "v2");
    Files broken = tree_printing("v3");
    broken["main.c"] = {"int main(void) { return missing_symbol; }\n"};
    broken_ = fixture_->commit(broken, {v2_}, "broken");
    Files no_script = tree_printing("v4");
    no_script.erase("build.sh");
    no_script_ = fixture_->commit(no_script, {broken_}, "no build script", "refs/heads/main");
    auto repo = gitrepo::Repo::open(fixture_->dir());
    ASSERT_TRUE(repo) << repo.error().msg;
    repo_ = std::move(*repo);
    auto store = db::Store::open(tmp_.path() + "/cache");
    ASSERT_TRUE(store) << store.error().msg;
    store_ = std::move(*store);
    counter_ = tmp_.path() + "/runs.txt";
  }

  // Checks `commit` out into the work dir and describes its build.
  BuildRequest request(const std::string& commit, std::vector<std::string> extra = {}) {
    const std::string dir = tmp_.path() + "/work";
    EXPECT_TRUE(repo_->checkout_to(commit, dir));
    BuildRequest req;
    req.tree_id = repo_->info(commit)->tree;
    req.source_dir = dir;
    req.command = {"sh", "./build.sh", counter_};
    req.command.insert(req.command.end(), extra.begin(), extra.end());
    req.artifact = "out/sched";
    return req;
  }

  int runs() {
    auto text = read_file(counter_);
    return text ? static_cast<int>(lines_of(*text).size()) : 0;
  }

  std::string run_binary(const std::string& path) {
    auto r = run({path});
    return r && r->ok() ? r->out : "<failed>";
  }

  TempDir tmp_ = temp_dir();
  std::unique_ptr<GitFixture> fixture_;
  std::string v1_, v2_, broken_, no_script_, counter_;
  std::unique_ptr<gitrepo::Repo> repo_;
  std::unique_ptr<db::Store> store_;
};

}  // namespace

TEST_F(SchedBuildTest, BuildsOnceThenServesTheCache) {
  auto first = schedbuild::build(*store_, request(v1_));
  ASSERT_TRUE(first) << first.error().msg;
  EXPECT_TRUE(first->ok) << first->error_excerpt;
  EXPECT_FALSE(first->cached);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(first->key.size(), 64u);
  EXPECT_EQ(first->binary, store_->artifacts_dir() + "/sched-builds/" + first->key + "/sched");
  EXPECT_EQ(run_binary(first->binary), "v1\n");
  EXPECT_GT(first->seconds, 0);
  auto log = read_file(first->log_path);
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("$ sh ./build.sh"), std::string::npos) << *log;
  auto meta = nlohmann::json::parse(*read_file(store_->artifacts_dir() + "/sched-builds/" + first->key + "/meta.json"));
  EXPECT_EQ(meta["tree"], repo_->info(v1_)->tree);
  EXPECT_EQ(meta["ok"], true);

  // The same tree again (checked out afresh, no build outputs): nothing runs.
  auto again = schedbuild::build(*store_, request(v1_));
  ASSERT_TRUE(again) << again.error().msg;
  EXPECT_TRUE(again->ok);
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(runs(), 1);
  EXPECT_EQ(again->key, first->key);
  EXPECT_EQ(again->binary, first->binary);
  EXPECT_NEAR(again->seconds, first->seconds, 0.002);  // the time of the build that made the entry

  // Another tree: another key and binary; the first stays as it was.
  auto second = schedbuild::build(*store_, request(v2_));
  ASSERT_TRUE(second) << second.error().msg;
  EXPECT_FALSE(second->cached);
  EXPECT_EQ(runs(), 2);
  EXPECT_NE(second->key, first->key);
  EXPECT_EQ(run_binary(second->binary), "v2\n");
  EXPECT_EQ(run_binary(first->binary), "v1\n");

  // Another command on the first tree: another key.
  auto other_cmd = schedbuild::build(*store_, request(v1_, {"--extra"}));
  ASSERT_TRUE(other_cmd) << other_cmd.error().msg;
  EXPECT_FALSE(other_cmd->cached);
  EXPECT_EQ(runs(), 3);
  EXPECT_NE(other_cmd->key, first->key);

  // The index knows all three.
  auto row = db::get_sched_build(*store_, first->key);
  ASSERT_TRUE(row && *row);
  EXPECT_EQ((*row)->command, (std::vector<std::string>{"sh", "./build.sh", counter_}));
  EXPECT_EQ((*row)->compiler, schedbuild::compiler_version());
}

TEST_F(SchedBuildTest, KeyCoversTreeCommandArtifactAndCompiler) {
  BuildRequest a;
  a.tree_id = "t1";
  a.command = {"make", "-j2"};
  a.artifact = "scx_foo";
  BuildRequest b = a;
  EXPECT_EQ(schedbuild::build_key(a), schedbuild::build_key(b));
  b.tree_id = "t2";
  EXPECT_NE(schedbuild::build_key(a), schedbuild::build_key(b));
  b = a;
  b.command = {"make", "-j2", ""};
  EXPECT_NE(schedbuild::build_key(a), schedbuild::build_key(b));
  b = a;
  b.command = {"make -j2"};  // word boundaries count
  EXPECT_NE(schedbuild::build_key(a), schedbuild::build_key(b));
  b = a;
  b.artifact = "build/scx_foo";
  EXPECT_NE(schedbuild::build_key(a), schedbuild::build_key(b));
  b = a;
  b.source_dir = "/elsewhere";  // where the tree is checked out does not matter
  EXPECT_EQ(schedbuild::build_key(a), schedbuild::build_key(b));
  const std::string cc = schedbuild::compiler_version();
  EXPECT_NE(cc, "unknown");
  EXPECT_NE(cc.find("cc"), std::string::npos) << cc;  // gcc's or clang's banner
  EXPECT_EQ(schedbuild::compiler_version(), cc);
}

TEST_F(SchedBuildTest, FailedBuildsAreCachedWithTheirErrors) {
  auto bad = schedbuild::build(*store_, request(broken_));
  ASSERT_TRUE(bad) << bad.error().msg;
  EXPECT_FALSE(bad->ok);
  EXPECT_FALSE(bad->cached);
  EXPECT_TRUE(bad->binary.empty());
  EXPECT_EQ(runs(), 1);
  EXPECT_NE(bad->error_excerpt.find("missing_symbol"), std::string::npos) << bad->error_excerpt;
  EXPECT_NE(bad->error_excerpt.find("error"), std::string::npos) << bad->error_excerpt;
  auto log = read_file(bad->log_path);
  ASSERT_TRUE(log);
  EXPECT_NE(log->find("missing_symbol"), std::string::npos);
  EXPECT_NE(log->find("exited with status"), std::string::npos) << *log;

  auto again = schedbuild::build(*store_, request(broken_));
  ASSERT_TRUE(again) << again.error().msg;
  EXPECT_FALSE(again->ok);
  EXPECT_TRUE(again->cached);
  EXPECT_EQ(runs(), 1);  // a broken commit is not rebuilt
  EXPECT_EQ(again->error_excerpt, bad->error_excerpt);
  EXPECT_EQ(again->log_path, bad->log_path);
}

TEST_F(SchedBuildTest, ASucceedingCommandWithoutTheArtifactIsAFailedBuild) {
  auto req = request(v1_);
  req.command = {"true"};
  auto missing = schedbuild::build(*store_, req);
  ASSERT_TRUE(missing) << missing.error().msg;
  EXPECT_FALSE(missing->ok);
  EXPECT_NE(missing->error_excerpt.find("the build command succeeded but 'out/sched' was not produced"),
            std::string::npos)
      << missing->error_excerpt;

  req.command = {"sh", "-c", "mkdir -p out && echo data > out/sched"};
  auto not_exec = schedbuild::build(*store_, req);
  ASSERT_TRUE(not_exec) << not_exec.error().msg;
  EXPECT_FALSE(not_exec->ok);
  EXPECT_NE(not_exec->error_excerpt.find("'out/sched' is not executable"), std::string::npos)
      << not_exec->error_excerpt;
}

TEST_F(SchedBuildTest, ATreeWithoutItsBuildScriptFailsAndSetUpErrorsAreErrors) {
  // ./build.sh is the tree's own: missing in this commit is a failed build.
  auto no_script = schedbuild::build(*store_, request(no_script_));
  ASSERT_TRUE(no_script) << no_script.error().msg;
  EXPECT_FALSE(no_script->ok);
  auto again = schedbuild::build(*store_, request(no_script_));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->cached);

  auto req = request(v1_);
  req.command = {"./build.sh", counter_};  // a relative path runs from the tree
  auto direct = schedbuild::build(*store_, req);
  ASSERT_TRUE(direct) << direct.error().msg;
  EXPECT_TRUE(direct->ok) << direct->error_excerpt;

  req.command = {"ktstr-no-such-compiler", "x"};
  auto not_found = schedbuild::build(*store_, req);
  ASSERT_FALSE(not_found);
  EXPECT_EQ(not_found.error().msg, "build command 'ktstr-no-such-compiler' not found");

  req = request(v1_);
  req.artifact = "../outside";
  EXPECT_FALSE(schedbuild::build(*store_, req));
  req.artifact = "/usr/bin/true";
  EXPECT_FALSE(schedbuild::build(*store_, req));
  req = request(v1_);
  req.source_dir = tmp_.path() + "/missing";
  EXPECT_FALSE(schedbuild::build(*store_, req));
}

TEST_F(SchedBuildTest, TimeoutsAreFailuresButNotCached) {
  auto req = request(v1_);
  req.command = {"sh", "-c", "echo started >> \"$0\"; exec sleep 30", counter_};
  req.timeout = std::chrono::milliseconds(300);
  auto slow = schedbuild::build(*store_, req);
  ASSERT_TRUE(slow) << slow.error().msg;
  EXPECT_FALSE(slow->ok);
  EXPECT_FALSE(slow->cached);
  EXPECT_NE(slow->error_excerpt.find("timed out"), std::string::npos) << slow->error_excerpt;
  EXPECT_LT(slow->seconds, 20);
  auto retry = schedbuild::build(*store_, req);
  ASSERT_TRUE(retry);
  EXPECT_FALSE(retry->cached);  // tried again
  EXPECT_EQ(runs(), 2);
}

TEST_F(SchedBuildTest, ARemovedEntryIsBuiltAgain) {
  auto first = schedbuild::build(*store_, request(v1_));
  ASSERT_TRUE(first && first->ok);
  ASSERT_TRUE(remove_tree(store_->artifacts_dir() + "/sched-builds/" + first->key));
  auto again = schedbuild::build(*store_, request(v1_));
  ASSERT_TRUE(again) << again.error().msg;
  EXPECT_TRUE(again->ok);
  EXPECT_FALSE(again->cached);
  EXPECT_EQ(runs(), 2);
  EXPECT_EQ(run_binary(again->binary), "v1\n");
}

TEST(SplitCommand, WordsAndQuotes) {
  using V = std::vector<std::string>;
  auto split = [](const std::string& s) {
    auto r = schedbuild::split_command(s);
    return r ? *r : V{"<error> " + r.error().msg};
  };
  EXPECT_EQ(split("make -j4"), (V{"make", "-j4"}));
  EXPECT_EQ(split("  make\t -j4  \n"), (V{"make", "-j4"}));
  EXPECT_EQ(split("make 'CFLAGS=-O2 -g' V=1"), (V{"make", "CFLAGS=-O2 -g", "V=1"}));
  EXPECT_EQ(split("make \"CFLAGS=-O2 -g\""), (V{"make", "CFLAGS=-O2 -g"}));
  EXPECT_EQ(split("cargo build --bin scx_rusty"), (V{"cargo", "build", "--bin", "scx_rusty"}));
  EXPECT_EQ(split("a\\ b c"), (V{"a b", "c"}));
  EXPECT_EQ(split("x'y'\"z\"w"), (V{"xyzw"}));
  EXPECT_EQ(split("echo '' \"\""), (V{"echo", "", ""}));
  EXPECT_EQ(split(R"(say "a \"q\" \\ \n")"), (V{"say", R"(a "q" \ \n)"}));
  EXPECT_EQ(split(R"(say 'a \ "b"')"), (V{"say", R"(a \ "b")"}));
  EXPECT_EQ(split("make \\\n -j2"), (V{"make", "-j2"}));
  EXPECT_EQ(split("echo '$HOME' \\$PATH \"\\$x\" '*'"), (V{"echo", "$HOME", "$PATH", "$x", "*"}));
  EXPECT_EQ(split("ls *.c"), (V{"ls", "*.c"}));  // no glob expansion
  EXPECT_EQ(split("echo 'a|b' \"c;d\" e\\&f"), (V{"echo", "a|b", "c;d", "e&f"}));
}

TEST(SplitCommand, Errors) {
  auto error = [](const std::string& s) {
    auto r = schedbuild::split_command(s);
    return r ? std::string("<ok>") : r.error().msg;
  };
  EXPECT_EQ(error("make 'oops"), "build command 'make 'oops' has an unterminated single quote");
  EXPECT_EQ(error("make \"oops"), "build command 'make \"oops' has an unterminated double quote");
  EXPECT_EQ(error("make \"a\\\""), "build command 'make \"a\\\"' has an unterminated double quote");
  EXPECT_EQ(error("make \\"), "build command 'make \\' ends with a backslash");
  EXPECT_EQ(error(""), "the build command is empty");
  EXPECT_EQ(error("   "), "the build command is empty");
  EXPECT_EQ(error("make && strip x"), "build command 'make && strip x' uses the shell character '&'");
  EXPECT_EQ(error("make | tee log"), "build command 'make | tee log' uses the shell character '|'");
  EXPECT_EQ(error("make; true"), "build command 'make; true' uses the shell character ';'");
  EXPECT_EQ(error("make > log"), "build command 'make > log' uses the shell character '>'");
  EXPECT_EQ(error("make CC=$CC"), "build command 'make CC=$CC' uses the shell character '$'");
  EXPECT_EQ(error("make \"CC=$CC\""),
            "build command 'make \"CC=$CC\"' uses the shell character '$' inside double quotes");
  EXPECT_EQ(error("make `nproc`"), "build command 'make `nproc`' uses the shell character '`'");
  auto r = schedbuild::split_command("make && strip x");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().hint.find("sh -c"), std::string::npos);
}
