// The CLI's side of the gateway API (docs/gateway-api.md): a synchronous HTTP/1.1 client over the
// gateway's Unix socket, and what every command that talks to it shares (discovery, `-o` formats,
// error lines, tables).
#pragma once

#include <CLI/App.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "client/client.h"

namespace ward::cli {

// Answers keep the gateway's key order when printed again (-o json, -o yaml).
using Json = nlohmann::ordered_json;

using client::GatewayClient;
using client::Request;
using client::Response;

// --gateway when given, else $WARD_GATEWAY, else <state dir>/gateway.sock; a URL
// (http://HOST:PORT) takes its bearer token from $WARD_GATEWAY_TOKEN.
client::Endpoint gateway_endpoint(const std::string& flag);

// Options every gateway command takes: `--gateway PATH` and `-o table|json|yaml`.
struct GatewayOptions {
  std::string gateway;
  std::string output = "table";
  bool table() const { return output == "table"; }
};
void add_gateway_options(CLI::App* command, GatewayOptions& options);

// The exchange most commands make: send, and return the answer's JSON when the status is 2xx.
// Otherwise the failure has been printed (no gateway, an API error, a broken answer) and the
// caller exits 1.
// `policy_file` names the file in the diagnostics of 400 invalid_policy.
std::optional<Json> call(const GatewayOptions& options, const Request& request,
                         std::string_view policy_file = "policy");

// Streamed exchanges (exec, logs -f): the client, and the printing of a failure.
GatewayClient connect_client(const GatewayOptions& options);
int report_transport_error(const GatewayClient& client, const Error& error);  // returns 1
int report_api_error(const Response& response, std::string_view policy_file = "policy");  // 1

// What ward exits with for an exec's `exit` event: the code, 128+N for a signal, 124 on timeout.
int exit_status(const Json& event);

// `ward sandbox connect`: an interactive terminal over the gateway's WebSocket; returns the
// remote command's exit status.
int connect_terminal(const GatewayOptions& options, const std::string& name,
                     const std::vector<std::string>& command, const std::string& workdir);

// Runs a command's action; an answer of the wrong shape (a string where a number belongs) is the
// gateway's fault: a message and exit 1, not an abort.
int guarded(const std::function<int()>& action);

// A JSON request body. Text that is not UTF-8 (a JSON string cannot carry it) has its invalid
// bytes replaced by U+FFFD, with a warning naming `what`.
std::string json_body(const Json& body, std::string_view what);

// Prints `value` as -o json (indented) or -o yaml; false for -o table (the caller's to render).
bool print_structured(const Json& value, const GatewayOptions& options);
// One value of a stream: a JSON line as it came, or a YAML document ("---" first).
void print_stream_item(const Json& value, const GatewayOptions& options);
std::string to_yaml(const Json& value);

// Aligned columns; the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows);
// "Key:   value" lines, aligned.
void print_fields(const std::vector<std::pair<std::string, std::string>>& fields);

// Small renderings shared by the tables.
std::string field(const Json& object, const char* key);   // a string or number, else ""
const Json& member(const Json& object, const char* key);  // else null
std::string age(const std::string& rfc3339);              // "42s", "5m", "3h", "2d"
std::string percent_encode(std::string_view s);           // for paths and queries

// "K=V" → {K, V}; "K" alone takes K's value from ward's environment when `from_env`.
Result<std::pair<std::string, std::string>> split_assignment(const std::string& text,
                                                             bool from_env);

}  // namespace ward::cli
