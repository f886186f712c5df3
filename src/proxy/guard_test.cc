// Every spelling of a forbidden address is recognised, and refused whatever the policy says.
#include "proxy/guard.h"

#include <gtest/gtest.h>

#include "policy/values.h"

namespace ward::proxy {
namespace {

AddressClass class_of(std::string_view literal) {
  auto ip = parse_ip_literal(literal);
  EXPECT_TRUE(ip.has_value()) << literal;
  return ip ? classify(*ip) : AddressClass::kPublic;
}

TEST(Guard, EverySpellingOfLoopbackIsLoopback) {
  for (const char* s :
       {"127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.0.0.1", "127.0.1",
        "127.255.255.254", "[::1]", "::1", "::ffff:127.0.0.1", "[::ffff:7f00:1]", "::127.0.0.1",
        "64:ff9b::7f00:1", "0:0:0:0:0:ffff:127.0.0.1", "[::1%lo]"})
    EXPECT_EQ(class_of(s), AddressClass::kLoopback) << s;
}

TEST(Guard, EverySpellingOfTheMetadataAddressIsMetadata) {
  for (const char* s : {"169.254.169.254", "0xa9fea9fe", "2852039166", "0251.0376.0251.0376",
                        "169.254.43518", "::ffff:169.254.169.254", "[::ffff:a9fe:a9fe]",
                        "fd00:ec2::254", "100.100.100.200", "168.63.129.16"})
    EXPECT_EQ(class_of(s), AddressClass::kMetadata) << s;
  EXPECT_EQ(class_of("169.254.1.1"), AddressClass::kLinkLocal);
  EXPECT_EQ(class_of("fe80::1"), AddressClass::kLinkLocal);
}

TEST(Guard, OtherClasses) {
  EXPECT_EQ(class_of("0.0.0.0"), AddressClass::kUnspecified);
  EXPECT_EQ(class_of("0"), AddressClass::kUnspecified);
  EXPECT_EQ(class_of("::"), AddressClass::kUnspecified);
  EXPECT_EQ(class_of("224.0.0.1"), AddressClass::kMulticast);
  EXPECT_EQ(class_of("255.255.255.255"), AddressClass::kMulticast);
  EXPECT_EQ(class_of("ff02::1"), AddressClass::kMulticast);
  EXPECT_EQ(class_of("10.1.2.3"), AddressClass::kPrivate);
  EXPECT_EQ(class_of("172.31.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(class_of("192.168.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(class_of("100.64.0.1"), AddressClass::kPrivate);
  EXPECT_EQ(class_of("fd12::1"), AddressClass::kPrivate);
  EXPECT_EQ(class_of("203.0.113.7"), AddressClass::kReserved);
  EXPECT_EQ(class_of("2001:db8::1"), AddressClass::kReserved);
  EXPECT_EQ(class_of("2002:7f00:1::"), AddressClass::kReserved);  // 6to4 around 127.0.0.1
  EXPECT_EQ(class_of("8.8.8.8"), AddressClass::kPublic);
  EXPECT_EQ(class_of("2606:4700::1111"), AddressClass::kPublic);
  EXPECT_EQ(class_of("172.32.0.1"), AddressClass::kPublic);
}

TEST(Guard, NamesAreNotLiterals) {
  for (const char* s : {"localhost", "example.com", "cafe", "1.2.3.4.example.com", "127.0.0.1 x",
                        "127.0.0.1\n", "", "[]", "::g"})
    EXPECT_FALSE(parse_ip_literal(s).has_value()) << s;
}

TEST(Guard, HostsAreNormalisedBeforeAnyDecision) {
  EXPECT_EQ(normalize_host("API.GitHub.COM."), "api.github.com");
  EXPECT_EQ(normalize_host("0x7f.1"), "127.0.0.1");
  EXPECT_EQ(normalize_host("[::FFFF:127.0.0.1]"), "127.0.0.1");
  EXPECT_EQ(normalize_host("[2001:DB8:0:0::1]"), "2001:db8::1");
}

TEST(Guard, AlwaysRefusedWhateverAllowedIpsSay) {
  auto everything = policy::parse_cidr("0.0.0.0/0");
  ASSERT_TRUE(everything);
  std::vector<policy::Cidr> allowed = {*everything};
  for (const char* s : {"127.0.0.1", "169.254.169.254", "0.0.0.0", "224.0.0.1", "169.254.1.1"}) {
    Verdict v = check_destination(*parse_ip_literal(s), 443, allowed);
    EXPECT_FALSE(v.allowed) << s;
    EXPECT_NE(v.reason.find("never reachable"), std::string::npos) << v.reason;
  }
}

// Found by a red-team: with allowed_ips admitting 2002::/16, a 6to4 address carrying the metadata
// or a loopback address was tried (a relay would deliver it there). So is Teredo's client address.
TEST(Guard, SixToFourAndTeredoCannotCarryANeverReachableAddress) {
  auto six_to_four = policy::parse_cidr("2002::/16");
  auto teredo = policy::parse_cidr("2001::/32");
  ASSERT_TRUE(six_to_four && teredo);
  const std::vector<policy::Cidr> allowed = {*six_to_four, *teredo};
  for (const char* s : {"2002:a9fe:a9fe::1", "2002:7f00:1::1", "2001:0:1:2::5601:5601"}) {
    Verdict v = check_destination(*parse_ip_literal(s), 443, allowed);
    EXPECT_FALSE(v.allowed) << s;
    EXPECT_NE(v.reason.find("never reachable"), std::string::npos) << v.reason;
  }
  // 2002:0808:0808:: carries 8.8.8.8: a reserved range, admitted by allowed_ips as before.
  EXPECT_TRUE(check_destination(*parse_ip_literal("2002:808:808::1"), 443, allowed).allowed);
  EXPECT_FALSE(check_destination(*parse_ip_literal("2002:808:808::1"), 443, {}).allowed);
}

TEST(Guard, PrivateNeedsAllowedIps) {
  IpAddress redis = *parse_ip_literal("10.0.0.5");
  EXPECT_FALSE(check_destination(redis, 6379, {}).allowed);
  auto ten = policy::parse_cidr("10.0.0.0/8");
  auto other = policy::parse_cidr("192.168.0.0/16");
  ASSERT_TRUE(ten && other);
  EXPECT_TRUE(check_destination(redis, 6379, {*ten}).allowed);
  Verdict v = check_destination(redis, 6379, {*other});
  EXPECT_FALSE(v.allowed);
  EXPECT_NE(v.reason.find("allowed_ips do not cover it"), std::string::npos) << v.reason;
  EXPECT_TRUE(check_destination(*parse_ip_literal("8.8.8.8"), 443, {}).allowed);
}

TEST(Guard, ControlPlanePortsAreNeverReachable) {
  IpAddress public_ip = *parse_ip_literal("8.8.8.8");
  for (std::uint16_t port : {2379, 2380, 6443, 10250, 10255})
    EXPECT_FALSE(check_destination(public_ip, port, {}).allowed) << port;
  EXPECT_TRUE(check_destination(public_ip, 443, {}).allowed);
}

}  // namespace
}  // namespace ward::proxy
