// The L4 decision the egress proxy will take: host globs, ports, binaries (scenarios.md,
// "Network, L4"), from policies loaded the way users write them.
#include "policy/matcher.h"

#include <gtest/gtest.h>

namespace ward::policy {
namespace {

Policy load_ok(const std::string& yaml) {
  LoadResult r = load_string(yaml, "test.yaml");
  EXPECT_TRUE(r.ok()) << r.first_error();
  return r.ok() ? *r.policy : Policy{};
}

TEST(HostPattern, SingleLabelWildcard) {
  HostPattern p("*.example.com");
  EXPECT_TRUE(p.matches("api.example.com"));
  EXPECT_FALSE(p.matches("example.com"));
  EXPECT_FALSE(p.matches("a.b.example.com"));
  EXPECT_FALSE(p.matches("api.example.org"));
  EXPECT_FALSE(p.matches("apiexample.com"));
}

TEST(HostPattern, MultiLabelWildcardExcludesTheApex) {
  HostPattern p("**.example.com");
  EXPECT_TRUE(p.matches("api.example.com"));
  EXPECT_TRUE(p.matches("a.b.example.com"));
  EXPECT_FALSE(p.matches("example.com"));
  EXPECT_FALSE(p.matches("evil-example.com"));
}

TEST(HostPattern, WildcardInsideALabelAndMiddleLabels) {
  HostPattern inside("*-aiplatform.googleapis.com");
  EXPECT_TRUE(inside.matches("us-central1-aiplatform.googleapis.com"));
  EXPECT_FALSE(inside.matches("aiplatform.googleapis.com"));
  EXPECT_FALSE(inside.matches("x.y-aiplatform.googleapis.com"));
  HostPattern middle("*.s3.*.amazonaws.com");
  EXPECT_TRUE(middle.matches("bucket.s3.eu-west-1.amazonaws.com"));
  EXPECT_FALSE(middle.matches("bucket.s3.amazonaws.com"));
  EXPECT_FALSE(middle.matches("a.bucket.s3.eu-west-1.amazonaws.com"));
}

TEST(HostPattern, ExactHostsMatchOnlyThemselves) {
  HostPattern p("api.github.com");
  EXPECT_TRUE(p.matches("api.github.com"));
  EXPECT_FALSE(p.matches("xapi.github.com"));
  EXPECT_FALSE(p.matches("api.github.com.evil.com"));
}

TEST(BinaryGlob, SegmentsAndDoubleStar) {
  EXPECT_TRUE(binary_matches("/**", "/usr/bin/curl"));
  EXPECT_TRUE(binary_matches("/usr/bin/curl", "/usr/bin/curl"));
  EXPECT_FALSE(binary_matches("/usr/bin/curl", "/usr/bin/curl2"));
  EXPECT_TRUE(binary_matches("/usr/bin/python3*", "/usr/bin/python3.11"));
  EXPECT_FALSE(binary_matches("/usr/bin/*", "/usr/bin/x/y"));
  EXPECT_TRUE(binary_matches("/sandbox/.uv/python/**/python3*",
                             "/sandbox/.uv/python/cpython-3.12/bin/python3.12"));
  EXPECT_TRUE(binary_matches("/home/*/.local/bin/copilot", "/home/alice/.local/bin/copilot"));
  EXPECT_FALSE(binary_matches("/home/*/.local/bin/copilot", "/home/a/b/.local/bin/copilot"));
}

// The workload picks how deep its executable lives (PATH_MAX allows ~2,000 segments): a pattern
// with several `**` must not cost depth^k: against ~2,000 segments, four `**` that cannot all
// match made the recursive match of before try ~2000^4/24 splits (hours); this is linear.
TEST(BinaryGlob, ManyDoubleStarsOverADeepPathStayLinear) {
  std::string deep;
  for (int i = 0; i < 2000; ++i) deep += "/a";
  EXPECT_FALSE(binary_matches("/**/a/**/a/**/a/**/b", deep + "/c"));
  EXPECT_TRUE(binary_matches("/**/a/**/a/**/a/**/c", deep + "/c"));
  EXPECT_TRUE(binary_matches("/a/**/a/**", deep));
  EXPECT_FALSE(binary_matches("/**/b/**", deep));
}

TEST(NetworkMatcher, AnEmptyMapDeniesEverything) {
  Policy p = load_ok("version: 1\nnetwork_policies: {}\n");
  NetworkMatcher m(p.network);
  Decision d = m.decide("api.github.com", 443, {"/usr/bin/curl"});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "no rule allows api.github.com:443");
}

TEST(NetworkMatcher, RightHostWrongPortIsDenied) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  gh:\n    endpoints: [{host: api.github.com, port: 443}]\n"
      "    binaries: [{path: /usr/bin/curl}]\n");
  NetworkMatcher m(p.network);
  EXPECT_TRUE(m.decide("api.github.com", 443, {"/usr/bin/curl"}).allowed);
  EXPECT_FALSE(m.decide("api.github.com", 80, {"/usr/bin/curl"}).allowed);
  EXPECT_EQ(m.decide("api.github.com", 443, {"/usr/bin/curl"}).rule, "gh");
}

TEST(NetworkMatcher, PortsListAllowsEachAndNothingElse) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  web:\n    endpoints: [{host: example.com, ports: [80, "
      "8443]}]\n    binaries: [{path: \"/**\"}]\n");
  NetworkMatcher m(p.network);
  EXPECT_TRUE(m.decide("example.com", 80, {"/bin/x"}).allowed);
  EXPECT_TRUE(m.decide("example.com", 8443, {"/bin/x"}).allowed);
  EXPECT_FALSE(m.decide("example.com", 443, {"/bin/x"}).allowed);
}

// scenarios.md: with binary A -> host X and binary B -> host Y, A->Y and B->X are denied.
TEST(NetworkMatcher, BinariesAreBoundToTheirRules) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n"
      "  a:\n    endpoints: [{host: x.example.com, port: 443}]\n    binaries: [{path: "
      "/usr/bin/a}]\n"
      "  b:\n    endpoints: [{host: y.example.com, port: 443}]\n    binaries: [{path: "
      "/usr/bin/b}]\n");
  NetworkMatcher m(p.network);
  EXPECT_TRUE(m.decide("x.example.com", 443, {"/usr/bin/a"}).allowed);
  EXPECT_TRUE(m.decide("y.example.com", 443, {"/usr/bin/b"}).allowed);
  Decision ay = m.decide("y.example.com", 443, {"/usr/bin/a"});
  EXPECT_FALSE(ay.allowed);
  EXPECT_EQ(ay.reason, "rule b allows y.example.com:443 but not /usr/bin/a or its ancestors");
  EXPECT_FALSE(m.decide("x.example.com", 443, {"/usr/bin/b"}).allowed);
}

TEST(NetworkMatcher, AnAncestorGrantsButArgvZeroNeverDoes) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  claude:\n    endpoints: [{host: api.anthropic.com, port: "
      "443}]\n    binaries: [{path: /usr/bin/node}]\n");
  NetworkMatcher m(p.network);
  // curl started by node: the ancestor chain carries node.
  EXPECT_TRUE(m.decide("api.anthropic.com", 443, {"/usr/bin/curl", "/usr/bin/node"}).allowed);
  EXPECT_FALSE(m.decide("api.anthropic.com", 443, {"/usr/bin/curl", "/bin/bash"}).allowed);
}

TEST(NetworkMatcher, TheOpenShellQuickstartPolicy) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  github_api:\n    name: github-api-readonly\n"
      "    endpoints:\n      - host: api.github.com\n        port: 443\n        protocol: rest\n"
      "        enforcement: enforce\n        access: read-only\n"
      "    binaries:\n      - { path: /usr/bin/curl }\n");
  NetworkMatcher m(p.network);
  Decision d = m.decide("api.github.com", 443, {"/usr/bin/curl"});
  ASSERT_TRUE(d.allowed);
  ASSERT_NE(d.endpoint, nullptr);
  EXPECT_EQ(d.endpoint->protocol, Protocol::kRest);
  EXPECT_EQ(d.endpoint->access, Access::kReadOnly);
}

// --- all matches, and the endpoint for a request path (intercepted connections) ---

TEST(NetworkMatcher, MatchesListsEveryAdmittingEndpointInFileOrder) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n"
      "  first:\n    endpoints:\n      - {host: api.example.com, port: 443}\n"
      "      - {host: other.example.com, port: 443}\n"
      "      - {host: \"*.example.com\", port: 443, path: /v2/**}\n"
      "    binaries: [{path: /usr/bin/curl}]\n"
      "  not_curl:\n    endpoints: [{host: api.example.com, port: 443}]\n"
      "    binaries: [{path: /usr/bin/node}]\n"
      "  second:\n    endpoints: [{host: api.example.com, ports: [443, 8443], path: /v1/**}]\n"
      "    binaries: [{path: \"/**\"}]\n");
  NetworkMatcher m(p.network);
  std::vector<Match> all = m.matches("api.example.com", 443, {"/usr/bin/curl"});
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(*all[0].rule, "first");
  EXPECT_EQ(all[0].endpoint, &p.network[0].endpoints[0]);
  EXPECT_EQ(*all[1].rule, "first");
  EXPECT_EQ(all[1].endpoint, &p.network[0].endpoints[2]);
  EXPECT_EQ(*all[2].rule, "second");
  EXPECT_EQ(all[2].endpoint, &p.network[2].endpoints[0]);
  // Only the any-binary rule admits an unknown caller; none has port 80.
  std::vector<Match> unknown = m.matches("api.example.com", 8443, {});
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_EQ(*unknown[0].rule, "second");
  EXPECT_TRUE(m.matches("api.example.com", 80, {"/usr/bin/curl"}).empty());
  // decide() still returns the first rule's first endpoint.
  Decision d = m.decide("api.example.com", 443, {"/usr/bin/curl"});
  EXPECT_EQ(d.rule, "first");
  EXPECT_EQ(d.endpoint, &p.network[0].endpoints[0]);
}

TEST(SelectForPath, AMatchingPathBeatsNoPathAndTheLongestGlobWins) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
      "      - {host: api.example.com, port: 443, access: full, enforcement: enforce}\n"
      "      - {host: api.example.com, port: 443, path: /v1/**, access: read-only, enforcement: "
      "enforce}\n"
      "      - {host: api.example.com, port: 443, path: /v1/admin/**, access: read-write, "
      "enforcement: enforce}\n"
      "      - {host: api.example.com, port: 443, path: /v1/**, access: full, enforcement: "
      "enforce}\n"
      "    binaries: [{path: \"/**\"}]\n");
  NetworkMatcher m(p.network);
  std::vector<Match> all = m.matches("api.example.com", 443, {});
  ASSERT_EQ(all.size(), 4u);
  const auto& eps = p.network[0].endpoints;
  auto pick = [&](std::string_view path) {
    const Match* s = select_for_path(all, path);
    return s ? s->endpoint : nullptr;
  };
  EXPECT_EQ(pick("/v1/models"), &eps[1]);  // equal globs: the first
  EXPECT_EQ(pick("/v1"), &eps[1]);
  EXPECT_EQ(pick("/v1/admin/users"), &eps[2]);
  EXPECT_EQ(pick("/v2/models"), &eps[0]);
  EXPECT_EQ(pick("/"), &eps[0]);
}

TEST(SelectForPath, NothingAppliesWhenEveryPathMisses) {
  Policy p = load_ok(
      "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
      "      - {host: api.example.com, port: 443, path: /graphql, protocol: graphql, enforcement: "
      "enforce}\n"
      "    binaries: [{path: \"/**\"}]\n");
  NetworkMatcher m(p.network);
  std::vector<Match> all = m.matches("api.example.com", 443, {});
  ASSERT_EQ(all.size(), 1u);
  EXPECT_NE(select_for_path(all, "/graphql"), nullptr);
  EXPECT_EQ(select_for_path(all, "/graphqlx"), nullptr);
  EXPECT_EQ(select_for_path(all, "/repos"), nullptr);
  EXPECT_EQ(select_for_path({}, "/"), nullptr);
}

}  // namespace
}  // namespace ward::policy
