// Inference routes: which backend serves https://inference.local, with which key and model.
//
// The format is OpenShell's routes file (examples/local-inference/routes.yaml):
//
//   routes:
//     - name: local                         # required; names need not be unique
//       endpoint: http://localhost:1234/v1  # required: http(s)://host[:port][/base/path]
//       model: local-model                  # optional: absent or "" leaves the caller's model
//       protocols: [openai_chat_completions]  # required, at least one
//       api_key: lm-studio                  # or api_key_env: VAR; neither: no key is sent
//       provider_type: openai               # optional (OpenShell): fixes the key header
//
// Routes are tried in file order (fallback when a backend fails). The endpoint may not carry a
// user name, password, query or fragment (a key belongs in api_key, where no log shows it).
// OpenShell's protocol names are accepted case-insensitively, duplicates are merged, and its
// `model_discovery` stands for openai_models and anthropic_models.
//
// No error message ever contains a key: not the inline value, not the variable's value.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ward::inference {

enum class Protocol {
  kOpenAiChatCompletions,  // POST /v1/chat/completions
  kOpenAiCompletions,      // POST /v1/completions
  kOpenAiResponses,        // POST /v1/responses
  kOpenAiEmbeddings,       // POST /v1/embeddings
  kOpenAiModels,           // GET /v1/models, /v1/models/{id}
  kAnthropicMessages,      // POST /v1/messages
  kAnthropicModels,        // GET /v1/models, /v1/models/{id} with anthropic-version or x-api-key
};

// "openai_chat_completions", ... (the routes file's names).
std::string_view protocol_name(Protocol p);
// Case-insensitive; nullopt for an unknown name (model_discovery included: it is two protocols).
std::optional<Protocol> parse_protocol(std::string_view name);
bool is_anthropic(Protocol p);  // kAnthropicMessages, kAnthropicModels

// Which header carries the backend's key.
enum class KeyHeader {
  kByProtocol,  // Authorization: Bearer for OpenAI requests, x-api-key for Anthropic ones
  kBearer,      // provider_type openai, nvidia, bitdeer-ai: Bearer for every request
  kXApiKey,     // provider_type anthropic: x-api-key for every request
};

struct Route {
  std::string name;
  std::string endpoint;    // as written
  std::string scheme;      // "http" or "https"
  std::string host;        // lower-case, no trailing dot; IPv4/IPv6 literals canonical, no []
  std::uint16_t port = 0;  // the URL's, else 80 / 443
  std::string base_path;   // the endpoint's path without trailing slash: "", "/v1", "/api/v1"
  std::string model;       // "" leaves the caller's
  std::vector<Protocol> protocols;  // as listed (merged duplicates); see route_serves
  std::string api_key;              // the resolved secret ("" when the backend takes none)
  std::string api_key_env;          // the variable it came from, "" when inline or none
  std::string provider_type;        // lower-case, "" when absent
  KeyHeader key_header = KeyHeader::kByProtocol;

  // The Host header sent upstream: "host" or "host:port" when the port is not the scheme's
  // default; IPv6 in brackets.
  std::string authority() const;
  // "scheme://host:port", for audit records and messages (never the key).
  std::string backend() const;
};

// Whether `route` answers `p`: listed, or implied (any openai_* implies openai_models;
// anthropic_messages implies anthropic_models).
bool route_serves(const Route& route, Protocol p);

// The routes serving `p`, in file order (the fallback order).
std::vector<const Route*> routes_for(const std::vector<Route>& routes, Protocol p);

// `env` holds "NAME=value" entries (api_key_env is looked up there, first match wins). Errors
// carry every problem found, one per line, each "file:line:column: error: key: message".
Result<std::vector<Route>> load_routes_string(std::string_view text, std::string_view file,
                                              const std::vector<std::string>& env);
Result<std::vector<Route>> load_routes_file(const std::string& path,
                                            const std::vector<std::string>& env);

}  // namespace ward::inference
