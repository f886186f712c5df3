// Which process inside a sandbox opened a connection to its egress listener: found from the
// connection itself, never from anything the client sends.
//
//   client port → sock_diag (in the sandbox's network namespace) → the socket's inode
//   → the sandbox process holding "socket:[inode]" (/proc/PID/fd) → /proc/PID/exe, then each
//   ancestor's executable up to the sandbox's entrypoint.
//
// Executables are cached per process (keyed by pid and start time, so a reused pid is not
// mistaken for the old process); the process that opened the previous connection is searched
// first, from the descriptor where it held the previous one: a client opening many connections
// costs a readlink or two each, however many it holds.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/fd.h"

namespace ward::proxy {

struct Caller {
  int pid = 0;                        // as the sandbox sees it; 0 when not found
  std::vector<std::string> binaries;  // its executable first, then its ancestors'
  const std::string& binary() const;  // the executable, or "" when unknown
};

// The pid as the process's own pid namespace sees it (the last NSpid entry), from the text of
// /proc/PID/status; 0 when it is not there.
int last_nspid(std::string_view status);

class PeerFinder {
 public:
  // `diag`: a NETLINK_SOCK_DIAG socket created in the sandbox's network namespace. `init_pid`:
  // the sandbox init's pid on the host (the root of the sandbox's process tree).
  PeerFinder(UniqueFd diag, pid_t init_pid);

  // The caller behind a connection accepted on the listener (127.0.0.1:listener_port):
  // `client_addr` (host order) and `client_port` are the connection's source. An empty Caller
  // when it cannot be found (the process already exited, say): policies that name binaries then
  // deny.
  Caller find(std::uint32_t client_addr, std::uint16_t client_port, std::uint16_t listener_port);

  // How many descriptors of the sandbox's processes one lookup may read before it gives up.
  static constexpr long kLookupBudget = 1 << 16;

 private:
  struct Known {
    unsigned long long start_time = 0;
    Caller caller;
  };
  std::uint64_t socket_inode(std::uint32_t client_addr, std::uint16_t client_port,
                             std::uint16_t listener_port);
  pid_t owner_of(std::uint64_t inode);
  const Caller* describe(pid_t host_pid);

  UniqueFd diag_;
  pid_t init_pid_;
  pid_t last_owner_ = 0;
  int last_fd_ = -1;     // where last_owner_ held the previous connection's socket
  bool warned_ = false;  // that a lookup ran out of budget (said once)
  std::unordered_map<pid_t, Known> known_;
};

}  // namespace ward::proxy
