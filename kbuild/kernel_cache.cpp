#include "kbuild/kernel_cache.hpp"

#include "core/fs.hpp"
#include "kbuild/btf_info.hpp"
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "kbuild/kernel_build.hpp"
#include "core/staging_dir.hpp"
#include "kbuild/vmlinux.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>

namespace fs = std::filesystem;

namespace ktstr::kbuild {

namespace {

constexpr size_t kMaxImageBytes = size_t{512} << 20;

bool is_hex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// Newest upstream version first, then most recently added.
bool newer(const KernelRecord& a, const KernelRecord& b) {
  int c = compare_versions(upstream_version(a.version), upstream_version(b.version));
  if (c != 0) return c > 0;
  return a.added_at > b.added_at;
}

std::string describe(const KernelRecord& k) {
  std::string s = k.id + " (" + k.version;
  if (!k.name.empty()) s += ", " + k.name;
  return s + ")";
}

}  // namespace

std::string kernel_dir(const db::Store& store, const std::string& id) {
  return store.artifacts_dir() + "/kernels/" + id;
}

std::string find_config_beside(const std::string& image_path, const std::string& release) {
  fs::path img = fs::absolute(image_path).lexically_normal();
  fs::path dir = img.parent_path();
  std::vector<fs::path> tries = {dir / "config", dir / ("config-" + release), dir / ".config"};
  // Debian: boot/vmlinuz-<r> with boot/config-<r>, or usr/lib/modules/<r>/{vmlinuz,config}
  // when the image and config come from different packages extracted side by side.
  if (dir.filename() == "boot")
    tries.push_back(dir.parent_path() / "usr/lib/modules" / release / "config");
  if (dir.filename() == release && dir.parent_path().filename() == "modules")
    tries.push_back(dir.parent_path().parent_path().parent_path().parent_path() / "boot" / ("config-" + release));
  // A kernel build tree: arch/x86/boot/bzImage with .config at the top.
  if (dir.filename() == "boot" && dir.parent_path().parent_path().filename() == "arch")
    tries.push_back(dir.parent_path().parent_path().parent_path() / ".config");
  for (auto& p : tries) {
    std::error_code ec;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return {};
}

KernelHealth check_kernel(const KernelRecord& k, bool hash) {
  KernelHealth h{k};
  auto bad = [&](std::string why) {
    h.corrupt = true;
    h.problem = std::move(why);
    return h;
  };
  std::error_code ec;
  if (!fs::is_regular_file(k.image_path, ec)) return bad("image missing");
  if (k.vmlinux_path.empty() || !fs::is_regular_file(k.vmlinux_path, ec)) return bad("vmlinux missing");
  if (!k.config_path.empty() && !fs::is_regular_file(k.config_path, ec)) return bad("config missing");
  auto size = fs::file_size(k.image_path, ec);
  if (ec || (k.image_size && size != k.image_size)) return bad("image size changed");
  if (hash) {
    auto sum = sha256_file_hex(k.image_path);
    if (!sum) return bad("image unreadable");
    if (*sum != k.image_sha256) return bad("image hash mismatch");
  }
  return h;
}

Result<std::vector<KernelHealth>> list_kernels_checked(db::Store& store, bool hash) {
  auto all = store.list_kernels();
  if (!all) return fail(all.error());
  std::vector<KernelHealth> out;
  for (auto& k : *all) out.push_back(check_kernel(k, hash));
  return out;
}

Result<KernelRecord> add_kernel(db::Store& store, const std::string& image_path, const AddOptions& opts) {
  std::error_code ec;
  if (!fs::exists(image_path, ec))
    return fail("kernel image '" + image_path + "' does not exist",
                "give the path of a bzImage, or download one with 'ktstr kernel fetch'");
  if (!fs::is_regular_file(image_path, ec))
    return fail("kernel image '" + image_path + "' is not a regular file");
  auto image = read_file(image_path, kMaxImageBytes);
  if (!image) return fail(image.error());

  std::string version = opts.version;
  if (version.empty()) {
    auto v = bzimage_version_from_memory(*image, image_path);
    if (!v) return fail(v.error());
    version = *v;
  }
  const std::string sha = sha256_hex(*image);
  const std::string id = sha.substr(0, 16);

  auto existing = store.get_kernel(id);
  if (!existing) return fail(existing.error());
  if (*existing && !check_kernel(**existing, true).corrupt) {
    KernelRecord k = **existing;
    bool changed = false;
    if (!opts.name.empty() && opts.name != k.name) k.name = opts.name, changed = true;
    // A package is a better provenance than wherever a copy of it was lying.
    if (!opts.source.empty() && opts.source != k.source && k.source.rfind("file:", 0) == 0)
      k.source = opts.source, changed = true;
    // Cached without a config (an image added alone): keep the one found now.
    if (k.config_path.empty()) {
      std::string found = opts.config_path.empty() ? find_config_beside(image_path, k.version) : opts.config_path;
      if (!found.empty()) {
        auto c = read_file(found, size_t{16} << 20);
        if (!c) return fail(c.error().context("reading the kernel config"));
        const std::string dest = kernel_dir(store, k.id) + "/config";
        if (auto r = write_file_atomic(dest, *c); !r) return fail(r.error());
        k.config_path = dest;
        k.sched_ext = k.sched_ext || config_has_sched_ext(*c);
        changed = true;
      }
    }
    if (changed)
      if (auto r = store.put_kernel(k); !r) return fail(r.error());
    spdlog::info("kernel '{}' is already cached as {}", image_path, k.id);
    return k;
  }

  std::string config_path = opts.config_path.empty() ? find_config_beside(image_path, version) : opts.config_path;
  std::string config;
  if (!config_path.empty()) {
    auto c = read_file(config_path, size_t{16} << 20);
    if (!c) return fail(c.error().context("reading the kernel config"));
    config = std::move(*c);
  } else {
    spdlog::info("no config found beside '{}'; sched_ext support is judged from BTF", image_path);
  }

  auto vm = extract_vmlinux_from_memory(*image, image_path);
  if (!vm) return fail(vm.error());

  const std::string kernels = store.artifacts_dir() + "/kernels";
  auto staging = StagingDir::create(kernels, id);
  if (!staging) return fail(staging.error());
  const std::string tmp = staging->path();
  if (auto r = write_file_atomic(tmp + "/bzImage", *image); !r) return fail(r.error());
  if (auto r = write_file_atomic(tmp + "/vmlinux", vm->elf); !r) return fail(r.error());
  if (!config.empty())
    if (auto r = write_file_atomic(tmp + "/config", config); !r) return fail(r.error());
  for (const auto& [name, from] : opts.extra_files)
    if (auto r = copy_file_atomic(from, tmp + "/" + name); !r) return fail(r.error());
  auto btf = inspect_btf_file(tmp + "/vmlinux");
  if (!btf) return fail(btf.error());

  const std::string dest = kernel_dir(store, id);
  KernelRecord k;
  k.id = id;
  k.version = version;
  k.name = opts.name.empty() && *existing ? (*existing)->name : opts.name;
  k.source = opts.source.empty() ? "file:" + fs::absolute(image_path).lexically_normal().string() : opts.source;
  k.image_path = dest + "/bzImage";
  k.config_path = config.empty() ? "" : dest + "/config";
  k.vmlinux_path = dest + "/vmlinux";
  k.image_sha256 = sha;
  k.image_size = image->size();
  k.sched_ext = config_has_sched_ext(config) || btf->sched_ext_ops;
  k.tracepoints = btf->tracepoints;
  k.added_at = static_cast<int64_t>(std::time(nullptr));

  if (auto r = staging->commit(dest); !r) return fail(r.error());
  if (auto r = store.put_kernel(k); !r) {
    (void)remove_tree(dest);
    return fail(r.error());
  }
  return k;
}

Result<std::optional<KernelRecord>> find_cached_kernel(db::Store& store, const std::string& ref) {
  auto all = store.list_kernels();
  if (!all) return fail(all.error());
  for (auto& k : *all)
    if (k.id == ref) return std::optional(k);
  for (auto& k : *all)
    if (!k.name.empty() && k.name == ref) return std::optional(k);
  std::optional<KernelRecord> best;
  for (auto& k : *all)
    if (version_matches(k.version, ref) && (!best || newer(k, *best))) best = k;
  if (best) return best;
  if (!is_hex(ref)) return std::optional<KernelRecord>();
  std::vector<KernelRecord> hits;
  std::string lower = ref;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (auto& k : *all)
    if (k.id.rfind(lower, 0) == 0) hits.push_back(k);
  if (hits.size() == 1) return std::optional(hits[0]);
  if (hits.size() > 1) {
    std::string list;
    for (auto& k : hits) list += (list.empty() ? "" : ", ") + describe(k);
    return fail("kernel id prefix '" + ref + "' is ambiguous", "candidates: " + list);
  }
  return std::optional<KernelRecord>();
}

Result<KernelRecord> remove_kernel(db::Store& store, const std::string& ref) {
  auto found = find_cached_kernel(store, ref);
  if (!found) return fail(found.error());
  if (!*found)
    return fail("no cached kernel matches '" + ref + "'", "'ktstr kernel list' shows the cached kernels");
  const KernelRecord k = **found;
  // Row first: a crash in between leaves an orphan directory, never a row without files.
  if (auto r = store.remove_kernel(k.id); !r) return fail(r.error());
  if (auto r = remove_tree(kernel_dir(store, k.id)); !r) return fail(r.error());
  if (auto r = forget_kernel_builds(store, k.id); !r) return fail(r.error());
  return k;
}

Result<KernelRecord> resolve_kernel(db::Store& store, const std::string& ref, ProgressFn progress) {
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  if (ref.empty()) {
    auto all = store.list_kernels();
    if (!all) return fail(all.error());
    std::optional<KernelRecord> best;
    for (auto& k : *all)
      if (k.sched_ext && !check_kernel(k, false).corrupt && (!best || newer(k, *best))) best = k;
    if (best) return *best;
    say("no cached kernel with sched_ext; fetching the default Debian kernel");
    return fetch_debian_kernel(store, "", progress);
  }
  if (ref.find('/') == std::string::npos) {
    auto found = find_cached_kernel(store, ref);
    if (!found) return fail(found.error());
    if (*found) return **found;
  }
  std::error_code ec;
  if (fs::exists(ref, ec)) {
    say("registering kernel image '" + ref + "'");
    return add_kernel(store, ref);
  }
  if (ref.find('/') != std::string::npos)
    return fail("kernel image '" + ref + "' does not exist",
                "give the path of a bzImage, or a cached kernel's id, version or name");
  if (looks_like_version(ref)) {
    say("kernel " + ref + " is not cached; fetching it");
    return fetch_debian_kernel(store, ref, progress);
  }
  return fail("no cached kernel matches '" + ref + "'",
              "'ktstr kernel list' shows the cached kernels; 'ktstr kernel add PATH' adds one");
}

}  // namespace ktstr::kbuild
