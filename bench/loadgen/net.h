// The network steps every mode shares: resolving the first hop once, opening a connection to it,
// and the CONNECT that turns that connection into a tunnel. Each step reports its failure as a
// Failure of the kind the run counts it under.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/system_error.hpp>

#include <exception>
#include <optional>
#include <stdexcept>
#include <string>

#include "loadgen/endpoint.h"
#include "loadgen/report.h"

namespace ward::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

class Failure : public std::runtime_error {
 public:
  Failure(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Awaits `operation`, turning its error into a Failure of `kind` (or of kTimeout when the stream's
// deadline passed) whose message starts with `what`, a string literal.
template <typename T>
asio::awaitable<T> step(ErrorKind kind, const char* what, asio::awaitable<T> operation) {
  try {
    co_return co_await std::move(operation);
  } catch (const boost::system::system_error& e) {
    throw Failure(e.code() == beast::error::timeout ? ErrorKind::kTimeout : kind,
                  std::string(what) + ": " + e.code().message());
  }
}

// The completion handler of coroutines that handle their own failures: an exception escaping one
// anyway ends the program rather than vanish.
inline void rethrow(std::exception_ptr error) {
  if (error) std::rethrow_exception(error);
}

// Where each connection goes: TCP to the first hop, then, through a proxy, a CONNECT to the target.
struct Route {
  tcp::resolver::results_type first_hop;
  std::optional<Endpoint> tunnel_to;  // the CONNECT target; none when talking to the first hop
};

// Resolves the first hop up front, so that no connection waits for the resolver: `proxy` if there
// is one, else `target`. With `tunnel`, connections through the proxy CONNECT to `target`. Throws
// std::runtime_error when the name does not resolve.
Route plan_route(const std::optional<Endpoint>& proxy, const Endpoint& target, bool tunnel);

// Connects `stream` along `route`, within the deadline already set on `stream`. Throws Failure.
asio::awaitable<void> open_route(beast::tcp_stream& stream, const Route& route);

}  // namespace ward::loadgen
