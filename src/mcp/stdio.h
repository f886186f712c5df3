// MCP over stdio: newline-delimited JSON-RPC on stdin and stdout, logs on stderr only. One
// session; each tool call is handled on a thread of its own so that cancellations and responses
// to the server's own requests are read while a tool runs.
#pragma once

#include <string>

#include "mcp/server.h"

namespace ward::mcp {

// Serves until stdin ends, then cancels what still runs and waits for it. `chat_id` picks the
// session's sandbox. Returns the process's exit code.
int serve_stdio(Server& server, const std::string& chat_id, int in_fd = 0, int out_fd = 1);

}  // namespace ward::mcp
