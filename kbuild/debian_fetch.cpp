#include "kbuild/debian_fetch.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/file_lock.hpp"
#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_pool.hpp"
#include "kbuild/kernel_cache.hpp"
#include "core/staging_dir.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
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
  AptMirror mirror;
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
  env.mirror = *mirror;
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
  std::string source;    // source package name ("linux-signed-amd64")
  std::string filename;  // pool path, "" for a package fetched from the pool directly
  std::vector<DebianDependency> depends;
  uint64_t size = 0;
};

// Parses the first stanza of `apt-cache show` output; nullopt when apt-cache
// printed none (the package is not in the index).
std::optional<PackageInfo> parse_show(const std::string& out) {
  PackageInfo info;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) break;  // first stanza only
    if (line.rfind("Version: ", 0) == 0) info.version = trim(line.substr(9));
    if (line.rfind("Source: ", 0) == 0) info.source = source_name(line.substr(8));
    if (line.rfind("Filename: ", 0) == 0) info.filename = trim(line.substr(10));
    if (line.rfind("Size: ", 0) == 0) info.size = std::strtoull(line.c_str() + 6, nullptr, 10);
    if (line.rfind("Depends: ", 0) == 0) info.depends = parse_depends(line.substr(9));
  }
  if (info.version.empty()) return std::nullopt;
  return info;
}

// `apt-cache show` of a package the index lists; nullopt when it lists none.
Result<std::optional<PackageInfo>> find_package(const AptEnv& apt, const std::string& package) {
  SpawnOptions o;
  auto r = run(apt.argv("apt-cache", {"show", "--no-all-versions", package}), o,
               std::chrono::duration_cast<std::chrono::milliseconds>(kAptTimeout));
  if (!r) return fail(r.error());
  // apt-cache exits 100 ("No packages found") for a name known only from Depends.
  if (!r->ok() && r->out.empty()) return std::optional<PackageInfo>();
  return parse_show(r->out);
}

Result<PackageInfo> show_package(const AptEnv& apt, const std::string& package) {
  auto info = find_package(apt, package);
  if (!info) return fail(info.error());
  if (!*info) return fail("apt-cache knows no version of '" + package + "'");
  return **info;
}

std::string human_size(uint64_t bytes) {
  constexpr uint64_t kKiB = 1024, kMiB = 1024 * 1024;
  if (bytes >= kMiB) return fmt::format("{} MB", (bytes + kMiB / 2) / kMiB);
  return fmt::format("{} kB", (bytes + kKiB / 2) / kKiB);
}

Status unpack_debs(const std::string& dir, const std::string& root) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".deb") continue;
    if (auto r = run_tool({"dpkg-deb", "-x", e.path().string(), root}); !r) return fail(r.error());
  }
  return {};
}

// Download one indexed package and unpack it into `root`.
Status fetch_and_unpack(const AptEnv& apt, const std::string& work, const std::string& package,
                        const PackageInfo& info, const std::string& root, const ProgressFn& say) {
  say(fmt::format("fetching {} ({})...", package, human_size(info.size)));
  auto dl = StagingDir::create(work, "deb");
  if (!dl) return fail(dl.error());
  if (auto r = run_tool(apt.argv("apt-get", {"-q", "download", package + "=" + info.version}), dl->path()); !r)
    return fail(r.error().context("downloading '" + package + "'"));
  return unpack_debs(dl->path(), root);
}

// A dependency the suite index no longer lists (see debian_pool.hpp):
// download it from the pool by its path, with apt's own downloader, and
// check that the file is that package at that version before unpacking.
Status fetch_from_pool(const AptEnv& apt, const std::string& work, const DebianDependency& dep,
                       const std::vector<std::string>& sources, const std::string& component,
                       const std::string& root, const ProgressFn& say) {
  const std::string helper = "/usr/lib/apt/apt-helper";
  std::error_code ec;
  if (!fs::is_regular_file(helper, ec))
    return fail("'" + dep.package + "' is not in the package index and '" + helper + "' is missing to fetch it from the pool");
  std::string base = apt.mirror.uri;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::vector<std::string> tried;
  for (const auto& source : sources) {
    const std::string path = pool_path(component, source, dep.package, dep.version);
    auto dl = StagingDir::create(work, "pool");
    if (!dl) return fail(dl.error());
    const std::string file = dl->path() + "/" + fs::path(path).filename().string();
    say("fetching " + dep.package + " from the archive pool (" + path + "; the suite index no longer lists it)...");
    auto got = run_tool(apt.argv(helper, {"download-file", base + "/" + path, file}));
    if (!got) {
      tried.push_back(path);
      continue;
    }
    // The pool file is outside the signed index: at least make sure it is
    // the package and version the signed metapackage depends on.
    auto fields = run_tool({"dpkg-deb", "-f", file, "Package", "Version"});
    if (!fields) return fail(fields.error());
    std::string want = "Package: " + dep.package + "\nVersion: " + dep.version;
    if (trim(*fields) != want)
      return fail("'" + path + "' from the pool is not " + dep.package + " " + dep.version + ": " + trim(*fields));
    return unpack_debs(dl->path(), root);
  }
  return fail("'" + dep.package + "' (" + dep.version + ") is neither in the package index nor in the pool",
              "tried " + fmt::format("{}", fmt::join(tried, ", ")));
}

// The source package of the newest indexed package of `family`
// ("linux-base-"): where the missing members of the family were built.
std::string indexed_family_source(const AptEnv& apt, const std::string& family) {
  std::string re = "^";
  for (char c : family) {
    if (std::string_view(".+*?()[]{}|^$\\").find(c) != std::string_view::npos) re += '\\';
    re += c;
  }
  auto out = run_tool(apt.argv("apt-cache", {"search", "--names-only", re}));
  if (!out) return "";
  std::istringstream in(*out);
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    if (w.empty()) continue;
    if (auto info = find_package(apt, w[0]); info && *info && !(*info)->source.empty()) return (*info)->source;
  }
  return "";
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

std::vector<DebianKernelPackage> offered_debian_kernels(const std::vector<DebianKernelPackage>& available) {
  // Same upstream version: the later Debian build ("+deb14" after "+deb13").
  auto later = [](const DebianKernelPackage& a, const DebianKernelPackage& b) {
    int c = compare_versions(upstream_version(a.release), upstream_version(b.release));
    return c != 0 ? c > 0 : a.release > b.release;
  };
  std::vector<DebianKernelPackage> out;
  for (const auto& p : available) {
    auto same = std::find_if(out.begin(), out.end(), [&](const DebianKernelPackage& q) {
      return compare_versions(upstream_version(q.release), upstream_version(p.release)) == 0;
    });
    if (same == out.end()) out.push_back(p);
    else if (later(p, *same)) *same = p;
  }
  std::sort(out.begin(), out.end(), [&](const auto& a, const auto& b) { return later(b, a); });
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
  std::string list;
  for (auto& p : offered_debian_kernels(available)) list += (list.empty() ? "" : " ") + upstream_version(p.release);
  std::string what = request.empty() ? "of the series 7.3, 7.2 or 6.17" : "matching '" + request + "'";
  return fail("no Debian cloud kernel " + what + " in " + fmt::format("{}", fmt::join(kKernelSuites, ", ")),
              list.empty() ? "the package lists are empty; check the network and the apt sources"
                           : "available: " + list);
}

namespace {

// The private apt state runs without apt's own locking (Debug::NoLocking), so
// concurrent fetches take turns on a lock of ours; it is released when the
// returned lock goes.
Result<FileLock> lock_apt_state(const AptEnv& apt, const ProgressFn& say) {
  return FileLock::take(apt.root + "/ktstr-fetch.lock",
                        [&](const std::string&) { say("waiting for another 'ktstr kernel fetch' to finish..."); });
}

// `apt-get update`, then every cloud kernel the suites list.
Result<std::vector<DebianKernelPackage>> update_and_search(const AptEnv& apt, const ProgressFn& say) {
  say(fmt::format("updating the package lists of {}...", fmt::join(kKernelSuites, ", ")));
  if (auto r = run_tool(apt.argv("apt-get", {"-q", "update"})); !r) return fail(r.error());
  auto search = run_tool(apt.argv("apt-cache", {"search", "--names-only", "^linux-image-[0-9.]+.*-cloud-amd64$"}));
  if (!search) return fail(search.error());
  return parse_cloud_kernel_packages(*search);
}

}  // namespace

Result<std::vector<DebianKernelPackage>> list_debian_kernels(db::Store& store, ProgressFn progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  auto apt = prepare_apt(store.dir());
  if (!apt) return fail(apt.error());
  auto lock = lock_apt_state(*apt, say);
  if (!lock) return fail(lock.error());
  auto all = update_and_search(*apt, say);
  if (!all) return fail(all.error());
  return offered_debian_kernels(*all);
}

Result<KernelRecord> fetch_debian_kernel(db::Store& store, const std::string& request, ProgressFn progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  auto apt = prepare_apt(store.dir());
  if (!apt) return fail(apt.error());
  auto lock = lock_apt_state(*apt, say);
  if (!lock) return fail(lock.error());
  auto available = update_and_search(*apt, say);
  if (!available) return fail(available.error());
  auto chosen = choose_debian_kernel(*available, request);
  if (!chosen) return fail(chosen.error());
  auto image_pkg = show_package(*apt, chosen->package);
  if (!image_pkg) return fail(image_pkg.error());
  const std::string source = "debian:" + chosen->package + "=" + image_pkg->version;

  // Already cached and intact (with its config): nothing to download.
  if (auto all = store.list_kernels())
    for (auto& k : *all)
      if (k.source == source && !k.config_path.empty() && !check_kernel(k, true).corrupt) {
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
  // A metapackage (6.19 on) holds neither: they are in its dependencies named
  // after the release (linux-binary-*: vmlinuz, linux-base-*: config);
  // modules never hold them.
  const std::string component = pool_component(image_pkg->filename).empty() ? "main" : pool_component(image_pkg->filename);
  for (const auto& dep : image_pkg->depends) {
    if (!find_image().empty() && !find_config().empty()) break;
    if (dep.package.find(rel) == std::string::npos || dep.package.rfind("linux-modules-", 0) == 0) continue;
    auto info = find_package(*apt, dep.package);
    if (!info) return fail(info.error());
    if (*info) {
      if (auto s = fetch_and_unpack(*apt, work->path(), dep.package, **info, root, say); !s) return fail(s.error());
      continue;
    }
    // Listed as a dependency but no longer in the index (linux-base-* of
    // 6.19.x-7.1.x): the pool still has it.
    DebianDependency want = dep;
    if (want.version.empty()) want.version = image_pkg->version;
    auto sources = pool_source_candidates(indexed_family_source(*apt, package_family(dep.package, rel)),
                                          image_pkg->source);
    if (auto s = fetch_from_pool(*apt, work->path(), want, sources, component, root, say); !s)
      return fail(s.error().context("fetching kernel " + rel));
  }
  std::string image = find_image();
  if (image.empty())
    return fail("no kernel image found in '" + chosen->package + "' or its dependencies",
                "the Debian packaging may have changed; download the image and use 'ktstr kernel add'");
  std::string config = find_config();
  // Every fetched kernel keeps its config: the guest gets it for libbpf's
  // __kconfig externs.
  if (config.empty())
    return fail("no kernel config found in '" + chosen->package + "' or its dependencies",
                "the Debian packaging may have changed; add the image and its config with "
                "'ktstr kernel add PATH --config FILE'");
  AddOptions opts;
  opts.config_path = config;
  opts.source = source;
  say("registering " + rel + "...");
  auto k = add_kernel(store, image, opts);
  if (k && !k->sched_ext) spdlog::warn("kernel {} has no sched_ext support", k->version);
  return k;
}

Result<std::string> fetch_debian_linux_source(db::Store& store, const std::string& series, const std::string& dest_dir,
                                              ProgressFn progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  if (series.empty() || !looks_like_version(series))
    return fail("'" + series + "' is not a kernel series", "give one like 7.3");
  auto apt = prepare_apt(store.dir());
  if (!apt) return fail(apt.error());
  auto lock = lock_apt_state(*apt, say);
  if (!lock) return fail(lock.error());
  say(fmt::format("updating the package lists of {}...", fmt::join(kKernelSuites, ", ")));
  if (auto r = run_tool(apt->argv("apt-get", {"-q", "update"})); !r) return fail(r.error());
  const std::string package = "linux-source-" + series;
  auto info = find_package(*apt, package);
  if (!info) return fail(info.error());
  if (!*info)
    return fail("the archive has no '" + package + "'", "Debian ships linux-source-<series> for current series only");
  if (auto r = make_dirs(dest_dir); !r) return fail(r.error());
  if (auto s = fetch_and_unpack(*apt, apt->root, package, **info, dest_dir, say); !s) return fail(s.error());
  const std::string tarball = first_file({fs::path(dest_dir) / "usr/src" / (package + ".tar.xz")});
  if (tarball.empty())
    return fail("no usr/src/" + package + ".tar.xz in '" + package + "'", "the Debian packaging may have changed");
  return tarball;
}

}  // namespace ktstr::kbuild
