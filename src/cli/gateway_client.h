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

namespace ward::cli {

// Answers keep the gateway's key order when printed again (-o json, -o yaml).
using Json = nlohmann::ordered_json;

struct Request {
  std::string method = "GET";
  std::string target;               // origin form: "/v1/sandboxes?label=team%3Dinfra"
  std::optional<std::string> body;  // sent with `content_type` when set
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

struct Response {
  unsigned status = 0;
  std::string content_type;
  std::string body;  // empty for a streamed 2xx answer: its bytes went to the handler
  bool ok() const { return status >= 200 && status < 300; }
};

// One request per connection. Errors are the transport's: the connection (err: the errno of
// connect(2), ENOENT or ECONNREFUSED when no gateway listens), or a broken exchange.
class GatewayClient {
 public:
  explicit GatewayClient(std::string socket_path) : socket_path_(std::move(socket_path)) {}
  const std::string& socket_path() const { return socket_path_; }

  // The whole answer.
  Result<Response> request(const Request& request) const;

  // A 2xx answer's body is handed to `on_data` piece by piece as it arrives (after chunked
  // framing is undone); returning false closes the connection, which cancels what the request
  // started (an exec). Other answers are read whole into Response::body, as request() does.
  using DataHandler = std::function<bool(const Response& head, std::string_view bytes)>;
  Result<Response> stream(const Request& request, const DataHandler& on_data) const;

  // Splits a stream into lines (without "\n" or "\r\n"); a last line without "\n" is delivered
  // when the answer ends.
  using LineHandler = std::function<bool(std::string_view line)>;
  Result<Response> stream_lines(const Request& request, const LineHandler& on_line) const;

 private:
  std::string socket_path_;
};

// --gateway when given, else $WARD_GATEWAY, else <state dir>/gateway.sock.
std::string gateway_socket(const std::string& flag);

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
