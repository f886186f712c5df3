#include "proxy/pool.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>

namespace ward::proxy {

bool UpstreamPool::usable(TlsStream& s) {
  if (!s.next_layer().is_open()) return false;
  SSL* ssl = s.native_handle();
  // Bytes already read from the socket but not consumed (a close_notify, a record of a response
  // nobody asked for) would be taken for the next answer.
  if (SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0) return false;
  if (SSL_get_shutdown(ssl) != 0) return false;
  char byte;
  const ssize_t n =
      ::recv(s.next_layer().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT | MSG_NOSIGNAL);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::optional<PooledUpstream> UpstreamPool::take(std::uint64_t generation, const std::string& host,
                                                 std::uint16_t port, const std::string& caller,
                                                 Clock::time_point now) {
  expire(now);
  for (auto it = idle_.end(); it != idle_.begin();) {
    --it;
    if (it->generation != generation || it->port != port || it->host != host ||
        it->caller != caller)
      continue;
    if (!usable(it->stream)) {
      it = idle_.erase(it);
      continue;
    }
    PooledUpstream c = std::move(*it);
    idle_.erase(it);
    return c;
  }
  return std::nullopt;
}

void UpstreamPool::give(PooledUpstream c, Clock::time_point now) {
  expire(now);
  if (now - c.since >= idle_limit_ || !usable(c.stream)) return;
  idle_.push_back(std::move(c));
  while (idle_.size() > kCapacity) idle_.pop_front();
}

void UpstreamPool::expire(Clock::time_point now) {
  idle_.remove_if([&](const PooledUpstream& c) { return now - c.since >= idle_limit_; });
}

}  // namespace ward::proxy
