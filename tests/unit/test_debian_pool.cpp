// kbuild/debian_pool and the offered-kernel ladder of kbuild/debian_fetch:
// pure logic on the archive's real shapes (Depends fields, Source fields and
// pool paths as apt-cache prints them), no network.
#include "kbuild/debian_fetch.hpp"
#include "kbuild/debian_pool.hpp"

#include <gtest/gtest.h>

using namespace ktstr::kbuild;

TEST(DebianPool, ParsesDependsWithExactVersions) {
  auto deps = parse_depends(
      "dracut | initramfs-tools (>= 0.120+deb8u2) | linux-initramfs-tool, kmod, "
      "linux-base-7.1.13+deb13-cloud-amd64 (= 7.1.13-1~bpo13+1), "
      "linux-binary-7.1.13+deb13-cloud-amd64 (= 7.1.13-1~bpo13+1), libc6:amd64 (>= 2.36)");
  ASSERT_EQ(deps.size(), 5u);
  EXPECT_EQ(deps[0].package, "dracut");  // first alternative only
  EXPECT_EQ(deps[0].version, "");
  EXPECT_EQ(deps[1].package, "kmod");
  EXPECT_EQ(deps[2].package, "linux-base-7.1.13+deb13-cloud-amd64");
  EXPECT_EQ(deps[2].version, "7.1.13-1~bpo13+1");
  EXPECT_EQ(deps[3].version, "7.1.13-1~bpo13+1");
  EXPECT_EQ(deps[4].package, "libc6");
  EXPECT_EQ(deps[4].version, "");  // ">=" is not an exact version
  EXPECT_TRUE(parse_depends("").empty());
}

TEST(DebianPool, SourceNamesAndPoolPaths) {
  EXPECT_EQ(source_name("linux-signed-amd64 (6.19.14+1~bpo13+1)"), "linux-signed-amd64");
  EXPECT_EQ(source_name("linux"), "linux");
  EXPECT_EQ(pool_prefix("linux"), "l");
  EXPECT_EQ(pool_prefix("libbpf"), "libb");
  EXPECT_EQ(pool_component("pool/main/l/linux-signed-amd64/linux-binary-6.19.14+deb13-cloud-amd64_6.19.14-1~bpo13+1_amd64.deb"),
            "main");
  EXPECT_EQ(pool_component("dists/sid/Release"), "");
  EXPECT_EQ(pool_path("main", "linux", "linux-base-6.19.14+deb13-cloud-amd64", "6.19.14-1~bpo13+1"),
            "pool/main/l/linux/linux-base-6.19.14+deb13-cloud-amd64_6.19.14-1~bpo13+1_amd64.deb");
  EXPECT_EQ(pool_path("main", "foo", "foo", "2:1.0-1", "all"), "pool/main/f/foo/foo_1.0-1_all.deb");  // no epoch
}

TEST(DebianPool, SourceCandidatesAndFamilies) {
  EXPECT_EQ(pool_source_candidates("linux", "linux-signed-amd64"),
            (std::vector<std::string>{"linux", "linux-signed-amd64"}));
  EXPECT_EQ(pool_source_candidates("", "linux-signed-amd64"),
            (std::vector<std::string>{"linux", "linux-signed-amd64"}));
  EXPECT_EQ(pool_source_candidates("linux-6.19", "linux-signed-amd64"),
            (std::vector<std::string>{"linux-6.19", "linux", "linux-signed-amd64"}));
  EXPECT_EQ(package_family("linux-base-7.1.13+deb13-cloud-amd64", "7.1.13+deb13-cloud-amd64"), "linux-base-");
  EXPECT_EQ(package_family("linux-modules-7.1.13+deb13-cloud-amd64", "7.3.4+deb13-cloud-amd64"), "");
}

TEST(DebianFetch, OfferedKernelsAreOnePerVersionOldestFirst) {
  std::vector<DebianKernelPackage> avail;
  for (std::string r : {"7.3.4+deb13", "6.17.13+deb13", "7.2.13+deb13", "7.2.13+deb14", "6.16.3+deb13",
                        "6.19.14+deb13", "7.0.4+deb13", "6.17.8+deb13", "7.2.9+deb13"})
    avail.push_back({"linux-image-" + r + "-cloud-amd64", r + "-cloud-amd64"});
  auto offered = offered_debian_kernels(avail);
  std::vector<std::string> releases;
  for (auto& p : offered) releases.push_back(p.release);
  EXPECT_EQ(releases, (std::vector<std::string>{"6.16.3+deb13-cloud-amd64", "6.17.8+deb13-cloud-amd64",
                                                "6.17.13+deb13-cloud-amd64", "6.19.14+deb13-cloud-amd64",
                                                "7.0.4+deb13-cloud-amd64", "7.2.9+deb13-cloud-amd64",
                                                "7.2.13+deb14-cloud-amd64", "7.3.4+deb13-cloud-amd64"}));
  EXPECT_TRUE(offered_debian_kernels({}).empty());
}
