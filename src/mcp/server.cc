#include "mcp/server.h"

#include <algorithm>

#include "mcp/fixtures.h"

namespace ward::mcp {
namespace {

constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;

constexpr const char* kAuditUri = "ward://sandbox/audit";

std::string key_of(const json& id) {
  return id.dump();
}

json result(const json& id, json value) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(value)}};
}

}  // namespace

std::string string_member(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string dump(const json& message) {
  return message.dump(-1, ' ', false, json::error_handler_t::replace);
}

// ---- Session ----

int Session::level_rank(std::string_view level) {
  static constexpr std::string_view kLevels[] = {"debug", "info",     "notice", "warning",
                                                 "error", "critical", "alert",  "emergency"};
  for (int i = 0; i < 8; ++i)
    if (kLevels[i] == level) return i;
  return -1;
}

std::shared_ptr<std::atomic<bool>> Session::begin(const json& id) {
  std::lock_guard lock(mutex_);
  auto flag = std::make_shared<std::atomic<bool>>(false);
  in_flight_[key_of(id)] = flag;
  return flag;
}

void Session::end(const json& id) {
  std::lock_guard lock(mutex_);
  in_flight_.erase(key_of(id));
}

void Session::cancel(const json& id) {
  std::lock_guard lock(mutex_);
  if (auto it = in_flight_.find(key_of(id)); it != in_flight_.end()) *it->second = true;
}

std::optional<json> Session::ask(Stream& stream, json request, std::chrono::milliseconds timeout) {
  std::string key;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return std::nullopt;
    request["jsonrpc"] = "2.0";
    request["id"] = "ward-" + std::to_string(++next_ask_);
    key = key_of(request["id"]);
    asked_[key];
  }
  stream.send(request);
  std::unique_lock lock(mutex_);
  answered_.wait_for(lock, timeout, [&] { return closed_ || asked_[key].has_value(); });
  std::optional<json> answer = std::move(asked_[key]);
  asked_.erase(key);
  return answer;
}

bool Session::deliver(const json& response) {
  std::lock_guard lock(mutex_);
  auto it = asked_.find(key_of(response.value("id", json())));
  if (it == asked_.end() || it->second) return false;
  it->second = response;
  answered_.notify_all();
  return true;
}

void Session::close() {
  std::lock_guard lock(mutex_);
  closed_ = true;
  for (auto& [id, flag] : in_flight_) *flag = true;
  answered_.notify_all();
}

// ---- Server ----

const std::vector<std::string>& Server::versions() {
  static const std::vector<std::string> kVersions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                     "2024-11-05"};
  return kVersions;
}

json Server::error(const json& id, int code, const std::string& message) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}};
}

json Server::initialize(Session& session, const json& params) {
  const std::string asked = params.is_object() ? string_member(params, "protocolVersion") : "";
  const auto& v = versions();
  session.protocol_version = std::find(v.begin(), v.end(), asked) != v.end() ? asked : kLatest;
  json capabilities = {{"tools", {{"listChanged", false}}},
                       {"resources", {{"listChanged", false}, {"subscribe", options_.fixtures}}},
                       {"logging", json::object()}};
  if (options_.fixtures) {
    capabilities["prompts"] = {{"listChanged", false}};
    capabilities["completions"] = json::object();
  }
  return {
      {"protocolVersion", session.protocol_version},
      {"capabilities", capabilities},
      {"serverInfo", {{"name", "ward"}, {"title", "ward sandboxes"}, {"version", WARD_VERSION}}},
      {"instructions",
       "Each conversation gets its own Linux sandbox. bash_tool runs commands in it; "
       "create_file, str_replace and view work on its files; sandbox_info tells what it "
       "may reach. Relative paths are inside the sandbox's workspace."}};
}

std::optional<json> Server::handle(Session& session, const json& message, Stream& stream) {
  try {
    return dispatch(session, message, stream);
  } catch (const std::exception& e) {
    // A member of an unexpected type somewhere the checks did not foresee: refused, never fatal.
    const bool request = message.is_object() && message.contains("id") &&
                         (message["id"].is_string() || message["id"].is_number_integer());
    if (!request) return std::nullopt;
    return error(message["id"], kInvalidParams,
                 std::string("the request cannot be handled: ") + e.what());
  }
}

std::optional<json> Server::dispatch(Session& session, const json& message, Stream& stream) {
  if (!message.is_object() || string_member(message, "jsonrpc") != "2.0")
    return error(message.is_object() && message.contains("id") ? message["id"] : json(),
                 kInvalidRequest, "not a JSON-RPC 2.0 message");
  const bool has_id = message.contains("id") && !message["id"].is_null();
  if (!message.contains("method")) {
    // A response to a request we made.
    if (has_id && (message.contains("result") || message.contains("error")))
      session.deliver(message);
    return std::nullopt;
  }
  if (!message["method"].is_string())
    return error(has_id ? message["id"] : json(), kInvalidRequest, "method must be a string");
  const std::string method = message["method"];
  const json params = message.value("params", json::object());

  if (!has_id) {  // a notification
    if (method == "notifications/cancelled" && params.is_object() && params.contains("requestId"))
      session.cancel(params["requestId"]);
    return std::nullopt;
  }
  const json& id = message["id"];
  if (!id.is_string() && !id.is_number_integer())
    return error(nullptr, kInvalidRequest, "id must be a string or an integer");
  if (!params.is_object()) return error(id, kInvalidParams, "params must be an object");

  if (method == "initialize") {
    if (!params.contains("protocolVersion") || !params["protocolVersion"].is_string())
      return error(id, kInvalidParams, "initialize needs protocolVersion, a string");
    return result(id, initialize(session, params));
  }
  if (method == "ping") return result(id, json::object());
  if (method == "logging/setLevel") {
    const int level = Session::level_rank(string_member(params, "level"));
    if (level < 0)
      return error(id, kInvalidParams, "level must be one of RFC 5424's: debug ... emergency");
    session.log_level = level;
    return result(id, json::object());
  }
  if (method == "tools/list") {
    json tools = sandboxes_ ? tool_list() : json::array();
    if (options_.fixtures)
      for (auto& t : fixtures::tools()) tools.push_back(t);
    return result(id, {{"tools", tools}});
  }
  if (method == "tools/call") return call_tool(session, id, params, stream);
  if (method == "resources/list") {
    json resources = json::array();
    if (sandboxes_)
      resources.push_back({{"uri", kAuditUri},
                           {"name", "audit"},
                           {"title", "This sandbox's audit records"},
                           {"description",
                            "Every network decision about this session's sandbox (OCSF JSON "
                            "lines), the last 500."},
                           {"mimeType", "application/x-ndjson"}});
    if (options_.fixtures)
      for (auto& r : fixtures::resources()) resources.push_back(r);
    return result(id, {{"resources", resources}});
  }
  if (method == "resources/templates/list") {
    json templates = options_.fixtures ? fixtures::resource_templates() : json::array();
    return result(id, {{"resourceTemplates", templates}});
  }
  if (method == "resources/read") {
    json r = read_resource(session, id, params);
    return r;
  }
  if (options_.fixtures) {
    if (auto answer = fixtures::handle(method, params, session, stream))
      return answer->contains("error") ? error(id, (*answer)["error"].value("code", -32603),
                                               string_member((*answer)["error"], "message"))
                                       : result(id, std::move(*answer));
  }
  if (method == "prompts/list") return result(id, {{"prompts", json::array()}});
  return error(id, kMethodNotFound, "method not found: " + method);
}

json Server::call_tool(Session& session, const json& id, const json& params, Stream& stream) {
  if (!params.contains("name") || !params["name"].is_string())
    return error(id, kInvalidParams, "tools/call needs a tool name");
  const std::string name = params["name"];
  const json args = params.value("arguments", json::object());
  json progress_token;
  if (params.contains("_meta") && params["_meta"].is_object())
    progress_token = params["_meta"].value("progressToken", json());

  if (options_.fixtures) {
    if (auto answer = fixtures::call_tool(name, args, session, stream, progress_token))
      return answer->contains("error") ? error(id, (*answer)["error"].value("code", -32603),
                                               string_member((*answer)["error"], "message"))
                                       : result(id, std::move(*answer));
  }
  if (!sandboxes_) return error(id, kInvalidParams, "no tool named " + name);

  auto cancelled = session.begin(id);
  const std::string chat = session.chat_id;
  ToolCall call;
  call.sandbox = [this, chat](bool fresh) { return sandboxes_->open(chat, fresh); };
  if (!progress_token.is_null())
    call.progress = [&stream, progress_token](double progress, const std::string& text) {
      stream.send(
          {{"jsonrpc", "2.0"},
           {"method", "notifications/progress"},
           {"params",
            {{"progressToken", progress_token}, {"progress", progress}, {"message", text}}}});
    };
  call.cancelled = [cancelled, &stream] { return cancelled->load() || stream.gone(); };
  auto answer = mcp::call_tool(*sandboxes_, options_.limits, name, args, call);
  session.end(id);
  if (!answer) return error(id, kInvalidParams, "no tool named " + name);
  return result(id, std::move(*answer));
}

json Server::read_resource(Session& session, const json& id, const json& params) {
  const std::string uri = string_member(params, "uri");
  if (options_.fixtures) {
    if (auto contents = fixtures::read_resource(uri)) return result(id, {{"contents", *contents}});
  }
  if (uri != kAuditUri || !sandboxes_) return error(id, -32002, "resource not found: " + uri);
  // Only this session's own sandbox: the URI names no sandbox, so no other can be asked for.
  auto sandbox = sandboxes_->open(session.chat_id);
  if (!sandbox) return error(id, -32603, "no sandbox: " + sandbox.error().describe());
  auto text = sandboxes_->audit(*sandbox, 500);
  if (!text) return error(id, -32603, "cannot read the audit records: " + text.error().describe());
  return result(id, {{"contents", json::array({{{"uri", kAuditUri},
                                                {"mimeType", "application/x-ndjson"},
                                                {"text", valid_utf8(*text)}}})}});
}

}  // namespace ward::mcp
