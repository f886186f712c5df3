// Kept apart from Asio's headers: glibc's <netinet/tcp.h> has an older struct tcp_info than
// <linux/tcp.h>, and the two cannot be included together.
#include "proxy/tcp_info.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>

namespace ward::proxy {

bool tcp_bytes(int fd, TcpBytes& out) {
  struct tcp_info info {};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
    return false;
  out.received = info.tcpi_bytes_received;
  out.acked = info.tcpi_bytes_acked;
  return true;
}

}  // namespace ward::proxy
