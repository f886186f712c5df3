#include "policy/values.h"

#include <arpa/inet.h>
#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/strings.h"

namespace ward::policy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// For messages: the text as given, control bytes escaped, cut short when long.
std::string shown(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, 80)) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out.push_back(ch);
    }
  }
  if (text.size() > 80) out += "...";
  return out;
}

// Leading decimal digits of `s` as a number; advances `s` past them. nullopt on overflow or when
// there are none.
std::optional<std::uint64_t> take_number(std::string_view& s) {
  std::size_t n = 0;
  while (n < s.size() && is_digit(s[n])) ++n;
  if (n == 0) return std::nullopt;
  std::uint64_t value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, value);
  if (ec != std::errc() || ptr != s.data() + n) return std::nullopt;
  s.remove_prefix(n);
  return value;
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  auto bad = [&] {
    return fail(fmt::format(
        "'{}' is not a size: write a whole number of bytes, optionally with a suffix K, M, G or T "
        "(1024-based), e.g. 512M",
        shown(text)));
  };
  std::string_view digits = s;
  std::optional<std::uint64_t> value = take_number(s);
  if (!value) {
    if (!digits.empty() && is_digit(digits.front()))
      return fail(fmt::format("'{}' is too large", shown(text)));
    return bad();
  }
  std::string suffix;
  for (char c : s) suffix.push_back(lower(c));
  int shift = 0;
  if (!suffix.empty() && suffix != "b") {
    switch (suffix[0]) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        return bad();
    }
    std::string_view rest = std::string_view(suffix).substr(1);
    if (!rest.empty() && rest != "i" && rest != "b" && rest != "ib") return bad();
  }
  if (*value > (std::numeric_limits<std::uint64_t>::max() >> shift)) {
    return fail(fmt::format("'{}' is too large", shown(text)));
  }
  return *value << shift;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::string_view s = trim(text);
  auto bad = [&] {
    return fail(fmt::format(
        "'{}' is not a duration: write whole seconds (30) or numbers with units ms, s, m, h, d "
        "(1500ms, 30s, 5m, 1h30m)",
        shown(text)));
  };
  auto too_long = [&] { return fail(fmt::format("'{}' is too long a duration", shown(text))); };
  if (s.empty()) return bad();
  std::int64_t total = 0;
  bool bare = true;  // a number without a unit means seconds, but only as the whole text
  while (!s.empty()) {
    bool digits_follow = is_digit(s.front());
    std::optional<std::uint64_t> n = take_number(s);
    if (!n) return digits_follow ? too_long() : bad();
    std::size_t u = 0;
    while (u < s.size() && s[u] >= 'a' && s[u] <= 'z') ++u;
    std::string_view unit = s.substr(0, u);
    s.remove_prefix(u);
    std::int64_t scale = 0;
    if (unit.empty()) {
      if (!bare || !s.empty()) return bad();
      scale = 1000;
    } else if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = 60 * 1000;
    } else if (unit == "h") {
      scale = 3600 * 1000;
    } else if (unit == "d") {
      scale = 86400 * 1000;
    } else {
      return bad();
    }
    bare = false;
    std::int64_t part = 0;
    if (*n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
        __builtin_mul_overflow(static_cast<std::int64_t>(*n), scale, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return too_long();
    }
  }
  return std::chrono::milliseconds(total);
}

Result<double> parse_cpus(std::string_view text) {
  std::string_view s = trim(text);
  double value = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value, std::chars_format::fixed);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(value)) {
    return fail(fmt::format("'{}' is not a number of CPU cores: write e.g. 0.5 or 2", shown(text)));
  }
  // cgroup v2 cpu.max takes a quota of at least 1 ms per 100 ms period: 0.01 of a core.
  if (value < 0.01 || value > 65536) {
    return fail(fmt::format("cpus must be from 0.01 to 65536 cores, got {}", shown(text)));
  }
  return value;
}

bool is_ip_literal(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host.size() > 45) return false;
  std::string s(host);
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

Result<std::string> parse_host_pattern(std::string_view text) {
  std::string_view raw = text;
  auto bad = [&](std::string_view why) {
    return fail(fmt::format("host '{}' {}", shown(raw), why));
  };
  if (text.empty()) return fail("host is empty");
  if (text.find("://") != std::string_view::npos) {
    return bad("is a URL; write just the host name (api.example.com), with the port in port:");
  }
  if (text.find('/') != std::string_view::npos)
    return bad("contains '/'; a path goes in the endpoint's path:");
  if (is_ip_literal(text)) {
    if (text.front() == '[') text = text.substr(1, text.size() - 2);
    std::string out;
    for (char c : text) out.push_back(lower(c));
    return out;
  }
  if (text.find(':') != std::string_view::npos) {
    return bad("contains ':'; the port goes in port: (and an IPv6 address must be a valid one)");
  }
  if (text.size() > 253) return bad("is longer than 253 characters");
  std::string host;
  for (char c : text) host.push_back(lower(c));
  if (host == "*" || host == "**") {
    return bad("matches every host; name the hosts, or a domain such as *.example.com");
  }
  if (host.back() == '.') return bad("ends with '.'; write it without the trailing dot");
  std::vector<std::string_view> labels = split(host, '.');
  std::size_t last_wild = std::string::npos;  // index of the last label holding a wildcard
  for (std::size_t i = 0; i < labels.size(); ++i) {
    std::string_view label = labels[i];
    if (label.empty()) return bad("has an empty label (two dots in a row, or a leading dot)");
    if (label.size() > 63) return bad("has a label longer than 63 characters");
    for (char c : label) {
      bool ok = (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_' || c == '*';
      if (!ok) {
        return bad(fmt::format(
            "contains '{}'; a host has letters, digits, '-', '_', '.' and the wildcard '*'",
            shown(std::string_view(&c, 1))));
      }
    }
    std::size_t stars = std::count(label.begin(), label.end(), '*');
    if (stars == 0) {
      if (label.front() == '-' || label.back() == '-')
        return bad("has a label that starts or ends with '-'");
      continue;
    }
    last_wild = i;
    if (label == "**") {
      if (i != 0)
        return bad(
            "has '**' after the first label; '**' may only be the whole first label "
            "(**.example.com)");
      continue;
    }
    if (i == 0) {
      if (stars > 1) return bad("has more than one '*' in its first label");
      continue;
    }
    if (label != "*") {
      return bad(
          "has a wildcard inside a later label; after the first label a wildcard must be a whole "
          "label "
          "(*.s3.*.amazonaws.com)");
    }
  }
  if (last_wild != std::string::npos) {
    // Two literal labels after the wildcard part keep a pattern inside one registered domain:
    // `*.com` or `api.*.io` would hand the workload a whole top-level domain.
    if (labels.size() - last_wild - 1 < 2) {
      return bad(
          "would match a whole top-level domain; a wildcard needs at least two literal labels "
          "after it "
          "(*.example.com, not *.com)");
    }
  }
  // No top-level domain is numeric; "999.1.2.3" is a mistyped address, not a name.
  if (std::all_of(labels.back().begin(), labels.back().end(), is_digit)) {
    return bad("is neither a valid IP address nor a host name");
  }
  return host;
}

Result<Cidr> parse_cidr(std::string_view text, bool* host_bits_set) {
  auto bad = [&](std::string_view why) { return fail(fmt::format("'{}' {}", shown(text), why)); };
  Cidr out;
  out.text = std::string(text);
  std::string_view addr = text;
  std::optional<std::uint64_t> prefix;
  if (std::size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view p = text.substr(slash + 1);
    prefix = p.size() <= 3 && !p.empty() && std::all_of(p.begin(), p.end(), is_digit)
                 ? std::optional<std::uint64_t>(std::stoul(std::string(p)))
                 : std::nullopt;
    if (!prefix) return bad("has a prefix length that is not a number");
  }
  std::string a(addr);
  if (a.size() <= 45 && ::inet_pton(AF_INET, a.c_str(), out.addr) == 1) {
    out.v6 = false;
    out.prefix = static_cast<int>(prefix.value_or(32));
    if (out.prefix > 32) return bad("has a prefix longer than 32 for an IPv4 address");
  } else if (a.size() <= 45 && ::inet_pton(AF_INET6, a.c_str(), out.addr) == 1) {
    out.v6 = true;
    out.prefix = static_cast<int>(prefix.value_or(128));
    if (out.prefix > 128) return bad("has a prefix longer than 128 for an IPv6 address");
  } else {
    return bad("is not an IP address or CIDR (10.0.0.0/8, fd00::/8)");
  }
  bool had_host_bits = false;
  int bytes = out.v6 ? 16 : 4;
  for (int i = 0; i < bytes; ++i) {
    int keep = std::clamp(out.prefix - i * 8, 0, 8);
    unsigned char mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xff << (8 - keep));
    if (out.addr[i] & ~mask) had_host_bits = true;
    out.addr[i] &= mask;
  }
  if (host_bits_set) *host_bits_set = had_host_bits;
  return out;
}

namespace {

// Both families in one space: an IPv4 network a.b.c.d/p is ::ffff:a.b.c.d/(96+p), which is also
// how the kernel presents a v4 peer on a v6 socket.
struct Net128 {
  unsigned char addr[16] = {};
  int prefix = 0;
};

Net128 widen(const Cidr& c) {
  Net128 n;
  if (c.v6) {
    std::memcpy(n.addr, c.addr, 16);
    n.prefix = c.prefix;
  } else {
    n.addr[10] = 0xff;
    n.addr[11] = 0xff;
    std::memcpy(n.addr + 12, c.addr, 4);
    n.prefix = 96 + c.prefix;
  }
  return n;
}

bool overlaps(const Net128& a, const Net128& b) {
  // Two networks overlap iff they agree on the bits of the shorter prefix.
  int bits = std::min(a.prefix, b.prefix);
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    int keep = std::min(bits, 8);
    unsigned char mask = static_cast<unsigned char>(0xff << (8 - keep));
    if ((a.addr[i] & mask) != (b.addr[i] & mask)) return false;
  }
  return true;
}

}  // namespace

bool cidr_overlaps(const Cidr& a, const Cidr& b) {
  return overlaps(widen(a), widen(b));
}

std::optional<std::string> reserved_range(const Cidr& cidr) {
  static constexpr struct {
    const char* net;
    const char* name;
  } kReserved[] = {
      {"127.0.0.0/8", "loopback"},
      {"::1/128", "loopback"},
      {"169.254.0.0/16", "link-local"},
      {"fe80::/10", "link-local"},
      {"0.0.0.0/32", "the unspecified address"},
      {"::/128", "the unspecified address"},
  };
  for (const auto& r : kReserved) {
    Result<Cidr> net = parse_cidr(r.net);
    if (net && cidr_overlaps(cidr, *net)) return fmt::format("{} ({})", r.name, r.net);
  }
  return std::nullopt;
}

}  // namespace ward::policy
