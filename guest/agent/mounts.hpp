// The filesystems PID 1 must mount itself: nothing else runs before it.
#pragma once

#include <string>
#include <vector>

namespace ktstr::agent {

struct MountOutcome {
  std::string fstype;
  std::string target;
  std::string error;  // empty when mounted (or already mounted)
};

// Mounts devtmpfs, proc, sysfs, tracefs, cgroup2 and debugfs, creating mount points.
// Failures do not stop the rest; the caller reports them.
std::vector<MountOutcome> mount_filesystems();

}  // namespace ktstr::agent
