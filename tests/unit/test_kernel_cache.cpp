// The kernel cache on a real store in a temporary KTSTR_CACHE_DIR with a real
// kernel image (label `kernel`): add/list/rm, idempotent re-add, corruption
// detection, bad input leaving the store unchanged, and resolve_kernel.
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "kbuild/kernel_cache.hpp"

#include "core/fs.hpp"
#include "db/store.hpp"
#include "tests/vm/vm_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>

namespace fs = std::filesystem;
using namespace ktstr;
using namespace ktstr::kbuild;

namespace {

struct Image {
  std::string path;
  std::string release;
  std::string config;  // beside it in the Debian layout, may be empty
};

// A real image: KTSTR_TEST_BZIMAGE, else one in the user's kernel cache, else
// /tmp/ktstr-kernel. Looked up before the test points KTSTR_CACHE_DIR elsewhere.
std::vector<Image> real_images() {
  std::vector<std::string> paths;
  if (const char* e = std::getenv("KTSTR_TEST_BZIMAGE"); e && *e) paths.push_back(e);
  std::error_code ec;
  for (auto& d : fs::directory_iterator(cache_dir() + "/artifacts/kernels", ec))
    if (fs::exists(d.path() / "bzImage", ec)) paths.push_back((d.path() / "bzImage").string());
  for (auto& d : fs::directory_iterator("/tmp/ktstr-kernel/x/usr/lib/modules", ec))
    if (fs::exists(d.path() / "vmlinuz", ec)) paths.push_back((d.path() / "vmlinuz").string());
  for (auto& d : fs::directory_iterator("/tmp/ktstr-kernel/x/boot", ec))
    if (d.path().filename().string().rfind("vmlinuz-", 0) == 0) paths.push_back(d.path().string());
  std::vector<Image> out;
  for (auto& p : paths) {
    auto rel = bzimage_version(p);
    if (!rel) continue;
    bool dup = std::any_of(out.begin(), out.end(), [&](const Image& i) { return i.release == *rel; });
    if (!dup) out.push_back({p, *rel, find_config_beside(p, *rel)});
  }
  return out;
}

const std::vector<Image>& images() {
  static const std::vector<Image> all = real_images();
  return all;
}

size_t entries_in(const std::string& dir) {
  std::error_code ec;
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(dir, ec)) ++n;
  return n;
}

class KernelCache : public ::testing::Test {
 protected:
  void SetUp() override {
    KTSTR_VM_REQUIRE(!images().empty(), "no kernel image: set KTSTR_TEST_BZIMAGE or run 'ktstr kernel fetch'");
    image_ = images().front();
    auto tmp = TempDir::create("ktstr-cache-test");
    ASSERT_TRUE(tmp);
    tmp_.emplace(std::move(*tmp));
    if (const char* old = std::getenv("KTSTR_CACHE_DIR")) old_cache_ = old;
    ::setenv("KTSTR_CACHE_DIR", tmp_->path().c_str(), 1);
    auto store = db::Store::open(cache_dir());
    ASSERT_TRUE(store) << store.error().msg;
    store_ = std::move(*store);
  }
  void TearDown() override {
    store_.reset();
    if (old_cache_) ::setenv("KTSTR_CACHE_DIR", old_cache_->c_str(), 1);
    else ::unsetenv("KTSTR_CACHE_DIR");
  }
  std::string kernels_dir() const { return store_->artifacts_dir() + "/kernels"; }
  size_t cached_count() {
    auto all = store_->list_kernels();
    EXPECT_TRUE(all);
    return all ? all->size() : 0;
  }
  // A copy of the image alone in a fresh directory (no config beside it).
  std::string lone_copy(const std::string& bytes_or_empty = {}) {
    std::string dir = tmp_->path() + "/lone" + std::to_string(copies_++);
    EXPECT_TRUE(make_dirs(dir));
    std::string p = dir + "/bzImage";
    if (bytes_or_empty.empty()) EXPECT_TRUE(copy_file_atomic(image_.path, p));
    else EXPECT_TRUE(write_file_atomic(p, bytes_or_empty));
    return p;
  }

  Image image_;
  std::optional<TempDir> tmp_;
  std::optional<std::string> old_cache_;
  std::unique_ptr<db::Store> store_;
  int copies_ = 0;
};

}  // namespace

TEST_F(KernelCache, AddListRemove) {
  auto k = add_kernel(*store_, image_.path, {.name = "mine"});
  ASSERT_TRUE(k) << k.error().msg;
  auto sha = sha256_file_hex(image_.path);
  ASSERT_TRUE(sha);
  EXPECT_EQ(k->id, sha->substr(0, 16));
  EXPECT_EQ(k->image_sha256, *sha);
  EXPECT_EQ(k->version, image_.release);
  EXPECT_EQ(k->name, "mine");
  EXPECT_EQ(k->image_path, kernels_dir() + "/" + k->id + "/bzImage");
  EXPECT_TRUE(fs::is_regular_file(k->vmlinux_path));
  EXPECT_EQ(k->source, "file:" + fs::absolute(image_.path).lexically_normal().string());
  EXPECT_EQ(!k->config_path.empty(), !image_.config.empty());
  EXPECT_TRUE(k->sched_ext);
  EXPECT_NE(std::find(k->tracepoints.begin(), k->tracepoints.end(), "sched_ext_dump"), k->tracepoints.end());
  auto cached = read_file(k->image_path);
  auto original = read_file(image_.path);
  ASSERT_TRUE(cached && original);
  EXPECT_TRUE(*cached == *original);
  EXPECT_EQ(entries_in(kernels_dir()), 1u);  // no staging directory left behind

  auto list = list_kernels_checked(*store_);
  ASSERT_TRUE(list) << list.error().msg;
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].corrupt) << (*list)[0].problem;
  EXPECT_EQ((*list)[0].record.id, k->id);

  auto removed = remove_kernel(*store_, k->id.substr(0, 6));
  ASSERT_TRUE(removed) << removed.error().msg;
  EXPECT_EQ(removed->id, k->id);
  EXPECT_FALSE(fs::exists(kernel_dir(*store_, k->id)));
  EXPECT_EQ(cached_count(), 0u);
  auto again = remove_kernel(*store_, k->id);
  ASSERT_FALSE(again);
  EXPECT_NE(again.error().msg.find(k->id), std::string::npos);
}

TEST_F(KernelCache, ReAddIsIdempotent) {
  auto a = add_kernel(*store_, image_.path);
  ASSERT_TRUE(a) << a.error().msg;
  auto b = add_kernel(*store_, lone_copy(), {.name = "renamed"});
  ASSERT_TRUE(b) << b.error().msg;
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(b->name, "renamed");
  EXPECT_EQ(b->source, a->source);  // still where it first came from
  EXPECT_EQ(cached_count(), 1u);
  EXPECT_EQ(entries_in(kernels_dir()), 1u);
}

TEST_F(KernelCache, WithoutConfigSchedExtComesFromBtf) {
  auto k = add_kernel(*store_, lone_copy());
  ASSERT_TRUE(k) << k.error().msg;
  EXPECT_TRUE(k->config_path.empty());
  EXPECT_TRUE(k->sched_ext);
}

TEST_F(KernelCache, TruncatedCachedImageIsFlaggedAndReAddRepairs) {
  auto k = add_kernel(*store_, image_.path);
  ASSERT_TRUE(k) << k.error().msg;
  fs::resize_file(k->image_path, k->image_size / 2);
  auto list = list_kernels_checked(*store_);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_TRUE((*list)[0].corrupt);
  EXPECT_NE((*list)[0].problem.find("image"), std::string::npos) << (*list)[0].problem;

  // Same size, different bytes: only the hash notices.
  auto bytes = read_file(image_.path);
  ASSERT_TRUE(bytes);
  (*bytes)[bytes->size() - 1] ^= 0x5a;
  ASSERT_TRUE(write_file_atomic(k->image_path, *bytes));
  EXPECT_EQ(check_kernel(*(*store_->get_kernel(k->id)), true).problem, "image hash mismatch");

  auto again = add_kernel(*store_, image_.path);
  ASSERT_TRUE(again) << again.error().msg;
  EXPECT_FALSE(check_kernel(*again).corrupt);
}

TEST_F(KernelCache, BadInputLeavesStoreUnchanged) {
  auto missing = add_kernel(*store_, tmp_->path() + "/no/such/bzImage");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().msg.find("does not exist"), std::string::npos) << missing.error().msg;
  EXPECT_FALSE(missing.error().hint.empty());

  auto text = add_kernel(*store_, lone_copy("just some text, not a kernel\n"));
  ASSERT_FALSE(text);
  EXPECT_NE(text.error().msg.find("is not a bzImage"), std::string::npos) << text.error().msg;

  auto bytes = read_file(image_.path);
  ASSERT_TRUE(bytes);
  auto truncated = add_kernel(*store_, lone_copy(bytes->substr(0, bytes->size() * 2 / 3)));
  ASSERT_FALSE(truncated);
  EXPECT_NE(truncated.error().msg.find("cannot decompress"), std::string::npos) << truncated.error().msg;

  auto bad_config = add_kernel(*store_, image_.path, {.config_path = tmp_->path() + "/no-config"});
  ASSERT_FALSE(bad_config);

  EXPECT_EQ(cached_count(), 0u);
  EXPECT_EQ(entries_in(kernels_dir()), 0u);
}

TEST_F(KernelCache, ResolveByPrefixVersionNamePathAndDefault) {
  auto k = add_kernel(*store_, image_.path, {.name = "primary"});
  ASSERT_TRUE(k) << k.error().msg;
  const std::string upstream = upstream_version(k->version);
  const std::string series = upstream.substr(0, upstream.rfind('.'));
  for (const std::string& ref : {k->id, k->id.substr(0, 5), upstream, series, k->version, std::string("primary"),
                                 std::string()}) {
    auto r = resolve_kernel(*store_, ref);
    ASSERT_TRUE(r) << "'" << ref << "': " << r.error().msg;
    EXPECT_EQ(r->id, k->id) << ref;
  }
  // A path registers on the fly; the same image resolves to the same entry.
  auto by_path = resolve_kernel(*store_, lone_copy());
  ASSERT_TRUE(by_path) << by_path.error().msg;
  EXPECT_EQ(by_path->id, k->id);

  auto unknown = resolve_kernel(*store_, "no-such-kernel");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().msg.find("'no-such-kernel'"), std::string::npos);
  EXPECT_FALSE(unknown.error().hint.empty());
  EXPECT_FALSE(resolve_kernel(*store_, tmp_->path() + "/missing/bzImage"));
}

TEST_F(KernelCache, AmbiguousPrefixListsCandidates) {
  auto k = add_kernel(*store_, image_.path);
  ASSERT_TRUE(k) << k.error().msg;
  KernelRecord twin = *k;  // a second row sharing the first 4 hex digits
  twin.id = k->id.substr(0, 4) + (k->id[4] == '0' ? "111111111111" : "000000000000");
  twin.version = "1.0.0";
  ASSERT_TRUE(store_->put_kernel(twin));
  auto r = find_cached_kernel(*store_, k->id.substr(0, 4));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().msg.find("ambiguous"), std::string::npos);
  EXPECT_NE(r.error().hint.find(k->id), std::string::npos);
  EXPECT_NE(r.error().hint.find(twin.id), std::string::npos);
  auto exact = find_cached_kernel(*store_, k->id.substr(0, 5));
  ASSERT_TRUE(exact && *exact);
  EXPECT_EQ((*exact)->id, k->id);
}

TEST_F(KernelCache, NewestVersionWinsForSeriesAndDefault) {
  if (images().size() < 2) GTEST_SKIP() << "needs two kernel versions (e.g. 7.3 and 6.17)";
  std::vector<KernelRecord> added;
  for (auto& img : images()) {
    auto k = add_kernel(*store_, img.path);
    ASSERT_TRUE(k) << k.error().msg;
    added.push_back(*k);
  }
  auto newest = *std::max_element(added.begin(), added.end(), [](auto& a, auto& b) {
    return compare_versions(upstream_version(a.version), upstream_version(b.version)) < 0;
  });
  auto def = resolve_kernel(*store_, "");
  ASSERT_TRUE(def) << def.error().msg;
  EXPECT_EQ(def->id, newest.id);
  for (auto& k : added) {
    auto r = resolve_kernel(*store_, upstream_version(k.version));
    ASSERT_TRUE(r) << r.error().msg;
    EXPECT_EQ(r->id, k.id);
  }
}

// Choosing a Debian kernel from what the archive lists (no network).
TEST(DebianFetch, ParsesOnlyCloudImagePackages) {
  auto pkgs = parse_cloud_kernel_packages(
      "linux-image-7.3.4+deb13-cloud-amd64 - Linux 7.3.4 for x86-64 cloud\n"
      "linux-image-7.3.4+deb13-cloud-amd64-unsigned - Linux 7.3.4 for x86-64 cloud\n"
      "linux-image-cloud-amd64 - Linux for x86-64 cloud (meta-package)\n"
      "linux-image-6.17.13+deb13-cloud-amd64 - Linux 6.17.13 for x86-64 cloud (signed)\n"
      "linux-image-7.2.13+deb14-amd64 - Linux 7.2.13 for 64-bit PCs\n");
  ASSERT_EQ(pkgs.size(), 2u);
  EXPECT_EQ(pkgs[0].package, "linux-image-7.3.4+deb13-cloud-amd64");
  EXPECT_EQ(pkgs[0].release, "7.3.4+deb13-cloud-amd64");
  EXPECT_EQ(pkgs[1].release, "6.17.13+deb13-cloud-amd64");
}

TEST(DebianFetch, ChoosesNewestOfRequestedSeries) {
  std::vector<DebianKernelPackage> avail;
  for (std::string r : {"6.17.8+deb13", "6.17.13+deb13", "6.18.15+deb13", "7.2.9+deb13", "7.2.13+deb13",
                        "7.2.13+deb14", "7.3.4+deb13", "7.3.10+deb13"})
    avail.push_back({"linux-image-" + r + "-cloud-amd64", r + "-cloud-amd64"});
  auto pick = [&](const std::string& req) {
    auto c = choose_debian_kernel(avail, req);
    EXPECT_TRUE(c) << req << ": " << c.error().msg;
    return c ? c->release : std::string();
  };
  EXPECT_EQ(pick(""), "7.3.10+deb13-cloud-amd64");
  EXPECT_EQ(pick("7.3"), "7.3.10+deb13-cloud-amd64");
  EXPECT_EQ(pick("7.3.4"), "7.3.4+deb13-cloud-amd64");
  EXPECT_EQ(pick("7.2"), "7.2.13+deb14-cloud-amd64");  // newest Debian build of the newest 7.2.x
  EXPECT_EQ(pick("6.17"), "6.17.13+deb13-cloud-amd64");
  // Without 7.3 the default falls back to 7.2, then 6.17 (never 6.18: not a default series).
  std::erase_if(avail, [](auto& p) { return p.release.rfind("7.", 0) == 0; });
  EXPECT_EQ(pick(""), "6.17.13+deb13-cloud-amd64");
  auto none = choose_debian_kernel(avail, "5.10");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().msg.find("'5.10'"), std::string::npos);
  EXPECT_NE(none.error().hint.find("6.17.13"), std::string::npos) << none.error().hint;
  EXPECT_FALSE(choose_debian_kernel(avail, "latest"));
}

TEST(DebianFetch, MirrorFromAptSources) {
  auto tmp = TempDir::create("ktstr-apt-test");
  ASSERT_TRUE(tmp);
  const std::string etc = tmp->path();
  ASSERT_TRUE(make_dirs(etc + "/sources.list.d"));
  ASSERT_TRUE(write_file_atomic(etc + "/sources.list", "# old style\ndeb [signed-by=/k.gpg] http://mirror.invalid/debian bookworm main\n"));
  auto old = system_debian_mirror(etc);
  ASSERT_TRUE(old) << old.error().msg;
  EXPECT_EQ(old->uri, "http://mirror.invalid/debian");
  EXPECT_EQ(old->signed_by, "/k.gpg");
  // deb822 wins; the security archive is skipped.
  ASSERT_TRUE(write_file_atomic(etc + "/sources.list.d/a.sources",
                                "Types: deb\nURIs: http://sec.invalid/debian-security\nSuites: bookworm-security\n"
                                "Components: main\n\nTypes: deb\n# a comment\nURIs: http://main.invalid/debian\n"
                                "Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/x.gpg\n"));
  auto m = system_debian_mirror(etc);
  ASSERT_TRUE(m) << m.error().msg;
  EXPECT_EQ(m->uri, "http://main.invalid/debian");
  EXPECT_EQ(m->signed_by, "/usr/share/keyrings/x.gpg");
  EXPECT_FALSE(system_debian_mirror(etc + "/nonexistent"));
}
