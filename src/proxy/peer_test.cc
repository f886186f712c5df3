#include "proxy/peer.h"

#include <gtest/gtest.h>

#include <string>

namespace ward::proxy {
namespace {

TEST(LastNspid, TheInnermostPidOfTheLine) {
  EXPECT_EQ(last_nspid("Name:\tpython3\nPid:\t4242\nNSpid:\t4242\t7\nNSpgid:\t4242\t7\n"), 7);
  EXPECT_EQ(last_nspid("Name:\tx\nNSpid:\t9\n"), 9);  // no pid namespace of its own
  EXPECT_EQ(last_nspid("NSpid:\t12\t3\t1"), 1);       // the last line, without its newline
}

// A user in a few hundred directory groups has a Groups line of several KiB before NSpid: it
// used to be read from the first 4 KiB only, and a line cut there was read past its end.
TEST(LastNspid, AfterAGroupsLineOfManyKilobytes) {
  std::string groups = "Groups:\t";
  for (int g = 0; g < 2000; ++g) groups += std::to_string(1'000'000'000 + g) + " ";
  EXPECT_EQ(last_nspid("Name:\tcurl\n" + groups + "\nNStgid:\t5000\t12\nNSpid:\t5000\t12\n"), 12);
}

TEST(LastNspid, NothingUsableGivesZero) {
  EXPECT_EQ(last_nspid(""), 0);
  EXPECT_EQ(last_nspid("Name:\tx\nPid:\t5\n"), 0);
  EXPECT_EQ(last_nspid("Name:\tx\nNSpid:\t"), 0);  // cut off where the pid should be
  EXPECT_EQ(last_nspid("Name:\tx\nNSpid:\t5\t1x\n"), 0);
  EXPECT_EQ(last_nspid("Name:\tNSpid:\t7\n"), 0);  // a process named so: not the field
}

}  // namespace
}  // namespace ward::proxy
