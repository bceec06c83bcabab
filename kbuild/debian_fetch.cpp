#include "kbuild/debian_fetch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/kernel_cache.hpp"
#include "kbuild/staging_dir.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace ktstr::kbuild {

namespace {

constexpr std::string_view kImagePrefix = "linux-image-";
constexpr std::string_view kCloudSuffix = "-cloud-amd64";
constexpr auto kAptTimeout = std::chrono::minutes(15);

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool is_security(const std::string& uri, const std::string& suites) {
  return uri.find("security") != std::string::npos || suites.find("security") != std::string::npos;
}

std::optional<AptMirror> mirror_from_deb822(const std::string& text) {
  std::istringstream in(text + "\n\n");
  std::map<std::string, std::string> stanza;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line[0] == '#') continue;
    if (trim(line).empty()) {
      auto types = stanza["types"], uris = stanza["uris"], suites = stanza["suites"];
      if (types.find("deb") != std::string::npos && !uris.empty() && !is_security(uris, suites))
        return AptMirror{words(uris)[0], stanza["signed-by"]};
      stanza.clear();
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos || std::isspace(static_cast<unsigned char>(line[0]))) continue;
    std::string key = line.substr(0, colon);
    std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
    stanza[key] = trim(line.substr(colon + 1));
  }
  return std::nullopt;
}

std::optional<AptMirror> mirror_from_one_line(const std::string& text) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (w.empty() || w[0] != "deb") continue;
    AptMirror m;
    size_t i = 1;
    if (i < w.size() && w[i].front() == '[') {  // [arch=amd64 signed-by=/x.gpg]
      for (; i < w.size(); ++i) {
        std::string opt = w[i];
        std::erase(opt, '[');
        std::erase(opt, ']');
        if (opt.rfind("signed-by=", 0) == 0) m.signed_by = opt.substr(10);
        if (w[i].back() == ']') break;
      }
      ++i;
    }
    if (i + 1 >= w.size() || is_security(w[i], w[i + 1])) continue;
    m.uri = w[i];
    return m;
  }
  return std::nullopt;
}

struct AptEnv {
  std::string root;                  // <cache>/apt
  std::vector<std::string> options;  // -o ... for every apt call

  std::vector<std::string> argv(const std::string& tool, std::vector<std::string> rest) const {
    std::vector<std::string> a{tool};
    a.insert(a.end(), options.begin(), options.end());
    a.insert(a.end(), rest.begin(), rest.end());
    return a;
  }
};

Result<std::string> run_tool(const std::vector<std::string>& argv, const std::string& cwd = {}) {
  SpawnOptions o;
  o.cwd = cwd;
  auto r = run(argv, o, std::chrono::duration_cast<std::chrono::milliseconds>(kAptTimeout));
  if (!r) return fail(r.error());
  if (!r->ok()) {
    std::string err = trim(r->err);
    if (err.size() > 600) err = "..." + err.substr(err.size() - 600);
    return fail("'" + argv_to_string(argv) + "' failed (status " + std::to_string(r->status) + "): " + err);
  }
  return r->out;
}

Result<AptEnv> prepare_apt(const std::string& cache) {
  if (find_in_path("apt-get").empty() || find_in_path("dpkg-deb").empty())
    return fail("kernel fetch needs apt-get and dpkg-deb",
                "on a system without apt, download a kernel yourself and run 'ktstr kernel add PATH'");
  auto mirror = system_debian_mirror();
  if (!mirror) return fail(mirror.error());
  AptEnv env;
  env.root = cache + "/apt";
  for (auto d : {"/lists/partial", "/cache/archives/partial", "/etc"})
    if (auto r = make_dirs(env.root + d); !r) return fail(r.error());
  std::string list;
  for (auto& suite : kKernelSuites) {
    list += "deb ";
    if (!mirror->signed_by.empty()) list += "[signed-by=" + mirror->signed_by + "] ";
    list += mirror->uri + " " + suite + " main\n";
  }
  if (auto r = write_file_atomic(env.root + "/etc/sources.list", list); !r) return fail(r.error());
  env.options = {"-o", "Dir::Etc::sourcelist=" + env.root + "/etc/sources.list",
                 "-o", "Dir::Etc::sourceparts=/dev/null",
                 "-o", "Dir::State::Lists=" + env.root + "/lists",
                 "-o", "Dir::Cache=" + env.root + "/cache",
                 "-o", "Debug::NoLocking=1",
                 "-o", "APT::Sandbox::User=root",
                 "-o", "APT::Architecture=amd64"};
  return env;
}

struct PackageInfo {
  std::string version;
  std::vector<std::string> depends;  // package names only
  uint64_t size = 0;
};

Result<PackageInfo> show_package(const AptEnv& apt, const std::string& package) {
  auto out = run_tool(apt.argv("apt-cache", {"show", "--no-all-versions", package}));
  if (!out) return fail(out.error());
  PackageInfo info;
  std::istringstream in(*out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) break;  // first stanza only
    if (line.rfind("Version: ", 0) == 0) info.version = trim(line.substr(9));
    if (line.rfind("Size: ", 0) == 0) info.size = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("Depends: ", 0) == 0) {
      std::string deps = line.substr(9);
      std::istringstream ds(deps);
      for (std::string alt; std::getline(ds, alt, ',');) {
        auto w = words(alt);
        if (!w.empty()) info.depends.push_back(w[0]);  // first alternative
      }
    }
  }
  if (info.version.empty()) return fail("apt-cache knows no version of '" + package + "'");
  return info;
}

std::string human_size(uint64_t bytes) {
  constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;
  if (bytes >= kMiB) return fmt::format("{} MB", (bytes + kMiB / 2) / kMiB);
  return fmt::format("{} kB", (bytes + kKiB / 2) / kKiB);
}

// Download one package and unpack it into `root`.
Status fetch_and_unpack(const AptEnv& apt, const std::string& work, const std::string& package,
                        const PackageInfo& info, const std::string& root, const ProgressFn& say) {
  say(fmt::format("fetching {} ({})...", package, human_size(info.size)));
  auto dl = StagingDir::create(work, "deb");
  if (!dl) return fail(dl.error());
  if (auto r = run_tool(apt.argv("apt-get", {"-q", "download", package + "=" + info.version}), dl->path()); !r)
    return fail(r.error().context("downloading '" + package + "'"));
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dl->path(), ec)) {
    if (e.path().extension() != ".deb") continue;
    if (auto r = run_tool({"dpkg-deb", "-x", e.path().string(), root}); !r) return fail(r.error());
  }
  return {};
}

std::string first_file(const std::vector<fs::path>& paths) {
  std::error_code ec;
  for (auto& p : paths)
    if (fs::is_regular_file(p, ec)) return p.string();
  return {};
}

}  // namespace

Result<AptMirror> system_debian_mirror(const std::string& etc_apt) {
  std::error_code ec;
  std::vector<fs::path> sources;
  for (auto& e : fs::directory_iterator(etc_apt + "/sources.list.d", ec))
    if (e.path().extension() == ".sources") sources.push_back(e.path());
  std::sort(sources.begin(), sources.end());
  for (auto& p : sources) {
    auto text = read_file(p.string(), 1 << 20);
    if (!text) continue;
    if (auto m = mirror_from_deb822(*text)) return *m;
  }
  if (auto text = read_file(etc_apt + "/sources.list", 1 << 20))
    if (auto m = mirror_from_one_line(*text)) return *m;
  return fail("no Debian archive found in the apt sources under '" + etc_apt + "'",
              "kernel fetch uses the mirror of /etc/apt/sources.list.d/*.sources (URIs:) or /etc/apt/sources.list");
}

std::vector<DebianKernelPackage> parse_cloud_kernel_packages(const std::string& search_output) {
  std::vector<DebianKernelPackage> out;
  std::istringstream in(search_output);
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (w.empty()) continue;
    const std::string& name = w[0];
    if (name.rfind(kImagePrefix, 0) != 0 || name.size() <= kImagePrefix.size() + kCloudSuffix.size() ||
        name.compare(name.size() - kCloudSuffix.size(), kCloudSuffix.size(), kCloudSuffix) != 0)
      continue;
    std::string release = name.substr(kImagePrefix.size());
    if (!looks_like_version(upstream_version(release))) continue;
    out.push_back({name, release});
  }
  return out;
}

Result<DebianKernelPackage> choose_debian_kernel(const std::vector<DebianKernelPackage>& available,
                                                 const std::string& request) {
  auto newest_matching = [&](const std::string& ref) -> std::optional<DebianKernelPackage> {
    std::optional<DebianKernelPackage> best;
    for (auto& p : available) {
      if (!version_matches(p.release, ref)) continue;
      if (!best) {
        best = p;
        continue;
      }
      int c = compare_versions(upstream_version(p.release), upstream_version(best->release));
      // Same upstream version: the later Debian build ("+deb14" after "+deb13").
      if (c > 0 || (c == 0 && p.release > best->release)) best = p;
    }
    return best;
  };
  if (!request.empty() && !looks_like_version(request))
    return fail("'" + request + "' is not a kernel version", "give a version such as 7.3 or 7.3.4");
  std::vector<std::string> order = request.empty() ? kDefaultKernelSeries : std::vector<std::string>{request};
  for (auto& ref : order)
    if (auto p = newest_matching(ref)) return *p;
  std::set<std::string, bool (*)(const std::string&, const std::string&)> versions(
      [](const std::string& a, const std::string& b) { return compare_versions(a, b) < 0; });
  for (auto& p : available) versions.insert(upstream_version(p.release));
  std::string list;
  for (auto& v : versions) list += (list.empty() ? "" : " ") + v;
  std::string what = request.empty() ? "of the series 7.3, 7.2 or 6.17" : "matching '" + request + "'";
  return fail("no Debian cloud kernel " + what + " in " + fmt::format("{}", fmt::join(kKernelSuites, ", ")),
              list.empty() ? "the package lists are empty; check the network and the apt sources"
                           : "available: " + list);
}

Result<KernelRecord> fetch_debian_kernel(db::Store& store, const std::string& request, ProgressFn progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  auto apt = prepare_apt(store.dir());
  if (!apt) return fail(apt.error());
  // The private apt state runs without apt's own locking (Debug::NoLocking),
  // so concurrent fetches take turns on a lock of ours; the kernel fd closes
  // (and unlocks) when this function returns.
  const std::string lock_path = apt->root + "/ktstr-fetch.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return fail("cannot open '" + lock_path + "': " + std::strerror(errno));
  struct LockGuard {
    int fd;
    ~LockGuard() { ::close(fd); }
  } lock_guard{lock_fd};
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    say("waiting for another 'ktstr kernel fetch' to finish...");
    while (::flock(lock_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }

  say(fmt::format("updating the package lists of {}...", fmt::join(kKernelSuites, ", ")));
  if (auto r = run_tool(apt->argv("apt-get", {"-q", "update"})); !r) return fail(r.error());
  auto search = run_tool(apt->argv("apt-cache", {"search", "--names-only", "^linux-image-[0-9.]+.*-cloud-amd64$"}));
  if (!search) return fail(search.error());
  auto chosen = choose_debian_kernel(parse_cloud_kernel_packages(*search), request);
  if (!chosen) return fail(chosen.error());
  auto image_pkg = show_package(*apt, chosen->package);
  if (!image_pkg) return fail(image_pkg.error());
  const std::string source = "debian:" + chosen->package + "=" + image_pkg->version;

  // Already cached and intact: nothing to download.
  if (auto all = store.list_kernels())
    for (auto& k : *all)
      if (k.source == source && !check_kernel(k, true).corrupt) {
        say("kernel " + k.version + " is already cached as " + k.id);
        return k;
      }

  auto work = StagingDir::create(apt->root, "fetch");
  if (!work) return fail(work.error());
  const std::string root = work->path() + "/root";
  if (auto r = make_dirs(root); !r) return fail(r.error());
  const fs::path r(root);
  const std::string rel = chosen->release;
  auto find_image = [&] {
    return first_file({r / "boot" / ("vmlinuz-" + rel), r / "usr/lib/modules" / rel / "vmlinuz"});
  };
  auto find_config = [&] {
    return first_file({r / "boot" / ("config-" + rel), r / "usr/lib/modules" / rel / "config"});
  };

  if (auto s = fetch_and_unpack(*apt, work->path(), chosen->package, *image_pkg, root, say); !s)
    return fail(s.error());
  // A metapackage (7.x) holds neither: they are in its dependencies named
  // after the release (linux-binary-*, linux-base-*); modules never hold them.
  for (auto& dep : image_pkg->depends) {
    if (!find_image().empty() && !find_config().empty()) break;
    if (dep.find(rel) == std::string::npos || dep.rfind("linux-modules-", 0) == 0) continue;
    auto info = show_package(*apt, dep);
    if (!info) return fail(info.error());
    if (auto s = fetch_and_unpack(*apt, work->path(), dep, *info, root, say); !s) return fail(s.error());
  }
  std::string image = find_image();
  if (image.empty())
    return fail("no kernel image found in '" + chosen->package + "' or its dependencies",
                "the Debian packaging may have changed; download the image and use 'ktstr kernel add'");
  AddOptions opts;
  opts.config_path = find_config();
  opts.source = source;
  say("registering " + rel + "...");
  auto k = add_kernel(store, image, opts);
  if (k && !k->sched_ext) spdlog::warn("kernel {} has no sched_ext support", k->version);
  return k;
}

}  // namespace ktstr::kbuild
