// What the proxy does to one inference.local request, as pure functions: which protocol it speaks
// (classify), what reaches the backend (prepare_request, rewrite_model), and what the response
// says about token usage (UsageScanner, usage.h).
//
// Choices, and why:
// - Paths are matched exactly as sent (no decoding, no trailing slash): the official SDKs send
//   exactly these, and anything else is not an inference call. /v1/models/{id} takes any id whose
//   decoded segments are not "." or ".." (ids such as "org/model" keep their slash).
// - GET /v1/models is the Anthropic flavour when the request carries anthropic-version or
//   x-api-key (what Anthropic's SDK always sends), else the OpenAI one.
// - Headers are an allowlist, not a blocklist: whatever the caller adds (cookies, tracing ids,
//   proxy credentials, a placeholder key) stays inside. What passes: content-type, accept,
//   user-agent, idempotency-key, x-stainless-* (the official SDKs' retry/timeout/platform
//   headers); for OpenAI protocols openai-organization, openai-project, openai-beta; for
//   Anthropic protocols anthropic-version, anthropic-beta. Framing (Content-Length,
//   Transfer-Encoding) stays: the proxy sets it for the body it sends. Expect is dropped (the proxy
//   answers 100-continue itself), so are Connection and the other hop-by-hop fields.
// - Accept-Encoding is dropped so that the backend answers uncompressed and usage can be read.
// - The key goes in Authorization: Bearer for OpenAI protocols and x-api-key for Anthropic ones
//   (a route's provider_type overrides: anthropic → x-api-key, others → Bearer); a route without
//   a key sends neither.
// - anthropic-version: 2023-06-01 is added to an Anthropic request that has none (the API
//   refuses requests without it; the SDK always sends one).
// - The backend's target joins the endpoint's path and the request's, OpenShell's way: when the
//   endpoint's path ends in /v1, the request's /v1 is not repeated (endpoint .../v1 +
//   /v1/chat/completions → .../v1/chat/completions); otherwise the request's path is appended
//   whole (endpoint https://api.anthropic.com + /v1/messages → /v1/messages). The query is kept
//   (the Anthropic SDK sends ?beta=true).
#pragma once

#include <boost/beast/http/message.hpp>
#include <string>
#include <string_view>
#include <tl/expected.hpp>

#include "base/result.h"
#include "inference/routes.h"
#include "inference/usage.h"

namespace ward::inference {

namespace http = boost::beast::http;

// Why inference.local does not serve a request.
struct Refusal {
  int status = 403;    // 403: not an inference path; 405: a known path with another method
  std::string reason;  // for the response body and the audit record (never echoes the request)
  std::string allow;   // 405: the Allow header's value
};

// `path` is the target without its query, as received.
tl::expected<Protocol, Refusal> classify(std::string_view method, std::string_view path,
                                         bool anthropic_style);
// The request carries anthropic-version or x-api-key.
bool anthropic_style(const http::request_header<>& req);
// classify(method, path of the target, anthropic_style(req)).
tl::expected<Protocol, Refusal> classify(const http::request_header<>& req);

// The backend's origin-form target for a request target ("/v1/chat/completions?x=1").
std::string backend_target(const Route& route, std::string_view target);

// Rewrites a request classify() accepted as `p` for `route`: header allowlist, the key, the
// anthropic-version default, the target and Host. The body is not touched (rewrite_model).
void prepare_request(http::request_header<>& req, const Route& route, Protocol p);

// What a POST body says, after the route's model was put in.
struct RequestBody {
  std::string text;     // the body to send: unchanged when the route keeps the caller's model
  std::string model;    // the body's "model" after the rewrite, "" when it has none
  bool stream = false;  // "stream": true
};

// The body must be a JSON object (else an error: the proxy answers 400); its "model" is set to
// the route's when the route names one, keeping the order of the other members. Messages never
// quote the body. Nesting deeper than 256 levels is refused.
Result<RequestBody> rewrite_body(std::string_view body, const Route& route);
Result<std::string> rewrite_model(std::string_view body, const Route& route);  // .text of the above
bool wants_stream(std::string_view body);  // a JSON object with "stream": true

}  // namespace ward::inference
