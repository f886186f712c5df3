// `ward gateway`: the daemon that owns many long-lived sandboxes (docs/gateway-api.md).
//
// One Asio event loop (this thread) serves the HTTP/JSON API on a Unix socket and talks to each
// sandbox's supervisor over its control socket; each running sandbox's egress proxy runs on a
// thread of its own. State lives in SQLite (store.h); provider values apart (secrets.h).
#pragma once

#include <string>
#include <vector>

namespace ward::gateway {

struct GatewayOptions {
  std::string state_dir;     // resolved (cli::state_dir)
  std::string socket_path;   // "": STATE/gateway.sock
  std::string socket_group;  // "": the socket is 0600; else 0660 and this group
  bool stop_sandboxes_on_exit = false;
  std::vector<std::string> upstream_ca;  // --upstream-ca for every sandbox's proxy
  std::string hosts_file;                // --hosts for every sandbox's proxy
  std::string trust_layer;               // the CA layer (cli::prepare_trust), "" for none
  bool verbose = false;
};

// Runs until SIGTERM or SIGINT; returns the process's exit code.
int run_gateway(const GatewayOptions& options);

}  // namespace ward::gateway
