// Upstream TLS connections that intercepted sessions left open and clean, kept a moment for the
// sandbox's next CONNECT to the same host and port: its client is spared ward's TCP connect and
// TLS handshake to the upstream, two round trips on a real network. One pool per sandbox (a
// connection never serves another sandbox), keyed by everything the connection's decision was
// made from: the policy generation (a reload drops what the old policy let through), the host,
// the port and the calling binaries (another binary's rule may have other allowed_ips, other
// credentials: it never gets a connection made under this one's). Lives on the proxy's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>

namespace ward::proxy {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

struct PooledUpstream {
  std::uint64_t generation = 0;
  std::string host;
  std::uint16_t port = 0;
  std::string caller;   // the calling binaries, each followed by a NUL
  std::string address;  // where it is connected, for the records
  TlsStream stream;
  std::chrono::steady_clock::time_point since;  // the end of its last response (or handshake)
};

class UpstreamPool {
 public:
  using Clock = std::chrono::steady_clock;
  // How long a connection is kept, counted from the end of the last response ward read (which
  // the server's own keep-alive count starts before). The default, 1 s, is half the shortest
  // common server keep-alive timeout (gunicorn's 2 s; Node's and Apache's 5 s, nginx's 75 s): a
  // server seldom closes a connection as it is taken. One it did close is found so and dropped;
  // the session checks again before its first request. 0 keeps none.
  static constexpr std::chrono::milliseconds kDefaultIdle{1000};
  static constexpr std::size_t kCapacity = 32;

  void set_idle(std::chrono::milliseconds idle) { idle_limit_ = idle; }
  std::chrono::milliseconds idle() const { return idle_limit_; }

  // The most recently returned connection for this key that is still usable, or nothing. Those
  // found closed or expired on the way are dropped.
  std::optional<PooledUpstream> take(std::uint64_t generation, const std::string& host,
                                     std::uint16_t port, const std::string& caller,
                                     Clock::time_point now);
  // Keeps `c` when it is usable (nothing unread, its peer has not closed) and idle for less than
  // idle(), dropping the oldest beyond kCapacity. Else `c` is closed.
  void give(PooledUpstream c, Clock::time_point now);
  // Drops what has been idle for idle() (the proxy's sweep).
  void expire(Clock::time_point now);
  void clear() { idle_.clear(); }
  bool empty() const { return idle_.empty(); }
  std::size_t size() const { return idle_.size(); }

  // Open, nothing unread at any layer (socket, TLS records, decrypted bytes), peer not closed.
  static bool usable(TlsStream& s);

 private:
  std::chrono::milliseconds idle_limit_ = kDefaultIdle;
  std::list<PooledUpstream> idle_;  // in the order given back
};

}  // namespace ward::proxy
