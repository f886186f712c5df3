// Credentials that never enter the sandbox: each secret variable holds a per-sandbox placeholder
// inside; the egress proxy (outside the sandbox, TLS terminated) swaps the real value in just
// before forwarding, and only towards the endpoints the credential's provider is bound to.
//
// Placeholder form: "wardcred-" NAME "-" 32 lower-case hex digits, e.g.
//   wardcred-GITHUB_TOKEN-3f0c9a1e5b7d2c4e6f8a0b1c2d3e4f5a
// 128 bits from getrandom(2), one per variable per Vault. Only [A-Za-z0-9_-], so it passes through
// headers, URLs (no percent-encoding needed), JSON strings and Basic auth unchanged.
//
// Recognition, and why it fails closed: the scanner looks for the prefix "wardcred-" in any case;
// from there the maximal run of [A-Za-z0-9_-] is the candidate. A candidate that is exactly one
// of this vault's placeholders is substituted; any other (wrong or truncated random part, extra
// characters, changed case, another sandbox's) is kUnresolved. So is a prefix that only appears
// after percent- or JSON-unescaping (an escaped placeholder the upstream would decode): the proxy
// cannot substitute it and must not forward it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "creds/profile.h"

namespace ward::creds {

inline constexpr std::string_view kPlaceholderPrefix = "wardcred-";

// Where a text sits, which decides how the real value is encoded into it.
enum class Context {
  kHeader,  // a header value: raw
  kTarget,  // a request target (path + query, percent-encoded): percent-encoded
  kJson,    // a JSON document (the placeholder inside a string): JSON string escaping
  kForm,    // application/x-www-form-urlencoded: percent-encoded
  kText,    // websocket text and other raw text: raw
};

struct Rewrite {
  enum class Status {
    kUnchanged,  // no placeholder: forward as is
    kRewritten,  // every placeholder substituted: forward the rewritten text
    kMismatch,   // a placeholder whose provider is not bound here: 403 credential_endpoint_mismatch
    kUnresolved,  // something placeholder-like that cannot be substituted: refuse (fail closed)
  };
  Status status = Status::kUnchanged;
  std::string variable;  // the variables concerned, comma-separated ("" for kUnresolved)
  std::string provider;  // their providers, comma-separated
  std::string reason;    // for the audit record and the 403 body; never holds a secret

  bool refused() const { return status == Status::kMismatch || status == Status::kUnresolved; }
};

// Whether a provider's credentials may go to the request at hand (see Vault::bound_at).
using BoundHere = std::function<bool(std::string_view provider)>;

class Vault {
 public:
  // What is needed of `providers` is copied. `host_env` is ward's own
  // environment ("NAME=value"; the first entry of a name wins). For each credential, every one of
  // its variables that is set (and not empty) gets a placeholder. Errors: a required credential
  // with none of its variables set (names them), a value holding CR, LF or NUL (names the
  // variable, never the value), two different profiles with one id, getrandom(2) failing.
  // `reuse`: "NAME=placeholder" entries of an earlier vault's environment() — a variable named
  // there keeps its placeholder (a gateway re-attaching to a sandbox that already holds them).
  static Result<Vault> create(std::vector<const Profile*> providers,
                              const std::vector<std::string>& host_env,
                              const std::vector<std::string>& reuse = {});

  Vault(Vault&&) noexcept;
  Vault& operator=(Vault&&) noexcept;
  ~Vault();  // the secrets are wiped

  // "NAME=placeholder" for the sandbox's environment, in profile order.
  const std::vector<std::string>& environment() const;
  // The placeholder given to `variable`, if it has one.
  std::optional<std::string_view> placeholder(std::string_view variable) const;

  // Binds `provider` to more endpoints (the policy's credential_binding), beside its profile's.
  // Not thread-safe: call before the vault is shared with the proxy.
  Result<void> add_binding(std::string_view provider, std::string_view host_pattern,
                           std::vector<std::uint16_t> ports);
  // True when a profile endpoint or a binding of `provider` matches. `host` normalised
  // (lower-case, no trailing dot); `path` is the request target's path (a query is ignored).
  bool bound(std::string_view provider, std::string_view host, std::uint16_t port,
             std::string_view path) const;
  // Whether any provider's credentials may go to (host, port), whatever the path: the proxy must
  // then read the requests there.
  bool bound_anywhere(std::string_view host, std::uint16_t port) const;
  // No variable has a placeholder: nothing to substitute.
  bool empty() const;
  // bound() for one request, as the rewriters take it. Keeps a pointer to this vault.
  BoundHere bound_at(std::string host, std::uint16_t port, std::string path) const;

  // Substitutes every placeholder in `text`, encoded for `context`. On kUnchanged, kMismatch and
  // kUnresolved `text` is left exactly as it was (so never holds a secret it did not hold).
  Rewrite rewrite(std::string& text, Context context, const BoundHere& bound_here) const;
  // One header field. `Authorization: Basic b64(user:pass)` is decoded, rewritten and re-encoded;
  // every other value (Bearer included) is rewritten as is.
  Rewrite rewrite_header(std::string_view name, std::string& value,
                         const BoundHere& bound_here) const;

 private:
  friend class ResponseMask;
  // ResponseMask::spellings_of() of the real values whose providers are bound at (host, port),
  // whatever the path; they point into the vault.
  std::vector<const std::string*> spellings_bound_at(std::string_view host,
                                                     std::uint16_t port) const;

  struct State;
  explicit Vault(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace ward::creds
