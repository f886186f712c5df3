// What `ward gateway` (its /mcp) and `ward mcp` (stdio) share: the MCP options, the server they
// build from them, and the bearer token of a TCP listener.
#pragma once

#include <CLI/App.hpp>

#include <memory>
#include <string>

#include "base/result.h"
#include "client/client.h"
#include "mcp/sandboxes.h"
#include "mcp/server.h"

namespace ward::cli {

struct McpSetup {
  std::string policy_file;  // the policy of chat sandboxes; "": the gateway's default
  long idle_ttl_s = 900;
  long remove_after_s = 24 * 3600;
  long command_timeout_s = 115;
  long progress_every_s = 15;
  bool fixtures = false;
};
void add_mcp_options(CLI::App* command, McpSetup& setup);

struct McpServer {
  std::unique_ptr<mcp::Sandboxes> sandboxes;
  std::unique_ptr<mcp::Server> server;
};
// Errors (an invalid policy file, with every diagnostic) are printed; nullptr then.
std::shared_ptr<McpServer> make_mcp_server(const McpSetup& setup, client::Endpoint gateway);

// --token-file's content, else $WARD_GATEWAY_TOKEN, else STATE/token (made, 0600, when missing).
Result<std::string> bearer_token(const std::string& token_file, const std::string& state_dir);

}  // namespace ward::cli
