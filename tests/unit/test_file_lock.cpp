// core/file_lock: KTSTR_VM_LOCK / KTSTR_BUILD_LOCK, and the lock itself. Unset means no lock; a
// held lock keeps another open file description from locking the same file
// until the holder goes away.
#include "core/fs.hpp"
#include "core/file_lock.hpp"

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

TEST(FileLock, UnsetOrEmptyVariableTakesNoLock) {
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
  auto none = FileLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_TRUE(none) << none.error().msg;
  EXPECT_FALSE(none->held());
  ::setenv("KTSTR_TEST_HOST_LOCK", "", 1);
  auto empty = FileLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_TRUE(empty);
  EXPECT_FALSE(empty->held());
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}

TEST(FileLock, HeldUntilDestroyedAndWaitersAreTold) {
  auto tmp = TempDir::create("ktstr-host-lock");
  ASSERT_TRUE(tmp);
  const std::string path = tmp->path() + "/vm.lock";
  ::setenv("KTSTR_TEST_HOST_LOCK", path.c_str(), 1);
  {
    int waits = 0;
    auto lock = FileLock::from_env("KTSTR_TEST_HOST_LOCK", [&](const std::string&) { ++waits; });
    ASSERT_TRUE(lock) << lock.error().msg;
    EXPECT_TRUE(lock->held());
    EXPECT_EQ(waits, 0);  // nobody held it
    EXPECT_FALSE(lockable(path));
    FileLock moved = std::move(*lock);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(lock->held());
    EXPECT_FALSE(lockable(path));
  }
  EXPECT_TRUE(lockable(path));
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}

TEST(FileLock, AFileThatCannotBeCreatedIsAnErrorNamingIt) {
  ::setenv("KTSTR_TEST_HOST_LOCK", "/nonexistent-dir/ktstr/vm.lock", 1);
  auto lock = FileLock::from_env("KTSTR_TEST_HOST_LOCK");
  ASSERT_FALSE(lock);
  EXPECT_NE(lock.error().msg.find("/nonexistent-dir/ktstr/vm.lock"), std::string::npos) << lock.error().msg;
  EXPECT_NE(lock.error().msg.find("KTSTR_TEST_HOST_LOCK"), std::string::npos) << lock.error().msg;
  ::unsetenv("KTSTR_TEST_HOST_LOCK");
}

TEST(FileLock, TryTakeFailsWhileHeldAndSucceedsAfter) {
  auto tmp = TempDir::create("ktstr-file-lock");
  ASSERT_TRUE(tmp);
  const std::string path = tmp->path() + "/slot.lock";
  {
    auto first = FileLock::try_take(path);
    ASSERT_TRUE(first) << first.error().msg;
    ASSERT_TRUE(first->has_value());
    EXPECT_TRUE((*first)->held());
    auto second = FileLock::try_take(path);  // another open file description
    ASSERT_TRUE(second) << second.error().msg;
    EXPECT_FALSE(second->has_value());
  }
  auto again = FileLock::try_take(path);
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->has_value());
}

TEST(FileLock, TryTakeOfAFileThatCannotBeOpenedIsAnError) {
  auto lock = FileLock::try_take("/nonexistent-dir/ktstr/slot.lock");
  ASSERT_FALSE(lock);
  EXPECT_NE(lock.error().msg.find("/nonexistent-dir/ktstr/slot.lock"), std::string::npos) << lock.error().msg;
}
