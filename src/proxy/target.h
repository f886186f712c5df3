// Where a proxy request wants to go: the CONNECT authority ("host:port") or an absolute-form
// http:// URL. Parsed by Boost.URL, then normalised the way every later decision sees it: host
// lower-case without a trailing dot, every IP literal spelling in canonical form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

namespace ward::proxy {

struct Target {
  std::string host;         // normalised
  std::uint16_t port = 0;   // never 0
  std::string origin_form;  // forward requests: "/path?query" as sent upstream ("/" when empty)
  std::string authority;    // forward requests: the Host header sent upstream
};

// Why a target was refused, for the 400 body.
struct TargetError {
  std::string reason;
};

// CONNECT's authority-form: "host:port" or "[v6]:port"; the port is required and not 0; no
// userinfo. Hosts with characters outside a DNS name (after percent-decoding) are refused.
tl::expected<Target, TargetError> parse_connect_target(std::string_view text);

// A forward request's absolute-form: http:// only (an https:// URL must come through CONNECT);
// the port defaults to 80; no userinfo; the fragment, if any, is dropped.
tl::expected<Target, TargetError> parse_forward_target(std::string_view text);

}  // namespace ward::proxy
