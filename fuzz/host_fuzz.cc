// libFuzzer target for the SSRF guard's host normalisation: never crashes, is idempotent, and an
// IP literal survives a round trip through its canonical spelling with the same class.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "proxy/guard.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string host(reinterpret_cast<const char*>(data), size);
  std::string once = ward::proxy::normalize_host(host);
  if (ward::proxy::normalize_host(once) != once) std::abort();
  if (auto ip = ward::proxy::parse_ip_literal(host)) {
    auto again = ward::proxy::parse_ip_literal(ip->to_string());
    if (!again || ward::proxy::classify(*again) != ward::proxy::classify(*ip)) std::abort();
    (void)ward::proxy::check_destination(*ip, 443, {});
  }
  return 0;
}
