// The download unpacker against archives built here, header by header: what a gateway's tar never
// makes but a crafted one can.
#include "cli/unpack.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ward::cli {
namespace {

namespace fs = std::filesystem;

// A ustar archive, member by member.
class Archive {
 public:
  Archive& dir(const std::string& name) { return add(name, '5', "", "", 0755); }
  Archive& file(const std::string& name, const std::string& data, int mode = 0644) {
    return add(name, '0', "", data, mode);
  }
  Archive& symlink(const std::string& name, const std::string& target) {
    return add(name, '2', target, "", 0777);
  }
  Archive& hardlink(const std::string& name, const std::string& target) {
    return add(name, '1', target, "", 0644);
  }
  Archive& add(const std::string& name, char type, const std::string& link, const std::string& data,
               int mode) {
    std::string h(512, '\0');
    name.copy(h.data(), std::min<std::size_t>(name.size(), 100));
    std::snprintf(h.data() + 100, 8, "%07o", mode);
    std::snprintf(h.data() + 108, 8, "%07o", 0);
    std::snprintf(h.data() + 116, 8, "%07o", 0);
    std::snprintf(h.data() + 124, 12, "%011zo", data.size());
    std::snprintf(h.data() + 136, 12, "%011o", 1000000000);
    h[156] = type;
    link.copy(h.data() + 157, std::min<std::size_t>(link.size(), 100));
    std::memcpy(h.data() + 257,
                "ustar\0"
                "00",
                8);
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h.data() + 148, 8, "%06o", sum);
    bytes_ += h + data + std::string((512 - data.size() % 512) % 512, '\0');
    return *this;
  }
  std::string bytes() const { return bytes_ + std::string(1024, '\0'); }

 private:
  std::string bytes_;
};

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/unpack-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/root";
    victim_ = base_ + "/victim";
    fs::create_directories(root_);
    fs::create_directories(victim_);
  }
  void TearDown() override { fs::remove_all(base_); }

  // Unpacks `archive` into root, `piece` bytes at a time; the result of finish (or of the feed that
  // failed).
  Result<void> unpack(const std::string& archive, std::size_t piece = 1 << 20) {
    Unpacker u(UniqueFd(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)));
    for (std::size_t at = 0; at < archive.size(); at += piece)
      if (auto r = u.feed(std::string_view(archive).substr(at, piece)); !r) return r;
    auto r = u.finish();
    left_out_ = u.left_out();
    refused_ = u.refused();
    return r;
  }
  bool victim_empty() const { return fs::is_empty(victim_); }
  std::string read(const std::string& rel) const {
    std::ifstream in(root_ + "/" + rel);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  std::string base_, root_, victim_;
  std::vector<std::string> left_out_, refused_;
};

TEST_F(UnpackTest, AnOrdinaryTreeIsUnpackedWithItsModesAndInsideSymlinks) {
  Archive a;
  a.dir("./d/").file("./d/f", "x\n", 0755).symlink("./l", "d/f").symlink("./d/back", "../d");
  a.hardlink("./h", "./d/f");
  ASSERT_TRUE(unpack(a.bytes(), 7)) << (refused_.empty() ? "" : refused_.front());
  EXPECT_EQ(read("d/f"), "x\n");
  EXPECT_EQ(read("l"), "x\n");
  EXPECT_EQ(read("h"), "x\n");
  EXPECT_EQ(fs::read_symlink(root_ + "/d/back"), "../d");
  struct stat st;
  ASSERT_EQ(::stat((root_ + "/d/f").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_EQ(st.st_mtime, 1000000000);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_TRUE(left_out_.empty());
}

TEST_F(UnpackTest, SymlinksOutOfTheTreeAreLeftOutAndNothingIsWrittenBeneathThem) {
  Archive a;
  a.symlink("./abs", victim_).file("./abs/planted", "PWNED");
  a.dir("./d").symlink("./d/up", "../..").file("./d/up/victim/climbed", "PWNED");
  a.symlink("./dots", "d/../..").symlink("./self", ".").symlink("./via", "self/..");
  a.file("./ok", "ok");
  EXPECT_FALSE(unpack(a.bytes()));
  EXPECT_TRUE(victim_empty());
  EXPECT_EQ(read("ok"), "ok");
  for (const char* name : {"abs", "d/up", "dots", "via"})
    EXPECT_FALSE(fs::exists(fs::symlink_status(root_ + "/" + name))) << name;
  EXPECT_EQ(fs::read_symlink(root_ + "/self"), ".");
  EXPECT_EQ(left_out_.size(), 4u);
  EXPECT_EQ(refused_.size(), 2u);
}

TEST_F(UnpackTest, NothingIsWrittenThroughSymlinksThatWereAlreadyThere) {
  fs::create_symlink(victim_, root_ + "/link");
  fs::create_directories(root_ + "/d");
  fs::create_symlink(victim_ + "/file", root_ + "/d/file");
  Archive a;
  a.dir("./link").file("./link/.bash_login", "PWNED").file("./d/file", "PWNED");
  a.file("./link2/x", "fine");
  EXPECT_FALSE(unpack(a.bytes()));
  EXPECT_TRUE(victim_empty());
  EXPECT_EQ(read("link2/x"), "fine");
  EXPECT_EQ(refused_.size(), 3u);
}

TEST_F(UnpackTest, NoFileIsReplacedAndNamesThatClimbOutAreRefused) {
  { std::ofstream(root_ + "/.envrc") << "mine\n"; }
  Archive a;
  a.file("./.envrc", "planted").file("../escape", "x").file("./a/../../escape2", "x");
  a.hardlink("./h", "/etc/passwd").add("./fifo", '6', "", "", 0644);
  EXPECT_FALSE(unpack(a.bytes()));
  EXPECT_EQ(read(".envrc"), "mine\n");
  EXPECT_FALSE(fs::exists(base_ + "/escape"));
  EXPECT_FALSE(fs::exists(base_ + "/escape2"));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ + "/h")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root_ + "/fifo")));
  EXPECT_EQ(left_out_.size(), 1u);
}

TEST_F(UnpackTest, AnArchiveCutShortOrNotTarFails) {
  Archive a;
  a.file("./f", std::string(2000, 'x'));
  const std::string whole = a.bytes();
  EXPECT_FALSE(unpack(whole.substr(0, 1000)));
  std::string broken = whole;
  broken[0] ^= 1;  // the checksum no longer matches
  fs::remove_all(root_);
  fs::create_directories(root_);
  EXPECT_FALSE(unpack(broken));
  EXPECT_FALSE(fs::exists(root_ + "/f"));
}

}  // namespace
}  // namespace ward::cli
