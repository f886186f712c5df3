#include "proxy/headers.h"

#include <gtest/gtest.h>

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
