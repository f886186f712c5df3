#include "proxy/hosts.h"

#include <gtest/gtest.h>

namespace ward::proxy {
namespace {

TEST(HostsFile, NamesAndAliasesInFileOrder) {
  auto hosts = HostsFile::parse(
      "# test upstreams\n"
      "10.231.0.2  api.test  Mirror.Test.  # trailing comment\n"
      "\n"
      "fd00::2 api.test\n",
      "hosts");
  ASSERT_TRUE(hosts) << hosts.error().describe();
  const auto& api = hosts->lookup("api.test");
  ASSERT_EQ(api.size(), 2u);
  EXPECT_EQ(api[0].to_string(), "10.231.0.2");
  EXPECT_EQ(api[1].to_string(), "fd00::2");
  ASSERT_EQ(hosts->lookup("mirror.test").size(), 1u);  // normalised: lower-case, no final dot
  EXPECT_TRUE(hosts->lookup("other.test").empty());
}

TEST(HostsFile, RefusesWhatIsNotAPlainAddressNamingFileAndLine) {
  for (const char* bad : {"0x7f.1 evil.test\n", "127.1 evil.test\n", "bogus evil.test\n"}) {
    auto hosts = HostsFile::parse(std::string("# ok\n") + bad, "my-hosts");
    ASSERT_FALSE(hosts) << bad;
    EXPECT_NE(hosts.error().message.find("my-hosts:2:"), std::string::npos)
        << hosts.error().message;
  }
  auto nameless = HostsFile::parse("10.0.0.1\n", "h");
  ASSERT_FALSE(nameless);
  EXPECT_NE(nameless.error().message.find("no host name"), std::string::npos);
}

TEST(HostsFile, AMissingFileIsAnError) {
  auto hosts = HostsFile::load("/nonexistent/ward-hosts");
  ASSERT_FALSE(hosts);
  EXPECT_NE(hosts.error().describe().find("/nonexistent/ward-hosts"), std::string::npos);
}

}  // namespace
}  // namespace ward::proxy
