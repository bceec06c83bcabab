#include "bisectrun/target.hpp"

#include "core/fs.hpp"
#include "gitrepo/repo.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "kbuild/kernel_build.hpp"
#include "kbuild/kernel_cache.hpp"
#include "schedbuild/builder.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace ktstr::bisectrun {
namespace {



std::string short_id(const std::string& id) { return id.size() > 12 ? id.substr(0, 12) : id; }

// One line from a build's error excerpt: the first line saying "error",
// else the last non-empty one.
std::string one_line(const std::string& excerpt) {
  std::stringstream in(excerpt);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("error") != std::string::npos && line.rfind("$ ", 0) != 0) return line;
    last = line;
  }
  return last;
}

// What the scheduler-commit and kernel-commit targets share: a git range read
// with libgit2, its candidates, their labels and parents.
class GitTarget : public BisectTarget {
 public:
  const std::vector<bisect::CommitNode>& candidates() const override { return nodes_; }
  const std::string& bad() const override { return bad_; }
  const std::vector<std::string>& good() const override { return good_; }

  CommitLabel label(const std::string& id) override {
    CommitLabel l;
    l.id = id;
    l.short_id = short_id(id);
    auto it = info_.find(id);
    if (it == info_.end()) {
      auto i = repo_->info(id);
      if (!i) return l;
      it = info_.emplace(id, *i).first;
    }
    l.subject = it->second.subject;
    l.author = it->second.author;
    l.time = it->second.time;
    return l;
  }

  std::vector<std::string> parents(const std::string& id) const override {
    auto it = info_.find(id);
    if (it == info_.end()) return {};
    if (params_.first_parent && !it->second.parents.empty()) return {it->second.parents.front()};
    return it->second.parents;
  }

 protected:
  GitTarget(db::Store& store, TargetParams p) : store_(store), params_(std::move(p)) {}
  db::Store& store_;
  TargetParams params_;
  std::unique_ptr<gitrepo::Repo> repo_;
  std::string bad_;
  std::vector<std::string> good_;
  std::vector<bisect::CommitNode> nodes_;
  std::map<std::string, gitrepo::CommitInfo> info_;
};

class SchedTarget : public GitTarget {
 public:
  static Result<std::unique_ptr<BisectTarget>> open(db::Store& store, const TargetParams& p) {
    auto t = std::unique_ptr<SchedTarget>(new SchedTarget(store, p));
    std::error_code ec;
    std::string abs = std::filesystem::absolute(p.repo, ec).lexically_normal().string();
    if (!abs.empty() && abs.back() == '/') abs.pop_back();
    auto repo = gitrepo::Repo::open(abs);
    if (!repo) return tl::unexpected(Error(repo.error().msg, "give --sched-repo the directory of a git clone"));
    t->repo_ = std::move(*repo);
    auto bad = t->repo_->resolve(p.bad);
    if (!bad) return tl::unexpected(Error(bad.error().msg, "name a branch, tag or commit of '" + abs + "' with --bad"));
    t->bad_ = *bad;
    for (auto& g : p.good) {
      auto id = t->repo_->resolve(g);
      if (!id) return tl::unexpected(Error(id.error().msg, "name a branch, tag or commit of '" + abs + "' with --good"));
      auto anc = t->repo_->is_ancestor(*id, t->bad_);
      if (!anc) return tl::unexpected(anc.error());
      if (!*anc)
        return fail("good commit '" + g + "' is not an ancestor of bad commit '" + p.bad + "'",
                    "bisect looks for a change between an older good and a newer bad commit; swap them, or use --fixed");
      t->good_.push_back(*id);
    }
    auto range = t->repo_->range(t->bad_, t->good_, p.first_parent);
    if (!range) return tl::unexpected(range.error());
    if (range->empty()) return fail("no commits between '" + p.good.front() + "' and '" + p.bad + "'");
    for (auto& c : *range) {
      t->nodes_.push_back(bisect::CommitNode{c.id, c.parents});
      t->info_[c.id] = c;
    }
    auto worktree = claim_worktree(store.dir() + "/worktrees/" + sha256_hex(abs).substr(0, 16));
    if (!worktree) return tl::unexpected(worktree.error());
    t->worktree_ = worktree->first;
    t->worktree_lock_ = std::move(worktree->second);
    auto words = schedbuild::split_command(p.build);
    if (!words) return tl::unexpected(Error(words.error().msg, "quote --build like a shell word list: --build 'make -C dir'"));
    if (words->empty()) return fail("--build is empty", "give the command that builds the scheduler");
    t->command_ = *words;
    return std::unique_ptr<BisectTarget>(std::move(t));
  }

  Result<PreparedRun> prepare(const std::string& id, const TestSpec& test, BisectProgress progress) override {
    bool first = reported_.insert(id).second;
    auto cached = built_.find(id);
    if (cached != built_.end()) return finish(cached->second, test, first ? cached->second.cached : true);
    auto info = repo_->info(id);
    if (!info) return tl::unexpected(info.error());
    if (progress) progress("checking out " + short_id(id));
    if (auto st = repo_->checkout_to(id, worktree_); !st) return tl::unexpected(st.error());
    return build_in(id, info->tree, test, progress);
  }

  Result<PreparedRun> prepare_revert(const std::string& culprit, const TestSpec& test, BisectProgress progress) override {
    if (progress) progress("reverting " + short_id(culprit) + " on " + short_id(bad_));
    auto tree = repo_->revert_to(culprit, bad_, worktree_);
    if (!tree) return tl::unexpected(tree.error());
    return build_in(revert_key(culprit), *tree, test, progress);
  }

 private:
  SchedTarget(db::Store& store, TargetParams p) : GitTarget(store, std::move(p)) {}

  Result<PreparedRun> build_in(const std::string& key, const std::string& tree, const TestSpec& test,
                               BisectProgress progress) {
    if (progress) progress("building " + short_id(key));
    schedbuild::BuildRequest req;
    req.tree_id = tree;
    req.source_dir = worktree_;
    req.command = command_;
    req.artifact = params_.artifact;
    auto b = schedbuild::build(store_, req);
    if (!b) return tl::unexpected(b.error());
    if (!b->cached && b->ok) ++builds_;
    if (!b->cached && !b->ok) ++builds_;
    built_[key] = *b;
    return finish(*b, test, b->cached);
  }

  Result<PreparedRun> finish(const schedbuild::BuildResult& b, const TestSpec& test, bool cached) {
    PreparedRun r;
    r.build = !b.ok ? "failed" : cached ? "cached" : "built";
    if (!b.ok) {
      r.detail = b.error_excerpt.empty() ? "build failed (log: " + b.log_path + ")" : one_line(b.error_excerpt);
      return r;
    }
    r.spec = test;
    r.spec.scheduler = b.binary;
    r.detail = b.binary;
    r.kernel = kernel_;
    r.ok = true;
    return r;
  }

  std::map<std::string, schedbuild::BuildResult> built_;
  std::vector<std::string> command_;
  std::string worktree_;
  FileLock worktree_lock_;
};

class KernelRangeTarget : public BisectTarget {
 public:
  static Result<std::unique_ptr<BisectTarget>> open(db::Store& store, const TargetParams& p) {
    std::vector<std::string> versions = p.versions;
    if (versions.empty()) {
      auto known = known_kernel_versions(store);
      if (!known) return tl::unexpected(known.error());
      versions = *known;
    }
    auto range = select_version_range(versions, p.range);
    if (!range) return tl::unexpected(range.error());
    auto t = std::unique_ptr<KernelRangeTarget>(new KernelRangeTarget(store));
    t->bad_ = range->bad;
    t->good_ = {range->good};
    // A chain: each version's parent is the one before it; newest first.
    std::string prev = range->good;
    for (auto& v : range->chain) {
      t->nodes_.push_back(bisect::CommitNode{v, {prev}});
      prev = v;
    }
    std::reverse(t->nodes_.begin(), t->nodes_.end());
    return std::unique_ptr<BisectTarget>(std::move(t));
  }

  const std::vector<bisect::CommitNode>& candidates() const override { return nodes_; }
  const std::string& bad() const override { return bad_; }
  const std::vector<std::string>& good() const override { return good_; }

  CommitLabel label(const std::string& id) override {
    CommitLabel l;
    l.id = l.short_id = id;
    l.subject = "Linux " + id;
    auto it = kernels_.find(id);
    if (it != kernels_.end()) l.subject += " (" + it->second.version + ")";
    return l;
  }

  Result<PreparedRun> prepare(const std::string& id, const TestSpec& test, BisectProgress progress) override {
    PreparedRun r;
    auto it = kernels_.find(id);
    if (it == kernels_.end()) {
      auto k = kbuild::resolve_kernel(store_, id, progress);
      if (!k) {
        // A version the archive lists but cannot give: a skip, not the end.
        r.build = "failed";
        r.detail = k.error().msg;
        return r;
      }
      it = kernels_.emplace(id, *k).first;
    }
    r.kernel = it->second;
    if (!r.kernel.sched_ext) {
      r.build = "failed";
      r.detail = "kernel " + r.kernel.version + " has no sched_ext";
      return r;
    }
    r.spec = test;
    r.ok = true;
    return r;
  }

  std::vector<std::string> parents(const std::string& id) const override {
    for (auto& n : nodes_)
      if (n.id == id) return n.parents;
    return {};
  }

 private:
  explicit KernelRangeTarget(db::Store& store) : store_(store) {}
  db::Store& store_;
  std::string bad_;
  std::vector<std::string> good_;
  std::vector<bisect::CommitNode> nodes_;
  std::map<std::string, KernelRecord> kernels_;
};

// Kernel commits of a git repository: each candidate is built with
// `ktstr kernel build` (cached by tree, config and compiler; one shared
// build directory, so the next candidate rebuilds incrementally) and the
// test runs on it. A commit that does not build, or whose config lacks what
// ktstr needs (before sched_ext), is a skip.
class KernelRepoTarget : public GitTarget {
 public:
  static Result<std::unique_ptr<BisectTarget>> open(db::Store& store, const TargetParams& p) {
    auto t = std::unique_ptr<KernelRepoTarget>(new KernelRepoTarget(store, p));
    std::error_code ec;
    std::string abs = std::filesystem::absolute(p.repo, ec).lexically_normal().string();
    if (!abs.empty() && abs.back() == '/') abs.pop_back();
    auto repo = gitrepo::Repo::open(abs);
    if (!repo) return tl::unexpected(Error(repo.error().msg, "give --kernel-repo the directory of a kernel git clone"));
    t->repo_ = std::move(*repo);
    t->params_.repo = t->repo_->path();
    auto bad = t->repo_->resolve(p.bad);
    if (!bad) return tl::unexpected(Error(bad.error().msg, "name a branch, tag or commit of '" + abs + "' with --bad"));
    t->bad_ = *bad;
    for (auto& g : p.good) {
      auto id = t->repo_->resolve(g);
      if (!id) return tl::unexpected(Error(id.error().msg, "name a branch, tag or commit of '" + abs + "' with --good"));
      auto anc = t->repo_->is_ancestor(*id, t->bad_);
      if (!anc) return tl::unexpected(anc.error());
      if (!*anc)
        return fail("good commit '" + g + "' is not an ancestor of bad commit '" + p.bad + "'",
                    "bisect looks for a change between an older good and a newer bad commit; swap them, or use --fixed");
      t->good_.push_back(*id);
    }
    auto range = t->repo_->range(t->bad_, t->good_, p.first_parent);
    if (!range) return tl::unexpected(range.error());
    if (range->empty()) return fail("no commits between '" + p.good.front() + "' and '" + p.bad + "'");
    for (auto& c : *range) {
      t->nodes_.push_back(bisect::CommitNode{c.id, c.parents});
      t->info_[c.id] = c;
    }
    return std::unique_ptr<BisectTarget>(std::move(t));
  }

  Result<PreparedRun> prepare(const std::string& id, const TestSpec& test, BisectProgress progress) override {
    const bool first = reported_.insert(id).second;
    PreparedRun r;
    auto known = built_.find(id);
    if (known == built_.end()) {
      kbuild::KernelBuildRequest req;
      req.repo = params_.repo;
      req.commit = id;
      const std::string name = short_id(id);
      auto b = kbuild::build_kernel(store_, req, [&](const kbuild::KernelBuildProgress& p) {
        if (!progress) return;
        std::string line = "building kernel " + name + ": " + p.phase;
        if ((p.phase == "compile" || p.phase == "link") && p.objects)
          line += " " + std::to_string(p.objects) + (p.estimate ? "/~" + std::to_string(p.estimate) : "") + " objects";
        progress(line + ", " + std::to_string(static_cast<long>(p.elapsed)) + " s");
      });
      if (!b) {
        // This commit's tree cannot be built for ktstr (e.g. no sched_ext yet).
        r.build = "failed";
        r.detail = b.error().msg;
        return r;
      }
      if (!b->cached) ++builds_;
      known = built_.emplace(id, *b).first;
    }
    const kbuild::KernelBuildResult& b = known->second;
    if (!b.ok) {
      r.build = "failed";
      r.detail = b.error_excerpt.empty() ? "kernel build failed (log: " + b.log_path + ")" : one_line(b.error_excerpt);
      return r;
    }
    r.build = (b.cached || !first) ? "cached" : "built";
    r.kernel = b.kernel;
    r.detail = "kernel " + b.kernel.id;
    r.spec = test;
    r.ok = true;
    return r;
  }

 private:
  KernelRepoTarget(db::Store& store, TargetParams p) : GitTarget(store, std::move(p)) {}
  std::map<std::string, kbuild::KernelBuildResult> built_;
};

// "7.3" matches 7.3 and 7.3.x; "7.3.4" only itself.
bool version_matches(const std::string& v, const std::string& want) {
  return v == want || v.rfind(want + ".", 0) == 0;
}

}  // namespace

nlohmann::json TargetParams::to_json() const {
  return {{"kind", target_kind_name(kind)}, {"repo", repo}, {"good", good},
          {"bad", bad},           {"build", build},   {"artifact", artifact},
          {"first_parent", first_parent}, {"kernel", kernel}, {"range", range}, {"versions", versions}};
}

Result<TargetParams> TargetParams::from_json(const nlohmann::json& j) {
  TargetParams p;
  const std::string kind = j.value("kind", "");
  auto k = parse_target_kind(kind);
  if (!k) return fail("unknown bisect kind '" + kind + "'");
  p.kind = *k;
  p.repo = j.value("repo", "");
  p.good = j.value("good", std::vector<std::string>{});
  p.bad = j.value("bad", "");
  p.build = j.value("build", "");
  p.artifact = j.value("artifact", "");
  p.first_parent = j.value("first_parent", false);
  p.kernel = j.value("kernel", "");
  p.range = j.value("range", "");
  p.versions = j.value("versions", std::vector<std::string>{});
  return p;
}

Result<PreparedRun> BisectTarget::prepare_revert(const std::string&, const TestSpec&, BisectProgress) {
  return fail("this bisect cannot revert a culprit", "--verify-culprit works for scheduler repositories");
}

std::vector<std::string> BisectTarget::parents(const std::string&) const { return {}; }

std::string BisectTarget::range_text() const {
  std::string g;
  for (auto& x : good()) g += (g.empty() ? "" : ",") + short_id(x);
  return g + ".." + short_id(bad());
}

Result<std::pair<std::string, FileLock>> claim_worktree(const std::string& base) {
  if (auto st = make_dirs(std::filesystem::path(base).parent_path().string()); !st) return tl::unexpected(st.error());
  for (int n = 0; n < 64; ++n) {
    std::string dir = n ? base + "-" + std::to_string(n) : base;
    auto lock = FileLock::try_take(dir + ".lock");
    if (!lock) return tl::unexpected(lock.error());
    if (*lock) return std::make_pair(dir, std::move(**lock));
  }
  return fail("64 bisects of this repository are running", "wait for one to finish");
}

Result<std::unique_ptr<BisectTarget>> open_target(db::Store& store, const TargetParams& p) {
  switch (p.kind) {
    case TargetKind::Sched: return SchedTarget::open(store, p);
    case TargetKind::KernelRange: return KernelRangeTarget::open(store, p);
    case TargetKind::KernelRepo: return KernelRepoTarget::open(store, p);
  }
  return fail(std::string("unknown bisect kind '") + target_kind_name(p.kind) + "'");
}

Result<std::vector<std::string>> known_kernel_versions(db::Store& store) {
  std::set<std::string> seen;
  auto cached = kbuild::list_kernels_checked(store, false);
  if (!cached) return tl::unexpected(cached.error());
  for (auto& h : *cached)
    if (!h.corrupt && h.record.sched_ext) {
      std::string v = kbuild::upstream_version(h.record.version);
      if (!v.empty()) seen.insert(v);
    }
  // The release ladder the archive offers; without the archive (offline),
  // the cached kernels alone, said once.
  if (auto offered = kbuild::list_debian_kernels(store)) {
    for (auto& k : *offered)
      if (auto v = kbuild::upstream_version(k.release); !v.empty()) seen.insert(v);
  } else {
    spdlog::warn("cannot list the archive's kernels ({}); the range uses cached kernels only", offered.error().msg);
  }
  std::vector<std::string> out(seen.begin(), seen.end());
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return kbuild::compare_versions(a, b) < 0; });
  return out;
}

Result<VersionRange> select_version_range(const std::vector<std::string>& versions, const std::string& range) {
  size_t dots = range.find("..");
  if (dots == std::string::npos || dots == 0 || dots + 2 >= range.size())
    return fail("--kernel-range '" + range + "' is not A..B", "e.g. --kernel-range 6.17..7.3");
  std::string a = range.substr(0, dots), b = range.substr(dots + 2);
  VersionRange r;
  for (auto& v : versions) {
    if (version_matches(v, a) && (r.good.empty() || kbuild::compare_versions(v, r.good) > 0)) r.good = v;
    if (version_matches(v, b) && (r.bad.empty() || kbuild::compare_versions(v, r.bad) > 0)) r.bad = v;
  }
  std::string known = versions.empty() ? "none" : join_quoted(versions);
  if (r.good.empty())
    return fail("no kernel version matches '" + a + "'", "known versions: " + known + "; add one with 'ktstr kernel fetch " + a + "'");
  if (r.bad.empty())
    return fail("no kernel version matches '" + b + "'", "known versions: " + known + "; add one with 'ktstr kernel fetch " + b + "'");
  if (kbuild::compare_versions(r.good, r.bad) >= 0)
    return fail("--kernel-range '" + range + "': " + r.good + " is not older than " + r.bad, "give the older version first");
  for (auto& v : versions)
    if (kbuild::compare_versions(v, r.good) > 0 && kbuild::compare_versions(v, r.bad) <= 0) r.chain.push_back(v);
  return r;
}

}  // namespace ktstr::bisectrun
