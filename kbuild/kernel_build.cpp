#include "kbuild/kernel_build.hpp"

#include "core/build_log.hpp"
#include "core/fs.hpp"
#include "core/file_lock.hpp"
#include "core/subprocess.hpp"
#include "gitrepo/repo.hpp"
#include "kbuild/kconfig.hpp"
#include "kbuild/kernel_cache.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace fs = std::filesystem;

namespace ktstr::kbuild {

namespace {

constexpr size_t kExcerptLines = 12;

// Compiler errors and make's "***" lines, first ones first; else the last lines.
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

void append_file(const std::string& dst, const std::string& src) {
  std::ifstream in(src, std::ios::binary);
  std::ofstream out(dst, std::ios::binary | std::ios::app);
  out << in.rdbuf();
}

// The objects a whole build compiled last time (any slot), for the estimate.
std::string estimate_path(const db::Store& store) { return store.dir() + "/kernel-builds/objects-estimate"; }

size_t read_estimate(const db::Store& store) {
  auto t = read_file(estimate_path(store), 64);
  if (!t) return 0;
  try {
    return static_cast<size_t>(std::stoull(*t));
  } catch (...) {
    return 0;
  }
}

size_t count_objects(const std::string& out_dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(out_dir, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const auto& p = it->path();
    if (p.extension() == ".o" && it->is_regular_file(ec) && p.string().find("/tools/") == std::string::npos) ++n;
  }
  return n;
}

// Reads what make appended to its log since the last call.
class LogFollower {
 public:
  explicit LogFollower(std::string path) : path_(std::move(path)) {}
  // New complete lines.
  std::vector<std::string> poll() {
    std::vector<std::string> lines;
    std::ifstream in(path_, std::ios::binary);
    if (!in) return lines;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    offset_ += chunk.size();
    partial_ += chunk;
    size_t pos = 0, nl;
    while ((nl = partial_.find('\n', pos)) != std::string::npos) {
      lines.push_back(partial_.substr(pos, nl - pos));
      pos = nl + 1;
    }
    partial_.erase(0, pos);
    return lines;
  }

 private:
  std::string path_;
  size_t offset_ = 0;
  std::string partial_;
};

struct Source {
  std::string tree_id;
  std::string source;    // shown and hashed into the slot
  std::string commit;
  bool dirty = false;
  bool from_repo = false;
};

bool looks_like_kernel_tree(const std::string& dir) {
  return path_exists(dir + "/Makefile") && path_exists(dir + "/Kconfig") && path_exists(dir + "/arch/x86");
}

Result<Source> identify_source(const KernelBuildRequest& req) {
  Source s;
  std::error_code ec;
  if (!req.repo.empty()) {
    auto repo = gitrepo::Repo::open(req.repo);
    if (!repo) return fail(repo.error());
    auto info = (*repo)->info(req.commit);
    if (!info) return fail(info.error());
    s.tree_id = info->tree;
    s.commit = info->id;
    s.source = (*repo)->path();
    s.from_repo = true;
    return s;
  }
  const std::string dir = fs::absolute(req.source_dir, ec).lexically_normal().string();
  if (!fs::is_directory(dir, ec))
    return fail("kernel source directory '" + req.source_dir + "' does not exist",
                "give the top directory of a Linux source tree");
  if (!looks_like_kernel_tree(dir))
    return fail("'" + req.source_dir + "' is not a Linux source tree",
                "give the directory holding the kernel's top Makefile, Kconfig and arch/");
  s.source = dir.size() > 1 && dir.back() == '/' ? dir.substr(0, dir.size() - 1) : dir;
  if (path_exists(s.source + "/.git")) {
    auto repo = gitrepo::Repo::open(s.source);
    if (repo && (*repo)->path() == s.source) {
      auto state = (*repo)->work_tree_state();
      if (state) {
        s.commit = state->head;
        s.dirty = state->dirty;
        if (!state->dirty) {
          s.tree_id = state->tree;
          return s;
        }
      }
    }
  }
  auto id = directory_tree_id(s.source);
  if (!id) return fail(id.error());
  s.tree_id = *id;
  return s;
}

Result<MergedKconfig> merged_fragments(const KernelBuildRequest& req) {
  std::vector<std::vector<KconfigSetting>> frags;
  auto base = parse_kconfig(ktstr_kconfig(), "ktstr.kconfig");
  if (!base) return fail(base.error());
  frags.push_back(std::move(*base));
  if (!req.config_fragment.empty()) {
    std::error_code ec;
    if (!fs::is_regular_file(req.config_fragment, ec))
      return fail("config fragment '" + req.config_fragment + "' does not exist",
                  "give a file of CONFIG_NAME=value lines");
    auto text = read_file(req.config_fragment, size_t{4} << 20);
    if (!text) return fail(text.error());
    auto user = parse_kconfig(*text, req.config_fragment);
    if (!user) return fail(user.error());
    frags.push_back(std::move(*user));
  }
  return merge_kconfig(frags);
}

// A cached build whose kernel is still intact.
std::optional<KernelBuildResult> cached_build(db::Store& store, const std::optional<db::KernelBuildRecord>& row) {
  if (!row) return std::nullopt;
  auto k = store.get_kernel(row->kernel_id);
  if (!k || !*k || check_kernel(**k, false).corrupt) return std::nullopt;
  KernelBuildResult r;
  r.ok = true;
  r.cached = true;
  r.kernel = **k;
  r.build = *row;
  r.log_path = kernel_dir(store, row->kernel_id) + "/build.log";
  return r;
}

std::string make_cc() { return find_in_path("ccache").empty() ? "gcc" : "ccache gcc"; }

std::vector<std::string> make_argv(const std::string& src, const std::string& out, std::vector<std::string> rest) {
  std::vector<std::string> argv = {"make", "-C", src, "O=" + out, "CC=" + make_cc()};
  argv.insert(argv.end(), rest.begin(), rest.end());
  return argv;
}

}  // namespace

std::string kernel_build_key(const std::string& tree_id, const std::string& config_sha256, const std::string& compiler) {
  return sha256_hex(nlohmann::json{"ktstr-kernel-build-1", tree_id, config_sha256, compiler}.dump());
}

std::string kernel_request_key(const std::string& tree_id, const std::string& merged_fragment,
                               const std::string& compiler) {
  return sha256_hex(nlohmann::json{"ktstr-kernel-request-1", tree_id, merged_fragment, compiler}.dump());
}

Result<std::string> directory_tree_id(const std::string& dir) {
  std::vector<std::string> entries;
  std::error_code ec;
  const fs::path root = fs::absolute(dir, ec);
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  if (ec) return fail("cannot read directory '" + dir + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) return fail("cannot read directory '" + dir + "': " + ec.message());
    const fs::path rel = it->path().lexically_relative(root);
    if (it.depth() == 0 && rel == ".git") {
      it.disable_recursion_pending();
      continue;
    }
    const auto st = it->symlink_status(ec);
    std::string line;
    if (fs::is_symlink(st)) {
      line = "l " + rel.string() + " " + fs::read_symlink(it->path(), ec).string();
    } else if (fs::is_directory(st)) {
      line = "d " + rel.string();
    } else if (fs::is_regular_file(st)) {
      auto sum = sha256_file_hex(it->path().string());
      if (!sum) return fail(sum.error());
      const bool exec = (st.permissions() & fs::perms::owner_exec) != fs::perms::none;
      line = std::string(exec ? "x " : "f ") + rel.string() + " " + *sum;
    } else {
      continue;  // sockets, fifos: not source
    }
    entries.push_back(std::move(line));
  }
  std::sort(entries.begin(), entries.end());
  std::string all;
  for (const auto& e : entries) all += e + "\n";
  return "content:" + sha256_hex(all);
}

std::string kernel_compiler_version() {
  static std::once_flag once;
  static std::string version;
  std::call_once(once, [] {
    auto r = run({"gcc", "--version"}, {}, std::chrono::seconds(30));
    if (r && r->ok()) version = r->out.substr(0, r->out.find('\n'));
    if (version.empty()) version = "unknown";
  });
  return version;
}

std::string build_slot_dir(const db::Store& store, const std::string& source) {
  return store.dir() + "/kernel-builds/" + sha256_hex(source).substr(0, 16);
}

bool make_line_is_object(const std::string& line) {
  // kbuild's quiet lines: two spaces, the tool, padding, the target.
  for (const char* tool : {"  CC      ", "  AS      "})
    if (line.rfind(tool, 0) == 0) return line.size() > 2 && line.compare(line.size() - 2, 2, ".o") == 0;
  return false;
}

std::string make_line_phase(const std::string& line) {
  for (const char* start : {"  LD      vmlinux", "  LD      .tmp_vmlinux", "  BTF     ", "  BTFIDS  vmlinux",
                            "  BUILD   arch/x86/boot/bzImage", "  KSYMS   "})
    if (line.rfind(start, 0) == 0) return "link";
  if (make_line_is_object(line)) return "compile";
  return {};
}

std::string built_kernel_source(const db::KernelBuildRecord& b) {
  std::string s = "build:" + b.source;
  if (!b.worktree.empty() && !b.commit_id.empty()) s += "@" + b.commit_id.substr(0, 12);
  if (b.dirty) s += " (dirty)";
  return s;
}

namespace {

using Clock = std::chrono::steady_clock;

// A result that ends the build at once (a failed step, a cached build); none to go on.
using Ending = std::optional<KernelBuildResult>;

// One build_kernel call: what it has learnt so far, its clock, progress and log.
class KernelBuilder {
 public:
  KernelBuilder(db::Store& store, const KernelBuildRequest& req, KernelBuildProgressFn progress)
      : store_(store), req_(req), progress_(std::move(progress)), start_(Clock::now()) {
    opts_.stderr_path = "=stdout";
    opts_.env_extra = {"KBUILD_BUILD_USER=ktstr", "KBUILD_BUILD_HOST=ktstr"};
  }

  Result<KernelBuildResult> run();

 private:
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  void report(const std::string& phase) {
    prog_.phase = phase;
    prog_.elapsed = elapsed();
    if (progress_) progress_(prog_);
  }
  Result<KernelBuildResult> build_in_slot();
  Status checkout();
  Result<Ending> configure(const std::string& logs);
  Result<Ending> make_image();
  Result<KernelBuildResult> register_kernel();
  Result<int> run_step(const std::vector<std::string>& argv, const std::function<void()>& tick);
  KernelBuildResult failed(const std::string& why);
  std::string status_text(int status) const;

  db::Store& store_;
  const KernelBuildRequest& req_;
  KernelBuildProgressFn progress_;
  const Clock::time_point start_;
  KernelBuildProgress prog_;
  MergedKconfig merged_;
  Source src_;
  std::string compiler_;
  std::string request_key_;
  std::string slot_;
  std::string out_;       // make's O=
  std::string srcdir_;    // the source make builds: the tree or the slot's checkout
  std::string worktree_;  // the slot's checkout (from a repo)
  std::string log_;
  std::string config_sha_;
  std::string key_;
  std::string image_;
  SpawnOptions opts_;
  std::chrono::milliseconds waited_{0};  // for KTSTR_BUILD_LOCK: not part of the build's timeout
  KernelBuildResult r_;
};

Result<KernelBuildResult> KernelBuilder::run() {
  if (req_.source_dir.empty() == req_.repo.empty())
    return fail("give either --source DIR or --repo DIR --commit REV", "see 'ktstr kernel build --help'");
  if (!req_.repo.empty() && req_.commit.empty())
    return fail("--repo needs --commit", "give the revision to build, e.g. --commit HEAD");
  if (find_in_path("make").empty()) return fail("kernel build needs make", "install it (scripts/setup.sh does)");

  auto merged = merged_fragments(req_);
  if (!merged) return fail(merged.error());
  merged_ = std::move(*merged);
  auto src = identify_source(req_);
  if (!src) return fail(src.error());
  src_ = std::move(*src);
  compiler_ = kernel_compiler_version();
  request_key_ = kernel_request_key(src_.tree_id, merged_.text, compiler_);
  {
    auto row = db::find_kernel_build_by_request(store_, request_key_);
    if (!row) return fail(row.error());
    if (auto hit = cached_build(store_, *row)) {
      hit->seconds = elapsed();
      return *hit;
    }
  }

  slot_ = build_slot_dir(store_, src_.source);
  if (auto st = make_dirs(slot_); !st) return fail(st.error());
  auto lock = FileLock::take(slot_ + "/lock", [&](const std::string&) { report("waiting"); });
  if (!lock) return fail(lock.error());
  if (auto row = db::find_kernel_build_by_request(store_, request_key_); row) {
    if (auto hit = cached_build(store_, *row)) {
      hit->seconds = elapsed();
      return *hit;
    }
  }
  return build_in_slot();
}

// Checkout, kconfig, make and registration, in the slot this process holds.
Result<KernelBuildResult> KernelBuilder::build_in_slot() {
  (void)write_file_atomic(slot_ + "/source", src_.source + "\n");
  out_ = slot_ + "/out";
  const std::string logs = slot_ + "/logs";
  if (auto st = make_dirs(out_); !st) return fail(st.error());
  if (auto st = make_dirs(logs); !st) return fail(st.error());
  if (auto st = checkout(); !st) return fail(st.error());

  auto configured = configure(logs);
  if (!configured) return fail(configured.error());
  if (*configured) return std::move(**configured);

  prog_.estimate = read_estimate(store_);
  // KTSTR_BUILD_LOCK: one heavy build at a time on a shared host.
  const auto lock_start = Clock::now();
  auto host_lock = FileLock::from_env(kBuildLockEnv, [&](const std::string&) { report("queued"); });
  if (!host_lock) return fail(host_lock.error());
  waited_ = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - lock_start);
  auto made = make_image();
  if (!made) return fail(made.error());
  if (*made) return std::move(**made);
  return register_kernel();
}

Status KernelBuilder::checkout() {
  srcdir_ = src_.source;
  if (!src_.from_repo) return {};
  report("checkout");
  worktree_ = slot_ + "/tree";
  auto repo = gitrepo::Repo::open(req_.repo);
  if (!repo) return fail(repo.error());
  auto tree = (*repo)->update_checkout(src_.commit, worktree_);
  if (!tree) return fail(tree.error());
  srcdir_ = worktree_;
  return {};
}

// kconfig: allnoconfig with ktstr's fragment and the user's as
// KCONFIG_ALLCONFIG, so everything not asked for (or needed by what is)
// stays off; values whose dependencies fail are dropped, and reported.
Result<Ending> KernelBuilder::configure(const std::string& logs) {
  report("config");
  const std::string stamp = std::to_string(std::time(nullptr));
  log_ = logs + "/" + stamp + "-" + request_key_.substr(0, 12) + ".log";
  const std::string fragment = slot_ + "/ktstr.fragment";
  if (auto st = write_file_atomic(fragment, merged_.text); !st) return fail(st.error());
  opts_.stdout_path = log_ + ".step";
  r_.log_path = log_;
  auto cfg = run_step(make_argv(srcdir_, out_, {"KCONFIG_ALLCONFIG=" + fragment, "allnoconfig"}), {});
  if (!cfg) return fail(cfg.error());
  if (*cfg != 0) return Ending(failed("configuring the kernel " + status_text(*cfg)));
  auto final_text = read_file(out_ + "/.config", size_t{16} << 20);
  if (!final_text) return fail(final_text.error().context("reading the kernel config kconfig wrote"));
  auto final_config = parse_kconfig(*final_text, out_ + "/.config");
  if (!final_config) return fail(final_config.error());
  if (auto st = check_required_options(*final_config, src_.source); !st) return fail(st.error());
  r_.dropped = dropped_settings(merged_, *final_config);
  config_sha_ = sha256_hex(*final_text);
  key_ = kernel_build_key(src_.tree_id, config_sha_, compiler_);
  auto row = db::get_kernel_build(store_, key_);
  if (!row) return fail(row.error());
  if (auto hit = cached_build(store_, *row)) {
    std::remove(log_.c_str());
    hit->seconds = elapsed();
    hit->dropped = r_.dropped;
    return hit;
  }
  return Ending();
}

// The build: make's quiet lines tell the phase and the objects compiled.
Result<Ending> KernelBuilder::make_image() {
  report("compile");
  LogFollower follow(log_ + ".step");
  auto tick = [&] {
    for (const auto& line : follow.poll()) {
      if (make_line_is_object(line)) ++prog_.objects;
      std::string phase = make_line_phase(line);
      if (phase == "link") prog_.phase = phase;
    }
    prog_.elapsed = elapsed();
    if (progress_) progress_(prog_);
  };
  const unsigned jobs = req_.jobs ? req_.jobs : std::max(1u, std::thread::hardware_concurrency());
  auto made = run_step(make_argv(srcdir_, out_, {"-j" + std::to_string(jobs), "bzImage"}), tick);
  if (!made) return fail(made.error());
  if (*made != 0) return Ending(failed("make " + status_text(*made)));
  image_ = out_ + "/arch/x86/boot/bzImage";
  if (!path_exists(image_)) return Ending(failed("make succeeded but '" + image_ + "' was not produced"));
  return Ending();
}

// Register like a fetched kernel: staged entry renamed into the cache.
Result<KernelBuildResult> KernelBuilder::register_kernel() {
  report("register");
  const size_t total = count_objects(out_);
  if (total > 0 && prog_.objects * 2 > total)  // a whole build: the estimate for the next one
    (void)write_file_atomic(estimate_path(store_), std::to_string(total) + "\n");
  db::KernelBuildRecord row;
  row.key = key_;
  row.request_key = request_key_;
  row.tree_id = src_.tree_id;
  row.source = src_.source;
  row.commit_id = src_.commit;
  row.dirty = src_.dirty;
  row.config_sha256 = config_sha_;
  row.compiler = compiler_;
  row.build_dir = out_;
  row.worktree = worktree_;
  row.duration_ms = static_cast<int64_t>(elapsed() * 1000);
  row.created_at = static_cast<int64_t>(std::time(nullptr));
  AddOptions add;
  add.config_path = out_ + "/.config";
  add.name = req_.name;
  add.source = built_kernel_source(row);
  add.extra_files = {{"build.log", log_}};
  auto k = add_kernel(store_, image_, add);
  if (!k) return fail(k.error().context("cannot register the kernel built from '" + src_.source + "'"));
  row.kernel_id = k->id;
  if (auto st = db::put_kernel_build(store_, row); !st) return fail(st.error());
  std::remove(log_.c_str());
  r_.ok = true;
  r_.kernel = *k;
  r_.build = row;
  r_.log_path = kernel_dir(store_, k->id) + "/build.log";
  r_.seconds = elapsed();
  spdlog::debug("kernel build {} of {}: {:.1f} s", key_.substr(0, 12), src_.source, r_.seconds);
  return r_;
}

// One make run, its output appended to the build's log; `tick` while it runs.
Result<int> KernelBuilder::run_step(const std::vector<std::string>& argv, const std::function<void()>& tick) {
  {
    std::ofstream l(log_, std::ios::binary | std::ios::app);
    l << "$ " << argv_to_string(argv) << "\n";
  }
  auto child = spawn(argv, opts_);
  if (!child) return fail(child.error());
  const auto left =
      req_.timeout + waited_ - std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_);
  int status = wait_process_tree(child->pid, std::max(left, std::chrono::milliseconds(1)), tick);
  if (tick) tick();
  append_file(log_, log_ + ".step");
  std::remove((log_ + ".step").c_str());
  return status;
}

// A failed step: the result, with the log's telling lines.
KernelBuildResult KernelBuilder::failed(const std::string& why) {
  std::ofstream(log_, std::ios::binary | std::ios::app) << "ktstr: " << why << "\n";
  r_.ok = false;
  r_.error_excerpt = build_error_excerpt(read_text(log_), kExcerptLines);
  if (r_.error_excerpt.find(why) == std::string::npos) r_.error_excerpt += why + "\n";
  r_.seconds = elapsed();
  return r_;
}

std::string KernelBuilder::status_text(int status) const {
  if (status == 128 + 9 && elapsed() * 1000 >= static_cast<double>(req_.timeout.count()))
    return "timed out after " + std::to_string(req_.timeout.count() / 1000) + " s";
  return status > 128 ? "was killed by signal " + std::to_string(status - 128)
                      : "failed with status " + std::to_string(status);
}

}  // namespace

Result<KernelBuildResult> build_kernel(db::Store& store, const KernelBuildRequest& req, KernelBuildProgressFn progress) {
  return KernelBuilder(store, req, std::move(progress)).run();
}

namespace {

// Removes slots no build row uses (and that no build holds now).
void remove_unused_slots(db::Store& store, const std::vector<db::KernelBuildRecord>& remaining,
                         std::vector<std::string>& removed) {
  std::set<std::string> used;
  for (const auto& b : remaining) used.insert(build_slot_dir(store, b.source));
  const std::string parent = store.dir() + "/kernel-builds";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    if (!e.is_directory(ec)) continue;
    const std::string slot = e.path().string();
    if (used.count(slot)) continue;
    auto lock = FileLock::try_take(slot + "/lock");
    if (!lock || !*lock) continue;  // a build is running there (or its lock cannot be had)
    if (remove_tree(slot)) removed.push_back(slot);
  }
}

}  // namespace

Result<std::vector<std::string>> forget_kernel_builds(db::Store& store, const std::string& kernel_id) {
  if (auto st = db::remove_kernel_builds_of(store, kernel_id); !st) return fail(st.error());
  auto remaining = db::list_kernel_builds(store);
  if (!remaining) return fail(remaining.error());
  std::vector<std::string> removed;
  remove_unused_slots(store, *remaining, removed);
  return removed;
}

Result<std::vector<std::string>> gc_kernel_builds(db::Store& store, size_t keep) {
  auto builds = db::list_kernel_builds(store);
  if (!builds) return fail(builds.error());
  std::vector<std::string> kept_kernels, removed;
  for (const auto& b : *builds) {
    if (std::find(kept_kernels.begin(), kept_kernels.end(), b.kernel_id) != kept_kernels.end()) continue;
    if (kept_kernels.size() < keep) {
      kept_kernels.push_back(b.kernel_id);
      continue;
    }
    if (auto k = store.get_kernel(b.kernel_id); k && *k) {
      auto gone = remove_kernel(store, b.kernel_id);
      if (!gone) return fail(gone.error());
      removed.push_back("kernel " + b.kernel_id + " (" + built_kernel_source(b) + ")");
    }
    if (auto st = db::remove_kernel_builds_of(store, b.kernel_id); !st) return fail(st.error());
  }
  auto remaining = db::list_kernel_builds(store);
  if (!remaining) return fail(remaining.error());
  remove_unused_slots(store, *remaining, removed);
  return removed;
}

}  // namespace ktstr::kbuild
