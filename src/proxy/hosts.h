// A hosts file (/etc/hosts format) the proxy consults before DNS: `ward run --hosts FILE`. It
// names test upstreams and private services without touching the host's /etc/hosts.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "proxy/guard.h"

namespace ward::proxy {

class HostsFile {
 public:
  HostsFile() = default;

  // Lines "ADDRESS NAME [ALIAS...]", `#` comments. A malformed line is an error naming the file
  // and line; the whole file is refused.
  static Result<HostsFile> parse(std::string_view text, std::string_view file);
  static Result<HostsFile> load(const std::string& path);

  // The addresses of `host` (normalised: lower-case, no trailing dot), in file order; empty when
  // the file does not name it.
  const std::vector<IpAddress>& lookup(const std::string& host) const;
  bool empty() const { return names_.empty(); }

 private:
  std::map<std::string, std::vector<IpAddress>, std::less<>> names_;
};

}  // namespace ward::proxy
