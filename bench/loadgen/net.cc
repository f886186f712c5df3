#include "loadgen/net.h"

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace ward::loadgen {
namespace {

namespace http = beast::http;

// Asks the proxy at the other end of `stream` for a tunnel to `target`.
asio::awaitable<void> open_tunnel(beast::tcp_stream& stream, const Endpoint& target) {
  const std::string authority = target.authority();
  http::request<http::empty_body> request{http::verb::connect, authority, 11};
  request.set(http::field::host, authority);
  co_await step(ErrorKind::kProxy, "CONNECT",
                http::async_write(stream, request, asio::use_awaitable));

  beast::flat_buffer buffer;
  http::response_parser<http::empty_body> reply;
  reply.skip(true);  // the reply to a CONNECT ends with its header, whatever the header says
  co_await step(ErrorKind::kProxy, "CONNECT reply",
                http::async_read(stream, buffer, reply, asio::use_awaitable));
  // Any 2xx opens the tunnel (RFC 9110, 9.3.6).
  if (http::to_status_class(reply.get().result()) != http::status_class::successful) {
    throw Failure(ErrorKind::kProxy,
                  "CONNECT refused: " + std::to_string(reply.get().result_int()) + " " +
                      std::string(reply.get().reason()));
  }
  // In every mode the client speaks first, so the proxy has nothing of the target's to relay yet:
  // bytes after the reply would be a broken proxy, and would be lost to the tunnel.
  if (buffer.size() != 0) {
    throw Failure(ErrorKind::kProxy, "CONNECT reply followed by unexpected bytes");
  }
}

}  // namespace

Route plan_route(const std::optional<Endpoint>& proxy, const Endpoint& target, bool tunnel) {
  const Endpoint& first_hop = proxy ? *proxy : target;
  asio::io_context io;
  tcp::resolver resolver(io);
  boost::system::error_code error;
  auto addresses = resolver.resolve(first_hop.host, std::to_string(first_hop.port),
                                    tcp::resolver::numeric_service, error);
  if (error) throw std::runtime_error("cannot resolve " + first_hop.host + ": " + error.message());
  return Route{std::move(addresses), proxy && tunnel ? std::optional(target) : std::nullopt};
}

asio::awaitable<void> open_route(beast::tcp_stream& stream, const Route& route) {
  co_await step(ErrorKind::kConnect, "connect",
                stream.async_connect(route.first_hop, asio::use_awaitable));
  // Every write is a message the peer waits for before it answers: Nagle's algorithm could only
  // hold one back. Failing to turn it off costs latency, not correctness, so errors are ignored.
  boost::system::error_code ignored;
  stream.socket().set_option(tcp::no_delay(true), ignored);
  if (route.tunnel_to) co_await open_tunnel(stream, *route.tunnel_to);
}

}  // namespace ward::loadgen
