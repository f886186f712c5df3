// What the proxy does to one HTTP request it can read — a plain-HTTP forward request, or a request
// inside a TLS connection ward terminated — before it goes upstream: pick the endpoint by path,
// apply its L7 rules (policy/l7.h), and put real credentials in place of their placeholders
// (creds/vault.h), only towards the endpoints they are bound to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <nlohmann/json.hpp>

#include "creds/vault.h"
#include "policy/matcher.h"

namespace ward::proxy {

// How a request travels on from ward. A real secret goes only over ward's own TLS to an upstream
// it verified: a plain-HTTP request is read by anyone on the path, and answered by whoever claims
// the host's address, so it may carry no credential however the provider is bound.
enum class Transport { kPlain, kVerifiedTls };

struct Inspection {
  int status = 0;       // 0: forward it; else answer with this status and `body`
  nlohmann::json body;  // the error answer
  std::string reason;   // for the audit record (never a secret)
  std::string rule;     // the network_policies key of the endpoint chosen
  std::string l7_rule;  // what decided at L7
  bool audited_violation = false;
  std::vector<std::string> credentials;  // variables whose real values were put in
  const policy::Endpoint* endpoint = nullptr;
  std::string path;  // the normalised path the rules saw
  // When the path holds an encoded slash or backslash (%2F, %5C, '\'), which `path` keeps inside
  // its segment: the path as a server that decodes them into '/' routes it ("" when that cannot
  // be normalised). A credential bound to a path must be bound under both.
  std::optional<std::string> slash_path;
  bool rewrite_body = false;  // the endpoint opted in: the body needs a look too
  Transport transport = Transport::kPlain;
  // A placeholder bound here was found in a plain-HTTP request (refused: credential_requires_tls).
  bool needs_tls = false;
};

// Whether requests to (host, port) must be read: an endpoint that matched needs L7, or a
// provider's credentials are bound there. False also when an endpoint says `tls: skip`.
bool must_inspect(const std::vector<policy::Match>& matches, const creds::Vault* vault,
                  std::string_view host, std::uint16_t port);

// Decides on `req` (its target in origin form) and, when it passes, rewrites its target and
// headers: the path as normalised (what the rules saw), placeholders replaced. Over
// Transport::kPlain a placeholder is never replaced: one bound here is refused with 403
// credential_requires_tls, one bound elsewhere with credential_endpoint_mismatch.
Inspection inspect(const std::vector<policy::Match>& matches, const creds::Vault* vault,
                   std::string_view host, std::uint16_t port,
                   boost::beast::http::request_header<>& req, Transport transport);

// Whether a provider's credentials may go into the request `in` describes (inspect() passed it),
// for the body and websocket frame rewriters. Refers to `in`, `vault` and `host`: they must
// outlive it.
creds::BoundHere bound_for(Inspection& in, const creds::Vault& vault, std::string_view host,
                           std::uint16_t port);

// The body of a request whose endpoint opted in to body rewriting (JSON, form or text, at most
// kMaxRewrittenBody bytes); `content_type` picks the encoding. Sets status on refusal (over
// Transport::kPlain, for any placeholder bound here).
inline constexpr std::size_t kMaxRewrittenBody = 256 * 1024;
void rewrite_body(Inspection& in, const creds::Vault& vault, std::string_view host,
                  std::uint16_t port, std::string_view content_type, std::string& body);

}  // namespace ward::proxy
