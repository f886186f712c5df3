#include "client/client.h"

#include <poll.h>
#include <sys/un.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>

#include <cerrno>
#include <cstdlib>

#include "tls/context.h"

namespace ward::client {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using Local = asio::local::stream_protocol;
using Tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// The answer's head as the handlers see it.
Response head_of(const http::response_parser<http::string_body>& parser) {
  const auto& message = parser.get();
  Response head;
  head.status = message.result_int();
  head.content_type = std::string(message[http::field::content_type]);
  return head;
}

// Reads more of a streamed answer; with a ticker, the socket is non-blocking and waits at most
// `every` at a time, calling the ticker when that long has passed since it last did.
template <class Socket>
bool read_more(Socket& socket, boost::beast::flat_buffer& buffer,
               http::response_parser<http::string_body>& parser,
               const GatewayClient::Ticker& ticker, Clock::time_point& last_tick,
               boost::system::error_code& ec, bool& stop) {
  for (;;) {
    if (ticker.every.count() > 0 && Clock::now() - last_tick >= ticker.every) {
      last_tick = Clock::now();
      if (!ticker.tick()) {
        stop = true;
        return false;
      }
    }
    http::read_some(socket, buffer, parser, ec);
    if (ec != asio::error::would_block) return !ec;
    ec = {};
    pollfd p{boost::beast::get_lowest_layer(socket).native_handle(), POLLIN, 0};
    const auto left = ticker.every - (Clock::now() - last_tick);
    ::poll(&p, 1,
           static_cast<int>(std::max<long>(
               1, std::chrono::duration_cast<std::chrono::milliseconds>(left).count())));
  }
}

template <class Socket>
Result<Response> exchange_on(Socket& socket, const std::string& where, const std::string& host,
                             const Request& request, const std::string& token,
                             const GatewayClient::DataHandler* on_data,
                             const GatewayClient::Ticker& ticker) {
  http::verb verb = http::string_to_verb(request.method);
  if (verb == http::verb::unknown) std::abort();  // a programming error: the methods are fixed
  http::request<http::string_body> message{verb, request.target, 11};
  // Over TCP the real authority (a loopback listener refuses other Hosts); "ward" on a socket.
  message.set(http::field::host, host);
  message.set(http::field::user_agent, "ward/" WARD_VERSION);
  message.keep_alive(false);
  if (!token.empty()) message.set(http::field::authorization, "Bearer " + token);
  for (const auto& [name, value] : request.headers) message.set(name, value);
  if (request.body) {
    message.set(http::field::content_type, request.content_type);
    message.body() = *request.body;
  }
  message.prepare_payload();
  boost::system::error_code ec;
  http::write(socket, message, ec);
  // A gateway that answers before reading the whole body (413) may reset the connection: its
  // answer can still be read.
  if (ec && ec != asio::error::broken_pipe && ec != asio::error::connection_reset)
    return fail("sending to the gateway at " + where + ": " + ec.message());

  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(boost::none);  // bounded by the gateway (files: 64 MiB), streams are endless
  http::read_header(socket, buffer, parser, ec);
  if (ec) return fail("reading the gateway's answer: " + ec.message());
  Response head = head_of(parser);
  if (!on_data || !head.ok()) {
    http::read(socket, buffer, parser, ec);
    if (ec) return fail("reading the gateway's answer: " + ec.message());
    head.body = std::move(parser.get().body());
    return head;
  }
  if (ticker.every.count() > 0) boost::beast::get_lowest_layer(socket).non_blocking(true);
  Clock::time_point last_tick = Clock::now();
  // The string body appends what each read parsed; hand it over and start again.
  std::string& body = parser.get().body();
  while (!parser.is_done()) {
    bool stop = false;
    if (!read_more(socket, buffer, parser, ticker, last_tick, ec, stop)) {
      if (stop) break;  // the socket closes on return
      return fail("the gateway's answer broke off: " + ec.message());
    }
    if (body.empty()) continue;
    const bool more = (*on_data)(head, body);
    body.clear();
    if (!more) break;
  }
  return head;
}

Result<Connection> connect_tcp_unguarded(const Endpoint& endpoint) {
  auto parts = split_http_address(endpoint.address);
  if (!parts)
    return fail(
        "not a gateway address (http://HOST:PORT or https://HOST:PORT): " + endpoint.address,
        EINVAL);
  const auto& [host, port] = *parts;
  Connection c;
  c.io = std::make_unique<asio::io_context>();
  c.authority = host.find(':') == std::string::npos ? host + ":" + port : "[" + host + "]:" + port;
  boost::system::error_code ec;
  Tcp::resolver resolver(*c.io);
  auto found = resolver.resolve(host, port, ec);
  if (ec) return fail("cannot resolve " + host + ": " + ec.message(), ECONNREFUSED);
  c.tcp = std::make_unique<Tcp::socket>(*c.io);
  asio::connect(*c.tcp, found, ec);
  if (ec) return fail("cannot connect to the gateway at " + endpoint.address, ec.value());
  c.tcp->set_option(Tcp::no_delay(true), ec);
  if (!endpoint.is_tls()) return c;

  std::vector<std::string> extra;
  if (!endpoint.ca_file.empty()) extra.push_back(endpoint.ca_file);
  auto context = tls::make_upstream_context(extra);
  if (!context) return tl::unexpected(context.error());
  c.context = std::make_unique<asio::ssl::context>(std::move(*context));
  c.tls = std::make_unique<asio::ssl::stream<Tcp::socket>>(std::move(*c.tcp), *c.context);
  c.tcp.reset();
  if (auto prepared = tls::prepare_upstream(c.tls->native_handle(), host); !prepared)
    return tl::unexpected(prepared.error());
  c.tls->handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    // The hint that fits: a certificate this host does not trust may be a private CA's; a
    // first answer that is no TLS record is a plain-HTTP listener.
    std::string why = tls::verify_failure(c.tls->native_handle()), hint;
    if (!why.empty() && endpoint.ca_file.empty())
      hint = " (a private CA: set WARD_GATEWAY_CA to its PEM file)";
    if (why.empty()) why = ec.message();
    if (ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER)
      hint =
          " (the gateway does not answer with TLS there: for a listener without --tls-cert, use "
          "http://)";
    return fail("TLS with the gateway at " + endpoint.address + " failed: " + why + hint);
  }
  return c;
}

// Asio throws where it cannot make an io_context's reactor (an epoll and an eventfd): a
// process out of descriptors or memory. A call reports that as it reports a failed connect;
// the gateway's own MCP threads call it, and an exception there would end the gateway.
template <class F>
auto reporting_exhaustion(std::string_view doing, F&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const boost::system::system_error& e) {
    return fail(std::string(doing) + ": " + e.code().message(), e.code().value());
  }
}

Result<Response> exchange_unguarded(const Endpoint& endpoint, const Request& request,
                                    const GatewayClient::DataHandler* on_data,
                                    const GatewayClient::Ticker& ticker) {
  if (endpoint.is_tcp()) {
    auto c = connect_tcp_unguarded(endpoint);
    if (!c) return tl::unexpected(c.error());
    if (c->tls)
      return exchange_on(*c->tls, endpoint.address, c->authority, request, endpoint.token, on_data,
                         ticker);
    return exchange_on(*c->tcp, endpoint.address, c->authority, request, endpoint.token, on_data,
                       ticker);
  }
  asio::io_context io;
  boost::system::error_code ec;
  const std::string& path = endpoint.address;
  if (path.size() >= sizeof(sockaddr_un::sun_path))  // asio's endpoint would throw
    return fail("the gateway's socket path " + path + " is too long for a Unix socket",
                ENAMETOOLONG);
  Local::socket socket(io);
  socket.connect(Local::endpoint(path), ec);
  if (ec) return fail("cannot connect to the gateway at " + path, ec.value());
  return exchange_on(socket, path, "ward", request, endpoint.token, on_data, ticker);
}

Result<Response> exchange(const Endpoint& endpoint, const Request& request,
                          const GatewayClient::DataHandler* on_data,
                          const GatewayClient::Ticker& ticker) {
  return reporting_exhaustion("cannot talk to the gateway at " + endpoint.address, [&] {
    return exchange_unguarded(endpoint, request, on_data, ticker);
  });
}

}  // namespace

Result<Connection> connect_tcp(const Endpoint& endpoint) {
  return reporting_exhaustion("cannot connect to the gateway at " + endpoint.address,
                              [&] { return connect_tcp_unguarded(endpoint); });
}

std::optional<std::pair<std::string, std::string>> split_http_address(std::string_view address) {
  if (address.starts_with("http://"))
    address.remove_prefix(7);
  else if (address.starts_with("https://"))
    address.remove_prefix(8);
  else
    return std::nullopt;
  while (address.ends_with('/')) address.remove_suffix(1);
  std::string host, port;
  if (address.starts_with('[')) {
    const auto close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() || address[close + 1] != ':')
      return std::nullopt;
    host = std::string(address.substr(1, close - 1));
    port = std::string(address.substr(close + 2));
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = std::string(address.substr(0, colon));
    port = std::string(address.substr(colon + 1));
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::make_pair(host, port);
}

Result<Response> GatewayClient::request(const Request& request) const {
  return exchange(endpoint_, request, nullptr, {});
}

Result<Response> GatewayClient::stream(const Request& request, const DataHandler& on_data,
                                       const Ticker& ticker) const {
  return exchange(endpoint_, request, &on_data, ticker);
}

Result<Response> GatewayClient::stream_lines(const Request& request, const LineHandler& on_line,
                                             const Ticker& ticker) const {
  std::string pending;
  bool stopped = false;
  DataHandler split = [&](const Response&, std::string_view bytes) {
    pending.append(bytes);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!on_line(line)) {
        stopped = true;
        return false;
      }
    }
    pending.erase(0, start);
    return true;
  };
  auto answer = exchange(endpoint_, request, &split, ticker);
  if (answer && answer->ok() && !stopped && !pending.empty()) on_line(pending);
  return answer;
}

}  // namespace ward::client
