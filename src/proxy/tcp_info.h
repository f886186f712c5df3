// Byte counts of a TCP connection as the kernel keeps them (TCP_INFO), for close records of
// connections whose bytes ward does not count itself (intercepted ones: TLS records included).
#pragma once

#include <cstdint>

namespace ward::proxy {

struct TcpBytes {
  std::uint64_t received = 0;  // from the peer
  std::uint64_t acked = 0;     // sent to the peer and acknowledged
};

// False when the kernel does not say (not TCP, or before Linux 4.6).
bool tcp_bytes(int fd, TcpBytes& out);

}  // namespace ward::proxy
