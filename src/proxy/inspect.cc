#include "proxy/inspect.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <string_view>

#include "policy/l7.h"

namespace ward::proxy {
namespace {

namespace http = boost::beast::http;

Inspection refusal(int status, std::string error, std::string detail) {
  Inspection in;
  in.status = status;
  in.reason = detail;
  in.body = {{"error", std::move(error)}, {"detail", std::move(detail)}};
  return in;
}

// A placeholder that may not go here, or one that is not this sandbox's: nothing is forwarded.
bool refused_credential(Inspection& in, const creds::Rewrite& r, std::string_view host,
                        std::uint16_t port) {
  using Status = creds::Rewrite::Status;
  if (r.status == Status::kUnchanged) return false;
  if (r.status == Status::kRewritten) {
    if (std::find(in.credentials.begin(), in.credentials.end(), r.variable) == in.credentials.end())
      in.credentials.push_back(r.variable);
    return false;
  }
  const bool mismatch = r.status == Status::kMismatch;
  in.status = 403;
  in.reason = r.reason;
  std::string error = mismatch ? "credential_endpoint_mismatch" : "credential_unresolved";
  if (mismatch && in.needs_tls) {
    error = "credential_requires_tls";
    in.reason = "credential_requires_tls: " + r.variable + " (provider " + r.provider +
                ") is only put into HTTPS requests ward intercepts; this one is plain HTTP";
  }
  in.body = {{"error", std::move(error)}, {"host", host}, {"port", port}, {"detail", in.reason}};
  if (!r.variable.empty()) in.body["variable"] = r.variable;
  return true;
}

// `raw` (a path that passed normalisation keeping encoded slashes) with every %2F, %5C and '\'
// made a '/', normalised: where a server that decodes them routes it. nullopt when it holds none;
// "" when the result is no path.
std::optional<std::string> path_with_slashes_decoded(std::string_view raw) {
  std::string decoded;
  bool any = false;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::string_view escape = raw.substr(i + 1, 2);
    if (raw[i] == '\\') {
      decoded += '/';
      any = true;
    } else if (raw[i] == '%' &&
               (escape == "2F" || escape == "2f" || escape == "5C" || escape == "5c")) {
      decoded += '/';
      any = true;
      i += 2;
    } else {
      decoded += raw[i];
    }
  }
  if (!any) return std::nullopt;
  auto normalised = policy::normalize_request_path(decoded, false);
  return normalised ? std::move(normalised->match) : std::string();
}

// Headers by which frameworks let a client change the method a request is routed as (Rails,
// Laravel, Express's method-override, Google's APIs, ASP.NET) or its path (Symfony, IIS's URL
// Rewrite, behind a front proxy that sets them). Where L7 rules apply, what the server will do is
// what must be decided.
constexpr std::string_view kMethodOverrides[] = {"X-HTTP-Method-Override", "X-HTTP-Method",
                                                 "X-Method-Override"};
constexpr std::string_view kUrlOverrides[] = {"X-Original-URL",        "X-Rewrite-URL",
                                              "X-Original-URI",        "X-Forwarded-Uri",
                                              "X-Envoy-Original-Path", "X-Forwarded-Prefix"};
// Headers by which a server behind a front proxy takes another host than Host (Django's
// USE_X_FORWARDED_HOST, Rails, Symfony's trusted proxies, Express's trust proxy, Forwarded:
// host=): set by front proxies, never needed from a client, and a way to another virtual host.
constexpr std::string_view kHostOverrides[] = {"X-Forwarded-Host", "X-Host", "X-HTTP-Host-Override",
                                               "X-Original-Host", "X-Forwarded-Server"};

// The name of a header in `req` that names another host ("" when none).
std::string_view host_override(const http::request_header<>& req) {
  for (std::string_view name : kHostOverrides)
    if (req.count(name)) return name;
  for (auto [it, end] = req.equal_range(http::field::forwarded); it != end; ++it) {
    std::string value(it->value());
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (value.find("host=") != std::string::npos) return "Forwarded";
  }
  return {};
}

// A request that passed the rules as sent, decided again as each method override would have the
// server treat it: the refusal when one is denied (or is no method), else nullopt. A URL override
// is refused outright: no client needs one (front proxies set them), and deciding it would mean a
// second path, query and endpoint choice for a server-specific header.
std::optional<Inspection> decide_overrides(Inspection& in, const policy::Endpoint& e,
                                           const http::request_header<>& req, std::string_view path,
                                           const policy::QueryParams* params,
                                           std::string_view host) {
  auto refused_override = [&](std::string_view name, std::string_view what) {
    Inspection refused = refusal(403, "policy_denied",
                                 std::string(name) + " could make the server take the request " +
                                     std::string(what) + "; it is not passed where L7 rules apply");
    refused.rule = in.rule;
    return refused;
  };
  for (std::string_view name : kUrlOverrides)
    if (req.count(name)) return refused_override(name, "for another path than the rules saw");
  if (std::string_view name = host_override(req); !name.empty())
    return refused_override(name, "for another host than the one decided");
  for (std::string_view name : kMethodOverrides) {
    for (auto [it, end] = req.equal_range(name); it != end; ++it) {
      std::string method(it->value());
      // Frameworks upper-case the value before they route by it.
      std::transform(method.begin(), method.end(), method.begin(),
                     [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
      if (method.empty() || !std::all_of(method.begin(), method.end(), [](unsigned char c) {
            return std::isalnum(c) ||
                   std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
          })) {
        Inspection refused = refusal(400, "bad_request", std::string(name) + " is not one method");
        refused.rule = in.rule;
        return refused;
      }
      policy::L7Verdict v = policy::evaluate_l7(e, {method, path, params});
      if (!v.allowed) {
        Inspection refused;
        refused.status = 403;
        refused.rule = in.rule;
        refused.l7_rule = v.rule;
        refused.reason = std::string(name) + ": " + method + ": " + v.detail;
        refused.body = {{"error", "policy_denied"},
                        {"method", method},
                        {"path", path},
                        {"host", host},
                        {"rule", in.rule},
                        {"l7_rule", v.rule},
                        {"detail", refused.reason}};
        return refused;
      }
      if (v.violation_audited) {
        in.audited_violation = true;
        in.reason = std::string(name) + ": " + method + ": " + v.detail;
      }
    }
  }
  return std::nullopt;
}

}  // namespace

// Whether a provider's credentials may go into the request `in` describes (its endpoint and path
// set). Over plain HTTP never: a provider bound here is noted in `in.needs_tls` and answered as
// not bound, so that the vault substitutes nothing and the refusal can say why.
creds::BoundHere bound_for(Inspection& in, const creds::Vault& vault, std::string_view host,
                           std::uint16_t port) {
  return [&in, &vault, host, port](std::string_view provider) {
    const policy::Endpoint& e = *in.endpoint;
    bool bound = e.credential_provider == provider || vault.bound(provider, host, port, in.path);
    if (bound && in.slash_path) {
      // The endpoint was chosen by `in.path`; a server may route the request by the other.
      const std::string& other = *in.slash_path;
      bound = !other.empty() && ((e.credential_provider == provider &&
                                  (e.path.empty() || policy::path_glob_matches(e.path, other))) ||
                                 vault.bound(provider, host, port, other));
    }
    if (bound && in.transport != Transport::kVerifiedTls) {
      in.needs_tls = true;
      return false;
    }
    return bound;
  };
}

bool must_inspect(const std::vector<policy::Match>& matches, const creds::Vault* vault,
                  std::string_view host, std::uint16_t port) {
  bool l7 = false;
  for (const auto& m : matches) {
    if (m.endpoint->tls == policy::Tls::kSkip) return false;
    l7 = l7 || policy::needs_l7(*m.endpoint);
  }
  return l7 || (vault && vault->bound_anywhere(host, port));
}

Inspection inspect(const std::vector<policy::Match>& matches, const creds::Vault* vault,
                   std::string_view host, std::uint16_t port, http::request_header<>& req,
                   Transport transport) {
  const std::string_view target = req.target();
  // A fragment is never part of a request (RFC 9112); servers drop it, so a query matched with it
  // ("?force=true#" is not force=true) would be read differently upstream.
  if (target.find('#') != std::string_view::npos)
    return refusal(400, "bad_request", "a request target has no fragment ('#')");
  const std::size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q + 1);

  // Where no endpoint has L7 rules (a plain-HTTP request to an L4 endpoint, read only for the
  // credentials in it), the first match decides.
  const bool l7 = std::any_of(matches.begin(), matches.end(),
                              [](const auto& m) { return policy::needs_l7(*m.endpoint); });
  // Only where a credential may go: elsewhere a placeholder is refused whatever the path, and
  // the request keeps the path it came with (S3 keys, URLs inside paths).
  const bool credentials = vault && !vault->empty() && vault->bound_anywhere(host, port);
  if (matches.empty()) return refusal(403, "policy_denied", "no endpoint matches");
  policy::RequestPath path{std::string(raw_path), std::string(raw_path)};
  const policy::Match* chosen = &matches.front();
  policy::QueryParams params;
  if (l7 || credentials) {
    // The path is normalised before anything is decided on it: the endpoint is chosen by path,
    // and a credential bound to a path must not follow "/team/%2e%2e/other" elsewhere. With L7
    // rules, as leniently as the most lenient candidate allows, the chosen endpoint's own setting
    // applied after; without, an encoded slash stays in its segment (GitLab's project ids).
    const bool any_encoded_slash =
        !l7 || std::any_of(matches.begin(), matches.end(),
                           [](const auto& m) { return m.endpoint->allow_encoded_slash; });
    auto normalised = policy::normalize_request_path(raw_path, any_encoded_slash);
    if (!normalised)
      return refusal(400, "bad_request", "request path: " + normalised.error().message);
    if (l7) {
      chosen = policy::select_for_path(matches, normalised->match);
      if (!chosen)
        return refusal(403, "policy_denied",
                       "no endpoint for " + std::string(host) + ":" + std::to_string(port) +
                           " covers the path " + normalised->match);
      if (any_encoded_slash && !chosen->endpoint->allow_encoded_slash) {
        normalised = policy::normalize_request_path(raw_path, false);
        if (!normalised)
          return refusal(400, "bad_request", "request path: " + normalised.error().message);
      }
    }
    path = std::move(*normalised);
    if (l7 && !query.empty()) {
      auto parsed = policy::parse_query(query);
      if (!parsed) return refusal(400, "bad_request", "query: " + parsed.error().message);
      params = std::move(*parsed);
    }
  }
  const policy::Endpoint& e = *chosen->endpoint;

  Inspection in;
  in.rule = *chosen->rule;
  in.endpoint = &e;
  in.path = path.match;
  in.transport = transport;
  if (credentials) in.slash_path = path_with_slashes_decoded(raw_path);
  const std::string_view method = req.method_string();
  if (policy::needs_l7(e)) {
    policy::L7Verdict v =
        policy::evaluate_l7(e, {method, path.match, query.empty() ? nullptr : &params});
    in.l7_rule = v.rule;
    in.audited_violation = v.violation_audited;
    if (!v.allowed) {
      in.status = 403;
      in.reason = v.detail;
      in.body = {
          {"error", "policy_denied"}, {"method", method},  {"path", path.match}, {"host", host},
          {"rule", in.rule},          {"l7_rule", v.rule}, {"detail", v.detail}};
      return in;
    }
    if (v.violation_audited) in.reason = v.detail;
    if (auto overridden =
            decide_overrides(in, e, req, path.match, query.empty() ? nullptr : &params, host))
      return std::move(*overridden);
  }

  std::string new_target = path.wire;
  if (q != std::string_view::npos) new_target.append(target.substr(q));
  if (vault && !vault->empty()) {
    const creds::BoundHere bound_here = bound_for(in, *vault, host, port);
    if (refused_credential(in, vault->rewrite(new_target, creds::Context::kTarget, bound_here),
                           host, port))
      return in;
    // Fields cannot be changed in place: when one changes, all are put back in their order.
    std::vector<std::pair<std::string, std::string>> fields;
    bool changed = false;
    for (const auto& f : req) {
      std::string value(f.value());
      auto r = vault->rewrite_header(f.name_string(), value, bound_here);
      if (refused_credential(in, r, host, port)) return in;
      changed = changed || r.status == creds::Rewrite::Status::kRewritten;
      fields.emplace_back(std::string(f.name_string()), std::move(value));
    }
    if (changed) {
      req.clear();
      for (const auto& [name, value] : fields) req.insert(name, value);
    }
    in.rewrite_body = e.request_body_credential_rewrite;
  }
  req.target(new_target);
  return in;
}

void rewrite_body(Inspection& in, const creds::Vault& vault, std::string_view host,
                  std::uint16_t port, std::string_view content_type, std::string& body) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  creds::Context context;
  if (type == "application/json" || type.ends_with("+json"))
    context = creds::Context::kJson;
  else if (type == "application/x-www-form-urlencoded")
    context = creds::Context::kForm;
  else if (type.starts_with("text/"))
    context = creds::Context::kText;
  else
    return;  // other bodies pass unread
  refused_credential(in, vault.rewrite(body, context, bound_for(in, vault, host, port)), host,
                     port);
}

}  // namespace ward::proxy
