#include "audit/sink.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace ward::audit {
namespace {

class SinkFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ward-sink-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    const std::string command = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(std::system(command.c_str()), 0);
  }
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  static bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
  std::string dir_;
};

// A symlink to a file that does not exist (planted by a sandbox in its workdir, pointing at a
// file of root's) is refused, with or without rotation, and nothing is created where it points.
TEST_F(SinkFiles, ADanglingSymlinkCreatesNothing) {
  const std::string target = file("victim.txt"), link = file("audit.jsonl");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  for (std::size_t max_bytes : {std::size_t{0}, std::size_t{1} << 20}) {
    auto sink = Sink::open(link, false, max_bytes);
    ASSERT_FALSE(sink) << max_bytes;
    EXPECT_NE(sink.error().describe().find("symbolic link"), std::string::npos)
        << sink.error().describe();
    EXPECT_FALSE(exists(target)) << "created through the symlink (max_bytes " << max_bytes << ")";
  }
}

// A missing file is made 0600; an existing one, named through a symlink (/dev/stdout is one),
// is opened as found.
TEST_F(SinkFiles, AMissingFileIsMadeAndAnExistingOneOpenedThroughALink) {
  const std::string plain = file("audit.jsonl");
  ASSERT_TRUE(Sink::open(plain, false));
  struct stat st;
  ASSERT_EQ(::stat(plain.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  const std::string link = file("link.jsonl");
  ASSERT_EQ(::symlink(plain.c_str(), link.c_str()), 0);
  EXPECT_TRUE(Sink::open(link, false));
}

}  // namespace
}  // namespace ward::audit
