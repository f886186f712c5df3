#include "sandbox/environment.h"

#include <algorithm>

#include <gtest/gtest.h>

namespace ward::sandbox {
namespace {

bool has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}
bool has_name(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

const std::vector<std::string> kHost = {"TERM=xterm",
                                        "LANG=C.UTF-8",
                                        "LC_ALL=C",
                                        "GITHUB_TOKEN=t0ken",
                                        "AWS_SECRET_ACCESS_KEY=s3cret",
                                        "DB_PASSWORD=pw",
                                        "OPENAI_API_KEY=sk",
                                        "LC_SECRET=x",
                                        "SSH_AUTH_SOCK=/tmp/agent",
                                        "PATH=/host/bin",
                                        "HOME=/root"};
const EnvContext kContext{"/work", "alice", "/work"};

TEST(Environment, NothingPassesUnlessNamed) {
  policy::Environment policy;
  auto env = build_environment(policy, kHost, kContext);
  EXPECT_FALSE(has_name(env, "TERM"));
  EXPECT_FALSE(has_name(env, "SSH_AUTH_SOCK"));
  EXPECT_FALSE(has_name(env, "GITHUB_TOKEN"));
  EXPECT_TRUE(has(env, "HOME=/work"));
  EXPECT_TRUE(has(env, "USER=alice"));
  EXPECT_TRUE(has(env, "PWD=/work"));
  // The host's PATH does not leak in; a sane one is set.
  EXPECT_TRUE(has(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
}

TEST(Environment, GlobsNeverPassSecretLookingNames) {
  policy::Environment policy;
  policy.pass = {"*", "LC_*"};
  auto env = build_environment(policy, kHost, kContext);
  EXPECT_TRUE(has(env, "TERM=xterm"));
  EXPECT_TRUE(has(env, "LC_ALL=C"));
  EXPECT_FALSE(has_name(env, "GITHUB_TOKEN"));
  EXPECT_FALSE(has_name(env, "AWS_SECRET_ACCESS_KEY"));
  EXPECT_FALSE(has_name(env, "DB_PASSWORD"));
  EXPECT_FALSE(has_name(env, "OPENAI_API_KEY"));
  EXPECT_FALSE(has_name(env, "LC_SECRET"));
}

TEST(Environment, AnExactNamePassesEvenASecret) {
  policy::Environment policy;
  policy.pass = {"GITHUB_TOKEN"};
  auto env = build_environment(policy, kHost, kContext);
  EXPECT_TRUE(has(env, "GITHUB_TOKEN=t0ken"));
  EXPECT_FALSE(has_name(env, "OPENAI_API_KEY"));
}

TEST(Environment, SetOverridesEverything) {
  policy::Environment policy;
  policy.pass = {"TERM"};
  policy.set = {{"TERM", "dumb"}, {"PATH", "/opt/bin"}, {"FOO", "bar"}};
  auto env = build_environment(policy, kHost, kContext);
  EXPECT_TRUE(has(env, "TERM=dumb"));
  EXPECT_TRUE(has(env, "PATH=/opt/bin"));
  EXPECT_TRUE(has(env, "FOO=bar"));
}

TEST(Environment, ProxyVariablesPointAtTheEgressListenerWhateverThePolicySets) {
  policy::Environment policy;
  policy.pass = {"*"};
  policy.set = {{"HTTPS_PROXY", "http://elsewhere:1"}};
  EnvContext context = kContext;
  context.egress_port = 3128;
  std::vector<std::string> host = kHost;
  host.push_back("http_proxy=http://host-proxy:8080");
  auto env = build_environment(policy, host, context);
  for (const char* name :
       {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"})
    EXPECT_TRUE(has(env, std::string(name) + "=http://127.0.0.1:3128")) << name;
  EXPECT_TRUE(has(env, "NO_PROXY=localhost,127.0.0.1,::1"));
  EXPECT_TRUE(has(env, "no_proxy=localhost,127.0.0.1,::1"));
  EXPECT_TRUE(has(env, "NODE_USE_ENV_PROXY=1"));
}

TEST(Environment, NoProxyVariablesWithoutEgress) {
  policy::Environment policy;
  auto env = build_environment(policy, kHost, kContext);
  EXPECT_FALSE(has_name(env, "HTTP_PROXY"));
  EXPECT_FALSE(has_name(env, "NODE_USE_ENV_PROXY"));
}

TEST(Environment, SecretDetection) {
  for (const char* name : {"GITHUB_TOKEN", "MY_SECRET", "DB_PASSWORD", "OPENAI_API_KEY",
                           "x_api_key", "AWS_ACCESS_KEY_ID", "GOOGLE_APPLICATION_CREDENTIALS"})
    EXPECT_TRUE(looks_secret(name)) << name;
  for (const char* name : {"TERM", "LANG", "HOME", "EDITOR", "GIT_AUTHOR_NAME"})
    EXPECT_FALSE(looks_secret(name)) << name;
  // Found by a red-team: a `pass: ["*"]` let these through.
  for (const char* name :
       {"MYSQL_PWD", "PASSPHRASE", "SIGNING_KEY", "ENCRYPTION_KEY", "DOCKER_AUTH_CONFIG", "GH_PAT",
        "NPM_AUTH", "SENTRY_DSN", "SLACK_WEBHOOK_URL", "JWT", "BEARER", "COOKIE", "AUTH"})
    EXPECT_TRUE(looks_secret(name)) << name;
  for (const char* name : {"PWD", "OLDPWD", "KEYMAP", "PATH", "GIT_AUTHOR_EMAIL", "PATH_INFO"})
    EXPECT_FALSE(looks_secret(name)) << name;
  EXPECT_TRUE(looks_secret("DATABASE_URL", "postgres://app:hunter2@db.internal:5432/app"));
  EXPECT_TRUE(looks_secret("X", "https://user:pw@example.com"));
  EXPECT_FALSE(looks_secret("DATABASE_URL", "postgres://db.internal:5432/app"));
  EXPECT_FALSE(looks_secret("HOMEPAGE", "https://example.com/a:b@c"));  // no userinfo
  EXPECT_FALSE(looks_secret("BROWSER_URL", "https://user@example.com/"));
}

TEST(Environment, CaVariablesPointAtWardsBundle) {
  policy::Environment policy;
  policy.set = {{"SSL_CERT_FILE", "/elsewhere.pem"}};
  EnvContext context = kContext;
  context.ca_bundle = "/etc/ward/tls/ca-bundle.pem";
  auto env = build_environment(policy, kHost, context);
  for (const char* name :
       {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO", "PIP_CERT", "DENO_CERT", "AWS_CA_BUNDLE"})
    EXPECT_TRUE(has(env, std::string(name) + "=/etc/ward/tls/ca-bundle.pem")) << name;
  EXPECT_FALSE(has_name(build_environment(policy, kHost, kContext), "CURL_CA_BUNDLE"));
}

// A provider's variable holds its placeholder even when the policy passes or sets the real name.
TEST(Environment, PlaceholdersWinOverPassAndSet) {
  policy::Environment policy;
  policy.pass = {"GITHUB_TOKEN"};
  policy.set = {{"OPENAI_API_KEY", "from-policy"}};
  EnvContext context = kContext;
  context.secrets = {{"GITHUB_TOKEN", "wardcred-GITHUB_TOKEN-00"},
                     {"OPENAI_API_KEY", "wardcred-OPENAI_API_KEY-11"}};
  auto env = build_environment(policy, kHost, context);
  EXPECT_TRUE(has(env, "GITHUB_TOKEN=wardcred-GITHUB_TOKEN-00"));
  EXPECT_TRUE(has(env, "OPENAI_API_KEY=wardcred-OPENAI_API_KEY-11"));
  EXPECT_FALSE(has(env, "GITHUB_TOKEN=t0ken"));
}

// With inference.local served, the SDKs find it with no configuration; a provider's placeholder
// still wins for its own variable.
TEST(Environment, InferenceVariablesPointAtInferenceLocal) {
  EnvContext context = kContext;
  context.inference = true;
  context.secrets = {{"ANTHROPIC_API_KEY", "wardcred-ANTHROPIC_API_KEY-00"}};
  auto env = build_environment({}, kHost, context);
  EXPECT_TRUE(has(env, "OPENAI_BASE_URL=https://inference.local/v1"));
  EXPECT_TRUE(has(env, "ANTHROPIC_BASE_URL=https://inference.local"));
  EXPECT_TRUE(has(env, "OPENAI_API_KEY=ward-inference-local"));
  EXPECT_TRUE(has(env, "ANTHROPIC_API_KEY=wardcred-ANTHROPIC_API_KEY-00"));
  EXPECT_FALSE(has_name(build_environment({}, kHost, kContext), "OPENAI_BASE_URL"));
}

}  // namespace
}  // namespace ward::sandbox
