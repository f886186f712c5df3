#include "sandbox/landlock.h"

#include <linux/landlock.h>

#include <gtest/gtest.h>

namespace ward::sandbox::landlock {
namespace {

constexpr std::uint64_t kTruncate = 1ULL << 14, kIoctlDev = 1ULL << 15;

TEST(Landlock, HandledRightsGrowWithTheAbi) {
  EXPECT_EQ(handled_fs_access(0), 0u);
  EXPECT_EQ(handled_fs_access(1), (1ULL << 13) - 1);
  EXPECT_TRUE(handled_fs_access(2) & LANDLOCK_ACCESS_FS_REFER);
  EXPECT_FALSE(handled_fs_access(2) & kTruncate);
  EXPECT_TRUE(handled_fs_access(3) & kTruncate);
  EXPECT_FALSE(handled_fs_access(4) & kIoctlDev);
  EXPECT_TRUE(handled_fs_access(5) & kIoctlDev);
  EXPECT_EQ(scopes(5), 0u);
  EXPECT_EQ(scopes(6), 3u);
}

TEST(Landlock, FilesGetFileRightsOnly) {
  // A read-write rule on a file (/dev/null say) must not carry directory rights, which the
  // kernel rejects for a non-directory.
  std::uint64_t file = rule_access(Mode::kReadWrite, false, 7);
  EXPECT_FALSE(file & LANDLOCK_ACCESS_FS_READ_DIR);
  EXPECT_FALSE(file & LANDLOCK_ACCESS_FS_MAKE_REG);
  EXPECT_TRUE(file & LANDLOCK_ACCESS_FS_WRITE_FILE);
  std::uint64_t dir = rule_access(Mode::kReadWrite, true, 7);
  EXPECT_TRUE(dir & LANDLOCK_ACCESS_FS_MAKE_REG);
  EXPECT_TRUE(dir & LANDLOCK_ACCESS_FS_READ_DIR);
}

TEST(Landlock, NoRuleGrantsDeviceNodeCreation) {
  for (Mode mode : {Mode::kReadOnly, Mode::kReadWrite, Mode::kDevice, Mode::kListOnly, Mode::kProc})
    for (bool dir : {false, true}) {
      std::uint64_t access = rule_access(mode, dir, 7);
      EXPECT_FALSE(access & LANDLOCK_ACCESS_FS_MAKE_CHAR);
      EXPECT_FALSE(access & LANDLOCK_ACCESS_FS_MAKE_BLOCK);
    }
}

TEST(Landlock, ReadOnlyGrantsNoWrite) {
  std::uint64_t ro = rule_access(Mode::kReadOnly, true, 7);
  EXPECT_FALSE(ro & LANDLOCK_ACCESS_FS_WRITE_FILE);
  EXPECT_FALSE(ro & LANDLOCK_ACCESS_FS_REMOVE_FILE);
  EXPECT_FALSE(ro & kTruncate);
  EXPECT_TRUE(ro & LANDLOCK_ACCESS_FS_EXECUTE);
}

TEST(Landlock, RightsAreClampedToTheAbi) {
  EXPECT_FALSE(rule_access(Mode::kReadWrite, true, 2) & kTruncate);
  EXPECT_FALSE(rule_access(Mode::kDevice, false, 4) & kIoctlDev);
  EXPECT_EQ(rule_access(Mode::kReadWrite, true, 0), 0u);
}

}  // namespace
}  // namespace ward::sandbox::landlock
