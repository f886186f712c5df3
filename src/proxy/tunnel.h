// An opaque tunnel: bytes relayed both ways between two connected sockets. Small exchanges are
// copied through one buffer shared by every tunnel of the thread; a direction that carries bulk
// data switches to splice(2) through a pipe of its own, so those bytes never enter user space.
// An idle tunnel holds two sockets and nothing else.
#pragma once

#include <cstdint>
#include <functional>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace ward::proxy {

struct TunnelBytes {
  std::uint64_t up = 0;    // client → upstream
  std::uint64_t down = 0;  // upstream → client
};

// Returns when both directions have ended: an end of file is passed on as a half-close
// (shutdown(SHUT_WR)); an error on either side ends both. `on_progress` runs after each batch
// of bytes moved (the caller's idle deadline).
boost::asio::awaitable<void> relay_tunnel(boost::asio::ip::tcp::socket& client,
                                          boost::asio::ip::tcp::socket& upstream,
                                          TunnelBytes& bytes,
                                          const std::function<void()>& on_progress);

}  // namespace ward::proxy
