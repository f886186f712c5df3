#include "proxy/tunnel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

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
constexpr unsigned kFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr size_t kScratch = 64 * 1024;
// 256 KiB, not 1 MiB: a stalled bulk tunnel pins its pipes' pages in the kernel (charged to ward,
// not to the sandbox), and a sandbox may hold thousands of tunnels. A/B through one tunnel on this
// machine: 1.46-1.51 GB/s against 1.54-1.62 GB/s with 1 MiB pipes.
constexpr int kBulkPipeSize = 256 << 10;

// Small exchanges (requests, responses, TLS handshakes) are copied through one buffer that every
// tunnel of the loop's thread shares: a recv and a send, no pipe, nothing held while idle. A
// direction whose read fills that buffer is carrying bulk data and switches to splice(2)
// through a pipe of its own, where the bytes no longer enter user space. Allocated at first use:
// as a thread_local array it would be zeroed at the start of every thread of every ward process
// (16 page faults each, 64 KiB per gateway thread).
char* scratch() {
  thread_local const std::unique_ptr<char[]> buffer(new char[kScratch]);
  return buffer.get();
}

struct Pipe {
  UniqueFd read, write;
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    read.reset(fds[0]);
    write.reset(fds[1]);
    ::fcntl(fds[1], F_SETPIPE_SZ, kBulkPipeSize);  // fewer, larger moves; 64 KiB if refused
    return true;
  }
};

// Ends both directions at once (the other pump wakes up with an error or end of file).
void break_both(tcp::socket& a, tcp::socket& b) {
  ::shutdown(a.native_handle(), SHUT_RDWR);
  ::shutdown(b.native_handle(), SHUT_RDWR);
}

// Reads some bytes from `from` into the shared buffer, or (bulk mode) into the pipe.
// > 0: bytes read; 0: end of file; -1: would block; -2: error.
ssize_t take(int from, Pipe& pipe) {
  for (;;) {
    ssize_t n = pipe.read
                    ? ::splice(from, nullptr, pipe.write.get(), nullptr, kBulkPipeSize, kFlags)
                    : ::recv(from, scratch(), kScratch, MSG_DONTWAIT);
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    return errno == EAGAIN ? -1 : -2;
  }
}

// Moves up to `n` bytes that take() read on to `to`. Returns how many went (0: would block),
// or -1 on an error.
ssize_t give(int to, Pipe& pipe, const char* data, size_t n) {
  for (;;) {
    ssize_t m = pipe.read ? ::splice(pipe.read.get(), nullptr, to, nullptr, n, kFlags)
                          : ::send(to, data, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (m >= 0) return m;
    if (errno == EINTR) continue;
    return errno == EAGAIN ? 0 : -1;
  }
}

// One direction, until end of file or an error.
asio::awaitable<void> pump(tcp::socket& from, tcp::socket& to, std::uint64_t& moved,
                           const std::function<void()>& on_progress) {
  Pipe pipe;                  // open once the direction carries bulk data
  std::vector<char> pending;  // copied bytes `to` could not take at once (the buffer is shared)
  for (;;) {
    ssize_t n = take(from.native_handle(), pipe);
    if (n == 0) {  // end of file: pass the half-close on
      ::shutdown(to.native_handle(), SHUT_WR);
      co_return;
    }
    if (n == -1) {
      auto [ec] = co_await from.async_wait(tcp::socket::wait_read, kNoThrow);
      if (ec) break;
      continue;
    }
    if (n < 0) break;
    const bool bulk = !pipe.read && static_cast<size_t>(n) == kScratch;
    const char* data = scratch();
    for (size_t left = static_cast<size_t>(n); left > 0;) {
      ssize_t m = give(to.native_handle(), pipe, data, left);
      if (m < 0) {
        break_both(from, to);
        co_return;
      }
      if (m == 0) {
        if (!pipe.read && pending.empty()) {
          pending.assign(data, data + left);  // another tunnel may reuse the buffer meanwhile
          data = pending.data();
        }
        auto [ec] = co_await to.async_wait(tcp::socket::wait_write, kNoThrow);
        if (ec) {
          break_both(from, to);
          co_return;
        }
        continue;
      }
      left -= static_cast<size_t>(m);
      data += m;
      moved += static_cast<std::uint64_t>(m);
    }
    std::vector<char>().swap(pending);
    if (bulk && !pipe.open()) break;
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
