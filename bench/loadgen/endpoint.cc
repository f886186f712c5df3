#include "loadgen/endpoint.h"

#include <charconv>

namespace ward::loadgen {

std::string Endpoint::authority() const {
  return host_with_port(host, port, /*default_port=*/0);  // no port is 0: always written
}

std::optional<Endpoint> parse_endpoint(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return std::nullopt;  // an IPv6 literal needs its brackets
  }
  std::uint16_t port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (host.empty() || error != std::errc() || end != port_text.data() + port_text.size() ||
      port == 0) {
    return std::nullopt;
  }
  return Endpoint{std::string(host), port};
}

std::string host_with_port(std::string_view host, std::uint16_t port, std::uint16_t default_port) {
  std::string text =
      host.find(':') == std::string_view::npos ? std::string(host) : "[" + std::string(host) + "]";
  if (port != default_port) text += ":" + std::to_string(port);
  return text;
}

}  // namespace ward::loadgen
