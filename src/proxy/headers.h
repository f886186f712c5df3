// Header rewriting for forwarded HTTP/1.1 messages (RFC 9110 §7.6).
#pragma once

#include <boost/beast/http/fields.hpp>

namespace ward::proxy {

// Removes the Connection header, every field it names, and the fields that only ever describe one
// hop (Keep-Alive, Proxy-Connection, TE, Upgrade, Proxy-Authorization, Proxy-Authenticate).
// Message framing (Content-Length, Transfer-Encoding) and Host stay even when Connection names
// them: a client must not be able to change how the next hop reads the body.
void strip_hop_by_hop(boost::beast::http::fields& fields);

// Appends "1.1 ward" to Via.
void add_via(boost::beast::http::fields& fields);

}  // namespace ward::proxy
