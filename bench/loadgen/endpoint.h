// A HOST:PORT as given on the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ward::loadgen {

struct Endpoint {
  std::string host;  // a name or an IP literal, IPv6 without its brackets
  std::uint16_t port = 0;

  // "host:port", with an IPv6 literal in brackets: the form of a CONNECT target.
  std::string authority() const;
};

// Parses "HOST:PORT" or "[IPV6]:PORT". nullopt when the form is wrong or the port is out of range.
std::optional<Endpoint> parse_endpoint(std::string_view text);

// `host` as it goes into a Host header or an absolute URI: the port is left out when it is the
// scheme's default.
std::string host_with_port(std::string_view host, std::uint16_t port, std::uint16_t default_port);

}  // namespace ward::loadgen
