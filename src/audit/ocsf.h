// Audit records in OCSF v1.7: class 4001 Network Activity (a CONNECT tunnel: opened, refused,
// closed), 4002 HTTP Activity (a forwarded request) and 6003 API Activity (a model call through
// inference.local), plus OpenShell's one-line shorthand for people. Records never carry bodies
// (no prompt, no completion) or secret values, and query strings are redacted.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ward::audit {

enum class Action { kAllowed, kDenied };

// What the proxy knows about one decision (or one closed connection).
struct NetworkEvent {
  std::chrono::system_clock::time_point time;
  std::string sandbox_id;
  int pid = 0;         // the calling process, as the sandbox sees it
  std::string binary;  // its executable
  std::string host;    // as requested, normalised
  std::uint16_t port = 0;
  std::string address;  // the resolved address connected to ("" when refused before)
  std::string rule;     // network_policies key, "" when none matched
  Action action = Action::kDenied;
  // Allowed by policy, but the upstream could not be reached (resolution, connection, a broken
  // response): status "failure", and the reason says why.
  bool failed = false;
  std::string reason;
  bool closed = false;  // a close record: bytes and duration are set
  std::uint64_t bytes_in = 0, bytes_out = 0;
  std::chrono::milliseconds duration{0};
};

struct HttpEvent {
  NetworkEvent network;
  std::string method;
  std::string target;        // origin-form path and query, as requested; the query is redacted
  int status = 0;            // the status sent to the client
  bool intercepted = false;  // inside a TLS connection ward terminated
  std::string l7_rule;       // what decided at L7 ("access: read-only", "rules[1]", ...)
  bool audited_violation = false;        // L7 rules deny it; enforcement: audit let it through
  std::vector<std::string> credentials;  // variables whose real values ward put in (names only)
  std::size_t masked = 0;  // real values found in the response and masked (creds/mask.h)
  // From the request's head to the end of the response relayed to the client; 0 when the
  // request was not relayed (refused, or the upstream failed). Written as `duration` (ms, as
  // OCSF has it) and unmapped.duration_us.
  std::chrono::microseconds duration{0};
};

// One call to inference.local. `network` says who called (sandbox_id, pid, binary, time) and how
// it ended (action: kDenied when ward refused the request itself, 403/400/405/413; failed: no
// backend answered, with reason). dst_endpoint comes from `backend` (network.host and port, the
// name the sandbox asked for, are not used); network.address, when set, is the backend's IP.
struct ApiEvent {
  NetworkEvent network;
  std::string route;     // the route that answered (or was last tried), "" when none
  std::string backend;   // "scheme://host:port" of that route, "" when none
  std::string model;     // the model the backend was asked for (after the route's rewrite)
  std::string protocol;  // "openai_chat_completions", ... ("" when the path was refused)
  int status = 0;        // the status sent to the caller
  std::chrono::milliseconds latency{0};  // request received → response complete
  bool streaming = false;                // the response was an event stream
  std::optional<std::uint64_t> input_tokens, output_tokens;  // when the response reported usage
  std::vector<std::string> tried;  // routes that failed before, "name: why"
};

// "/a/b?token=x&y=1" -> "/a/b?<redacted>" ; no query -> unchanged.
std::string redact_query(const std::string& target);

nlohmann::json network_activity(const NetworkEvent& e);  // class 4001
nlohmann::json http_activity(const HttpEvent& e);        // class 4002
nlohmann::json api_activity(const ApiEvent& e);          // class 6003

// NET:OPEN [INFO] ALLOWED /usr/bin/curl(64) -> api.github.com:443 [policy:github engine:ward]
std::string shorthand(const NetworkEvent& e);
std::string shorthand(const HttpEvent& e);
// API:openai_chat_completions [INFO] ALLOWED /usr/bin/python3(42) -> http://127.0.0.1:8000 200
//   [route:local model:llama3 12ms stream in:10 out:20] [tried:a: connection refused]
std::string shorthand(const ApiEvent& e);

}  // namespace ward::audit
