#include "inference/routes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

namespace ward::inference {
namespace {

const std::vector<std::string> kEnv = {"HOME=/home/u", "OPENAI_KEY=sk-from-env",
                                       "OPENAI_KEY=second", "CRLF_KEY=sk-canary-a\r\nX-Evil: 1",
                                       "EMPTY_KEY="};

Result<std::vector<Route>> load(std::string_view yaml) {
  return load_routes_string(yaml, "r.yaml", kEnv);
}

// Passes when loading fails with an error line that contains every one of `needles`.
::testing::AssertionResult FailsWith(const Result<std::vector<Route>>& r,
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

TEST(Routes, OpenShellExampleLoads) {
  auto r = load_routes_file(
      WARD_SHARED_DIR "/reference/openshell-policies/examples__local-inference__routes.yaml", {});
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  const Route& route = (*r)[0];
  EXPECT_EQ(route.name, "inference.local");
  EXPECT_EQ(route.endpoint, "http://localhost:1234/v1");
  EXPECT_EQ(route.scheme, "http");
  EXPECT_EQ(route.host, "localhost");
  EXPECT_EQ(route.port, 1234);
  EXPECT_EQ(route.base_path, "/v1");
  EXPECT_EQ(route.model, "local-model");
  EXPECT_EQ(route.protocols, std::vector<Protocol>{Protocol::kOpenAiChatCompletions});
  EXPECT_EQ(route.api_key, "lm-studio");
  EXPECT_EQ(route.api_key_env, "");
  EXPECT_EQ(route.authority(), "localhost:1234");
  EXPECT_EQ(route.backend(), "http://localhost:1234");
}

TEST(Routes, SeveralRoutesKeepTheirOrderAndKeys) {
  auto r = load(R"(routes:
  - name: primary
    endpoint: HTTPS://API.OpenAI.com./v1/
    model: gpt-4o
    protocols: [openai_chat_completions, OpenAI_Responses, openai_chat_completions]
    api_key_env: OPENAI_KEY
  - name: local
    endpoint: http://127.0.0.1:8000
    protocols: [anthropic_messages]
  - name: v6
    endpoint: http://[2001:DB8:0:0::1]:8080/api/v1
    model: ""
    protocols: [model_discovery]
    api_key: k
    provider_type: Anthropic
)");
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->size(), 3u);
  const Route& a = (*r)[0];
  EXPECT_EQ(a.name, "primary");
  EXPECT_EQ(a.scheme, "https");
  EXPECT_EQ(a.host, "api.openai.com");
  EXPECT_EQ(a.port, 443);
  EXPECT_EQ(a.base_path, "/v1");
  EXPECT_EQ(a.protocols,
            (std::vector<Protocol>{Protocol::kOpenAiChatCompletions, Protocol::kOpenAiResponses}));
  EXPECT_EQ(a.api_key, "sk-from-env");  // the first entry of the environment wins
  EXPECT_EQ(a.api_key_env, "OPENAI_KEY");
  EXPECT_EQ(a.key_header, KeyHeader::kByProtocol);
  EXPECT_EQ(a.authority(), "api.openai.com");
  EXPECT_EQ(a.backend(), "https://api.openai.com:443");

  const Route& b = (*r)[1];
  EXPECT_EQ(b.host, "127.0.0.1");
  EXPECT_EQ(b.port, 8000);
  EXPECT_EQ(b.base_path, "");
  EXPECT_EQ(b.model, "");
  EXPECT_EQ(b.api_key, "");  // a local backend may take no key

  const Route& c = (*r)[2];
  EXPECT_EQ(c.host, "2001:db8::1");
  EXPECT_EQ(c.base_path, "/api/v1");
  EXPECT_EQ(c.authority(), "[2001:db8::1]:8080");
  EXPECT_EQ(c.backend(), "http://[2001:db8::1]:8080");
  EXPECT_EQ(c.provider_type, "anthropic");
  EXPECT_EQ(c.key_header, KeyHeader::kXApiKey);
  EXPECT_EQ(c.protocols,
            (std::vector<Protocol>{Protocol::kOpenAiModels, Protocol::kAnthropicModels}));
}

TEST(Routes, ImpliedModelsProtocols) {
  Route r;
  r.protocols = {Protocol::kOpenAiEmbeddings};
  EXPECT_TRUE(route_serves(r, Protocol::kOpenAiEmbeddings));
  EXPECT_TRUE(route_serves(r, Protocol::kOpenAiModels));
  EXPECT_FALSE(route_serves(r, Protocol::kOpenAiChatCompletions));
  EXPECT_FALSE(route_serves(r, Protocol::kAnthropicModels));
  r.protocols = {Protocol::kAnthropicMessages};
  EXPECT_TRUE(route_serves(r, Protocol::kAnthropicModels));
  EXPECT_FALSE(route_serves(r, Protocol::kOpenAiModels));
  EXPECT_FALSE(route_serves(r, Protocol::kOpenAiChatCompletions));

  std::vector<Route> routes(3);
  routes[0].name = "a";
  routes[0].protocols = {Protocol::kAnthropicMessages};
  routes[1].name = "b";
  routes[1].protocols = {Protocol::kOpenAiChatCompletions};
  routes[2].name = "c";
  routes[2].protocols = {Protocol::kOpenAiCompletions, Protocol::kAnthropicMessages};
  std::vector<const Route*> chat = routes_for(routes, Protocol::kOpenAiModels);
  ASSERT_EQ(chat.size(), 2u);
  EXPECT_EQ(chat[0]->name, "b");
  EXPECT_EQ(chat[1]->name, "c");
  EXPECT_EQ(routes_for(routes, Protocol::kAnthropicMessages).size(), 2u);
  EXPECT_TRUE(routes_for(routes, Protocol::kOpenAiResponses).empty());
}

TEST(Routes, ProtocolNamesRoundTrip) {
  for (Protocol p :
       {Protocol::kOpenAiChatCompletions, Protocol::kOpenAiCompletions, Protocol::kOpenAiResponses,
        Protocol::kOpenAiEmbeddings, Protocol::kOpenAiModels, Protocol::kAnthropicMessages,
        Protocol::kAnthropicModels}) {
    EXPECT_EQ(parse_protocol(protocol_name(p)), p) << protocol_name(p);
  }
  EXPECT_EQ(protocol_name(Protocol::kAnthropicMessages), "anthropic_messages");
  EXPECT_FALSE(parse_protocol("openai"));
  EXPECT_FALSE(parse_protocol("model_discovery"));
}

TEST(Routes, ErrorsNameFileLineColumnAndKey) {
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h/v1\n"
                             "    protocols: [openai_chat_completions]\n    modle: m\n"),
                        {"r.yaml:5:5: error:", "modle", "model"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: ftp://h/v1\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15: error: routes[0].endpoint:", "http or https"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: not a url\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "absolute URL"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h:0/v1\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "port must be 1 to 65535"}));
  // Not digits after the colon: Boost.URL alone would make "es443/v1" the path.
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: https://h.test:es443/v1/\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "port must be 1 to 65535", "path start with '/'"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h:70000\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "port"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h/v1?x=1\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "query"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h/a/../v1\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:3:15:", "'..'"}));
  EXPECT_TRUE(FailsWith(
      load("routes:\n  - name: a\n    endpoint: http://h/v1\n"
           "    protocols: [openai_chat, anthropic_messages]\n"),
      {"r.yaml:4:17: error: routes[0].protocols[0]:", "unknown protocol", "'openai_chat'"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h/v1\n"
                             "    protocols: []\n"),
                        {"r.yaml:4:16:", "at least one protocol"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - endpoint: http://h/v1\n"
                             "    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:2:5: error: routes[0].name:", "missing name"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    protocols: [openai_chat_completions]\n"),
                        {"r.yaml:2:5: error: routes[0].endpoint:", "missing endpoint"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"),
                        {"r.yaml:2:5:", "missing protocols"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"
                             "    protocols: [anthropic_messages]\n    api_key: k\n"
                             "    api_key_env: OPENAI_KEY\n"),
                        {"r.yaml:6:5:", "not both"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"
                             "    protocols: [anthropic_messages]\n    api_key_env: NOPE_KEY\n"),
                        {"r.yaml:5:18: error: routes[0].api_key_env:", "NOPE_KEY is not set"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"
                             "    protocols: [anthropic_messages]\n    api_key_env: EMPTY_KEY\n"),
                        {"r.yaml:5:18:", "EMPTY_KEY is empty"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"
                             "    protocols: [anthropic_messages]\n    api_key_env: 1BAD\n"),
                        {"r.yaml:5:18:", "not an environment variable name"}));
  EXPECT_TRUE(FailsWith(load("routes:\n  - name: a\n    endpoint: http://h\n"
                             "    protocols: [anthropic_messages]\n    provider_type: azure\n"),
                        {"r.yaml:5:20:", "unknown provider_type"}));
  EXPECT_TRUE(FailsWith(load("routes: []\n"), {"r.yaml:1:1:", "empty"}));
  EXPECT_TRUE(FailsWith(load("routez: []\n"), {"r.yaml:1:1:", "routez"}));
  EXPECT_TRUE(FailsWith(load("- a\n"), {"r.yaml:1:1:", "expected a routes file"}));
  EXPECT_TRUE(FailsWith(load("# nothing\n\n"), {"r.yaml", "empty"}));
  EXPECT_TRUE(FailsWith(load("routes: [\n"), {"r.yaml:", "YAML syntax error"}));
}

TEST(Routes, EveryProblemOfAFileIsReported) {
  auto r = load(
      "routes:\n  - name: a\n    endpoint: ftp://h\n    protocols: [x]\n"
      "  - name: b\n    endpoint: http://h\n    protocols: [y]\n");
  ASSERT_FALSE(r);
  EXPECT_TRUE(FailsWith(r, {"r.yaml:3:15:"}));
  EXPECT_TRUE(FailsWith(r, {"r.yaml:4:17:", "'x'"}));
  EXPECT_TRUE(FailsWith(r, {"r.yaml:7:17:", "'y'"}));
}

TEST(Routes, KeysNeverAppearInMessages) {
  const char* bad[] = {
      // a line break in an inline key: it would split the Authorization header
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [anthropic_messages]\n"
      "    api_key: \"sk-canary-a\\r\\nX-Evil: 1\"\n",
      // the same from the environment
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [anthropic_messages]\n"
      "    api_key_env: CRLF_KEY\n",
      // a key in the URL
      "routes:\n  - name: a\n    endpoint: https://user:sk-canary-a@h/v1\n"
      "    protocols: [anthropic_messages]\n",
      "routes:\n  - name: a\n    endpoint: https://h/v1?key=sk-canary-a\n"
      "    protocols: [anthropic_messages]\n",
      "routes:\n  - name: a\n    endpoint: https://sk-canary-a@\n"
      "    protocols: [anthropic_messages]\n",
      // a key with a problem elsewhere in the route
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [nope]\n"
      "    api_key: sk-canary-a\n    api_key_env: OPENAI_KEY\n",
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [anthropic_messages]\n"
      "    api_key: [sk-canary-a]\n",
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [anthropic_messages]\n"
      "    api_key: {sk-canary-a: 1}\n",
      "routes:\n  - name: a\n    endpoint: http://h\n    protocols: [anthropic_messages]\n"
      "    api_key: \" sk-canary-a\"\n",
  };
  for (const char* yaml : bad) {
    auto r = load(yaml);
    ASSERT_FALSE(r) << yaml;
    EXPECT_EQ(r.error().message.find("canary"), std::string::npos) << r.error().message;
  }
  EXPECT_TRUE(FailsWith(load(bad[0]), {"r.yaml:5:14:", "api_key contains a line break"}));
  EXPECT_TRUE(FailsWith(load(bad[1]), {"r.yaml:5:18:", "CRLF_KEY contains a line break"}));
  EXPECT_TRUE(FailsWith(load(bad[2]), {"r.yaml:3:15:", "user name or password"}));
}

TEST(Routes, FileErrorsNameThePath) {
  auto r = load_routes_file("/nonexistent/routes.yaml", {});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/routes.yaml"), std::string::npos);
  EXPECT_EQ(r.error().err, ENOENT);
}

}  // namespace
}  // namespace ward::inference
