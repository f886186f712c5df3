// MCP over Streamable HTTP (the gateway's /mcp; ../shared/reference/mcp.md): POST carries one
// JSON-RPC message, answered with JSON or, for tool calls, an SSE stream whose progress and log
// notifications come before the response; GET opens the session's standalone SSE stream; DELETE
// ends a session. The gateway hands each connection over once its first /mcp request is read
// (gateway::HandOff); a thread serves it from then on.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "gateway/gateway.h"
#include "mcp/server.h"

namespace ward::mcp {

constexpr std::size_t kMaxHttpBody = 32 << 20;  // upload_file carries up to 16 MiB in base64

class HttpEndpoint {
 public:
  explicit HttpEndpoint(Server& server) : server_(server) {}
  ~HttpEndpoint();

  // Serves the connection on a thread of its own.
  void serve(gateway::HandOff connection);

  // Ends sessions idle for longer than `idle` (their own sandboxes are deleted); returns how
  // many.
  int expire(std::chrono::seconds idle);

  struct Live;  // a session and its standalone stream

 private:
  void connection(gateway::HandOff h);
  void busy(int fd, std::string_view why);

  static constexpr int kMaxConnections = 512;
  Server& server_;
  std::atomic<int> connections_{0};
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Live>> sessions_;
  friend struct Exchange;
};

}  // namespace ward::mcp
