#include "proxy/hosts.h"

#include <arpa/inet.h>

#include <fstream>
#include <sstream>

namespace ward::proxy {

Result<HostsFile> HostsFile::parse(std::string_view text, std::string_view file) {
  HostsFile hosts;
  int line_no = 0;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string address_text, name;
    if (!(words >> address_text)) continue;
    auto where = [&] { return std::string(file) + ":" + std::to_string(line_no) + ": "; };
    // Only the plain spellings an /etc/hosts holds: a dotted quad or an IPv6 address.
    unsigned char raw[16];
    bool plain = ::inet_pton(AF_INET, address_text.c_str(), raw) == 1 ||
                 ::inet_pton(AF_INET6, address_text.c_str(), raw) == 1;
    auto address = parse_ip_literal(address_text);
    if (!plain || !address) return fail(where() + "'" + address_text + "' is not an IP address");
    bool named = false;
    while (words >> name) {
      named = true;
      hosts.names_[normalize_host(name)].push_back(*address);
    }
    if (!named) return fail(where() + "no host name after " + address_text);
  }
  return hosts;
}

Result<HostsFile> HostsFile::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail_errno("cannot read the hosts file " + path);
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const std::vector<IpAddress>& HostsFile::lookup(const std::string& host) const {
  static const std::vector<IpAddress> kNone;
  auto it = names_.find(host);
  return it == names_.end() ? kNone : it->second;
}

}  // namespace ward::proxy
