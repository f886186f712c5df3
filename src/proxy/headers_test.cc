#include "proxy/headers.h"

#include <string>

#include <gtest/gtest.h>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

namespace ward::proxy {
namespace {

namespace http = boost::beast::http;

TEST(HopByHop, ConnectionAndTheFieldsItNamesGo) {
  http::fields f;
  f.set(http::field::connection, "keep-alive, X-Secret-Hop, Upgrade");
  f.set("X-Secret-Hop", "1");
  f.set(http::field::keep_alive, "timeout=5");
  f.set(http::field::proxy_connection, "keep-alive");
  f.set(http::field::te, "trailers");
  f.set(http::field::upgrade, "websocket");
  f.set(http::field::proxy_authorization, "Basic c2VjcmV0");
  f.set(http::field::accept, "*/*");
  strip_hop_by_hop(f);
  for (auto name : {"Connection", "X-Secret-Hop", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade",
                    "Proxy-Authorization"})
    EXPECT_EQ(f.count(name), 0u) << name;
  EXPECT_EQ(f[http::field::accept], "*/*");
}

TEST(HopByHop, FramingAndHostSurviveBeingNamedInConnection) {
  http::fields f;
  f.set(http::field::connection, "content-length, transfer-encoding, host");
  f.set(http::field::content_length, "5");
  f.set(http::field::transfer_encoding, "chunked");
  f.set(http::field::host, "api.test");
  strip_hop_by_hop(f);
  EXPECT_EQ(f[http::field::content_length], "5");
  EXPECT_EQ(f[http::field::transfer_encoding], "chunked");
  EXPECT_EQ(f[http::field::host], "api.test");
}

// A request head as Beast parses it off the wire.
http::request_header<> parsed(const std::string& head) {
  http::request_parser<http::empty_body> parser;
  parser.eager(false);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(head), ec);
  EXPECT_FALSE(ec) << ec.message() << " in " << head;
  return parser.get().base();
}

TEST(Framing, OrdinaryRequestsPass) {
  for (const char* head : {
           "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip ,, chunked\r\n\r\n",
           "POST / HTTP/1.0\r\nContent-Length: 5\r\n\r\n",
       })
    EXPECT_EQ(framing_error(parsed(head)), "") << head;
}

// Each of these Beast accepts, and frames differently from a server that reads "chunked"
// wherever it appears, takes the first of two lengths, or the chunked coding of HTTP/1.0.
TEST(Framing, AmbiguousFramingIsRefused) {
  for (const char* head : {
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: 9\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\nContent-Length: 9\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: chunked;x=1\r\n\r\n",
           // Beast's list reader stops at the parameter and never sees "chunked".
           "POST / HTTP/1.1\r\nTransfer-Encoding: gzip;q=@, chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: \"chunked\"\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: ,\r\n\r\n",
           "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 56, 56\r\n\r\n",
           "POST / HTTP/1.1\r\nContent-Length: 56\r\nContent-Length: 56\r\n\r\n",
       })
    EXPECT_NE(framing_error(parsed(head)), "") << head;
}

TEST(Via, AppendsToWhatCameBefore) {
  http::fields f;
  add_via(f);
  EXPECT_EQ(f[http::field::via], "1.1 ward");
  f.set(http::field::via, "1.0 corp-proxy");
  add_via(f);
  EXPECT_EQ(f[http::field::via], "1.0 corp-proxy, 1.1 ward");
}

}  // namespace
}  // namespace ward::proxy
