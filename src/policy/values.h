// Parsers for the policy's value syntaxes, shared with the modules that take the same values from
// elsewhere: the CLI (`--memory 512M`, `--timeout 5m`) and the proxy (host patterns, CIDRs).
// Each returns an Error whose message is a complete sentence fragment naming the bad text.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "policy/policy.h"

namespace ward::policy {

// Bytes: "1048576", "512M", "2g", "1GiB", "64KB". Suffixes K M G T, optionally followed by i, B or
// iB, any case; all 1024-based (as memory limits are counted). Whole numbers only.
Result<std::uint64_t> parse_size(std::string_view text);

// A duration: "30" (seconds), "30s", "5m", "1h30m", "1500ms", "2d". Units ms s m h d; whole
// numbers.
Result<std::chrono::milliseconds> parse_duration(std::string_view text);

// CPU bandwidth in cores: "0.5", "2". Plain decimal notation, 0.01 .. 65536.
Result<double> parse_cpus(std::string_view text);

// An endpoint host: a host name, an IP literal (IPv6 with or without brackets, stored without), or
// a glob (see docs/policy.md). Returns it lower-cased, or why it is refused.
Result<std::string> parse_host_pattern(std::string_view text);
bool is_ip_literal(std::string_view host);

// "10.0.0.0/8", "fd00::/8", or a bare address (/32 or /128). Host bits below the prefix are
// cleared; `host_bits_set`, when given, says whether there were any.
Result<Cidr> parse_cidr(std::string_view text, bool* host_bits_set = nullptr);
bool cidr_overlaps(const Cidr& a, const Cidr& b);

// When `cidr` overlaps an address range ward never connects to (loopback, link-local, unspecified,
// including their IPv4-mapped IPv6 forms), a description such as "loopback (127.0.0.0/8)".
std::optional<std::string> reserved_range(const Cidr& cidr);

}  // namespace ward::policy
