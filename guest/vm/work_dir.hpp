// Temporary VM work directories, <TMPDIR>/ktstr-vm.XXXXXX. Each holds an
// owner stamp (pid + the process's start time, which survives pid reuse), so
// directories left behind by a ktstr that was killed (kill -9: no destructor
// ran) are swept by the next run. A live run's directory is never touched.
#pragma once

#include "core/fs.hpp"
#include "core/result.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ktstr {

inline constexpr const char* kVmWorkDirPrefix = "ktstr-vm";
inline constexpr const char* kVmWorkDirOwnerFile = "ktstr-owner";

// The process's start time in clock ticks since boot (/proc/<pid>/stat field
// 22); empty when there is no such process.
std::optional<uint64_t> process_start_time(pid_t pid);

// A new <TMPDIR>/ktstr-vm.XXXXXX owned (stamped) by this process.
Result<TempDir> create_vm_work_dir();

// Write the owner stamp of `pid` into `dir` (create_vm_work_dir does it).
Status stamp_vm_work_dir(const std::string& dir, pid_t pid);

// True when `dir`'s stamp names a process that is gone (or a different
// process that reused the pid). No stamp, or an unreadable one: false.
bool vm_work_dir_is_stale(const std::string& dir);

// Remove the stale ktstr-vm.* directories under `tmp_root` (this user's only);
// returns how many were removed.
size_t sweep_stale_vm_work_dirs(const std::string& tmp_root);

// sweep_stale_vm_work_dirs(<TMPDIR or /tmp>), at most once per process.
void sweep_stale_vm_work_dirs_once();

}  // namespace ktstr
