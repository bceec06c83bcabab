// guest/vm/work_dir: VM work directories carry an owner stamp; the sweep
// removes those whose owner is gone and never a live one's.
#include "guest/vm/work_dir.hpp"

#include "core/fs.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace ktstr;

namespace {

// A pid that was just alive and is now gone (reaped).
pid_t dead_pid() {
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

std::string make_dir(const std::string& root, const std::string& name) {
  std::string d = root + "/" + name;
  EXPECT_EQ(::mkdir(d.c_str(), 0700), 0);
  EXPECT_TRUE(write_file_atomic(d + "/console.txt", "boot log\n"));
  return d;
}

}  // namespace

TEST(VmWorkDir, StartTimeOfLiveAndDeadProcesses) {
  auto self = process_start_time(::getpid());
  ASSERT_TRUE(self);
  EXPECT_GT(*self, 0u);
  EXPECT_EQ(process_start_time(::getpid()), self);  // stable
  EXPECT_FALSE(process_start_time(dead_pid()));
}

TEST(VmWorkDir, CreatedDirIsStampedWithThisProcess) {
  auto root = TempDir::create("ktstr-sweep-test").value();
  ::setenv("TMPDIR", root.path().c_str(), 1);
  auto dir = create_vm_work_dir();
  ::unsetenv("TMPDIR");
  ASSERT_TRUE(dir) << dir.error().msg;
  EXPECT_EQ(dir->path().rfind(root.path() + "/ktstr-vm.", 0), 0u) << dir->path();
  auto stamp = read_file(dir->path() + "/" + kVmWorkDirOwnerFile).value();
  EXPECT_EQ(stamp, "pid " + std::to_string(::getpid()) + " start " + std::to_string(*process_start_time(::getpid())) + "\n");
  EXPECT_FALSE(vm_work_dir_is_stale(dir->path()));
}

TEST(VmWorkDir, SweepRemovesDeadOwnersOnly) {
  auto root = TempDir::create("ktstr-sweep-test").value();
  std::string dead = make_dir(root.path(), "ktstr-vm.dead01");
  ASSERT_TRUE(write_file_atomic(dead + "/" + kVmWorkDirOwnerFile, "pid " + std::to_string(dead_pid()) + " start 12345\n"));
  // Our pid, but another start time: the pid was reused, the owner is gone.
  std::string reused = make_dir(root.path(), "ktstr-vm.reuse1");
  ASSERT_TRUE(write_file_atomic(reused + "/" + kVmWorkDirOwnerFile,
                                "pid " + std::to_string(::getpid()) + " start " +
                                    std::to_string(*process_start_time(::getpid()) + 1) + "\n"));
  std::string live = make_dir(root.path(), "ktstr-vm.live01");
  ASSERT_TRUE(stamp_vm_work_dir(live, ::getpid()));
  // Our parent (the test runner) is alive too.
  std::string parent = make_dir(root.path(), "ktstr-vm.parent");
  ASSERT_TRUE(stamp_vm_work_dir(parent, ::getppid()));
  // No stamp (being created, or made by an older ktstr): left alone.
  std::string unstamped = make_dir(root.path(), "ktstr-vm.nostmp");
  std::string garbled = make_dir(root.path(), "ktstr-vm.garble");
  ASSERT_TRUE(write_file_atomic(garbled + "/" + kVmWorkDirOwnerFile, "pid x start y\n"));
  // Not ours by name.
  std::string other = make_dir(root.path(), "other.dead01");
  ASSERT_TRUE(write_file_atomic(other + "/" + kVmWorkDirOwnerFile, "pid " + std::to_string(dead_pid()) + " start 1\n"));

  EXPECT_EQ(sweep_stale_vm_work_dirs(root.path()), 2u);
  EXPECT_FALSE(path_exists(dead));
  EXPECT_FALSE(path_exists(reused));
  EXPECT_TRUE(path_exists(live + "/console.txt"));
  EXPECT_TRUE(path_exists(parent));
  EXPECT_TRUE(path_exists(unstamped));
  EXPECT_TRUE(path_exists(garbled));
  EXPECT_TRUE(path_exists(other));
  EXPECT_EQ(sweep_stale_vm_work_dirs(root.path()), 0u);
  EXPECT_EQ(sweep_stale_vm_work_dirs(root.path() + "/missing"), 0u);
}
