// The CA bundle a sandbox trusts: the host's system CAs plus ward's CA, in
// state_dir/tls/ca-bundle.pem (0644), mounted inside over the usual bundle paths.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "base/result.h"
#include "tls/ca.h"

namespace ward::tls {

// Where distributions keep the system bundle (Debian/Ubuntu/Alpine, Fedora/RHEL, others).
inline constexpr std::array<const char*, 3> kSystemBundles = {
    "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"};

// Writes state_dir/tls/ca-bundle.pem from the first of `system_bundles` that exists (none: ward's
// CA alone) followed by ward's CA, atomically, and returns its path. Rewritten only when older
// than that system bundle or than the CA's certificate: the up-to-date case costs two stat(2).
Result<std::string> write_bundle(const Authority& ca, const std::string& state_dir);
Result<std::string> write_bundle(const Authority& ca, const std::string& state_dir,
                                 const std::vector<std::string>& system_bundles);

}  // namespace ward::tls
