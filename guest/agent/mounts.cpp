#include "guest/agent/mounts.hpp"

#include "guest/agent/util.hpp"

#include <cerrno>
#include <sys/mount.h>
#include <sys/stat.h>

namespace ktstr::agent {

namespace {

struct MountSpec {
  const char* source;
  const char* target;
  const char* fstype;
  unsigned long flags;
};

// Order matters: /dev first (the console), /sys before its sub-mounts.
constexpr MountSpec kMounts[] = {
    {"devtmpfs", "/dev", "devtmpfs", MS_NOSUID},
    {"proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC},
    {"sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC},
    {"tracefs", "/sys/kernel/tracing", "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC},
    {"cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC},
    // sched/debug: per-CPU nr_running for the scheduler monitor.
    {"debugfs", "/sys/kernel/debug", "debugfs", MS_NOSUID | MS_NODEV | MS_NOEXEC},
};

}  // namespace

std::vector<MountOutcome> mount_filesystems() {
  std::vector<MountOutcome> outcomes;
  for (const MountSpec& m : kMounts) {
    MountOutcome outcome{m.fstype, m.target, {}};
    // sysfs provides /sys/kernel/tracing and /sys/fs/cgroup itself; mkdir
    // matters for the initramfs-level directories.
    if (::mkdir(m.target, 0755) != 0 && errno != EEXIST) {
      outcome.error = "creating mount point: " + errno_text(errno);
    } else if (::mount(m.source, m.target, m.fstype, m.flags, nullptr) != 0 && errno != EBUSY) {
      outcome.error = errno_text(errno);
    }
    outcomes.push_back(std::move(outcome));
  }
  return outcomes;
}

}  // namespace ktstr::agent
