#include "guest/vm/work_dir.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>
#include <sstream>

namespace ktstr {
namespace {

std::string tmp_root() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp && *tmp ? tmp : "/tmp";
}

}  // namespace

std::optional<uint64_t> process_start_time(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat", 4096);
  if (!stat) return std::nullopt;
  // The name (field 2) may hold spaces and ')': fields are counted after the last ')'.
  auto close = stat->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat->substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) {
      try {
        return std::stoull(field);
      } catch (const std::exception&) {
        return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

Status stamp_vm_work_dir(const std::string& dir, pid_t pid) {
  auto start = process_start_time(pid);
  if (!start) return fail("cannot read the start time of process " + std::to_string(pid));
  return write_file_atomic(dir + "/" + kVmWorkDirOwnerFile,
                           "pid " + std::to_string(pid) + " start " + std::to_string(*start) + "\n", 0600);
}

Result<TempDir> create_vm_work_dir() {
  auto dir = TempDir::create(kVmWorkDirPrefix);
  if (!dir) return dir;
  if (auto st = stamp_vm_work_dir(dir->path(), ::getpid()); !st) return fail(st.error());
  return dir;
}

bool vm_work_dir_is_stale(const std::string& dir) {
  auto stamp = read_file(dir + "/" + kVmWorkDirOwnerFile, 256);
  if (!stamp) return false;
  std::istringstream in(*stamp);
  std::string pid_key, start_key;
  long long pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid_key >> pid >> start_key >> start) || pid_key != "pid" || start_key != "start" || pid <= 0)
    return false;
  auto now = process_start_time(static_cast<pid_t>(pid));
  return !now || *now != start;
}

size_t sweep_stale_vm_work_dirs(const std::string& root) {
  DIR* d = ::opendir(root.c_str());
  if (!d) return 0;
  const std::string prefix = std::string(kVmWorkDirPrefix) + ".";
  size_t removed = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind(prefix, 0) != 0) continue;
    std::string path = root + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid()) continue;
    if (!vm_work_dir_is_stale(path)) continue;
    if (auto r = remove_tree(path); r) {
      ++removed;
      spdlog::debug("removed '{}': its ktstr is gone", path);
    }
  }
  ::closedir(d);
  return removed;
}

void sweep_stale_vm_work_dirs_once() {
  static std::once_flag once;
  std::call_once(once, [] { (void)sweep_stale_vm_work_dirs(tmp_root()); });
}

}  // namespace ktstr
