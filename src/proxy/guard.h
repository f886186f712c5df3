// The SSRF guard: every spelling of an IP literal normalised, every destination classified, and
// the destinations no policy can open refused. Pure functions: the proxy resolves names itself
// and asks this about each address before connecting to it (and only to the addresses that
// passed, so that a second resolution cannot rebind the name).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace ward::proxy {

struct IpAddress {
  bool v6 = false;
  std::array<unsigned char, 16> bytes{};  // v4 in the first 4

  std::string to_string() const;  // canonical: dotted quad, or RFC 5952 IPv6
  bool operator==(const IpAddress&) const = default;
};

// An IP literal in any spelling a client library accepts: dotted quad, octal ("0177.0.0.1"),
// hex ("0x7f.1"), fewer parts ("127.1", "2130706433"), bracketed IPv6, and IPv6 forms that embed
// an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible, NAT64 64:ff9b::/96), which come
// back as the IPv4 address itself. nullopt when `host` is a name.
std::optional<IpAddress> parse_ip_literal(std::string_view host);

// A host as the proxy compares it: lower-case, no trailing dot, an IP literal in canonical form.
std::string normalize_host(std::string_view host);

enum class AddressClass {
  kPublic,
  kPrivate,      // RFC 1918, CGNAT 100.64/10, IPv6 ULA fc00::/7: only through allowed_ips
  kLoopback,     // 127/8, ::1
  kLinkLocal,    // 169.254/16 (cloud metadata lives here), fe80::/10
  kMetadata,     // 169.254.169.254, fd00:ec2::254, 100.100.100.200 (Alibaba)
  kUnspecified,  // 0.0.0.0/8, ::
  kMulticast,    // 224/4, ff00::/8, 255.255.255.255
  kReserved,     // 240/4, documentation and benchmarking ranges, 6to4 relay
};
AddressClass classify(const IpAddress& address);
const char* class_name(AddressClass c);

// Ports never reached whatever the policy says: etcd (2379, 2380), the Kubernetes API (6443) and
// kubelet (10250, 10255).
bool blocked_port(std::uint16_t port);

struct Verdict {
  bool allowed = false;
  std::string reason;  // for the 403 body and the audit record
};

// The guard's decision for one resolved address of an endpoint the policy allowed.
Verdict check_destination(const IpAddress& address, std::uint16_t port,
                          const std::vector<policy::Cidr>& allowed_ips);

}  // namespace ward::proxy
