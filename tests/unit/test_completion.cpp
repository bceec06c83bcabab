// `ktstr completion bash|zsh|fish` through the real binary: each script is
// loaded in its real shell and asked for completions, against a store (a
// temporary KTSTR_CACHE_DIR) holding a kernel and a crash. bash runs the
// completion function as readline would (COMP_WORDS, COMP_CWORD); fish
// answers `complete -C` with its own engine; zsh runs the function with
// compadd and _files standing in for its completion system (which needs a
// terminal). And what the scripts offer is what the commands parse: every
// option --help shows.
#include "core/fs.hpp"
#include "core/records.hpp"
#include "core/sched_exit.hpp"
#include "core/subprocess.hpp"
#include "db/crashes.hpp"
#include "db/store.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>

namespace ktstr {
namespace {

using Words = std::vector<std::string>;
using Set = std::set<std::string>;

const std::string kKtstr = std::string(KTSTR_BINARY_DIR) + "/bin/ktstr";
const std::string kKernelId = "0123456789abcdef";
const std::string kCrashId = "0a1b2c3d4e5f";

void put_store_rows(const std::string& cache) {
  auto store = db::Store::open(cache);
  ASSERT_TRUE(store) << store.error().msg;
  KernelRecord k;
  k.id = kKernelId;
  k.version = "7.3.4+deb13-cloud-amd64";
  k.name = "main";
  k.source = "file:/tmp/bzImage";
  k.added_at = 1;
  ASSERT_TRUE((*store)->put_kernel(k));
  CrashRecord c;
  SchedExit e;
  e.kind = 1025;
  e.reason = "scx_bpf_error";
  e.msg = "bpf/scx_ktstr.bpf.c:115: ktstr: host-triggered crash";
  db::set_crash_signature(c, e);
  c.id = kCrashId;
  c.test_name = "crash_test";
  c.kernel_id = kKernelId;
  c.created_at = 2;
  c.result_json = "{}";
  ASSERT_TRUE(db::put_crash(**store, c));
}

Set lines(const std::string& text) {
  Set out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.insert(line.substr(0, line.find('\t')));  // fish: "value\tdescription"
  return out;
}

bool has(const Set& s, const std::string& v) { return s.count(v) > 0; }

class Completion : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = TempDir::create("ktstr-completion");
    ASSERT_TRUE(d);
    dir_.emplace(std::move(*d));
    put_store_rows(cache());
    ASSERT_TRUE(make_dirs(dir_->path() + "/specs/sub"));
    ASSERT_TRUE(write_file_atomic(dir_->path() + "/specs/alpha.toml", ""));
    ASSERT_TRUE(write_file_atomic(dir_->path() + "/specs/beta.txt", ""));
    for (const std::string shell : {"bash", "zsh", "fish"}) {
      auto r = ktstr({"completion", shell});
      ASSERT_EQ(r.status, 0) << r.err;
      ASSERT_TRUE(write_file_atomic(dir_->path() + "/ktstr." + shell, r.out));
    }
  }
  std::string cache() const { return dir_->path() + "/cache"; }
  SpawnOptions options() const {
    SpawnOptions o;
    o.cwd = dir_->path();
    const char* path = std::getenv("PATH");
    o.env_extra = {"KTSTR_CACHE_DIR=" + cache(), "PATH=" + std::string(KTSTR_BINARY_DIR) + "/bin:" + (path ? path : "")};
    return o;
  }
  Completed ktstr(Words args) {
    args.insert(args.begin(), kKtstr);
    auto r = run(args, options(), std::chrono::seconds(30));
    EXPECT_TRUE(r);
    return r ? *r : Completed{};
  }
  Completed shell(const Words& argv) {
    auto r = run(argv, options(), std::chrono::seconds(30));
    EXPECT_TRUE(r);
    EXPECT_EQ(r ? r->status : -1, 0) << (r ? r->err : "");
    return r ? *r : Completed{};
  }
  // What bash offers for `words` (the last one being completed).
  Set bash(const Words& words) {
    Words argv = {"bash", "-c",
                  "source ktstr.bash; COMP_WORDS=(\"${@:2}\"); COMP_CWORD=$(($# - 2)); _ktstr; "
                  "printf '%s\\n' \"${COMPREPLY[@]}\"",
                  "bash", "unused"};
    argv.insert(argv.end(), words.begin(), words.end());
    return lines(shell(argv).out);
  }
  // What zsh's _ktstr hands to compadd and _files (stand-ins that print).
  Set zsh(const Words& words) {
    Words argv = {"zsh", "-f", "-c",
                  "compadd() { while (( $# )) && [[ $1 != -- ]]; do [[ $1 == -d ]] && shift; shift; done; shift; "
                  "print -l -- \"$@\"; }; _files() { print -- \"_files $*\"; }; compset() { :; }; "
                  "source ./ktstr.zsh; words=(\"$@\"); CURRENT=$#; _ktstr",
                  "zsh"};
    argv.insert(argv.end(), words.begin(), words.end());
    return lines(shell(argv).out);
  }
  // What fish completes for the command line `line`.
  Set fish(const std::string& line) {
    return lines(shell({"fish", "--no-config", "-c", "source ktstr.fish; complete -C $argv[1]", line}).out);
  }
  std::optional<TempDir> dir_;
};

TEST_F(Completion, BashOffersCommandsOptionsAndTheStoresValues) {
  EXPECT_EQ(bash({"ktstr", "te"}), Set({"test"}));
  const Set all = bash({"ktstr", ""});
  for (auto* c : {"test", "kernel", "gauntlet", "crash", "completion", "help"}) EXPECT_TRUE(has(all, c)) << c;
  EXPECT_EQ(bash({"ktstr", "-v", "gau"}), Set({"gauntlet"}));
  EXPECT_EQ(bash({"ktstr", "test", "--ju"}), Set({"--junit"}));
  const Set test_opts = bash({"ktstr", "test", "--"});
  for (auto* o : {"--kernel", "--repeat", "--junit", "--seed", "--filter"}) EXPECT_TRUE(has(test_opts, o)) << o;
  EXPECT_EQ(bash({"ktstr", "test", "--kernel", ""}), Set({kKernelId, "7.3.4+deb13-cloud-amd64", "main"}));
  EXPECT_EQ(bash({"ktstr", "gauntlet", "--kernel", "=", "7"}), Set({"7.3.4+deb13-cloud-amd64"}));
  EXPECT_EQ(bash({"ktstr", "kernel", "rm", "01"}), Set({kKernelId}));
  EXPECT_EQ(bash({"ktstr", "test", "specs/"}), Set({"specs/alpha.toml", "specs/sub"}));
  EXPECT_EQ(bash({"ktstr", "gauntlet", "specs/a"}), Set({"specs/alpha.toml"}));
  EXPECT_EQ(bash({"ktstr", "test", "--topo", ""}), Set());
  EXPECT_EQ(bash({"ktstr", "repro", ""}), Set({kCrashId}));
  EXPECT_EQ(bash({"ktstr", "pin", "0a"}), Set({kCrashId}));
  EXPECT_EQ(bash({"ktstr", "crash", ""}), Set({"list", "show"}));
  EXPECT_EQ(bash({"ktstr", "crash", "show", ""}), Set({kCrashId}));
  EXPECT_EQ(bash({"ktstr", "kernel", "fetch", "--"}), Set({"--help", "--json"}));
  EXPECT_EQ(bash({"ktstr", "bisect", "l"}), Set({"list", "log"}));
  EXPECT_EQ(bash({"ktstr", "help", "ke"}), Set({"kernel"}));
}

TEST_F(Completion, ZshOffersTheSame) {
  if (find_in_path("zsh").empty()) GTEST_SKIP() << "zsh is not installed (scripts/setup.sh installs it)";
  const Set all = zsh({"ktstr", ""});
  for (auto* c : {"test", "kernel", "gauntlet", "completion"}) EXPECT_TRUE(has(all, c)) << c;
  EXPECT_TRUE(has(zsh({"ktstr", "test", "--j"}), "--junit"));
  EXPECT_EQ(zsh({"ktstr", "test", "--kernel", ""}), Set({kKernelId, "7.3.4+deb13-cloud-amd64", "main"}));
  EXPECT_EQ(zsh({"ktstr", "gauntlet", "--kernel=7"}), Set({kKernelId, "7.3.4+deb13-cloud-amd64", "main"}));
  EXPECT_EQ(zsh({"ktstr", "test", ""}), Set({"_files -g *.toml"}));
  EXPECT_EQ(zsh({"ktstr", "crash", "show", ""}), Set({kCrashId}));
  EXPECT_EQ(zsh({"ktstr", "kernel", ""}), Set({"fetch", "add", "build", "gc", "list", "rm"}));
}

TEST_F(Completion, FishOffersTheSame) {
  if (find_in_path("fish").empty()) GTEST_SKIP() << "fish is not installed (scripts/setup.sh installs it)";
  EXPECT_EQ(fish("ktstr te"), Set({"test"}));
  EXPECT_EQ(fish("ktstr test --ju"), Set({"--junit"}));
  EXPECT_EQ(fish("ktstr test --kernel "), Set({kKernelId, "7.3.4+deb13-cloud-amd64", "main"}));
  EXPECT_EQ(fish("ktstr test specs/"), Set({"specs/alpha.toml", "specs/sub/"}));  // fish marks directories
  EXPECT_EQ(fish("ktstr repro "), Set({kCrashId}));
  EXPECT_EQ(fish("ktstr kernel "), Set({"fetch", "add", "build", "gc", "list", "rm"}));
  EXPECT_EQ(fish("ktstr kernel rm 01"), Set({kKernelId}));
}

// Nothing typed twice: every option a command's --help shows, its
// completion offers.
TEST_F(Completion, EveryOptionInHelpIsCompleted) {
  for (const Words& cmd : {Words{"test"}, Words{"gauntlet"}, Words{"kernel", "build"}, Words{"bisect"},
                           Words{"runs", "compare"}, Words{"verifier"}}) {
    Words help = cmd;
    help.push_back("--help");
    auto r = ktstr(help);
    ASSERT_EQ(r.status, 0) << r.err;
    Words line = {"ktstr"};
    line.insert(line.end(), cmd.begin(), cmd.end());
    line.push_back("--");
    const Set offered = bash(line);
    // The option lines: "  -j,--jobs N  run up to ..." (first word only).
    std::istringstream in(r.out);
    size_t seen = 0;
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string names;
      if (!(words >> names) || names[0] != '-') continue;
      std::istringstream each(names);
      for (std::string w; std::getline(each, w, ',');) {
        if (w.rfind("--", 0) != 0) continue;
        EXPECT_TRUE(has(offered, w)) << cmd.front() << " " << w;
        ++seen;
      }
    }
    EXPECT_GT(seen, 1u) << cmd.front();
  }
}

TEST_F(Completion, ValuesWithoutAStoreAreNothingAndCreateNone) {
  SpawnOptions o = options();
  o.env_extra = {"KTSTR_CACHE_DIR=" + dir_->path() + "/none"};
  auto r = run({kKtstr, "completion", "--values", "kernels"}, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 0) << r->err;
  EXPECT_EQ(r->out, "");
  EXPECT_FALSE(path_exists(dir_->path() + "/none"));
  auto bad = ktstr({"completion", "tcsh"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_EQ(bad.err.rfind("ktstr: error: ", 0), 0u) << bad.err;
}

}  // namespace
}  // namespace ktstr
