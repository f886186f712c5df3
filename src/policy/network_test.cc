// network_policies: rules, endpoints, hosts, L7 rules, allowed_ips, binaries.
#include <gtest/gtest.h>

#include <string>

#include "policy/policy.h"
#include "policy/test_util.h"

namespace ward::policy {
namespace {

using namespace ward::policy::testing;

// Lines 1-5; the endpoints written after it start on line 6, a flow-style endpoint
// "      - {host: ..." has its host value at column 16.
const std::string kHead =
    "version: 1\n"
    "network_policies:\n"
    "  r:\n"
    "    binaries: [/usr/bin/curl]\n"
    "    endpoints:\n";

LoadResult endpoint(const std::string& flow) {
  return load(kHead + "      - " + flow + "\n");
}

TEST(Network, FullEndpoint) {
  LoadResult r =
      load(kHead +
           "      - host: API.Example.com\n"
           "        ports: [443, 8443, 443]\n"
           "        path: /v1/**\n"
           "        protocol: rest\n"
           "        tls: skip\n"
           "        enforcement: audit\n"
           "        rules:\n"
           "          - allow: {method: get, path: \"/repos/*/issues\", query: {state: open}}\n"
           "          - allow:\n"
           "              method: \"*\"\n"
           "              path: \"**\"\n"
           "              query: {tag: {any: [\"v1*\", beta]}}\n"
           "        deny_rules:\n"
           "          - {method: DELETE}\n"
           "          - {path: /admin/**}\n"
           "        allowed_ips: [10.0.0.0/8, 192.168.1.7, \"fd00::/8\"]\n"
           "        allow_encoded_slash: true\n"
           "        request_body_credential_rewrite: true\n"
           "        websocket_credential_rewrite: false\n"
           "        credential_binding: {provider: github}\n");
  ASSERT_TRUE(r.ok()) << dump(r);
  // Every field at once: tls: skip beside L7 settings is the one thing said about it.
  EXPECT_TRUE(HasWarning(r, 10, 14, "network_policies.r.endpoints[0].tls", "tls: skip relays"));
  ASSERT_EQ(r.policy->network.size(), 1u);
  const NetworkRule& rule = r.policy->network[0];
  EXPECT_EQ(rule.key, "r");
  EXPECT_EQ(rule.name, "r");  // defaults to the key
  EXPECT_EQ(rule.binaries, std::vector<std::string>{"/usr/bin/curl"});
  const Endpoint& ep = rule.endpoints.at(0);
  EXPECT_EQ(ep.host, "api.example.com");
  EXPECT_EQ(ep.ports, (std::vector<std::uint16_t>{443, 8443}));
  EXPECT_EQ(ep.path, "/v1/**");
  EXPECT_EQ(ep.protocol, Protocol::kRest);
  EXPECT_EQ(ep.tls, Tls::kSkip);
  EXPECT_EQ(ep.enforcement, Enforcement::kAudit);
  EXPECT_FALSE(ep.access);
  ASSERT_EQ(ep.rules.size(), 2u);
  EXPECT_EQ(ep.rules[0].method, "GET");
  EXPECT_EQ(ep.rules[0].path, "/repos/*/issues");
  ASSERT_EQ(ep.rules[0].query.size(), 1u);
  EXPECT_EQ(ep.rules[0].query[0].name, "state");
  EXPECT_EQ(ep.rules[0].query[0].any, std::vector<std::string>{"open"});
  EXPECT_EQ(ep.rules[1].method, "*");
  EXPECT_EQ(ep.rules[1].query[0].any, (std::vector<std::string>{"v1*", "beta"}));
  ASSERT_EQ(ep.deny_rules.size(), 2u);
  EXPECT_EQ(ep.deny_rules[0].method, "DELETE");
  EXPECT_EQ(ep.deny_rules[0].path, "**");
  EXPECT_EQ(ep.deny_rules[1].method, "*");
  EXPECT_EQ(ep.deny_rules[1].path, "/admin/**");
  ASSERT_EQ(ep.allowed_ips.size(), 3u);
  EXPECT_EQ(ep.allowed_ips[1].prefix, 32);
  EXPECT_TRUE(ep.allowed_ips[2].v6);
  EXPECT_TRUE(ep.allow_encoded_slash);
  EXPECT_TRUE(ep.request_body_credential_rewrite);
  EXPECT_FALSE(ep.websocket_credential_rewrite);
  EXPECT_EQ(ep.credential_provider, "github");
}

TEST(Network, EmptyMapDeniesAll) {
  LoadResult r = load("version: 1\nnetwork_policies: {}\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_TRUE(r.policy->network.empty());
}

TEST(Network, RulesKeepFileOrderAndNames) {
  LoadResult r = load(
      "version: 1\n"
      "network_policies:\n"
      "  zeta: {name: Zeta API, endpoints: [{host: z.example.com, port: 443}], binaries: "
      "[\"/**\"]}\n"
      "  alpha: {endpoints: [{host: a.example.com, port: 80}], binaries: [{path: "
      "/usr/bin/git}]}\n");
  ASSERT_TRUE(LoadsClean(r));
  ASSERT_EQ(r.policy->network.size(), 2u);
  EXPECT_EQ(r.policy->network[0].key, "zeta");
  EXPECT_EQ(r.policy->network[0].name, "Zeta API");
  EXPECT_EQ(r.policy->network[0].binaries, std::vector<std::string>{"/**"});
  EXPECT_EQ(r.policy->network[1].name, "alpha");
}

TEST(Network, UnknownKeys) {
  LoadResult r = load(
      "version: 1\n"
      "network_policies:\n"
      "  r:\n"
      "    endpoint: []\n");
  EXPECT_TRUE(HasError(
      r, 4, 5, "network_policies.r.endpoint",
      "unknown key 'endpoint' in network_policies.r; expected one of: name, endpoints, binaries"));
  r = endpoint("{host: a.example.com, port: 443, method: GET}");
  EXPECT_TRUE(HasError(
      r, 6, 42, "network_policies.r.endpoints[0].method",
      "unknown key 'method' in network_policies.r.endpoints[0]; expected one of: host, port"));
}

TEST(Network, WrongTypes) {
  LoadResult r = load(
      "version: 1\n"
      "network_policies:\n"
      "  r:\n"
      "    endpoints: api.example.com\n"
      "    binaries: /usr/bin/curl\n"
      "  s: [a]\n");
  EXPECT_TRUE(HasError(r, 4, 16, "network_policies.r.endpoints",
                       "expected a list of endpoints, got the value 'api.example.com'"));
  EXPECT_TRUE(HasError(r, 5, 15, "network_policies.r.binaries", "expected a list of binaries"));
  EXPECT_TRUE(HasError(r, 6, 6, "network_policies.s", "expected a mapping"));
  r = endpoint("api.example.com");
  EXPECT_TRUE(HasError(r, 6, 9, "network_policies.r.endpoints[0]", "expected a mapping"));
}

// --- host ---

TEST(Host, MissingHost) {
  LoadResult r = endpoint("{port: 443}");
  EXPECT_TRUE(HasError(r, 6, 9, "network_policies.r.endpoints[0].host",
                       "missing host: every endpoint names a host"));
}

TEST(Host, AcceptedPatterns) {
  for (const char* host :
       {"\"*.example.com\"", "\"**.example.com\"", "\"*-aiplatform.googleapis.com\"",
        "\"*.s3.*.amazonaws.com\"", "api-v2.example.co.uk", "x_y.example.com", "10.1.2.3",
        "\"2001:db8::1\""}) {
    LoadResult r = endpoint(std::string("{host: ") + host + ", port: 443}");
    EXPECT_TRUE(LoadsClean(r)) << host;
  }
  LoadResult r = endpoint("{host: \"[2001:DB8::1]\", port: 443}");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_EQ(r.policy->network[0].endpoints[0].host, "2001:db8::1");
}

TEST(Host, RefusedPatterns) {
  struct Case {
    const char* host;
    const char* reason;
  } cases[] = {
      {"\"*\"", "matches every host"},
      {"\"**\"", "matches every host"},
      {"\"*.com\"",
       "would match a whole top-level domain; a wildcard needs at least two literal labels after "
       "it"},
      {"\"**.com\"", "would match a whole top-level domain"},
      {"\"api.*.io\"", "would match a whole top-level domain"},
      {"\"foo*.com\"", "would match a whole top-level domain"},
      {"\"a.**.example.com\"", "'**' may only be the whole first label"},
      {"\"a.b*.example.com\"", "after the first label a wildcard must be a whole label"},
      {"\"*a*.example.com\"", "more than one '*' in its first label"},
      {"https://api.example.com", "is a URL"},
      {"api.example.com/v1", "contains '/'"},
      {"\"api.example.com:443\"", "the port goes in port:"},
      {"\"api.example.com.\"", "trailing dot"},
      {"\"a..example.com\"", "empty label"},
      {"\"bad host.com\"", "contains ' '"},
      {"\"-bad.example.com\"", "starts or ends with '-'"},
      {"\"999.1.2.3\"", "neither a valid IP address nor a host name"},
      {"\"*.1.2.3\"", "neither a valid IP address nor a host name"},
      {"\"\"", "host is empty"},
  };
  for (const Case& c : cases) {
    LoadResult r = endpoint(std::string("{host: ") + c.host + ", port: 443}");
    EXPECT_TRUE(HasError(r, 6, 16, "network_policies.r.endpoints[0].host", c.reason)) << c.host;
  }
}

TEST(Host, AlwaysBlockedHostWarns) {
  LoadResult r = endpoint("{host: 127.0.0.1, port: 8080}");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(
      HasWarning(r, 6, 16, "network_policies.r.endpoints[0].host",
                 "host '127.0.0.1' is in loopback (127.0.0.0/8), which ward never connects to"));
  EXPECT_TRUE(HasWarning(endpoint("{host: LocalHost, port: 80}"), 6, 16,
                         "network_policies.r.endpoints[0].host", "loopback (localhost)"));
  EXPECT_TRUE(HasWarning(endpoint("{host: 169.254.169.254, port: 80}"), 6, 16,
                         "network_policies.r.endpoints[0].host", "link-local"));
}

// --- ports ---

TEST(Ports, Range) {
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 0}"), 6, 37,
                       "network_policies.r.endpoints[0].port",
                       "expected a whole number from 1 to 65535, got the value '0'"));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 65536}"), 6, 37,
                       "network_policies.r.endpoints[0].port", "from 1 to 65535"));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: https}"), 6, 37,
                       "network_policies.r.endpoints[0].port", "got the value 'https'"));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, ports: [80, 70000]}"), 6, 43,
                       "network_policies.r.endpoints[0].ports[1]", "from 1 to 65535"));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, ports: []}"), 6, 38,
                       "network_policies.r.endpoints[0].ports", "ports is empty"));
  EXPECT_TRUE(load(kHead + "      - {host: a.example.com, port: \"443\"}\n").ok());
}

TEST(Ports, MissingPort) {
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com}"), 6, 9,
                       "network_policies.r.endpoints[0].port",
                       "missing port: an endpoint needs a port (port: 443) or a list of ports"));
}

TEST(Ports, PortsWinsOverPort) {
  LoadResult r = endpoint("{host: a.example.com, port: 80, ports: [443, 8443]}");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(HasWarning(r, 6, 37, "network_policies.r.endpoints[0].port",
                         "both port and ports are given; ports wins"));
  EXPECT_EQ(r.policy->network[0].endpoints[0].ports, (std::vector<std::uint16_t>{443, 8443}));
}

// --- protocol, tls, enforcement, access ---

TEST(Protocol, Values) {
  struct Case {
    const char* text;
    Protocol protocol;
  } cases[] = {{"\"\"", Protocol::kL4},
               {"rest", Protocol::kRest},
               {"websocket", Protocol::kWebsocket},
               {"graphql", Protocol::kGraphql},
               {"json-rpc", Protocol::kJsonRpc},
               {"mcp", Protocol::kMcp},
               {"sql", Protocol::kSql}};
  for (const Case& c : cases) {
    LoadResult r =
        endpoint(std::string("{host: a.example.com, port: 443, enforcement: enforce, protocol: ") +
                 c.text + "}");
    ASSERT_TRUE(r.ok()) << c.text << dump(r);
    EXPECT_EQ(r.policy->network[0].endpoints[0].protocol, c.protocol) << c.text;
  }
}

TEST(Protocol, TcpIsRefusedByName) {
  LoadResult r = endpoint("{host: redis.example.com, port: 6379, protocol: tcp}");
  EXPECT_TRUE(HasError(
      r, 6, 57, "network_policies.r.endpoints[0].protocol",
      "protocol: tcp (transparent TCP) is not supported by ward: ward's only way out is its HTTP "
      "proxy; use an L4 endpoint (omit protocol) for clients that speak CONNECT"));
}

TEST(Protocol, Unknown) {
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, protocol: http2}"), 6, 52,
                       "network_policies.r.endpoints[0].protocol", "unknown protocol 'http2'"));
}

TEST(Tls, DeprecatedModesWarn) {
  for (const char* mode : {"terminate", "passthrough"}) {
    LoadResult r = endpoint(std::string("{host: a.example.com, port: 443, tls: ") + mode + "}");
    ASSERT_TRUE(r.ok()) << dump(r);
    EXPECT_TRUE(HasWarning(r, 6, 47, "network_policies.r.endpoints[0].tls",
                           std::string("tls: ") + mode + " is deprecated and has no effect"));
    EXPECT_EQ(r.policy->network[0].endpoints[0].tls, Tls::kAuto);
  }
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, tls: maybe}"), 6, 47,
                       "network_policies.r.endpoints[0].tls",
                       "expected 'auto', 'skip', 'terminate' or 'passthrough'"));
}

TEST(Enforcement, MissingOnL7Warns) {
  LoadResult r = endpoint("{host: a.example.com, port: 443, protocol: rest, access: read-write}");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(
      HasWarning(r, 6, 9, "network_policies.r.endpoints[0].enforcement",
                 "OpenShell defaults to audit here (L7 violations only logged); ward enforces"));
  EXPECT_FALSE(r.policy->network[0].endpoints[0].enforcement);
  EXPECT_EQ(r.policy->network[0].endpoints[0].access, Access::kReadWrite);
  // rules alone make an endpoint L7 too; a plain L4 endpoint needs no enforcement.
  EXPECT_TRUE(
      HasWarning(endpoint("{host: a.example.com, port: 443, rules: [{allow: {method: GET}}]}"), 6,
                 9, "network_policies.r.endpoints[0].enforcement", "ward enforces"));
  EXPECT_TRUE(LoadsClean(endpoint("{host: a.example.com, port: 443}")));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, enforcement: strict}"), 6, 55,
                       "network_policies.r.endpoints[0].enforcement",
                       "expected 'enforce' or 'audit'"));
}

TEST(Enforcement, SqlIsAuditOnly) {
  LoadResult r =
      endpoint("{host: db.example.com, port: 5432, protocol: sql, enforcement: enforce}");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(HasWarning(r, 6, 72, "network_policies.r.endpoints[0].enforcement",
                         "protocol: sql is audit only; enforcement: enforce has no effect on it"));
  // sql without enforcement is not an L7 endpoint that ward would enforce: no warning.
  EXPECT_TRUE(LoadsClean(endpoint("{host: db.example.com, port: 5432, protocol: sql}")));
}

// Found in review: tls: skip turns interception off, so L7 settings beside it never applied,
// and nothing said so.
TEST(Tls, SkipBesideL7SettingsWarns) {
  LoadResult r = endpoint(
      "{host: a.example.com, port: 443, protocol: rest, enforcement: enforce, access: read-only, "
      "tls: skip}");
  ASSERT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(HasWarning(r, 6, 104, "network_policies.r.endpoints[0].tls",
                         "tls: skip relays this endpoint's bytes unread: its L7 settings "
                         "(protocol, access, rules, deny_rules) are never enforced and no "
                         "credential is swapped in; drop tls: skip to have them apply"));
  EXPECT_TRUE(LoadsClean(endpoint("{host: a.example.com, port: 443, tls: skip}")));
}

TEST(Access, ExclusiveWithRules) {
  LoadResult r = endpoint(
      "{host: a.example.com, port: 443, protocol: rest, enforcement: enforce, access: full, "
      "rules: [{allow: {method: GET, path: /}}]}");
  EXPECT_TRUE(HasError(
      r, 6, 88, "network_policies.r.endpoints[0].access",
      "access and rules are exclusive: access is a preset of rules; give one or the other"));
  EXPECT_TRUE(HasError(
      endpoint("{host: a.example.com, port: 443, enforcement: audit, access: write}"), 6, 70,
      "network_policies.r.endpoints[0].access", "expected 'read-only', 'read-write' or 'full'"));
}

// --- rules ---

TEST(Rules, Errors) {
  LoadResult r = load(kHead +
                      "      - host: a.example.com\n"
                      "        port: 443\n"
                      "        enforcement: enforce\n"
                      "        rules:\n"
                      "          - {method: FETCH, path: /x}\n"
                      "          - {allow: {method: GET, path: repos}}\n"
                      "          - allow: {}\n"
                      "          - allow: {method: GET, query: {q: {any: []}}}\n"
                      "          - allow: {method: GET, query: {q: [a]}}\n"
                      "          - allow: {method: [GET]}\n");
  EXPECT_EQ(count(r, Severity::kError), 6) << dump(r);
  EXPECT_TRUE(
      HasError(r, 10, 13, "network_policies.r.endpoints[0].rules[0]",
               "a rule is written {allow: {method: GET, path: /foo}}; this one lacks allow:"));
  EXPECT_TRUE(HasError(r, 11, 41, "network_policies.r.endpoints[0].rules[1].allow.path",
                       "path 'repos' must start with '/'"));
  EXPECT_TRUE(HasError(r, 12, 20, "network_policies.r.endpoints[0].rules[2].allow",
                       "a rule needs a method or a path"));
  EXPECT_TRUE(HasError(r, 13, 51, "network_policies.r.endpoints[0].rules[3].allow.query.q.any",
                       "any: [] matches no value"));
  EXPECT_TRUE(HasError(r, 14, 45, "network_policies.r.endpoints[0].rules[4].allow.query.q",
                       "expected a value glob or {any: [globs]}, got a list"));
  EXPECT_TRUE(HasError(r, 15, 29, "network_policies.r.endpoints[0].rules[5].allow.method",
                       "expected an HTTP method, got a list"));
}

TEST(Rules, EmptyEntry) {
  LoadResult r = load(kHead +
                      "      - host: a.example.com\n"
                      "        port: 443\n"
                      "        enforcement: enforce\n"
                      "        rules:\n"
                      "          -\n");
  EXPECT_TRUE(HasError(r, 10, 11, "network_policies.r.endpoints[0].rules[0]", "empty rule"));
}

TEST(Rules, BadMethod) {
  LoadResult r = endpoint(
      "{host: a.example.com, port: 443, enforcement: enforce, rules: [{allow: {method: FETCH}}]}");
  EXPECT_TRUE(
      HasError(r, 6, 89, "network_policies.r.endpoints[0].rules[0].allow.method",
               "method 'FETCH' is not one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS or *"));
}

TEST(Rules, DenyRules) {
  LoadResult r = endpoint(
      "{host: a.example.com, port: 443, enforcement: enforce, deny_rules: [{allow: {method: "
      "GET}}]}");
  EXPECT_EQ(count(r, Severity::kError), 1) << dump(r);
  EXPECT_TRUE(HasError(r, 6, 77, "network_policies.r.endpoints[0].deny_rules[0]",
                       "a deny rule is written {method: DELETE, path: /foo}, without allow:"));
}

// --- allowed_ips ---

TEST(AllowedIps, ReservedRangesRefused) {
  struct Case {
    const char* cidr;
    const char* reason;
  } cases[] = {
      {"127.0.0.1", "overlaps loopback (127.0.0.0/8)"},
      {"127.0.0.0/8", "overlaps loopback (127.0.0.0/8)"},
      {"\"::1\"", "overlaps loopback (::1/128)"},
      {"169.254.169.254/32", "overlaps link-local (169.254.0.0/16)"},
      {"\"fe80::/64\"", "overlaps link-local (fe80::/10)"},
      {"0.0.0.0", "overlaps the unspecified address (0.0.0.0/32)"},
      {"\"::\"", "overlaps the unspecified address (::/128)"},
      {"0.0.0.0/0", "overlaps loopback"},
      {"\"::ffff:127.0.0.1\"", "overlaps loopback (127.0.0.0/8)"},
      {"100.0.0.0/1", "overlaps loopback"},
  };
  for (const Case& c : cases) {
    LoadResult r = endpoint(
        std::string("{host: a.example.com, port: 443, allowed_ips: [10.0.0.0/8, ") + c.cidr + "]}");
    EXPECT_TRUE(HasError(r, 6, 68, "network_policies.r.endpoints[0].allowed_ips[1]", c.reason))
        << c.cidr;
    EXPECT_TRUE(HasError(r, 6, 68, "network_policies.r.endpoints[0].allowed_ips[1]",
                         "ward never connects to loopback, link-local or unspecified addresses"))
        << c.cidr;
  }
}

TEST(AllowedIps, Malformed) {
  for (const char* cidr :
       {"10.0.0.0/33", "\"fd00::/129\"", "10.0.0/8", "not-an-ip", "10.0.0.0/x", "\"10.0.0.0/\""}) {
    LoadResult r =
        endpoint(std::string("{host: a.example.com, port: 443, allowed_ips: [") + cidr + "]}");
    EXPECT_TRUE(HasError(r, 6, 56, "network_policies.r.endpoints[0].allowed_ips[0]", "")) << cidr;
  }
}

TEST(AllowedIps, HostBitsWarn) {
  LoadResult r = endpoint("{host: a.example.com, port: 443, allowed_ips: [10.1.2.3/8]}");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(HasWarning(r, 6, 56, "network_policies.r.endpoints[0].allowed_ips[0]",
                         "'10.1.2.3/8' has bits set below its /8 prefix"));
  const Cidr& c = r.policy->network[0].endpoints[0].allowed_ips[0];
  EXPECT_EQ(c.text, "10.1.2.3/8");
  EXPECT_EQ(c.addr[0], 10);
  EXPECT_EQ(c.addr[1], 0);
}

// --- binaries ---

TEST(Binaries, Forms) {
  LoadResult r = load(
      "version: 1\n"
      "network_policies:\n"
      "  r:\n"
      "    endpoints: [{host: a.example.com, port: 443}]\n"
      "    binaries:\n"
      "      - /usr/bin/git\n"
      "      - {path: \"/home/*/.local/bin/**\"}\n"
      "      - path: /usr//bin/curl\n");
  ASSERT_TRUE(LoadsClean(r));
  EXPECT_EQ(r.policy->network[0].binaries,
            (std::vector<std::string>{"/usr/bin/git", "/home/*/.local/bin/**", "/usr/bin/curl"}));
}

TEST(Binaries, Errors) {
  LoadResult r = load(
      "version: 1\n"
      "network_policies:\n"
      "  r:\n"
      "    endpoints: [{host: a.example.com, port: 443}]\n"
      "    binaries:\n"
      "      - curl\n"
      "      - {path: /usr/../bin/sh}\n"
      "      - {name: git}\n"
      "      - [a]\n");
  EXPECT_TRUE(HasError(r, 6, 9, "network_policies.r.binaries[0]",
                       "binary path 'curl' must be absolute (\"/**\" for any binary)"));
  EXPECT_TRUE(HasError(r, 7, 16, "network_policies.r.binaries[1].path", "has a '..' component"));
  EXPECT_TRUE(HasError(r, 8, 10, "network_policies.r.binaries[2].name", "unknown key 'name'"));
  EXPECT_TRUE(HasError(r, 8, 9, "network_policies.r.binaries[2].path", "missing path"));
  EXPECT_TRUE(HasError(r, 9, 9, "network_policies.r.binaries[3]", "expected a binary path glob"));
}

TEST(Binaries, MissingWarns) {
  LoadResult r = load(
      "version: 1\nnetwork_policies:\n  r:\n    endpoints: [{host: a.example.com, port: 443}]\n");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(HasWarning(r, 4, 5, "network_policies.r.binaries",
                         "no binaries: no process may use this rule"));
  r = load("version: 1\nnetwork_policies:\n  r:\n    binaries: [\"/**\"]\n");
  EXPECT_TRUE(HasWarning(r, 4, 5, "network_policies.r.endpoints",
                         "no endpoints: this rule allows nothing"));
}

// --- credential_binding ---

TEST(CredentialBinding, NeedsProvider) {
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, credential_binding: {}}"), 6, 62,
                       "network_policies.r.endpoints[0].credential_binding.provider",
                       "missing provider"));
  EXPECT_TRUE(
      HasError(endpoint("{host: a.example.com, port: 443, credential_binding: {provider: \"\"}}"),
               6, 73, "network_policies.r.endpoints[0].credential_binding.provider",
               "provider must be a non-empty name"));
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, credential_binding: github}"), 6,
                       62, "network_policies.r.endpoints[0].credential_binding",
                       "expected a mapping"));
}

TEST(Flags, MustBeBooleans) {
  EXPECT_TRUE(HasError(endpoint("{host: a.example.com, port: 443, allow_encoded_slash: 1}"), 6, 63,
                       "network_policies.r.endpoints[0].allow_encoded_slash",
                       "expected true or false"));
}

}  // namespace
}  // namespace ward::policy
