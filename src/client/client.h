// A synchronous HTTP/1.1 client for the gateway's API (docs/gateway-api.md), over its Unix socket
// or over TCP (`ward gateway --listen`) with a bearer token. Used by the CLI and by `ward mcp`.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "base/result.h"

namespace ward::client {

struct Request {
  std::string method = "GET";
  std::string target;               // origin form: "/v1/sandboxes?label=team%3Dinfra"
  std::optional<std::string> body;  // sent with `content_type` when set
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::string body;  // empty for a streamed 2xx answer: its bytes went to the handler
  bool ok() const { return status >= 200 && status < 300; }
};

// Where a gateway listens: a Unix socket path, or http://HOST:PORT or https://HOST:PORT (then
// with `token`). An https gateway's certificate is verified against the system's trust store and
// `ca_file`, for the host name (or IP address) in the address.
struct Endpoint {
  std::string address;  // as given
  std::string token;    // the bearer token for TCP; "" on a Unix socket
  std::string ca_file;  // https: a PEM file of CA certificates trusted besides the system's

  bool is_tls() const { return address.starts_with("https://"); }
  bool is_tcp() const { return address.starts_with("http://") || is_tls(); }
};

// Called every `every` while a streamed answer is silent, and between its pieces when that long
// has passed; returning false closes the connection, as a stream's data handler can.
struct Ticker {
  std::chrono::milliseconds every{0};
  std::function<bool()> tick;
};

// One request per connection. Errors are the transport's: the connection (err: the errno of
// connect(2), ENOENT or ECONNREFUSED when no gateway listens), or a broken exchange.
class GatewayClient {
 public:
  explicit GatewayClient(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}
  explicit GatewayClient(std::string address) : endpoint_{std::move(address), {}} {}
  const std::string& address() const { return endpoint_.address; }
  const Endpoint& endpoint() const { return endpoint_; }

  // The whole answer.
  Result<Response> request(const Request& request) const;

  // A 2xx answer's body is handed to `on_data` piece by piece as it arrives (after chunked
  // framing is undone); returning false closes the connection, which cancels what the request
  // started (an exec). Other answers are read whole into Response::body, as request() does.
  using DataHandler = std::function<bool(const Response& head, std::string_view bytes)>;
  using Ticker = client::Ticker;
  Result<Response> stream(const Request& request, const DataHandler& on_data,
                          const Ticker& ticker = {}) const;

  // Splits a stream into lines (without "\n" or "\r\n"); a last line without "\n" is delivered
  // when the answer ends.
  using LineHandler = std::function<bool(std::string_view line)>;
  Result<Response> stream_lines(const Request& request, const LineHandler& on_line,
                                const Ticker& ticker = {}) const;

 private:
  Endpoint endpoint_;
};

// "http://HOST:PORT" or "https://HOST:PORT" → {HOST, PORT}; nullopt when it is not that shape.
// HOST may be a bracketed IPv6 literal (returned without the brackets).
std::optional<std::pair<std::string, std::string>> split_http_address(std::string_view address);

// A TCP connection to a gateway at http(s)://HOST:PORT, the TLS handshake done for https (the
// stream is then `tls`, else `tcp`): what requests and `ward sandbox connect`'s WebSocket run
// over. Errors say what failed (err: connect(2)'s errno when that failed).
struct Connection {
  std::unique_ptr<boost::asio::io_context> io;
  std::unique_ptr<boost::asio::ssl::context> context;
  std::unique_ptr<boost::asio::ip::tcp::socket> tcp;                            // http
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls;  // https
  std::string authority;  // HOST:PORT, for the Host header
};
Result<Connection> connect_tcp(const Endpoint& endpoint);

}  // namespace ward::client
