// The value parsers of values.h, on their own.
#include "policy/values.h"

#include <gtest/gtest.h>

namespace ward::policy {
namespace {

TEST(ParseSize, Accepts) {
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("512").value(), 512u);
  EXPECT_EQ(parse_size("512b").value(), 512u);
  EXPECT_EQ(parse_size("1k").value(), 1024u);
  EXPECT_EQ(parse_size("1KB").value(), 1024u);
  EXPECT_EQ(parse_size("512M").value(), 512ULL << 20);
  EXPECT_EQ(parse_size("512mi").value(), 512ULL << 20);
  EXPECT_EQ(parse_size("2GiB").value(), 2ULL << 30);
  EXPECT_EQ(parse_size(" 3t ").value(), 3ULL << 40);
  EXPECT_EQ(parse_size("16777215T").value(), 16777215ULL << 40);
}

TEST(ParseSize, Refuses) {
  for (const char* s : {"", "M", "1.5G", "-1", "1 G", "1X", "1GiBs", "1iB", "0x10"}) {
    EXPECT_FALSE(parse_size(s)) << s;
  }
  EXPECT_NE(parse_size("16777216T").error().message.find("too large"), std::string::npos);
  EXPECT_NE(parse_size("99999999999999999999999").error().message.find("too large"),
            std::string::npos);
}

TEST(ParseDuration, Accepts) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parse_duration("30").value(), milliseconds(30000));
  EXPECT_EQ(parse_duration("0").value(), milliseconds(0));
  EXPECT_EQ(parse_duration("30s").value(), milliseconds(30000));
  EXPECT_EQ(parse_duration("1500ms").value(), milliseconds(1500));
  EXPECT_EQ(parse_duration("5m").value(), milliseconds(300000));
  EXPECT_EQ(parse_duration("1h30m").value(), milliseconds(5400000));
  EXPECT_EQ(parse_duration("1h30m15s250ms").value(), milliseconds(5415250));
  EXPECT_EQ(parse_duration("2d").value(), milliseconds(172800000));
}

TEST(ParseDuration, Refuses) {
  for (const char* s : {"", "s", "30x", "1.5h", "-5s", "5 m", "1h30", "30S", "h1", "5m ms"}) {
    EXPECT_FALSE(parse_duration(s)) << s;
  }
  EXPECT_NE(parse_duration("9999999999999999d").error().message.find("too long"),
            std::string::npos);
  EXPECT_NE(parse_duration("99999999999999999999999s").error().message.find("too long"),
            std::string::npos);
}

TEST(ParseCpus, AcceptsAndRefuses) {
  EXPECT_EQ(parse_cpus("0.5").value(), 0.5);
  EXPECT_EQ(parse_cpus("2").value(), 2.0);
  EXPECT_EQ(parse_cpus("0.01").value(), 0.01);
  for (const char* s : {"", "0", "0.001", "-1", "1e3", "inf", "nan", "two", "1,5", "70000"}) {
    EXPECT_FALSE(parse_cpus(s)) << s;
  }
}

TEST(HostPattern, LowerCasesAndStripsBrackets) {
  EXPECT_EQ(parse_host_pattern("API.GitHub.COM").value(), "api.github.com");
  EXPECT_EQ(parse_host_pattern("[FD00::1]").value(), "fd00::1");
  EXPECT_EQ(parse_host_pattern("**.Example.com").value(), "**.example.com");
  EXPECT_TRUE(is_ip_literal("10.0.0.1"));
  EXPECT_TRUE(is_ip_literal("[::1]"));
  EXPECT_FALSE(is_ip_literal("example.com"));
  EXPECT_FALSE(parse_host_pattern(std::string(254, 'a')));
  EXPECT_FALSE(parse_host_pattern(std::string(64, 'a') + ".example.com"));
  EXPECT_FALSE(parse_host_pattern("fe80::1%eth0"));
}

TEST(Cidr, ParsesBothFamilies) {
  Cidr v4 = parse_cidr("192.168.0.0/16").value();
  EXPECT_FALSE(v4.v6);
  EXPECT_EQ(v4.prefix, 16);
  EXPECT_EQ(v4.addr[0], 192);
  EXPECT_EQ(v4.addr[1], 168);
  Cidr v6 = parse_cidr("2001:db8::/32").value();
  EXPECT_TRUE(v6.v6);
  EXPECT_EQ(v6.prefix, 32);
  EXPECT_EQ(v6.addr[0], 0x20);
  EXPECT_EQ(parse_cidr("10.1.1.1").value().prefix, 32);
  EXPECT_EQ(parse_cidr("2001:db8::1").value().prefix, 128);
  bool host_bits = false;
  Cidr masked = parse_cidr("10.255.1.1/12", &host_bits).value();
  EXPECT_TRUE(host_bits);
  EXPECT_EQ(masked.addr[1], 0xf0);
  EXPECT_EQ(masked.addr[2], 0);
}

TEST(Cidr, Overlaps) {
  auto c = [](const char* s) { return parse_cidr(s).value(); };
  EXPECT_TRUE(cidr_overlaps(c("10.0.0.0/8"), c("10.1.0.0/16")));
  EXPECT_TRUE(cidr_overlaps(c("10.1.0.0/16"), c("10.0.0.0/8")));
  EXPECT_FALSE(cidr_overlaps(c("10.0.0.0/8"), c("11.0.0.0/8")));
  EXPECT_TRUE(cidr_overlaps(c("::ffff:10.0.0.1"), c("10.0.0.0/8")));
  EXPECT_FALSE(cidr_overlaps(c("fd00::/8"), c("10.0.0.0/8")));
  EXPECT_TRUE(cidr_overlaps(c("::/0"), c("10.0.0.0/8")));
}

TEST(Cidr, ReservedRanges) {
  auto reserved = [](const char* s) { return reserved_range(parse_cidr(s).value()); };
  EXPECT_EQ(reserved("127.1.2.3"), "loopback (127.0.0.0/8)");
  EXPECT_EQ(reserved("::1"), "loopback (::1/128)");
  EXPECT_EQ(reserved("169.254.169.254"), "link-local (169.254.0.0/16)");
  EXPECT_EQ(reserved("febf::1"), "link-local (fe80::/10)");
  EXPECT_EQ(reserved("0.0.0.0"), "the unspecified address (0.0.0.0/32)");
  EXPECT_EQ(reserved("::"), "the unspecified address (::/128)");
  EXPECT_FALSE(reserved("10.0.0.0/8"));
  EXPECT_FALSE(reserved("172.16.0.0/12"));
  EXPECT_FALSE(reserved("fec0::/10"));
  EXPECT_FALSE(reserved("0.0.0.1"));
  EXPECT_FALSE(reserved("192.0.0.0/2"));
  EXPECT_TRUE(reserved("128.0.0.0/1"));  // holds 169.254.0.0/16
}

}  // namespace
}  // namespace ward::policy
