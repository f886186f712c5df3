#include "proxy/headers.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

namespace ward::proxy {

namespace beast = boost::beast;
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

namespace {

bool is_tchar(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The transfer codings of one Transfer-Encoding value, empty list elements skipped (RFC 9110
// §5.6.1). `valid` is false when an element is not a bare token: no coding a client sends has
// parameters, and Beast's own list reader stops at one, so it would read another list.
std::vector<std::string_view> codings(std::string_view value, bool& valid) {
  std::vector<std::string_view> out;
  valid = true;
  for (std::size_t start = 0; start <= value.size();) {
    std::size_t comma = value.find(',', start);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view element = trim_ows(value.substr(start, comma - start));
    start = comma + 1;
    if (element.empty()) continue;
    if (!std::all_of(element.begin(), element.end(),
                     [](char c) { return is_tchar(static_cast<unsigned char>(c)); }))
      valid = false;
    out.push_back(element);
  }
  return out;
}

}  // namespace

std::string framing_error(const http::request_header<>& req) {
  const std::size_t te = req.count(http::field::transfer_encoding);
  const std::size_t cl = req.count(http::field::content_length);
  if (te > 1) return "more than one Transfer-Encoding header";
  if (te == 1) {
    // HTTP/1.0 has no Transfer-Encoding: a 1.0 server reads such a body by its Content-Length or
    // not at all (RFC 9112 §6.1).
    if (req.version() < 11) return "Transfer-Encoding in an HTTP/1.0 request";
    if (cl > 0) return "both Transfer-Encoding and Content-Length";
    bool valid = true;
    const auto list = codings(req[http::field::transfer_encoding], valid);
    if (!valid) return "a Transfer-Encoding that is not a list of codings";
    // Exactly "chunked" last, as Beast reads it; a server that finds "chunked" anywhere (or
    // within "xchunked") must not be given a body Beast framed another way.
    if (list.empty() || !beast::iequals(list.back(), "chunked"))
      return "a Transfer-Encoding whose final coding is not chunked";
    for (std::size_t i = 0; i + 1 < list.size(); ++i)
      if (beast::iequals(list[i], "chunked")) return "a Transfer-Encoding with chunked twice";
    // Beast's serializer frames the body on the way out by the last element of its own list
    // reading (message::chunked()): it must come to the same answer.
    const http::token_list beast_list(req[http::field::transfer_encoding]);
    std::string_view last;
    for (auto token : beast_list) last = std::string_view(token.data(), token.size());
    if (!beast::iequals(last, "chunked"))
      return "a Transfer-Encoding Beast does not read as chunked";
  }
  if (cl > 1) return "more than one Content-Length header";
  if (cl == 1) {
    // Beast accepts a list of equal values ("56, 56"), which other servers read differently.
    std::string_view value = req[http::field::content_length];
    if (value.empty() ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return "a Content-Length that is not one decimal number";
  }
  return {};
}

void add_via(http::fields& fields) {
  std::string via(fields[http::field::via]);
  fields.set(http::field::via, via.empty() ? "1.1 ward" : via + ", 1.1 ward");
}

}  // namespace ward::proxy
