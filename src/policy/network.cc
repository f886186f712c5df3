// network_policies: validated at load, enforced by the proxy.
#include <fmt/core.h>

#include <algorithm>
#include <unordered_set>

#include "base/strings.h"
#include "policy/reader.h"
#include "policy/values.h"

namespace ward::policy::detail {
namespace {

struct ProtocolName {
  std::string_view name;
  Protocol protocol;
};
constexpr ProtocolName kProtocols[] = {
    {"", Protocol::kL4},
    {"rest", Protocol::kRest},
    {"websocket", Protocol::kWebsocket},
    {"graphql", Protocol::kGraphql},
    {"json-rpc", Protocol::kJsonRpc},
    {"mcp", Protocol::kMcp},
    {"sql", Protocol::kSql},
};

void read_protocol(Sink& sink, const Field& f, Endpoint& out, bool& ok) {
  std::optional<std::string> p = read_string(sink, f, "a protocol");
  if (!p) {
    ok = false;
    return;
  }
  if (*p == "tcp") {
    sink.error(f,
               "protocol: tcp (transparent TCP) is not supported by ward: ward's only way out is "
               "its HTTP proxy; "
               "use an L4 endpoint (omit protocol) for clients that speak CONNECT");
    ok = false;
    return;
  }
  for (const ProtocolName& n : kProtocols) {
    if (n.name == *p) {
      out.protocol = n.protocol;
      return;
    }
  }
  sink.error(
      f, fmt::format(
             "unknown protocol {}; expected one of rest, websocket, graphql, json-rpc, mcp, sql, "
             "or none (L4)",
             quote(*p)));
  ok = false;
}

void read_host(Sink& sink, const Field& f, Endpoint& out, bool& ok) {
  std::optional<std::string> h = read_string(sink, f, "a host name");
  if (!h) {
    ok = false;
    return;
  }
  Result<std::string> host = parse_host_pattern(*h);
  if (!host) {
    sink.error(f, host.error().message);
    ok = false;
    return;
  }
  out.host = *host;
  // Not an error: the SSRF guard refuses these at connect time whatever the policy says, so the
  // endpoint is dead rather than dangerous. Say so, because it will never work.
  std::optional<std::string> reserved;
  if (is_ip_literal(*host)) {
    if (Result<Cidr> c = parse_cidr(*host)) reserved = reserved_range(*c);
  } else if (*host == "localhost" || host->ends_with(".localhost")) {
    reserved = "loopback (localhost)";
  }
  if (reserved) {
    sink.warning(
        f, fmt::format(
               "host {} is in {}, which ward never connects to; this endpoint cannot be reached",
               quote(*host), *reserved));
  }
}

void read_ports(Sink& sink, const Field& at, const Entry* port, const Entry* ports,
                std::vector<std::uint16_t>& out, bool& ok) {
  if (ports) {
    if (port) sink.warning(port->value, "both port and ports are given; ports wins");
    auto items = read_list(sink, ports->value, "a list of ports");
    if (!items) {
      ok = false;
      return;
    }
    if (items->empty()) {
      sink.error(ports->value, "ports is empty; an endpoint needs at least one port");
      ok = false;
    }
    std::vector<bool> seen(65536);
    for (const Field& item : *items) {
      auto n = read_uint(sink, item, 1, 65535);
      if (!n) {
        ok = false;
        continue;
      }
      auto p = static_cast<std::uint16_t>(*n);
      if (!seen[p]) out.push_back(p);
      seen[p] = true;
    }
    return;
  }
  if (port) {
    if (auto n = read_uint(sink, port->value, 1, 65535)) {
      out.push_back(static_cast<std::uint16_t>(*n));
    } else {
      ok = false;
    }
    return;
  }
  sink.error(Field{at.node, child_path(at.path, "port"), at.at},
             "missing port: an endpoint needs a port (port: 443) or a list of ports");
  ok = false;
}

void read_allowed_ips(Sink& sink, const Field& f, Endpoint& out, bool& ok) {
  auto items = read_list(sink, f, "a list of CIDRs such as 10.0.0.0/8");
  if (!items) {
    ok = false;
    return;
  }
  for (const Field& item : *items) {
    std::optional<std::string> text = read_string(sink, item, "a CIDR such as 10.0.0.0/8");
    if (!text) {
      ok = false;
      continue;
    }
    bool host_bits = false;
    Result<Cidr> c = parse_cidr(*text, &host_bits);
    if (!c) {
      sink.error(item, c.error().message);
      ok = false;
      continue;
    }
    if (std::optional<std::string> reserved = reserved_range(*c)) {
      sink.error(
          item,
          fmt::format("{} overlaps {}: ward never connects to loopback, link-local or unspecified "
                      "addresses, whatever the policy says",
                      quote(*text), *reserved));
      ok = false;
      continue;
    }
    if (host_bits) {
      sink.warning(
          item,
          fmt::format("{} has bits set below its /{} prefix; read as the network that holds it",
                      quote(*text), c->prefix));
    }
    out.allowed_ips.push_back(std::move(*c));
  }
}

}  // namespace

std::optional<Endpoint> read_endpoint(Sink& sink, const Field& f) {
  if (f.node.IsNull()) {
    sink.error(f, "expected an endpoint ({host: api.example.com, port: 443}), got nothing");
    return std::nullopt;
  }
  auto entries = read_map(
      sink, f, f.path,
      {"host", "port", "ports", "path", "protocol", "tls", "enforcement", "access", "rules",
       "deny_rules", "allowed_ips", "allow_encoded_slash", "request_body_credential_rewrite",
       "websocket_credential_rewrite", "credential_binding"});
  if (!entries) return std::nullopt;
  Endpoint ep;
  bool ok = true;
  if (const Entry* e = find(*entries, "host")) {
    read_host(sink, e->value, ep, ok);
  } else {
    sink.error(Field{f.node, child_path(f.path, "host"), f.at},
               "missing host: every endpoint names a host");
    ok = false;
  }
  read_ports(sink, f, find(*entries, "port"), find(*entries, "ports"), ep.ports, ok);
  if (const Entry* e = find(*entries, "path")) {
    if (auto p = read_path_glob(sink, e->value)) {
      ep.path = *p;
    } else {
      ok = false;
    }
  }
  if (const Entry* e = find(*entries, "protocol")) read_protocol(sink, e->value, ep, ok);
  if (const Entry* e = find(*entries, "tls")) {
    if (auto t = read_choice(sink, e->value, {"auto", "skip", "terminate", "passthrough"})) {
      ep.tls = *t == "skip" ? Tls::kSkip : Tls::kAuto;
      if (*t == "terminate" || *t == "passthrough") {
        sink.warning(
            e->value,
            fmt::format("tls: {} is deprecated and has no effect: TLS is terminated when L7 "
                        "rules or credentials need it (tls: auto); use tls: skip for an opaque "
                        "relay",
                        *t));
      }
    } else {
      ok = false;
    }
  }
  const Entry* enforcement = find(*entries, "enforcement");
  if (enforcement) {
    if (auto v = read_choice(sink, enforcement->value, {"enforce", "audit"})) {
      ep.enforcement = *v == "audit" ? Enforcement::kAudit : Enforcement::kEnforce;
    } else {
      ok = false;
    }
  }
  const Entry* access = find(*entries, "access");
  if (access) {
    if (auto v = read_choice(sink, access->value, {"read-only", "read-write", "full"})) {
      ep.access = *v == "read-only"    ? Access::kReadOnly
                  : *v == "read-write" ? Access::kReadWrite
                                       : Access::kFull;
    } else {
      ok = false;
    }
  }
  const Entry* rules = find(*entries, "rules");
  ep.rules = read_rules(sink, rules, true);
  ep.deny_rules = read_rules(sink, find(*entries, "deny_rules"), false);
  if (access && rules) {
    sink.error(
        access->value,
        "access and rules are exclusive: access is a preset of rules; give one or the other");
    ok = false;
  }
  if (const Entry* e = find(*entries, "allowed_ips")) read_allowed_ips(sink, e->value, ep, ok);
  auto flag = [&](std::string_view key, bool& out) {
    if (const Entry* e = find(*entries, key)) {
      if (auto b = read_bool(sink, e->value)) {
        out = *b;
      } else {
        ok = false;
      }
    }
  };
  flag("allow_encoded_slash", ep.allow_encoded_slash);
  flag("request_body_credential_rewrite", ep.request_body_credential_rewrite);
  flag("websocket_credential_rewrite", ep.websocket_credential_rewrite);
  if (const Entry* e = find(*entries, "credential_binding")) {
    auto binding = read_map(sink, e->value, e->value.path, {"provider"});
    const Entry* provider = binding ? find(*binding, "provider") : nullptr;
    if (binding && !provider) {
      sink.error(Field{e->value.node, child_path(e->value.path, "provider"), e->value.at},
                 "missing provider: credential_binding names the provider whose credentials go to "
                 "this endpoint");
      ok = false;
    } else if (provider) {
      std::optional<std::string> name = read_string(sink, provider->value, "a provider name");
      if (name && !name->empty() && !has_control(*name)) {
        ep.credential_provider = *name;
      } else {
        if (name) sink.error(provider->value, "provider must be a non-empty name");
        ok = false;
      }
    } else {
      ok = false;
    }
  }

  bool l7_protocol = ep.protocol != Protocol::kL4 && ep.protocol != Protocol::kSql;
  bool l7 = l7_protocol || access || rules || !ep.deny_rules.empty();
  if (l7 && !enforcement && ep.protocol != Protocol::kSql) {
    sink.warning(Field{f.node, child_path(f.path, "enforcement"), f.at},
                 "enforcement is not set: OpenShell defaults to audit here (L7 violations only "
                 "logged); ward "
                 "enforces. Write enforcement: enforce (or audit) to say which");
  }
  if (const Entry* e = find(*entries, "tls");
      e && ep.tls == Tls::kSkip && (l7 || !ep.credential_provider.empty())) {
    sink.warning(e->value,
                 "tls: skip relays this endpoint's bytes unread: its L7 settings (protocol, "
                 "access, rules, deny_rules) are never enforced and no credential is swapped in; "
                 "drop tls: skip to have them apply");
  }
  if (ep.protocol == Protocol::kSql && ep.enforcement == Enforcement::kEnforce) {
    sink.warning(enforcement->value,
                 "protocol: sql is audit only; enforcement: enforce has no effect on it");
  }
  if (!ok) return std::nullopt;
  return ep;
}

namespace {

std::optional<std::string> read_binary(Sink& sink, const Field& item) {
  Field f = item;
  // Both `- {path: /usr/bin/git}` (OpenShell's form) and `- /usr/bin/git`.
  if (item.node.IsMap()) {
    auto entries = read_map(sink, item, item.path, {"path"});
    if (!entries) return std::nullopt;
    const Entry* path = find(*entries, "path");
    if (!path) {
      sink.error(Field{item.node, child_path(item.path, "path"), item.at},
                 "missing path: a binary is {path: /usr/bin/curl} (\"/**\" for any)");
      return std::nullopt;
    }
    f = path->value;
  }
  std::optional<std::string> p = read_string(sink, f, "a binary path glob such as /usr/bin/curl");
  if (!p) return std::nullopt;
  if (p->empty() || (*p)[0] != '/') {
    sink.error(f,
               fmt::format("binary path {} must be absolute (\"/**\" for any binary)", quote(*p)));
    return std::nullopt;
  }
  if (has_control(*p) || p->size() > 4096) {
    sink.error(
        f, fmt::format("binary path {} contains a control character or is too long", quote(*p)));
    return std::nullopt;
  }
  // Matched against /proc/PID/exe, which the kernel gives without `..` or `//`.
  std::optional<std::string> norm = normalize_absolute_path(*p);
  if (!norm) {
    sink.error(
        f, fmt::format("binary path {} has a '..' component, which an executable's path never has",
                       quote(*p)));
    return std::nullopt;
  }
  return norm;
}

void read_rule(Sink& sink, const Entry& entry, std::vector<NetworkRule>& out) {
  const Field& f = entry.value;
  if (entry.key.empty() || has_control(entry.key)) {
    sink.error(Field{f.node, f.path, entry.key_at}, "a rule's key must be a non-empty name");
    return;
  }
  auto entries = read_map(sink, f, f.path, {"name", "endpoints", "binaries"});
  if (!entries) return;
  NetworkRule rule;
  rule.key = entry.key;
  rule.name = entry.key;
  bool ok = true;
  if (const Entry* e = find(*entries, "name")) {
    if (auto n = read_string(sink, e->value, "a display name")) {
      if (!n->empty()) rule.name = *n;
    } else {
      ok = false;
    }
  }
  const Entry* endpoints = find(*entries, "endpoints");
  if (endpoints) {
    if (auto items = read_list(sink, endpoints->value, "a list of endpoints")) {
      for (const Field& item : *items) {
        if (auto ep = read_endpoint(sink, item)) {
          rule.endpoints.push_back(std::move(*ep));
        } else {
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (ok && rule.endpoints.empty()) {
    sink.warning(
        Field{f.node, child_path(f.path, "endpoints"), endpoints ? endpoints->value.at : f.at},
        "no endpoints: this rule allows nothing");
  }
  const Entry* binaries = find(*entries, "binaries");
  if (binaries) {
    if (auto items =
            read_list(sink, binaries->value, "a list of binaries ({path: /usr/bin/curl})")) {
      std::unordered_set<std::string> seen;
      for (const Field& item : *items) {
        if (auto b = read_binary(sink, item)) {
          if (seen.insert(*b).second) rule.binaries.push_back(*b);
        } else {
          ok = false;
        }
      }
    } else {
      ok = false;
    }
  }
  if (ok && rule.binaries.empty()) {
    sink.warning(
        Field{f.node, child_path(f.path, "binaries"), binaries ? binaries->value.at : f.at},
        "no binaries: no process may use this rule; write binaries: [{path: \"/**\"}] for any");
  }
  if (ok) out.push_back(std::move(rule));
}

}  // namespace

void read_network(Sink& sink, const Field& f, std::vector<NetworkRule>& out) {
  auto entries = read_map(sink, f, "network_policies", {});
  if (!entries) return;
  for (const Entry& e : *entries) read_rule(sink, e, out);
}

}  // namespace ward::policy::detail
