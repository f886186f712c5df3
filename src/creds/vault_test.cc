// Attack-style tests: the canary secret must reach the upstream only where its provider is bound,
// and never appear in the sandbox's environment, in a reason, or in text the proxy refuses.
#include "creds/vault.h"

#include <gtest/gtest.h>

#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "creds/scan.h"

namespace ward::creds {
namespace {

using Status = Rewrite::Status;

const std::string kCanary = "ghp_CANARY_7f3a9c";
const std::string kAnthropicCanary = "sk-ant-CANARY-1b2c";

bool contains(std::string_view hay, std::string_view needle) {
  return hay.find(needle) != std::string_view::npos;
}

Vault make_vault(std::vector<std::string> env = {"GITHUB_TOKEN=" + kCanary,
                                                 "ANTHROPIC_API_KEY=" + kAnthropicCanary,
                                                 "PATH=/usr/bin"}) {
  auto v = Vault::create({builtin_profile("github"), builtin_profile("anthropic")}, env);
  if (!v) ADD_FAILURE() << v.error().message;
  return std::move(*v);
}

std::string ph(const Vault& v, std::string_view var) {
  auto p = v.placeholder(var);
  if (!p) ADD_FAILURE() << "no placeholder for " << var;
  return p ? std::string(*p) : std::string();
}

BoundHere anywhere() {
  return [](std::string_view) { return true; };
}

TEST(Vault, EnvironmentHoldsPlaceholdersNeverSecrets) {
  Vault v = make_vault();
  ASSERT_EQ(v.environment().size(), 2u);
  for (const std::string& e : v.environment()) {
    EXPECT_FALSE(contains(e, kCanary)) << e;
    EXPECT_FALSE(contains(e, kAnthropicCanary)) << e;
  }
  const std::regex form("GITHUB_TOKEN=wardcred-GITHUB_TOKEN-[0-9a-f]{32}");
  EXPECT_TRUE(std::regex_match(v.environment()[0], form)) << v.environment()[0];
  EXPECT_EQ(v.environment()[1].rfind("ANTHROPIC_API_KEY=wardcred-ANTHROPIC_API_KEY-", 0), 0u);
  EXPECT_FALSE(v.placeholder("GH_TOKEN"));  // not set on the host: not given a placeholder
  EXPECT_FALSE(v.placeholder("PATH"));
}

TEST(Vault, PlaceholdersDifferPerSandboxAndPerVariable) {
  Vault a = make_vault();
  Vault b = make_vault();
  EXPECT_NE(ph(a, "GITHUB_TOKEN"), ph(b, "GITHUB_TOKEN"));
  auto both = Vault::create({builtin_profile("github")},
                            {"GITHUB_TOKEN=" + kCanary, "GH_TOKEN=" + kCanary});
  ASSERT_TRUE(both);
  auto random = [](const std::string& p) { return p.substr(p.size() - 32); };
  EXPECT_NE(random(ph(*both, "GITHUB_TOKEN")), random(ph(*both, "GH_TOKEN")));
}

TEST(Vault, RequiredCredentialMissingNamesItsVariables) {
  auto v = Vault::create({builtin_profile("github")}, {"HOME=/root", "GITHUB_TOKEN="});
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error().message, "github")) << v.error().message;
  EXPECT_TRUE(contains(v.error().message, "GITHUB_TOKEN, GH_TOKEN")) << v.error().message;
  auto o = Vault::create({builtin_profile("openai")}, {});
  ASSERT_FALSE(o);
  EXPECT_TRUE(contains(o.error().message, "set OPENAI_API_KEY")) << o.error().message;
  // Optional credentials (both of anthropic's) may be absent.
  EXPECT_TRUE(Vault::create({builtin_profile("anthropic")}, {}));
}

TEST(Vault, ValuesWithLineBreaksOrNulAreRefusedWithoutEchoingThem) {
  for (std::string bad : {std::string("ghp_abc\r\nX-Evil: 1"), std::string("ghp_abc\nx"),
                          std::string("ghp_abc\0x", 9)}) {
    auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=" + bad});
    ASSERT_FALSE(v);
    EXPECT_TRUE(contains(v.error().message, "GITHUB_TOKEN")) << v.error().message;
    EXPECT_FALSE(contains(v.error().message, "ghp_abc")) << v.error().message;
  }
}

TEST(Vault, BearerHeaderTowardsABoundEndpointCarriesTheSecret) {
  Vault v = make_vault();
  std::string value = "Bearer " + ph(v, "GITHUB_TOKEN");
  Rewrite r = v.rewrite_header("Authorization", value, v.bound_at("api.github.com", 443, "/user"));
  EXPECT_EQ(r.status, Status::kRewritten);
  EXPECT_EQ(value, "Bearer " + kCanary);
  EXPECT_EQ(r.variable, "GITHUB_TOKEN");
  EXPECT_EQ(r.provider, "github");
  EXPECT_FALSE(contains(r.reason, kCanary));

  std::string key = ph(v, "ANTHROPIC_API_KEY");
  r = v.rewrite_header("x-api-key", key, v.bound_at("api.anthropic.com", 443, "/v1/messages"));
  EXPECT_EQ(r.status, Status::kRewritten);
  EXPECT_EQ(key, kAnthropicCanary);
}

TEST(Vault, PlaceholderTowardsAnotherProvidersEndpointIsAMismatchAndTheSecretStaysHome) {
  Vault v = make_vault();
  const std::string original = "token " + ph(v, "GITHUB_TOKEN");
  std::string value = original;
  Rewrite r = v.rewrite_header("Authorization", value, v.bound_at("api.anthropic.com", 443, "/"));
  EXPECT_EQ(r.status, Status::kMismatch);
  EXPECT_EQ(value, original);
  EXPECT_EQ(r.variable, "GITHUB_TOKEN");
  EXPECT_EQ(r.provider, "github");
  EXPECT_TRUE(contains(r.reason, "credential_endpoint_mismatch"));
  EXPECT_FALSE(contains(r.reason, kCanary));
  // Lookalike hosts and other ports are not bound either.
  for (auto [host, port] : {std::pair<const char*, int>{"api.github.com.evil.com", 443},
                            {"evilapi.github.com", 443},
                            {"api.github.com", 80}}) {
    std::string t = "/x?t=" + ph(v, "GITHUB_TOKEN");
    EXPECT_EQ(v.rewrite(t, Context::kTarget, v.bound_at(host, port, "/x")).status,
              Status::kMismatch)
        << host;
    EXPECT_FALSE(contains(t, kCanary));
  }
  // No callback at all binds nothing.
  std::string t = ph(v, "GITHUB_TOKEN");
  EXPECT_EQ(v.rewrite(t, Context::kText, nullptr).status, Status::kMismatch);
}

TEST(Vault, OneUnboundPlaceholderRefusesTheWholeTextWithNoSecretInIt) {
  Vault v = make_vault();
  const std::string original =
      "{\"a\":\"" + ph(v, "ANTHROPIC_API_KEY") + "\",\"g\":\"" + ph(v, "GITHUB_TOKEN") + "\"}";
  std::string body = original;
  Rewrite r = v.rewrite(body, Context::kJson, v.bound_at("api.anthropic.com", 443, "/v1"));
  EXPECT_EQ(r.status, Status::kMismatch);
  EXPECT_EQ(body, original);
  EXPECT_FALSE(contains(body, kAnthropicCanary));
}

TEST(Vault, GitBasicAuthRoundTrip) {
  Vault v = make_vault();
  std::string value = "Basic " + detail::base64_encode("x-access-token:" + ph(v, "GITHUB_TOKEN"));
  Rewrite r =
      v.rewrite_header("authorization", value, v.bound_at("github.com", 443, "/o/r.git/info/refs"));
  ASSERT_EQ(r.status, Status::kRewritten);
  ASSERT_EQ(value.rfind("Basic ", 0), 0u);
  auto decoded = detail::base64_decode(value.substr(6));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, "x-access-token:" + kCanary);

  // The same header towards an unbound host: refused, and the header still holds the placeholder.
  std::string elsewhere =
      "Basic " + detail::base64_encode("x-access-token:" + ph(v, "GITHUB_TOKEN"));
  const std::string before = elsewhere;
  EXPECT_EQ(v.rewrite_header("Authorization", elsewhere, v.bound_at("gitlab.com", 443, "/")).status,
            Status::kMismatch);
  EXPECT_EQ(elsewhere, before);
}

TEST(Vault, Base64MatchesRfc4648) {
  EXPECT_EQ(detail::base64_encode(""), "");
  EXPECT_EQ(detail::base64_encode("f"), "Zg==");
  EXPECT_EQ(detail::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(detail::base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(detail::base64_decode("Zm9vYg=="), "foob");
  EXPECT_EQ(detail::base64_decode("Zm9vYg"), "foob");
  EXPECT_FALSE(detail::base64_decode("Zm9v!"));
  EXPECT_FALSE(detail::base64_decode("Z"));
}

TEST(Vault, TargetQueryValuesAndPathSegmentsArePercentEncoded) {
  auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=a b/c+d&e%f"});
  ASSERT_TRUE(v);
  const std::string p = ph(*v, "GITHUB_TOKEN");
  std::string target = "/repos/o/r?access_token=" + p + "&per_page=1";
  EXPECT_EQ(
      v->rewrite(target, Context::kTarget, v->bound_at("api.github.com", 443, "/repos")).status,
      Status::kRewritten);
  EXPECT_EQ(target, "/repos/o/r?access_token=a%20b%2Fc%2Bd%26e%25f&per_page=1");

  std::string path = "/bot" + p + "/sendMessage";
  EXPECT_EQ(v->rewrite(path, Context::kTarget, anywhere()).status, Status::kRewritten);
  EXPECT_EQ(path, "/bota%20b%2Fc%2Bd%26e%25f/sendMessage");

  std::string form = "user=__token__&password=" + p;
  EXPECT_EQ(v->rewrite(form, Context::kForm, anywhere()).status, Status::kRewritten);
  EXPECT_EQ(form, "user=__token__&password=a%20b%2Fc%2Bd%26e%25f");
}

TEST(Vault, JsonBodyValueIsEscaped) {
  const std::string secret = "se\"cr\\et\tx";
  auto v = Vault::create({builtin_profile("github")}, {"GITHUB_TOKEN=" + secret});
  ASSERT_TRUE(v);
  std::string body = R"({"token": ")" + ph(*v, "GITHUB_TOKEN") + R"(", "n": 1})";
  EXPECT_EQ(v->rewrite(body, Context::kJson, anywhere()).status, Status::kRewritten);
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << body;
  EXPECT_EQ(parsed["token"], secret);
  EXPECT_EQ(parsed["n"], 1);
}

TEST(Vault, SeveralPlaceholdersAreAllSubstituted) {
  Vault v = make_vault();
  std::string text =
      ph(v, "GITHUB_TOKEN") + " " + ph(v, "ANTHROPIC_API_KEY") + "." + ph(v, "GITHUB_TOKEN");
  Rewrite r = v.rewrite(text, Context::kText, anywhere());
  EXPECT_EQ(r.status, Status::kRewritten);
  EXPECT_EQ(text, kCanary + " " + kAnthropicCanary + "." + kCanary);
  EXPECT_EQ(r.variable, "GITHUB_TOKEN,ANTHROPIC_API_KEY");
  EXPECT_FALSE(contains(r.reason, kCanary));
}

TEST(Vault, NearMissPlaceholdersAreUnresolved) {
  Vault v = make_vault();
  Vault other = make_vault();
  const std::string p = ph(v, "GITHUB_TOKEN");
  std::string flipped = p;
  flipped.back() = flipped.back() == '0' ? '1' : '0';
  std::string upper_random = p;
  for (std::size_t i = p.size() - 32; i < p.size(); ++i)
    upper_random[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(p[i])));
  std::string renamed = "wardcred-GH_TOKEN-" + p.substr(p.size() - 32);
  const std::string near_misses[] = {
      flipped,                    // wrong random part
      p.substr(0, p.size() - 1),  // truncated
      p.substr(0, 20),            // truncated more
      p + "0",                    // one character too many
      p + "_x",                   // run continues
      "WARDCRED-" + p.substr(9),  // case-changed prefix
      "WardCred-" + p.substr(9),  //
      upper_random,               // case-changed random part
      renamed,                    // another variable's name
      ph(other, "GITHUB_TOKEN"),  // another sandbox's placeholder
      "wardcred-",                // the bare prefix
  };
  if (upper_random == p) ADD_FAILURE() << "random part has no letters; flaky by chance";
  for (const std::string& miss : near_misses) {
    for (Context c : {Context::kHeader, Context::kTarget, Context::kJson, Context::kText}) {
      std::string text = "x=" + miss + "&y=1";
      const std::string before = text;
      Rewrite r = v.rewrite(text, c, anywhere());
      EXPECT_EQ(r.status, Status::kUnresolved) << miss;
      EXPECT_EQ(text, before);
      EXPECT_FALSE(r.reason.empty());
    }
  }
  // A valid placeholder next to a bad one does not get substituted either.
  std::string mixed = p + " " + flipped;
  EXPECT_EQ(v.rewrite(mixed, Context::kText, anywhere()).status, Status::kUnresolved);
  EXPECT_FALSE(contains(mixed, kCanary));
}

TEST(Vault, EscapedPlaceholdersAreUnresolved) {
  Vault v = make_vault();
  const std::string p = ph(v, "GITHUB_TOKEN");
  std::string all_percent;
  for (char c : p) all_percent += fmt::format("%{:02X}", static_cast<unsigned char>(c));
  const std::string escaped[] = {
      "%77" + p.substr(1),              // first letter percent-encoded
      "%57" + p.substr(1),              // ... as 'W'
      all_percent,                      // every character
      "wardcred%2D" + p.substr(9),      // the dash
      "wardcred%2d" + p.substr(9),      // lower-case hex
      "%2577" + p.substr(1),            // double encoding
      "\\u0077" + p.substr(1),          // JSON \u escape
      "wardcred\\u002d" + p.substr(9),  //
      "\\u002577" + p.substr(1),        // \u0025 then 77: "%77" once decoded
  };
  for (const std::string& e : escaped) {
    for (Context c : {Context::kHeader, Context::kTarget, Context::kJson, Context::kForm}) {
      std::string text = "q=" + e;
      const std::string before = text;
      Rewrite r = v.rewrite(text, c, anywhere());
      EXPECT_EQ(r.status, Status::kUnresolved) << e;
      EXPECT_EQ(text, before);
    }
  }
  // Escapes that spell nothing of the kind are fine.
  std::string harmless = "q=%7Bx%7D&path=a\\u0041b " + p;
  EXPECT_EQ(v.rewrite(harmless, Context::kText, anywhere()).status, Status::kRewritten);
  // Basic credentials with a percent-encoded placeholder inside.
  std::string basic = "Basic " + detail::base64_encode("x-access-token:%77" + p.substr(1));
  EXPECT_EQ(v.rewrite_header("Authorization", basic, anywhere()).status, Status::kUnresolved);
}

TEST(Vault, TextWithoutPlaceholdersIsUnchanged) {
  Vault v = make_vault();
  for (std::string text : {std::string(""), std::string("Bearer ghp_real_token_typed_by_hand"),
                           std::string("{\"x\": \"wardcre\"}"), std::string("%41%42\\n")}) {
    const std::string before = text;
    EXPECT_EQ(v.rewrite(text, Context::kJson, anywhere()).status, Status::kUnchanged);
    EXPECT_EQ(text, before);
  }
  std::string basic = "Basic " + detail::base64_encode("user:pass");
  const std::string before = basic;
  EXPECT_EQ(v.rewrite_header("Authorization", basic, anywhere()).status, Status::kUnchanged);
  EXPECT_EQ(basic, before);
}

TEST(Vault, BindingsFromProfilesAndPolicy) {
  Profile ghe;
  ghe.id = "ghe";
  ghe.credentials.push_back(
      {"token", "", {"GITHUB_TOKEN"}, true, AuthStyle::kBearer, "authorization", ""});
  policy::Endpoint graphql;
  graphql.host = "ghe.example.com";
  graphql.ports = {443};
  graphql.path = "/api/graphql";
  ghe.endpoints.push_back(graphql);
  auto v = Vault::create({builtin_profile("github"), &ghe}, {"GITHUB_TOKEN=" + kCanary});
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_EQ(v->environment().size(), 1u);  // one variable, two providers, one placeholder

  EXPECT_TRUE(v->bound("github", "api.github.com", 443, "/"));
  EXPECT_TRUE(v->bound("github", "uploads.github.com", 443, "/x"));
  EXPECT_FALSE(v->bound("github", "gist.github.com", 443, "/"));
  EXPECT_TRUE(v->bound("ghe", "ghe.example.com", 443, "/api/graphql?x=1"));
  EXPECT_FALSE(v->bound("ghe", "ghe.example.com", 443, "/api/v3/user"));
  EXPECT_FALSE(v->bound("github", "ghe.example.com", 443, "/api/graphql"));

  std::string t = ph(*v, "GITHUB_TOKEN");
  Rewrite r = v->rewrite(t, Context::kHeader, v->bound_at("ghe.example.com", 443, "/api/graphql"));
  EXPECT_EQ(r.status, Status::kRewritten);
  EXPECT_EQ(r.provider, "ghe");

  ASSERT_TRUE(v->add_binding("github", "*.proxy.example.com", {443, 8443}));
  EXPECT_TRUE(v->bound("github", "a.proxy.example.com", 8443, "/"));
  EXPECT_FALSE(v->bound("github", "proxy.example.com", 8443, "/"));
  auto unknown = v->add_binding("gitlab", "gitlab.com", {443});
  ASSERT_FALSE(unknown);
  EXPECT_TRUE(contains(unknown.error().message, "gitlab"));
  EXPECT_FALSE(v->add_binding("github", "exa mple.com", {443}));
  EXPECT_FALSE(v->add_binding("github", "example.com", {}));
}

TEST(Vault, ProfilesBuiltInCodeStillNeedVariableNames) {
  Profile odd;
  odd.id = "odd";
  odd.credentials.push_back({"k", "", {"A=B"}, false, AuthStyle::kUnspecified, "", ""});
  auto v = Vault::create({&odd}, {"A=B=c"});
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error().message, "'A=B' is not a variable name")) << v.error().message;
}

TEST(Vault, TwoProfilesWithOneIdAreRefused) {
  Profile a;
  a.id = "github";
  auto v = Vault::create({builtin_profile("github"), &a}, {"GITHUB_TOKEN=x"});
  ASSERT_FALSE(v);
  EXPECT_TRUE(contains(v.error().message, "'github'"));
}

}  // namespace
}  // namespace ward::creds
