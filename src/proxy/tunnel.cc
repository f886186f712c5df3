#include "proxy/tunnel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "base/fd.h"

namespace ward::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr size_t kChunk = 1 << 20;  // as much as the pipe holds (64 KiB by default)
constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

struct Pipe {
  UniqueFd read, write;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    read.reset(fds[0]);
    write.reset(fds[1]);
    return true;
  }
};

// Ends both directions at once (the other pump wakes up with an error or end of file).
void break_both(tcp::socket& a, tcp::socket& b) {
  ::shutdown(a.native_handle(), SHUT_RDWR);
  ::shutdown(b.native_handle(), SHUT_RDWR);
}

// One direction: `from` → pipe → `to`, until end of file or an error.
asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, std::uint64_t& moved,
                           const std::function<void()>& on_progress) {
  Pipe pipe;
  for (;;) {
    if (!pipe.read) {  // the first bytes of this direction: only now is a pipe worth having
      auto [ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
      if (ec || !pipe.open()) break;
    }
    ssize_t n = ::splice(from.native_handle(), nullptr, pipe.write.get(), nullptr, kChunk, kFlags);
    if (n == 0) {  // end of file: pass the half-close on
      ::shutdown(to.native_handle(), SHUT_WR);
      co_return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) break;
      auto [ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
      if (ec) break;
      continue;
    }
    while (n > 0) {
      ssize_t m = ::splice(pipe.read.get(), nullptr, to.native_handle(), nullptr,
                           static_cast<size_t>(n), kFlags);
      if (m > 0) {
        n -= m;
        moved += static_cast<std::uint64_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno == EAGAIN) {
        auto [ec] = co_await to.async_wait(tcp::socket::wait_write, kNoThrow);
        if (!ec) continue;
      }
      break_both(from, to);
      co_return;
    }
    on_progress();
  }
  break_both(from, to);
}

}  // namespace

asio::awaitable<void> relay_tunnel(tcp::socket& client, tcp::socket& upstream, TunnelBytes& bytes,
                                   const std::function<void()>& on_progress) {
  client.non_blocking(true);
  upstream.non_blocking(true);
  co_await (pump(client, upstream, bytes.up, on_progress) &&
            pump(upstream, client, bytes.down, on_progress));
}

}  // namespace ward::proxy
