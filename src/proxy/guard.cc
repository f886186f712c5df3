#include "proxy/guard.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace ward::proxy {
namespace {

IpAddress v4(std::uint32_t host_order) {
  IpAddress a;
  a.bytes[0] = static_cast<unsigned char>(host_order >> 24);
  a.bytes[1] = static_cast<unsigned char>(host_order >> 16);
  a.bytes[2] = static_cast<unsigned char>(host_order >> 8);
  a.bytes[3] = static_cast<unsigned char>(host_order);
  return a;
}

std::uint32_t v4_value(const IpAddress& a) {
  return (std::uint32_t{a.bytes[0]} << 24) | (std::uint32_t{a.bytes[1]} << 16) |
         (std::uint32_t{a.bytes[2]} << 8) | a.bytes[3];
}

bool in_v4(const IpAddress& a, std::uint32_t net, int prefix) {
  std::uint32_t mask = prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix);
  return (v4_value(a) & mask) == (net & mask);
}

bool in_v6(const IpAddress& a, std::initializer_list<unsigned char> net, int prefix) {
  std::array<unsigned char, 16> n{};
  std::copy(net.begin(), net.end(), n.begin());
  for (int bit = 0; bit < prefix; ++bit) {
    int byte = bit / 8, shift = 7 - bit % 8;
    if (((a.bytes[byte] >> shift) & 1) != ((n[byte] >> shift) & 1)) return false;
  }
  return true;
}

bool all_zero(const IpAddress& a, int from, int to) {
  for (int i = from; i < to; ++i)
    if (a.bytes[i]) return false;
  return true;
}

// IPv6 forms that carry an IPv4 address in their last 32 bits, as clients and kernels treat them.
std::optional<IpAddress> embedded_v4(const IpAddress& a) {
  bool mapped = all_zero(a, 0, 10) && a.bytes[10] == 0xff && a.bytes[11] == 0xff;
  bool compatible = all_zero(a, 0, 12) && !all_zero(a, 12, 16) &&
                    !(all_zero(a, 12, 15) && a.bytes[15] == 1);  // not ::1
  bool nat64 = in_v6(a, {0x00, 0x64, 0xff, 0x9b}, 96) && all_zero(a, 4, 12);
  if (!mapped && !compatible && !nat64) return std::nullopt;
  IpAddress out;
  std::copy(a.bytes.begin() + 12, a.bytes.end(), out.bytes.begin());
  return out;
}

// The IPv4 address a 6to4 (2002:AABB:CCDD::/48) or Teredo (2001:0::/32, the client's address
// inverted in the last 32 bits) address would be relayed to.
std::optional<IpAddress> tunnelled_v4(const IpAddress& a) {
  if (!a.v6) return std::nullopt;
  IpAddress out;
  if (in_v6(a, {0x20, 0x02}, 16)) {
    std::copy(a.bytes.begin() + 2, a.bytes.begin() + 6, out.bytes.begin());
    return out;
  }
  if (in_v6(a, {0x20, 0x01, 0x00, 0x00}, 32)) {
    for (int i = 0; i < 4; ++i) out.bytes[i] = static_cast<unsigned char>(~a.bytes[12 + i]);
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (!::inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buf, sizeof buf)) return {};
  return buf;
}

std::optional<IpAddress> parse_ip_literal(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > 64) return std::nullopt;
  if (host.find(':') != std::string_view::npos) {
    // A zone ("fe80::1%eth0") does not change which address it is.
    std::string text(host.substr(0, host.find('%')));
    IpAddress a;
    a.v6 = true;
    if (::inet_pton(AF_INET6, text.c_str(), a.bytes.data()) != 1) return std::nullopt;
    if (auto inner = embedded_v4(a)) return inner;
    return a;
  }
  // inet_aton reads every legacy spelling (octal, hex, 1 to 4 parts) but tolerates trailing
  // text after a space: only digits, hex letters, 'x' and dots may appear.
  for (char c : host)
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '.' && c != 'x' && c != 'X')
      return std::nullopt;
  std::string text(host);
  struct in_addr addr;
  if (::inet_aton(text.c_str(), &addr) == 0) return std::nullopt;
  return v4(ntohl(addr.s_addr));
}

std::string normalize_host(std::string_view host) {
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!out.empty() && out.back() == '.') out.pop_back();
  if (auto ip = parse_ip_literal(out)) return ip->to_string();
  return out;
}

AddressClass classify(const IpAddress& a) {
  if (!a.v6) {
    // 169.254.169.254 (AWS, GCP, Azure, ...), 100.100.100.200 (Alibaba Cloud), 168.63.129.16
    // (Azure's WireServer: host configuration and extension settings, public-looking).
    if (in_v4(a, 0xA9FEA9FE, 32) || in_v4(a, 0x646464C8, 32) || in_v4(a, 0xA83F8110, 32))
      return AddressClass::kMetadata;
    if (in_v4(a, 0x00000000, 8)) return AddressClass::kUnspecified;
    if (in_v4(a, 0x7F000000, 8)) return AddressClass::kLoopback;
    if (in_v4(a, 0xA9FE0000, 16)) return AddressClass::kLinkLocal;
    if (in_v4(a, 0xE0000000, 4) || in_v4(a, 0xFFFFFFFF, 32)) return AddressClass::kMulticast;
    if (in_v4(a, 0x0A000000, 8) || in_v4(a, 0xAC100000, 12) || in_v4(a, 0xC0A80000, 16) ||
        in_v4(a, 0x64400000, 10))
      return AddressClass::kPrivate;
    if (in_v4(a, 0xF0000000, 4) || in_v4(a, 0xC0000000, 24) || in_v4(a, 0xC0000200, 24) ||
        in_v4(a, 0xC6336400, 24) || in_v4(a, 0xCB007100, 24) || in_v4(a, 0xC6120000, 15) ||
        in_v4(a, 0xC0586300, 24))
      return AddressClass::kReserved;
    return AddressClass::kPublic;
  }
  if (all_zero(a, 0, 16)) return AddressClass::kUnspecified;
  if (all_zero(a, 0, 15) && a.bytes[15] == 1) return AddressClass::kLoopback;
  if (in_v6(a, {0xfd, 0x00, 0x0e, 0xc2}, 32) && all_zero(a, 4, 14) && a.bytes[14] == 0x02 &&
      a.bytes[15] == 0x54)
    return AddressClass::kMetadata;  // fd00:ec2::254
  if (in_v6(a, {0xfe, 0x80}, 10)) return AddressClass::kLinkLocal;
  if (in_v6(a, {0xff}, 8)) return AddressClass::kMulticast;
  if (in_v6(a, {0xfc}, 7)) return AddressClass::kPrivate;
  if (in_v6(a, {0x20, 0x01, 0x0d, 0xb8}, 32) || in_v6(a, {0x20, 0x02}, 16) ||
      in_v6(a, {0x20, 0x01, 0x00, 0x00}, 32) ||
      in_v6(a, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01}, 48) || in_v6(a, {0x01, 0x00}, 64))
    return AddressClass::kReserved;  // documentation, 6to4, Teredo, local NAT64, discard
  return AddressClass::kPublic;
}

const char* class_name(AddressClass c) {
  switch (c) {
    case AddressClass::kPublic:
      return "a public address";
    case AddressClass::kPrivate:
      return "a private address";
    case AddressClass::kLoopback:
      return "a loopback address";
    case AddressClass::kLinkLocal:
      return "a link-local address";
    case AddressClass::kMetadata:
      return "a cloud metadata address";
    case AddressClass::kUnspecified:
      return "the unspecified address";
    case AddressClass::kMulticast:
      return "a multicast or broadcast address";
    case AddressClass::kReserved:
      return "a reserved address";
  }
  return "an address";
}

bool blocked_port(std::uint16_t port) {
  return port == 2379 || port == 2380 || port == 6443 || port == 10250 || port == 10255;
}

Verdict check_destination(const IpAddress& address, std::uint16_t port,
                          const std::vector<policy::Cidr>& allowed_ips) {
  Verdict v;
  const std::string where = address.to_string() + ":" + std::to_string(port);
  if (blocked_port(port)) {
    v.reason = where + ": port " + std::to_string(port) +
               " (etcd, Kubernetes API or kubelet) "
               "is never reachable";
    return v;
  }
  if (auto inner = tunnelled_v4(address)) {
    const AddressClass ic = classify(*inner);
    if (ic != AddressClass::kPublic && ic != AddressClass::kPrivate &&
        ic != AddressClass::kReserved) {
      v.reason = where + " is relayed to " + inner->to_string() + ", " + class_name(ic) +
                 ": never reachable, whatever the policy says";
      return v;
    }
  }
  AddressClass c = classify(address);
  switch (c) {
    case AddressClass::kPublic:
      v.allowed = true;
      return v;
    case AddressClass::kPrivate:
    case AddressClass::kReserved:
      for (const policy::Cidr& cidr : allowed_ips) {
        if (cidr.v6 != address.v6) continue;
        IpAddress net;
        net.v6 = cidr.v6;
        std::copy(cidr.addr, cidr.addr + 16, net.bytes.begin());
        bool inside = true;
        for (int bit = 0; bit < cidr.prefix && inside; ++bit) {
          int byte = bit / 8, shift = 7 - bit % 8;
          inside = ((address.bytes[byte] >> shift) & 1) == ((net.bytes[byte] >> shift) & 1);
        }
        if (inside) {
          v.allowed = true;
          return v;
        }
      }
      v.reason = where + " is " + class_name(c) + " and the endpoint's allowed_ips do not cover it";
      return v;
    default:
      v.reason = where + " is " + class_name(c) + ": never reachable, whatever the policy says";
      return v;
  }
}

}  // namespace ward::proxy
