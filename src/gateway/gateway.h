// `ward gateway`: the daemon that owns many long-lived sandboxes (docs/gateway-api.md).
//
// One Asio event loop (this thread) serves the HTTP/JSON API on a Unix socket and talks to each
// sandbox's supervisor over its control socket; each running sandbox's egress proxy runs on a
// thread of its own. State lives in SQLite (store.h); provider values apart (secrets.h).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "proxy/proxy.h"

namespace ward::gateway {

// A connection the gateway hands to another server once its first request is read (the MCP
// endpoint at /mcp, which serves the rest of the connection on a thread of its own).
struct HandOff {
  int fd = -1;  // the connection, blocking; the receiver closes it
  boost::beast::http::request<boost::beast::http::string_body> request;
  std::string buffered;   // bytes read past the request (a pipelined next one)
  bool tcp = false;       // from a --listen address (the bearer token was checked)
  bool loopback = false;  // ... and that address is a loopback one
  uid_t peer_uid = static_cast<uid_t>(-1);  // on the Unix socket
  // On TCP: each later request's header must arrive within this of when waiting for it began
  // (GatewayOptions::header_timeout); zero on the Unix socket, which has no deadlines.
  std::chrono::milliseconds header_timeout{0};
  // The --listen checks for each later request on the connection: 0 when it may pass, else
  // the status to refuse it with (401 no valid token, 403 a foreign Host or Origin).
  std::function<int(const boost::beast::http::request<boost::beast::http::string_body>&)> refused;
};
using HandOffHandler = std::function<void(HandOff)>;

struct GatewayOptions {
  std::string state_dir;     // resolved (cli::state_dir)
  std::string socket_path;   // "": STATE/gateway.sock
  std::string socket_group;  // "": the socket is 0600; else 0660 and this group
  bool stop_sandboxes_on_exit = false;
  std::vector<std::string> upstream_ca;  // --upstream-ca for every sandbox's proxy
  std::string hosts_file;                // --hosts for every sandbox's proxy
  std::string trust_layer;               // the CA layer (cli::prepare_trust), "" for none
  std::vector<std::string> hidden;       // no sandbox sees these (cli::private_paths)
  bool verbose = false;
  // TCP listeners ("HOST:PORT", --listen) besides the Unix socket. Every request on them carries
  // `Authorization: Bearer TOKEN` (compared in constant time) unless `no_auth`, which only a
  // loopback address may use; on a loopback address, a Host or Origin that is not localhost,
  // 127.0.0.1 or [::1] is refused (403: DNS rebinding).
  std::vector<std::string> listen;
  std::string token;
  bool no_auth = false;
  // On --listen, a request's header must arrive within this long of the gateway starting to
  // wait for it (slowloris; the idle time of a kept-alive connection counts).
  std::chrono::milliseconds header_timeout{std::chrono::seconds(30)};
  // Every sandbox's egress proxy: its timeouts and bounds (`ward run`'s options of the same names).
  proxy::Limits egress_limits;
  // Each sandbox's audit.jsonl: past this, audit.jsonl.1 and a new file (0: no limit).
  std::size_t audit_max_bytes = 64 << 20;
  // With both: --listen serves HTTPS (TLS >= 1.2) with this PEM certificate chain and key.
  std::string tls_cert, tls_key;
  // Served at /mcp; unset: 404.
  HandOffHandler mcp;
  // Runs on a thread of its own once the gateway's socket listens (`ward mcp --embedded`).
  std::function<void()> on_listening;
};

// Runs until SIGTERM or SIGINT; returns the process's exit code.
int run_gateway(const GatewayOptions& options);

}  // namespace ward::gateway
