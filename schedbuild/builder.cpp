#include "schedbuild/builder.hpp"

#include "core/staging_dir.hpp"

#include "core/build_log.hpp"
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/bisects.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

namespace ktstr::schedbuild {
namespace {

constexpr size_t kExcerptLines = 10;
constexpr std::streamoff kLogReadLimit = 8 << 20;  // excerpts read at most the log's last 8 MiB

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// The log's tail (whole when small enough).
std::string read_log_tail(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return {};
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > kLogReadLimit ? size - kLogReadLimit : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// Lines naming an error first (compiler and make errors), else the log's
// last lines: what a user reads first to see why a commit did not build.
void append_to_log(const std::string& path, const std::string& text) {
  if (FILE* f = std::fopen(path.c_str(), "a")) {
    std::fputs(text.c_str(), f);
    std::fclose(f);
  }
}

// A directory next to the cache entry, renamed into place when complete, so
// an entry is never seen half-written (a kill leaves only a .tmp-* directory).
std::string entry_dir(db::Store& store, const std::string& key) {
  return store.artifacts_dir() + "/sched-builds/" + key;
}

// A stored entry is usable when its files are there (a user may have
// removed the directory); otherwise it is built again.
std::optional<BuildResult> cached_result(db::Store& store, const db::SchedBuildRecord& rec) {
  BuildResult r;
  r.ok = rec.ok;
  r.cached = true;
  r.key = rec.key;
  const std::string dir = entry_dir(store, rec.key);
  r.log_path = dir + "/build.log";
  r.error_excerpt = rec.error_excerpt;
  r.seconds = static_cast<double>(rec.duration_ms) / 1000.0;
  if (!path_exists(dir + "/meta.json")) return std::nullopt;
  if (rec.ok) {
    r.binary = dir + "/" + rec.binary_name;
    if (rec.binary_name.empty() || ::access(r.binary.c_str(), X_OK) != 0) return std::nullopt;
  }
  return r;
}

// Staging directories left by a ktstr killed mid-build. Only old ones go:
// a younger one may belong to a build running in another process.
void remove_stale_staging(const std::string& parent) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto cutoff = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : fs::directory_iterator(parent, ec)) {
    if (e.path().filename().string().rfind(".tmp-", 0) != 0) continue;
    std::error_code mec;
    const auto mtime = fs::last_write_time(e.path(), mec);
    if (!mec && mtime < cutoff) (void)remove_tree(e.path().string());
  }
}

Status check_request(const BuildRequest& req) {
  if (req.tree_id.empty()) return fail("cannot build a scheduler without a source tree id");
  std::error_code ec;
  if (!std::filesystem::is_directory(req.source_dir, ec))
    return fail("scheduler source directory '" + req.source_dir + "' does not exist");
  if (req.command.empty() || req.command[0].empty()) return fail("the build command is empty");
  const std::filesystem::path art(req.artifact);
  if (req.artifact.empty() || art.is_absolute())
    return fail("the scheduler artifact '" + req.artifact + "' must be a path relative to the source tree",
                "give the path of the built binary inside the tree, e.g. --artifact build/scx_foo");
  for (const auto& part : art)
    if (part == "..")
      return fail("the scheduler artifact '" + req.artifact + "' leaves the source tree",
                  "give the path of the built binary inside the tree");
  return {};
}

}  // namespace

std::string compiler_version() {
  static std::once_flag once;
  static std::string version;
  std::call_once(once, [] {
    for (const char* cc : {"cc", "clang"}) {
      if (find_in_path(cc).empty()) continue;
      auto r = run({cc, "--version"}, {}, std::chrono::seconds(30));
      if (!r || !r->ok()) continue;
      std::string line = first_line(r->out);
      if (!line.empty()) version += (version.empty() ? "" : "; ") + line;
    }
    if (version.empty()) version = "unknown";
  });
  return version;
}

std::string build_key(const BuildRequest& req) {
  const nlohmann::json parts = {"ktstr-sched-build-1", req.tree_id, req.command, req.artifact, compiler_version()};
  return sha256_hex(parts.dump());
}

namespace {

// The command to spawn. A bare name comes from PATH, the same for every
// commit: missing is an error of the set-up. A path is the tree's own
// (./build.sh) and may be missing in some commits: that is a failed build.
Result<std::vector<std::string>> resolve_command(const BuildRequest& req) {
  std::vector<std::string> argv = req.command;
  if (argv[0].find('/') == std::string::npos) {
    if (find_in_path(argv[0]).empty())
      return fail("build command '" + argv[0] + "' not found", "install it or put it on PATH");
  } else if (argv[0][0] != '/') {
    argv[0] = std::filesystem::absolute(req.source_dir).string() + "/" + argv[0];
  }
  return argv;
}

// How the build command ran: its status (none when it could not be spawned).
struct CommandRun {
  std::optional<Completed> done;
  std::string spawn_error;
  std::chrono::steady_clock::duration elapsed{};
};

// Runs the build command in the source tree, its output appended to `log`.
CommandRun run_command(const std::vector<std::string>& argv, const BuildRequest& req, const std::string& log) {
  SpawnOptions opts;
  opts.cwd = req.source_dir;
  opts.stdout_path = log + ".out";
  opts.stderr_path = "=stdout";
  const auto start = std::chrono::steady_clock::now();
  // spawn + wait_process_tree rather than run(): run() applies its timeout only
  // while it reads captured output (the output goes to the log here), and
  // kills only the command, not what it started.
  CommandRun c;
  if (auto child = spawn(argv, opts); child)
    c.done = Completed{wait_process_tree(child->pid, req.timeout), {}, {}};
  else
    c.spawn_error = child.error().msg;
  c.elapsed = std::chrono::steady_clock::now() - start;
  {
    // run() truncates its output file; the command line goes first.
    std::ifstream out(log + ".out", std::ios::binary);
    std::ofstream dst(log, std::ios::binary | std::ios::app);
    dst << out.rdbuf();
  }
  std::remove((log + ".out").c_str());
  return c;
}

// Why the build failed (empty: it did not), and whether that is worth
// remembering (a timeout or a kill may pass on a quieter machine).
struct Verdict {
  std::string failure;
  bool cacheable = true;
};

Verdict judge(const CommandRun& c, const BuildRequest& req, const std::string& artifact_src) {
  Verdict v;
  if (!c.done) {
    v.failure = "cannot run the build command: " + c.spawn_error;
  } else if (c.done->status == 128 + 9 && c.elapsed >= req.timeout) {
    v.failure = "the build command timed out after " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(req.timeout).count()) + " s";
    v.cacheable = false;  // may pass on a quieter machine
  } else if (c.done->status > 128) {
    v.failure = "the build command was killed by signal " + std::to_string(c.done->status - 128);
    v.cacheable = false;
  } else if (c.done->status != 0) {
    v.failure = "the build command exited with status " + std::to_string(c.done->status);
  } else {
    struct stat st {};
    if (::stat(artifact_src.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      v.failure = "the build command succeeded but '" + req.artifact + "' was not produced";
    else if (::access(artifact_src.c_str(), X_OK) != 0)
      v.failure = "the build command succeeded but '" + req.artifact + "' is not executable";
  }
  return v;
}

// The entry's database row.
db::SchedBuildRecord make_record(const BuildRequest& req, const std::string& key, const BuildResult& r,
                                 const CommandRun& c, const std::string& binary_name, int64_t now) {
  db::SchedBuildRecord rec;
  rec.key = key;
  rec.tree = req.tree_id;
  rec.command = req.command;
  rec.artifact = req.artifact;
  rec.compiler = compiler_version();
  rec.ok = r.ok;
  rec.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(c.elapsed).count();
  rec.binary_name = binary_name;
  rec.error_excerpt = r.error_excerpt;
  rec.created_at = now;
  return rec;
}

// meta.json beside the entry: the row's fields and what the row does not say
// (the failure, whether the row is kept).
nlohmann::json meta_json(const db::SchedBuildRecord& rec, const BuildResult& r, const Verdict& v) {
  return {{"key", rec.key},           {"tree", rec.tree},     {"command", rec.command},
          {"artifact", rec.artifact}, {"compiler", rec.compiler}, {"ok", rec.ok},
          {"seconds", r.seconds}, {"binary", rec.binary_name}, {"error", v.failure},
          {"indexed", v.cacheable},  {"created_at", rec.created_at}};
}

}  // namespace

Result<BuildResult> build(db::Store& store, const BuildRequest& req) {
  if (auto st = check_request(req); !st) return fail(st.error());
  auto argv = resolve_command(req);
  if (!argv) return fail(argv.error());

  const std::string key = build_key(req);
  auto existing = db::get_sched_build(store, key);
  if (!existing) return fail(existing.error());
  if (*existing)
    if (auto hit = cached_result(store, **existing)) return *hit;

  const std::string parent = store.artifacts_dir() + "/sched-builds";
  remove_stale_staging(parent);
  auto staging = StagingDir::create(parent, key.substr(0, 16));
  if (!staging) return fail(staging.error());
  const std::string log = staging->path() + "/build.log";
  append_to_log(log, "$ " + argv_to_string(req.command) + "\n");
  const CommandRun ran = run_command(*argv, req, log);

  BuildResult r;
  r.key = key;
  r.seconds = std::chrono::duration<double>(ran.elapsed).count();
  const std::string artifact_src = req.source_dir + "/" + req.artifact;
  const Verdict verdict = judge(ran, req, artifact_src);
  std::string binary_name;
  if (verdict.failure.empty()) {
    binary_name = std::filesystem::path(req.artifact).filename().string();
    if (binary_name == "build.log" || binary_name == "meta.json") binary_name = "bin-" + binary_name;
    if (auto st = copy_file_atomic(artifact_src, staging->path() + "/" + binary_name, 0755); !st)
      return fail(st.error().context("cannot cache the scheduler built from tree " + req.tree_id));
    r.ok = true;
  } else {
    append_to_log(log, "ktstr: " + verdict.failure + "\n");
    r.error_excerpt = build_error_excerpt(read_log_tail(log), kExcerptLines);
    if (r.error_excerpt.find(verdict.failure) == std::string::npos) r.error_excerpt += verdict.failure + "\n";
  }

  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  const db::SchedBuildRecord rec = make_record(req, key, r, ran, binary_name, now);
  const nlohmann::json meta = meta_json(rec, r, verdict);
  if (auto st = write_file_atomic(staging->path() + "/meta.json", meta.dump(2) + "\n"); !st) return fail(st.error());

  // Another process may have finished the same build meanwhile: use its
  // entry rather than replacing files it may be running.
  if (auto again = db::get_sched_build(store, key); again && *again)
    if (auto hit = cached_result(store, **again)) return *hit;
  const std::string dir = entry_dir(store, key);
  if (auto st = staging->commit(dir); !st) return fail(st.error());
  r.log_path = dir + "/build.log";
  if (r.ok) r.binary = dir + "/" + binary_name;
  if (verdict.cacheable) {
    if (auto st = db::put_sched_build(store, rec); !st) return fail(st.error());
  } else if (auto st = db::remove_sched_build(store, key); !st) {
    return fail(st.error());
  }
  spdlog::debug("scheduler build {} of tree {}: {} in {:.1f} s", key.substr(0, 12), req.tree_id,
                r.ok ? "ok" : verdict.failure, r.seconds);
  return r;
}

}  // namespace ktstr::schedbuild
