#include "proxy/target.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "proxy/guard.h"

namespace ward::proxy {
namespace {

namespace urls = boost::urls;

// A DNS name as resolvers take it (letters, digits, '-', '_', '.'), or an IP literal: anything
// else (spaces, '%', '@', NUL, ...) would mean different hosts to different parsers.
bool plausible_host(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

template <class View>
tl::expected<std::string, TargetError> host_of(const View& v) {
  if (v.host_type() == urls::host_type::ipv6) return normalize_host(v.host_address());
  if (v.host_type() == urls::host_type::ipvfuture) return tl::unexpected(TargetError{"IPvFuture"});
  std::string host = v.host_address();  // percent-decoded
  if (!plausible_host(host)) return tl::unexpected(TargetError{"not a host name: " + host});
  return normalize_host(host);
}

// The port as written: digits only, 1..65535.
tl::expected<std::uint16_t, TargetError> port_of(std::string_view text) {
  if (text.empty() || text.size() > 5) return tl::unexpected(TargetError{"bad port"});
  unsigned value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return tl::unexpected(TargetError{"bad port"});
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return tl::unexpected(TargetError{"bad port"});
  return static_cast<std::uint16_t>(value);
}

// A DNS name that starts like an IPv4 address (1.2.3.4.nip.io): Boost.URL 1.81 takes the start
// for the address and then fails the whole authority. Such a name, plainly spelled, and its port.
std::optional<Target> dotted_quad_name(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || text.empty() || text[0] == '[') return std::nullopt;
  const std::string_view name = text.substr(0, colon);
  if (!plausible_host(name) || parse_ip_literal(name)) return std::nullopt;
  auto port = port_of(text.substr(colon + 1));
  if (!port) return std::nullopt;
  return Target{normalize_host(name), *port, "", ""};
}

}  // namespace

tl::expected<Target, TargetError> parse_connect_target(std::string_view text) {
  auto parsed = urls::parse_authority(text);
  if (!parsed) {
    if (auto named = dotted_quad_name(text)) return std::move(*named);
    return tl::unexpected(TargetError{"CONNECT needs host:port"});
  }
  const urls::authority_view& a = *parsed;
  if (a.has_userinfo()) return tl::unexpected(TargetError{"userinfo in a CONNECT target"});
  if (!a.has_port()) return tl::unexpected(TargetError{"CONNECT needs a port"});
  auto host = host_of(a);
  if (!host) return tl::unexpected(host.error());
  auto port = port_of(a.port());
  if (!port) return tl::unexpected(port.error());
  return Target{std::move(*host), *port, "", ""};
}

tl::expected<Target, TargetError> parse_forward_target(std::string_view text) {
  auto parsed = urls::parse_uri(text);
  if (!parsed) return tl::unexpected(TargetError{"not an absolute URL"});
  const urls::url_view& u = *parsed;
  if (u.scheme_id() == urls::scheme::https)
    return tl::unexpected(TargetError{"an https:// URL must come through CONNECT"});
  if (u.scheme_id() != urls::scheme::http)
    return tl::unexpected(TargetError{"only http:// URLs are forwarded"});
  if (!u.has_authority() || u.encoded_host().empty())
    return tl::unexpected(TargetError{"no host in the URL"});
  if (u.has_userinfo()) return tl::unexpected(TargetError{"userinfo in the URL"});
  if (!u.encoded_path().empty() && u.encoded_path().front() != '/') {
    // Boost.URL 1.81 reads http://1.2.3.4.nip.io:8080/x as the host 1.2.3.4 and a path
    // ".nip.io:8080/x", which no URL has: the authority runs to the first '/', '?' or '#'.
    const std::string_view rest = text.substr(text.find("//") + 2);
    const std::size_t end = std::min(rest.find_first_of("/?#"), rest.size());
    const std::string_view authority = rest.substr(0, end);
    auto named = dotted_quad_name(authority.find(':') == std::string_view::npos
                                      ? std::string(authority) + ":80"
                                      : std::string(authority));
    if (!named) return tl::unexpected(TargetError{"not a host name: " + std::string(authority)});
    // The fragment is no part of a request (RFC 9112), as Boost.URL's encoded_target() leaves it.
    named->origin_form = std::string(rest.substr(end, rest.find('#', end) - end));
    if (named->origin_form.empty() || named->origin_form[0] != '/')
      named->origin_form.insert(0, "/");
    named->authority = std::string(authority);
    return std::move(*named);
  }
  auto host = host_of(u);
  if (!host) return tl::unexpected(host.error());
  std::uint16_t port = 80;
  if (u.has_port()) {
    auto p = port_of(u.port());
    if (!p) return tl::unexpected(p.error());
    port = *p;
  }
  Target t;
  t.host = std::move(*host);
  t.port = port;
  t.origin_form = std::string(u.encoded_target());
  if (t.origin_form.empty() || t.origin_form[0] != '/') t.origin_form.insert(0, "/");
  t.authority = std::string(u.encoded_host_and_port());
  return t;
}

}  // namespace ward::proxy
