#include "proxy/headers.h"

#include <string>
#include <vector>

#include <boost/beast/http/rfc7230.hpp>

namespace ward::proxy {

namespace http = boost::beast::http;

void strip_hop_by_hop(http::fields& fields) {
  std::vector<std::string> named;
  for (auto token : http::token_list(fields[http::field::connection])) named.emplace_back(token);
  for (const std::string& name : named) {
    http::field f = http::string_to_field(name);
    if (f == http::field::content_length || f == http::field::transfer_encoding ||
        f == http::field::host)
      continue;
    fields.erase(name);
  }
  for (http::field f : {http::field::connection, http::field::keep_alive,
                        http::field::proxy_connection, http::field::te, http::field::upgrade,
                        http::field::proxy_authorization, http::field::proxy_authenticate})
    fields.erase(f);
}

void add_via(http::fields& fields) {
  std::string via(fields[http::field::via]);
  fields.set(http::field::via, via.empty() ? "1.1 ward" : via + ", 1.1 ward");
}

}  // namespace ward::proxy
