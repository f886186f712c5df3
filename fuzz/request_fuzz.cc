// libFuzzer target for what the proxy does with a request head before any decision: Beast's
// parser configured as the proxy configures it (16 KiB head limit, streamed body), then the
// target parsed (CONNECT authority or absolute-form URL), the framing checked and the header
// fields rewritten. Invariants: nothing crashes; a parsed target's host is already normalised
// (normalising it again changes nothing) and its port is never 0; a forward target's origin form
// starts with '/'; a head framing_error() passes is framed alike by Beast and by a server that
// reads "chunked" anywhere in Transfer-Encoding; after the rewrite no hop-by-hop field is left.
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <boost/beast/http.hpp>

#include "proxy/guard.h"
#include "proxy/headers.h"
#include "proxy/target.h"

namespace http = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  http::request_parser<http::buffer_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(boost::none);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;

  auto& req = parser.get();
  std::string_view target = req.target();
  auto parsed = req.method() == http::verb::connect ? ward::proxy::parse_connect_target(target)
                                                    : ward::proxy::parse_forward_target(target);
  if (parsed) {
    if (ward::proxy::normalize_host(parsed->host) != parsed->host) std::abort();
    if (parsed->port == 0) std::abort();
    if (req.method() != http::verb::connect && parsed->origin_form.front() != '/') std::abort();
  }
  if (ward::proxy::framing_error(req).empty() && req.count(http::field::transfer_encoding)) {
    std::string te(req[http::field::transfer_encoding]);
    for (char& c : te) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const bool lenient_chunked = te.find("chunked") != std::string::npos;
    if (!parser.chunked() || !lenient_chunked || parser.content_length()) std::abort();
  }
  ward::proxy::strip_hop_by_hop(req);
  for (auto f : {http::field::connection, http::field::keep_alive, http::field::proxy_connection,
                 http::field::te, http::field::upgrade, http::field::proxy_authorization})
    if (req.count(f)) std::abort();
  return 0;
}
