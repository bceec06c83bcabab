// `ktstr kernel fetch`: a Debian cloud kernel with sched_ext, downloaded with
// apt using a private state directory (<cache>/apt) so the system's apt
// configuration is never changed. The mirror comes from the system's apt
// sources at run time; the version from what the archive lists right now.
#pragma once

#include "core/records.hpp"
#include "core/result.hpp"
#include "db/store.hpp"

#include <functional>
#include <string>
#include <vector>

namespace ktstr::kbuild {

// One human-readable progress line ("fetching linux-binary-... (13 MB)...").
using ProgressFn = std::function<void(const std::string&)>;

// Series tried, in order, when no version is asked for.
inline const std::vector<std::string> kDefaultKernelSeries = {"7.3", "7.2", "6.17"};
// Suites searched on the system's mirror.
inline const std::vector<std::string> kKernelSuites = {"trixie-backports", "sid"};

struct AptMirror {
  std::string uri;        // as the system's sources say
  std::string signed_by;  // keyring, may be empty
};
// The main Debian archive from <etc_apt>/sources.list.d/*.sources (URIs:),
// else <etc_apt>/sources.list; security archives are skipped.
Result<AptMirror> system_debian_mirror(const std::string& etc_apt = "/etc/apt");

struct DebianKernelPackage {
  std::string package;  // linux-image-7.3.4+deb13-cloud-amd64
  std::string release;  // 7.3.4+deb13-cloud-amd64
};
// Names from `apt-cache search --names-only` output: linux-image-<release>-cloud-amd64 only.
std::vector<DebianKernelPackage> parse_cloud_kernel_packages(const std::string& search_output);

// What the archive offers, one package per upstream version (the newest
// Debian build of it: "7.2.13+deb14" over "7.2.13+deb13"), oldest version
// first. The release ladder `kernel fetch` and bisection walk.
std::vector<DebianKernelPackage> offered_debian_kernels(const std::vector<DebianKernelPackage>& available);

// `request`: "" = newest of kDefaultKernelSeries in order; "6.17" = newest
// 6.17.x; "7.3.4" = that upstream version (newest Debian build).
Result<DebianKernelPackage> choose_debian_kernel(const std::vector<DebianKernelPackage>& available,
                                                 const std::string& request);

// Update the private package lists, then offered_debian_kernels() of what
// they list. Takes the same lock as fetch_debian_kernel.
Result<std::vector<DebianKernelPackage>> list_debian_kernels(db::Store& store, ProgressFn progress = {});

// Download, extract and register (kernel_cache add) the chosen kernel with
// its config (an error when no config is found). A dependency the suite
// index no longer lists is fetched from the archive pool (debian_pool.hpp).
// Progress lines go to `progress`.
Result<KernelRecord> fetch_debian_kernel(db::Store& store, const std::string& request,
                                         ProgressFn progress = {});

// Debian's kernel source for a series ("7.3": linux-source-7.3, a tarball
// inside the .deb), downloaded with the same private apt state and unpacked
// into `dest_dir`. Returns the path of the tarball (linux-source-7.3.tar.xz).
Result<std::string> fetch_debian_linux_source(db::Store& store, const std::string& series, const std::string& dest_dir,
                                              ProgressFn progress = {});

}  // namespace ktstr::kbuild
