// `kernel fetch` against the real Debian archive (label `net`): the mirror
// from the system's apt sources, the default choice, the metapackage layout,
// registration, and a second fetch finding it cached.
#include "kbuild/bzimage.hpp"
#include "kbuild/debian_fetch.hpp"
#include "kbuild/kernel_cache.hpp"

#include "core/fs.hpp"
#include "core/subprocess.hpp"
#include "db/store.hpp"
#include "tests/vm/vm_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace ktstr;
using namespace ktstr::kbuild;

TEST(KernelFetch, FetchesRegistersAndReusesTheDefaultKernel) {
  KTSTR_VM_REQUIRE(!find_in_path("apt-get").empty(), "apt-get is not installed");
  auto tmp = TempDir::create("ktstr-fetch-test");
  ASSERT_TRUE(tmp);
  auto store = db::Store::open(tmp->path());
  ASSERT_TRUE(store) << store.error().msg;

  std::vector<std::string> lines;
  auto k = fetch_debian_kernel(**store, "7.3", [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(k) << k.error().msg << "\nhint: " << k.error().hint;
  EXPECT_TRUE(version_matches(k->version, "7.3")) << k->version;
  EXPECT_EQ(k->source.rfind("debian:linux-image-" + k->version + "=", 0), 0u) << k->source;
  EXPECT_TRUE(k->sched_ext);
  EXPECT_NE(std::find(k->tracepoints.begin(), k->tracepoints.end(), "sched_ext_exit"), k->tracepoints.end());
  EXPECT_FALSE(k->config_path.empty());  // found in linux-base-* beside the image
  EXPECT_FALSE(check_kernel(*k).corrupt);
  bool said_fetching = std::any_of(lines.begin(), lines.end(),
                                   [](auto& l) { return l.rfind("fetching linux-", 0) == 0; });
  EXPECT_TRUE(said_fetching);
  // The private apt state stays inside the cache directory.
  EXPECT_TRUE(path_exists(tmp->path() + "/apt/etc/sources.list"));

  lines.clear();
  auto again = fetch_debian_kernel(**store, "7.3", [&](const std::string& l) { lines.push_back(l); });
  ASSERT_TRUE(again) << again.error().msg;
  EXPECT_EQ(again->id, k->id);
  EXPECT_TRUE(std::none_of(lines.begin(), lines.end(), [](auto& l) { return l.rfind("fetching", 0) == 0; }));

  auto resolved = resolve_kernel(**store, "");
  ASSERT_TRUE(resolved) << resolved.error().msg;
  EXPECT_EQ(resolved->id, k->id);
}
