#include "proxy/target.h"

#include <gtest/gtest.h>

namespace ward::proxy {
namespace {

TEST(ConnectTarget, HostAndPortNormalised) {
  auto t = parse_connect_target("API.Example.COM.:443");
  ASSERT_TRUE(t) << t.error().reason;
  EXPECT_EQ(t->host, "api.example.com");
  EXPECT_EQ(t->port, 443);
  auto v6 = parse_connect_target("[::FFFF:127.0.0.1]:8443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "127.0.0.1");  // IPv4-mapped: the IPv4 address it carries
  auto hex = parse_connect_target("0x7f.1:443");
  ASSERT_TRUE(hex);
  EXPECT_EQ(hex->host, "127.0.0.1");
  // Found by a red-team: names that start like an IPv4 address (nip.io, sslip.io) were refused.
  for (const char* name : {"127.0.0.1.nip.io", "1.2.3.4.example.com", "1.2.3.4a.example.com"}) {
    auto named = parse_connect_target(std::string(name) + ":443");
    ASSERT_TRUE(named) << name << ": " << named.error().reason;
    EXPECT_EQ(named->host, name);
  }
  auto forward = parse_forward_target("http://127.0.0.1.nip.io:8080/x");
  ASSERT_TRUE(forward) << forward.error().reason;
  EXPECT_EQ(forward->host, "127.0.0.1.nip.io");
  EXPECT_EQ(forward->port, 8080);
  EXPECT_EQ(forward->origin_form, "/x");
  auto bare = parse_forward_target("http://1.2.3.4.example.com?q");
  ASSERT_TRUE(bare) << bare.error().reason;
  EXPECT_EQ(bare->host, "1.2.3.4.example.com");
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->origin_form, "/?q");
  EXPECT_FALSE(parse_forward_target("http://1.2.3.4.ex ample.com/"));
  // Found in review: the fragment stayed, and "/admin#/../public/x" was decided as /public/x.
  auto fragment = parse_forward_target("http://1.2.3.4.nip.io/admin#/../public/x");
  ASSERT_TRUE(fragment);
  EXPECT_EQ(fragment->origin_form, "/admin");
}

TEST(ConnectTarget, RefusesMalformedTargets) {
  for (const char* bad :
       {"", "example.com", "example.com:", "example.com:0", "example.com:65536", "example.com:8x",
        "user@example.com:443", "exa mple.com:443", "example.com:443/path", ":443", "[v1.x]:443",
        "exa%00mple.com:443", "http://example.com:443", "example.com:443?x", "example.com:443#x",
        "example.com:443/"})
    EXPECT_FALSE(parse_connect_target(bad)) << bad;
}

TEST(ForwardTarget, AbsoluteHttpUrls) {
  auto t = parse_forward_target("http://Example.com:8080/a/b?q=1#frag");
  ASSERT_TRUE(t) << t.error().reason;
  EXPECT_EQ(t->host, "example.com");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->origin_form, "/a/b?q=1");
  EXPECT_EQ(t->authority, "Example.com:8080");
  auto bare = parse_forward_target("http://example.com");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->port, 80);
  EXPECT_EQ(bare->origin_form, "/");
  auto decimal = parse_forward_target("http://2130706433/");
  ASSERT_TRUE(decimal);
  EXPECT_EQ(decimal->host, "127.0.0.1");
}

TEST(ForwardTarget, HttpsNeedsConnectAndOtherFormsAreRefused) {
  auto https = parse_forward_target("https://example.com/");
  ASSERT_FALSE(https);
  EXPECT_NE(https.error().reason.find("CONNECT"), std::string::npos);
  for (const char* bad : {"/index.html", "*", "ftp://example.com/", "http://user:pw@example.com/",
                          "http:///path", "http://exa%20mple.com/", "http://example.com:0/"})
    EXPECT_FALSE(parse_forward_target(bad)) << bad;
}

}  // namespace
}  // namespace ward::proxy
