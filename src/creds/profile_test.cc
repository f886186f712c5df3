#include "creds/profile.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace ward::creds {
namespace {

Result<Profile> load(std::string_view yaml) {
  return load_profile_string(yaml, "p.yaml");
}

// Passes when loading fails with an error line that contains every one of `needles`.
::testing::AssertionResult FailsWith(const Result<Profile>& r,
                                     std::initializer_list<std::string_view> needles) {
  if (r) return ::testing::AssertionFailure() << "loaded, expected an error";
  std::string_view all = r.error().message;
  for (std::size_t start = 0; start < all.size();) {
    std::size_t end = std::min(all.find('\n', start), all.size());
    std::string_view line = all.substr(start, end - start);
    if (std::all_of(needles.begin(), needles.end(),
                    [&](std::string_view n) { return line.find(n) != std::string_view::npos; }))
      return ::testing::AssertionSuccess();
    start = end + 1;
  }
  return ::testing::AssertionFailure() << "no matching error line in:\n" << all;
}

TEST(Profile, OpenShellGithubExampleLoads) {
  auto p = load_profile_file(
      WARD_SHARED_DIR "/reference/openshell-policies/providers__github.provider-profile.yaml");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->id, "github");
  EXPECT_EQ(p->display_name, "GitHub");
  EXPECT_EQ(p->category, "source_control");
  ASSERT_EQ(p->credentials.size(), 1u);
  const Credential& c = p->credentials[0];
  EXPECT_EQ(c.name, "api_token");
  EXPECT_EQ(c.env_vars, (std::vector<std::string>{"GITHUB_TOKEN", "GH_TOKEN"}));
  EXPECT_TRUE(c.required);
  EXPECT_EQ(c.auth_style, AuthStyle::kBearer);
  EXPECT_EQ(c.header_name, "authorization");
  EXPECT_EQ(p->discovery, std::vector<std::string>{"api_token"});
  ASSERT_EQ(p->endpoints.size(), 3u);
  EXPECT_EQ(p->endpoints[0].host, "api.github.com");
  EXPECT_EQ(p->endpoints[0].ports, std::vector<std::uint16_t>{443});
  EXPECT_EQ(p->endpoints[1].path, "/graphql");
  EXPECT_EQ(p->endpoints[1].protocol, policy::Protocol::kGraphql);
  EXPECT_EQ(p->endpoints[2].host, "github.com");
  EXPECT_EQ(p->endpoints[2].rules.size(), 4u);
  EXPECT_EQ(p->binaries.size(), 4u);
  EXPECT_TRUE(p->warnings.empty());
}

TEST(Profile, EveryBuiltinLoadsWithItsVariablesAndHosts) {
  EXPECT_EQ(builtin_ids(),
            (std::vector<std::string>{"anthropic", "github", "gitlab", "npm", "openai", "pypi"}));
  struct Want {
    const char* id;
    std::vector<std::string> vars;
    std::vector<std::string> hosts;
  };
  const Want wants[] = {
      {"anthropic", {"ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"}, {"api.anthropic.com"}},
      {"openai", {"OPENAI_API_KEY"}, {"api.openai.com"}},
      {"github",
       {"GITHUB_TOKEN", "GH_TOKEN"},
       {"api.github.com", "github.com", "uploads.github.com"}},
      {"gitlab", {"GITLAB_TOKEN"}, {"gitlab.com"}},
      {"npm", {"NPM_TOKEN"}, {"registry.npmjs.org"}},
      {"pypi", {"PYPI_TOKEN", "TWINE_PASSWORD", "UV_PUBLISH_TOKEN"}, {"upload.pypi.org"}},
  };
  for (const Want& w : wants) {
    const Profile* p = builtin_profile(w.id);
    ASSERT_NE(p, nullptr) << w.id;
    EXPECT_EQ(p->id, w.id);
    EXPECT_TRUE(p->warnings.empty()) << w.id << ": " << p->warnings.front();
    std::vector<std::string> vars, hosts;
    for (const Credential& c : p->credentials)
      vars.insert(vars.end(), c.env_vars.begin(), c.env_vars.end());
    for (const policy::Endpoint& e : p->endpoints) {
      hosts.push_back(e.host);
      EXPECT_EQ(e.ports, std::vector<std::uint16_t>{443}) << w.id;
    }
    EXPECT_EQ(vars, w.vars) << w.id;
    EXPECT_EQ(hosts, w.hosts) << w.id;
  }
  const Credential& anthropic_key = builtin_profile("anthropic")->credentials[0];
  EXPECT_EQ(anthropic_key.header_name, "x-api-key");
  EXPECT_EQ(builtin_profile("anthropic")->credentials[1].auth_style, AuthStyle::kBearer);
  EXPECT_EQ(builtin_profile("nope"), nullptr);
}

TEST(Profile, MinimalProfileLoads) {
  auto p = load("id: my-api\ndisplay_name: Mine\n");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->category, "other");
  EXPECT_TRUE(p->credentials.empty());
}

TEST(Profile, UnknownKeysAreErrorsWithLineColumnAndPath) {
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\ncolour: red\n"),
                        {"p.yaml:3:1: error: colour: unknown key 'colour'", "display_name"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\ncredentials:\n  - name: k\n    scope: all\n"),
                        {"p.yaml:5:5: error: credentials[0].scope: unknown key 'scope'"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\nendpoints:\n  - {host: x.com, port: 443, "
                             "colour: red}\n"),
                        {"p.yaml:4:30: error: endpoints[0].colour: unknown key"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\ndiscovery: {creds: [k]}\n"),
                        {"p.yaml:3:13: error: discovery.creds: unknown key"}));
}

TEST(Profile, EndpointsAreValidatedByThePolicyReader) {
  EXPECT_TRUE(
      FailsWith(load("id: a\ndisplay_name: A\nendpoints:\n  - host: x.com\n    port: 70000\n"),
                {"p.yaml:5:11: error: endpoints[0].port:", "1 to 65535"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\nendpoints:\n  - {port: 443}\n"),
                        {"endpoints[0].host: missing host"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\nendpoints:\n  - {host: x.com, port: 443, "
                             "protocol: tcp}\n"),
                        {"endpoints[0].protocol:", "not supported"}));
}

TEST(Profile, CredentialMistakes) {
  const std::string head = "id: a\ndisplay_name: A\ncredentials:\n";
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [GITHUB-TOKEN]}\n"),
                        {"p.yaml:4:26: error: credentials[0].env_vars[0]:", "'GITHUB-TOKEN'"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [A]}\n  - {name: l, env_vars: [A]}\n"),
                        {"p.yaml:5:26:", "credentials[1].env_vars[0]", "listed twice"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k}\n  - {name: k}\n"),
                        {"p.yaml:5:12:", "credentials[1].name", "duplicate credential name"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [A], auth_style: bearer}\n"),
                        {"credentials[0].auth_style", "needs header_name"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [A], auth_style: query}\n"),
                        {"credentials[0].auth_style", "needs query_param"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [A], auth_style: cookie}\n"),
                        {"credentials[0].auth_style", "'bearer'"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, required: true}\n"),
                        {"credentials[0].env_vars", "at least one variable"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, env_vars: [A], refresh: {strategy: static}}\n"),
                        {"credentials[0].refresh", "not supported by ward"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {env_vars: [A]}\n"), {"credentials[0].name: missing"}));
  EXPECT_TRUE(FailsWith(load(head + "  - {name: k, header_name: \"x api key\"}\n"),
                        {"credentials[0].header_name", "not an HTTP header name"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\ndiscovery: {credentials: [ghost]}\n"),
                        {"p.yaml:3:27: error: discovery.credentials[0]", "unknown credential"}));
}

TEST(Profile, TopLevelMistakes) {
  EXPECT_TRUE(FailsWith(load("display_name: A\n"), {"p.yaml:1:1: error: id: missing id"}));
  EXPECT_TRUE(
      FailsWith(load("id: GitHub\ndisplay_name: A\n"), {"p.yaml:1:5: error: id:", "kebab-case"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\ncategory: vcs\n"),
                        {"p.yaml:3:11: error: category:", "'source_control'"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: A\nbinaries: [usr/bin/gh]\n"),
                        {"binaries[0]", "must be absolute"}));
  EXPECT_TRUE(FailsWith(load("- id: a\n"), {"p.yaml:1:1:", "expected a provider profile"}));
  EXPECT_TRUE(FailsWith(load("id: a\ndisplay_name: [A\n"), {"p.yaml:", "YAML syntax error"}));
}

TEST(Profile, EveryErrorIsReportedNotJustTheFirst) {
  auto r = load("id: a\ndisplay_name: A\ncolour: red\ncategory: vcs\n");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("p.yaml:3:1:"), std::string::npos);
  EXPECT_NE(r.error().message.find("p.yaml:4:11:"), std::string::npos);
}

TEST(Profile, WarningsFromTheEndpointReaderAreKept) {
  auto p =
      load("id: a\ndisplay_name: A\nendpoints:\n  - {host: x.com, port: 443, protocol: rest}\n");
  ASSERT_TRUE(p) << p.error().message;
  ASSERT_EQ(p->warnings.size(), 1u);
  EXPECT_NE(p->warnings[0].find("warning: endpoints[0].enforcement"), std::string::npos);
}

TEST(Profile, UnreadableFileNamesThePath) {
  auto r = load_profile_file("/nonexistent/p.yaml");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().describe().find("/nonexistent/p.yaml"), std::string::npos);
  EXPECT_NE(r.error().describe().find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace ward::creds
