#include "tls/bundle.h"

#include <gtest/gtest.h>

#include "tls/test_util.h"

namespace ward::tls {
namespace {

using testing::count_certs;
using testing::file_mode;
using testing::read_text;
using testing::stat_of;
using testing::TempDir;
using testing::write_text;

class Bundle : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = Authority::load_or_create(tmp_.path());
    ASSERT_TRUE(loaded) << loaded.error().describe();
    ca_ = *loaded;
  }

  // Moves a file's modification time `seconds` away from now.
  static void age(const std::string& path, long seconds) {
    struct timespec times[2];
    ::clock_gettime(CLOCK_REALTIME, &times[0]);
    times[0].tv_sec += seconds;
    times[1] = times[0];
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }

  TempDir tmp_;
  std::shared_ptr<Authority> ca_;
};

TEST_F(Bundle, HoldsTheSystemCasAndWards) {
  const char* system = "/etc/ssl/certs/ca-certificates.crt";
  std::string system_pem = read_text(system);
  if (system_pem.empty()) GTEST_SKIP() << "no " << system;
  auto path = write_bundle(*ca_, tmp_.path());
  ASSERT_TRUE(path) << path.error().describe();
  EXPECT_EQ(*path, tmp_ / "tls/ca-bundle.pem");
  EXPECT_EQ(file_mode(*path), 0644u);
  std::string bundle = read_text(*path);
  EXPECT_EQ(bundle.rfind(system_pem, 0), 0u);
  EXPECT_EQ(count_certs(bundle), count_certs(system_pem) + 1);
  ASSERT_GE(bundle.size(), ca_->cert_pem().size());
  EXPECT_EQ(bundle.substr(bundle.size() - ca_->cert_pem().size()), ca_->cert_pem());
}

TEST_F(Bundle, RewrittenOnlyWhenOutOfDate) {
  std::string system = tmp_ / "system.pem";
  testing::SelfSigned one = testing::self_signed("one.example");
  write_text(system, to_pem(one.cert.get()));
  age(system, -60);
  auto path = write_bundle(*ca_, tmp_.path(), {tmp_ / "absent.pem", system});
  ASSERT_TRUE(path) << path.error().describe();
  EXPECT_EQ(count_certs(read_text(*path)), 2u);
  struct stat first = stat_of(*path);

  ASSERT_TRUE(write_bundle(*ca_, tmp_.path(), {tmp_ / "absent.pem", system}));
  struct stat second = stat_of(*path);
  EXPECT_EQ(second.st_ino, first.st_ino);
  EXPECT_EQ(second.st_mtim.tv_sec, first.st_mtim.tv_sec);
  EXPECT_EQ(second.st_mtim.tv_nsec, first.st_mtim.tv_nsec);

  // The system bundle changed (update-ca-certificates): rewritten with the new content.
  testing::SelfSigned two = testing::self_signed("two.example");
  write_text(system, to_pem(one.cert.get()) + to_pem(two.cert.get()));
  age(system, 5);
  ASSERT_TRUE(write_bundle(*ca_, tmp_.path(), {system}));
  EXPECT_NE(stat_of(*path).st_ino, first.st_ino);
  std::string bundle = read_text(*path);
  EXPECT_EQ(count_certs(bundle), 3u);
  EXPECT_NE(bundle.find(to_pem(two.cert.get())), std::string::npos);

  // ward's CA is newer than the bundle (a new CA was made): rewritten.
  age(system, -60);
  age(*path, -30);
  struct stat before = stat_of(*path);
  ASSERT_TRUE(write_bundle(*ca_, tmp_.path(), {system}));
  EXPECT_NE(stat_of(*path).st_ino, before.st_ino);
}

TEST_F(Bundle, WardsCaAloneWithoutASystemBundle) {
  auto path = write_bundle(*ca_, tmp_.path(), {tmp_ / "none.pem"});
  ASSERT_TRUE(path) << path.error().describe();
  std::string bundle = read_text(*path);
  EXPECT_EQ(count_certs(bundle), 1u);
  EXPECT_NE(bundle.find(ca_->cert_pem()), std::string::npos);
}

TEST_F(Bundle, ErrorWithoutTheTlsDirectory) {
  TempDir other;
  auto path = write_bundle(*ca_, other / "missing");
  ASSERT_FALSE(path);
  EXPECT_NE(path.error().describe().find("missing"), std::string::npos);
}

}  // namespace
}  // namespace ward::tls
