// The Debian archive's pool, for kernel packages the suite index no longer
// lists. From 6.19 on, a cloud kernel is three packages from two source
// packages: linux-image-<r> (metapackage) and linux-binary-<r> (vmlinuz) come
// from linux-signed-amd64, linux-base-<r> (config, System.map) from linux.
// When a newer `linux` upload supersedes an older one, the archive drops the
// old linux-base-* from the suite's Packages index while the signed packages
// that depend on them stay listed; the .debs themselves stay in the pool at
// pool/<component>/<prefix>/<source>/<package>_<version>_<arch>.deb.
// Pure helpers here; the download is in debian_fetch.cpp.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ktstr::kbuild {

// One entry of a Depends: field, first alternative only.
struct DebianDependency {
  std::string package;
  std::string version;  // the version of "(= V)", else empty
};
// "a (>= 1) | b, linux-base-7.1.13+deb13-cloud-amd64 (= 7.1.13-1~bpo13+1)"
std::vector<DebianDependency> parse_depends(const std::string& field);

// "linux-signed-amd64 (6.19.14+1~bpo13+1)" -> "linux-signed-amd64".
std::string source_name(const std::string& source_field);

// The pool directory letter(s) of a source package: "l" for linux, "libb"
// for libbpf.
std::string pool_prefix(const std::string& source);

// "pool/main/l/linux-signed-amd64/x.deb" -> "main"; "" when not a pool path.
std::string pool_component(const std::string& filename);

// pool/<component>/<prefix>/<source>/<package>_<version without epoch>_<arch>.deb
std::string pool_path(const std::string& component, const std::string& source, const std::string& package,
                      const std::string& version, const std::string& arch = "amd64");

// Source packages that may hold `package` (a missing dependency), most
// likely first: the source of an indexed sibling of the same family
// (`sibling_source`, e.g. that of linux-base-7.3.4+deb13-cloud-amd64), then
// the unsigned source a signed one was made from ("linux-signed-amd64" ->
// "linux"), then the dependent's own source. No duplicates, no empties.
std::vector<std::string> pool_source_candidates(const std::string& sibling_source,
                                                const std::string& dependent_source);

// The family of a release-named package: "linux-base-7.1.13+deb13-cloud-amd64"
// with release "7.1.13+deb13-cloud-amd64" -> "linux-base-"; "" when the name
// does not end in the release.
std::string package_family(const std::string& package, const std::string& release);

}  // namespace ktstr::kbuild
