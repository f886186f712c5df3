// Header rewriting for forwarded HTTP/1.1 messages (RFC 9110 §7.6), and the framing check every
// request head passes before anything is decided on it (RFC 9112 §6).
#pragma once

#include <string>

#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>

namespace ward::proxy {

// Removes the Connection header, every field it names, and the fields that only ever describe one
// hop (Keep-Alive, Proxy-Connection, TE, Upgrade, Proxy-Authorization, Proxy-Authenticate).
// Message framing (Content-Length, Transfer-Encoding) and Host stay even when Connection names
// them: a client must not be able to change how the next hop reads the body.
void strip_hop_by_hop(boost::beast::http::fields& fields);

// Why a request's body framing is ambiguous ("" when it is not): Transfer-Encoding whose final
// coding is not "chunked" (or that names chunked twice, or is sent twice, or in HTTP/1.0), both
// Transfer-Encoding and Content-Length, more than one Content-Length or one that is not a plain
// decimal. ward forwards framing headers as they came, so any of these could let the next hop
// find a different end of the body than ward did — and read a second request, never decided,
// in it (request smuggling). Such a request gets 400 and its connection closes (RFC 9112 §6.3).
std::string framing_error(const boost::beast::http::request_header<>& req);

// Appends "1.1 ward" to Via.
void add_via(boost::beast::http::fields& fields);

}  // namespace ward::proxy
