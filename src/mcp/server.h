// The MCP protocol, independent of the transport (stdio.h, http.h): JSON-RPC 2.0 messages in,
// responses and notifications out, one session's state, the tools (tools.h) and the sandbox
// audit resource. Tool calls block the calling thread; each transport calls handle() on a thread
// per request so that notifications/cancelled and responses can arrive meanwhile.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mcp/sandboxes.h"
#include "mcp/tools.h"

namespace ward::mcp {

using json = nlohmann::json;

// Where a request's own messages go: notifications about it (progress, log messages) and
// requests to the client (sampling, elicitation), on its stream (stdout; the POST's SSE stream).
class Stream {
 public:
  virtual ~Stream() = default;
  virtual void send(const json& message) = 0;
  // The client went away: what the request does is cancelled.
  virtual bool gone() const { return false; }
};

// One MCP session: its negotiated version, its chat (which picks the sandbox), its requests in
// flight, and the responses to requests it made of the client.
class Session {
 public:
  explicit Session(std::string id) : id_(std::move(id)) {}
  const std::string& id() const { return id_; }

  std::string protocol_version;
  std::string chat_id;  // picks the sandbox: X-Chat-Id at initialize, else the session's id
  // logging/setLevel: log messages below this level are not sent.
  int log_level = level_rank("info");

  // RFC 5424's levels as MCP names them, from "debug" (0) to "emergency" (7); -1 for none.
  static int level_rank(std::string_view level);

  // Requests in flight: cancelled by notifications/cancelled.
  std::shared_ptr<std::atomic<bool>> begin(const json& id);
  void end(const json& id);
  void cancel(const json& id);

  // A request to the client: sent on `stream`, answered through deliver(); nullopt after
  // `timeout` or when the session ends.
  std::optional<json> ask(Stream& stream, json request, std::chrono::milliseconds timeout);
  // A response the client sent; false when nobody waits for it.
  bool deliver(const json& response);
  void close();

 private:
  std::string id_;
  std::mutex mutex_;
  std::condition_variable answered_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> in_flight_;
  std::map<std::string, std::optional<json>> asked_;
  std::int64_t next_ask_ = 0;
  bool closed_ = false;
};

struct ServerOptions {
  ToolLimits limits;
  // Serve the conformance suite's test_* tools, test:// resources and test prompts
  // (fixtures.h). A test mode: never on by default.
  bool fixtures = false;
};

class Server {
 public:
  // `sandboxes` may be null only with fixtures (then ward's tools are not offered).
  Server(ServerOptions options, Sandboxes* sandboxes)
      : options_(std::move(options)), sandboxes_(sandboxes) {}

  // The protocol versions spoken, newest first.
  static const std::vector<std::string>& versions();
  static constexpr const char* kLatest = "2025-11-25";

  // One message from the client. Returns the response to a request; nullopt for a notification
  // or a response. Tool calls work in the sandbox of the session's chat_id.
  std::optional<json> handle(Session& session, const json& message, Stream& stream);

  // A JSON-RPC error response.
  static json error(const json& id, int code, const std::string& message);

  Sandboxes* sandboxes() const { return sandboxes_; }

 private:
  std::optional<json> dispatch(Session& session, const json& message, Stream& stream);
  json initialize(Session& session, const json& params);
  json call_tool(Session& session, const json& id, const json& params, Stream& stream);
  json read_resource(Session& session, const json& id, const json& params);

  ServerOptions options_;
  Sandboxes* sandboxes_;
};

// Serialises a message as one line of JSON (invalid UTF-8 replaced).
std::string dump(const json& message);

// `object[key]` when it is a string, else "" (never throws: messages are the client's).
std::string string_member(const json& object, const char* key);

}  // namespace ward::mcp
