// core/host_lock: KTSTR_VM_LOCK / KTSTR_BUILD_LOCK. Unset means no lock; a
// held lock keeps another open file description from locking the same file
// until the holder goes away.
#include "core/fs.hpp"
#include "core/host_lock.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>

using namespace ktstr;

namespace {

// Can another open of `path` take the lock right now?
bool lockable(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST(HostLock, UnsetOrEmptyVariableTakesNoLock) {
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
  auto none = HostLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_TRUE(none) << none.error().msg;
  EXPECT_FALSE(none->held());
  ::setenv("KTSTR_TEST_HOST_LOCK", "", 1);
  auto empty = HostLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->held());
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}

TEST(HostLock, HeldUntilDestroyedAndWaitersAreTold) {
  auto tmp = TempDir::create("ktstr-host-lock");
  ASSERT_TRUE(tmp);
  const std::string path = tmp->path() + "/vm.lock";
  ::setenv("KTSTR_TEST_HOST_LOCK", path.c_str(), 1);
  {
    int waits = 0;
    auto lock = HostLock::from_env("KTSTR_TEST_HOST_LOCK", [&](const std::string&) { ++waits; });
    ASSERT_TRUE(lock) << lock.error().msg;
    EXPECT_TRUE(lock->held());
    EXPECT_EQ(waits, 0);  // nobody held it
    EXPECT_FALSE(lockable(path));
    HostLock moved = std::move(*lock);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(lock->held());
    EXPECT_FALSE(lockable(path));
  }
  EXPECT_TRUE(lockable(path));
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}

TEST(HostLock, AFileThatCannotBeCreatedIsAnErrorNamingIt) {
  ::setenv("KTSTR_TEST_HOST_LOCK", "/nonexistent-dir/ktstr/vm.lock", 1);
  auto lock = HostLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_FALSE(lock);
  EXPECT_NE(lock.error().msg.find("/nonexistent-dir/ktstr/vm.lock"), std::string::npos) << lock.error().msg;
  EXPECT_NE(lock.error().msg.find("KTSTR_TEST_HOST_LOCK"), std::string::npos) << lock.error().msg;
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}
