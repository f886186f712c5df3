// The egress proxy: one event loop (Boost.Asio, C++20 coroutines) on a thread of its own, serving
// the egress listener of each sandbox it is given. Per connection: the calling process (peer.h),
// an HTTP/1.1 head (Boost.Beast's parser), a decision on host, port and binary (policy
// matcher.h), the SSRF guard on every resolved address (guard.h), then either a CONNECT tunnel
// (tunnel.h) or a forwarded plain-HTTP exchange; every decision is an audit record.
//
// Policies are immutable generations: install() swaps in a new one for new connections, and a
// keep-alive connection pinned to an older one is closed at its next request.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "policy/policy.h"
#include "proxy/hosts.h"

namespace ward::tls {
class Authority;
}
namespace ward::creds {
class Vault;
}
namespace ward::inference {
struct Route;
}

namespace ward::proxy {

struct Limits {
  std::size_t connect_head = 8 * 1024;       // a CONNECT head beyond this: 431
  std::size_t request_head = 16 * 1024;      // any request head beyond this: 431
  std::chrono::seconds header_timeout{10};   // a head not complete by then: 408
  std::chrono::seconds connect_timeout{10};  // resolving and connecting upstream: 504
  std::chrono::seconds idle_timeout{300};    // no byte either way on a connection: closed
  std::size_t max_connections = 4096;        // per sandbox; beyond: 503
  std::size_t max_buffered = 64 << 20;       // per sandbox, bodies held whole; beyond: 503
  // How long an intercepted upstream connection is kept, from its last response, for the
  // sandbox's next CONNECT to the same place (pool.h); 0: never.
  std::chrono::milliseconds upstream_idle{1000};
};

struct Options {
  Limits limits;
  HostsFile hosts;                         // consulted before DNS
  std::string audit_path;                  // JSON lines; "" for none
  bool audit_stderr = false;               // the one-line form of each record on stderr
  std::size_t audit_max_bytes = 64 << 20;  // then audit_path.1 (audit::Sink); 0: no limit
  // HTTPS interception: the state directory holding ward's CA ("" : none, and a CONNECT to an
  // endpoint whose requests must be read is refused), the CA itself when already loaded (else it
  // is loaded at the first such CONNECT), and CA files trusted for upstreams besides the system's.
  std::string ca_state_dir;
  std::shared_ptr<tls::Authority> authority;
  std::vector<std::string> upstream_ca;
  // Credentials swapped into requests towards their bound endpoints (null: none).
  std::shared_ptr<const creds::Vault> vault;
  // inference.local's routes (null or empty: not served; requests for it meet the policy).
  std::shared_ptr<const std::vector<inference::Route>> inference_routes;
};

// Raises the limit on open files (RLIMIT_NOFILE): to 2^20 where the process may (root), else to
// the hard limit. A proxy's first serve() does it; the gateway at its start.
void raise_file_limit();

class Proxy {
 public:
  static Result<std::unique_ptr<Proxy>> create(Options options,
                                               std::shared_ptr<const policy::Policy> policy);
  ~Proxy();  // stop()
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Serves a sandbox's egress listener from now on (the event loop starts with the first).
  // `diag` is a NETLINK_SOCK_DIAG socket of the sandbox's network namespace; `init_pid` the
  // sandbox init's pid on the host. `sandbox_id` names the sandbox in audit records. An error
  // when the event loop's thread cannot be started (the listener is then closed: the sandbox's
  // connections out are refused at once).
  Result<void> serve(std::string sandbox_id, UniqueFd listener, UniqueFd diag, pid_t init_pid);

  // A new policy generation for new connections and new requests (thread-safe).
  void install(std::shared_ptr<const policy::Policy> policy);

  // Closes the listeners and every connection (writing their close records), then joins the
  // event loop's thread.
  void stop();

 private:
  struct Impl;
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ward::proxy
