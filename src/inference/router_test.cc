#include "inference/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ward::inference {
namespace {

Route route(std::string endpoint_host, std::uint16_t port, std::string base_path,
            std::string key = "sk-backend") {
  Route r;
  r.name = "r";
  r.scheme = "http";
  r.host = std::move(endpoint_host);
  r.port = port;
  r.base_path = std::move(base_path);
  r.api_key = std::move(key);
  r.model = "backend-model";
  r.protocols = {Protocol::kOpenAiChatCompletions, Protocol::kAnthropicMessages};
  return r;
}

http::request_header<> request(http::verb method, std::string target) {
  http::request_header<> req;
  req.method(method);
  req.target(target);
  req.version(11);
  return req;
}

std::optional<Protocol> protocol_of(std::string_view method, std::string_view path,
                                    bool anthropic = false) {
  auto r = classify(method, path, anthropic);
  if (!r) return std::nullopt;
  return *r;
}

int refusal(std::string_view method, std::string_view path) {
  auto r = classify(method, path, false);
  return r ? 0 : r.error().status;
}

TEST(Classify, KnownPathsAndMethods) {
  EXPECT_EQ(protocol_of("POST", "/v1/chat/completions"), Protocol::kOpenAiChatCompletions);
  EXPECT_EQ(protocol_of("POST", "/v1/completions"), Protocol::kOpenAiCompletions);
  EXPECT_EQ(protocol_of("POST", "/v1/responses"), Protocol::kOpenAiResponses);
  EXPECT_EQ(protocol_of("POST", "/v1/embeddings"), Protocol::kOpenAiEmbeddings);
  EXPECT_EQ(protocol_of("POST", "/v1/messages"), Protocol::kAnthropicMessages);
  EXPECT_EQ(protocol_of("POST", "/v1/messages", true), Protocol::kAnthropicMessages);
  EXPECT_EQ(protocol_of("GET", "/v1/models"), Protocol::kOpenAiModels);
  EXPECT_EQ(protocol_of("GET", "/v1/models", true), Protocol::kAnthropicModels);
  EXPECT_EQ(protocol_of("GET", "/v1/models/gpt-4o"), Protocol::kOpenAiModels);
  EXPECT_EQ(protocol_of("GET", "/v1/models/claude-3-5-haiku-latest", true),
            Protocol::kAnthropicModels);
  EXPECT_EQ(protocol_of("GET", "/v1/models/meta-llama/Llama-3.1-8B"), Protocol::kOpenAiModels);
  EXPECT_EQ(protocol_of("GET", "/v1/models/org%2Fmodel:latest"), Protocol::kOpenAiModels);
}

TEST(Classify, OtherPathsAre403) {
  for (std::string_view path : {"/",
                                "/v1",
                                "/v1/",
                                "/v2/chat/completions",
                                "/v1/chat/completions/",
                                "/v1/files",
                                "/v1/chat/completions/x",
                                "/V1/messages",
                                "/v1/chat%2Fcompletions",
                                "//v1/messages",
                                "/v1/models/",
                                "/v1/models/..",
                                "/v1/models/a/../../admin",
                                "/v1/models/%2e%2e",
                                "/v1/models/a%2F..%2F..%2Fadmin",
                                "/v1/models/a//b",
                                "/v1/models/a%00b",
                                "/v1/models/a\\b",
                                "/v1/models/a%5cb",
                                "/v1/models/a%zz",
                                "/v1/models/a%2",
                                "/admin",
                                "/v1/models/x y"}) {
    EXPECT_EQ(refusal("POST", path), 403) << path;
    EXPECT_EQ(refusal("GET", path), 403) << path;
  }
  auto r = classify("GET", "/v1/files", false);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().reason.find("/v1/chat/completions"), std::string::npos);
}

TEST(Classify, WrongMethodIs405WithAllow) {
  auto r = classify("GET", "/v1/chat/completions", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().status, 405);
  EXPECT_EQ(r.error().allow, "POST");
  r = classify("POST", "/v1/models", false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().status, 405);
  EXPECT_EQ(r.error().allow, "GET");
  EXPECT_EQ(refusal("DELETE", "/v1/models/gpt-4o"), 405);
  EXPECT_EQ(refusal("PUT", "/v1/messages"), 405);
  EXPECT_EQ(refusal("post", "/v1/messages"), 405);  // methods are case-sensitive
  EXPECT_EQ(refusal("HEAD", "/v1/models"), 405);
}

TEST(Classify, FromARequestHeader) {
  auto req = request(http::verb::get, "/v1/models?limit=20");
  EXPECT_EQ(classify(req), Protocol::kOpenAiModels);
  req.set("Anthropic-Version", "2023-06-01");
  EXPECT_TRUE(anthropic_style(req));
  EXPECT_EQ(classify(req), Protocol::kAnthropicModels);
  auto req2 = request(http::verb::get, "/v1/models");
  req2.set("X-Api-Key", "placeholder");
  EXPECT_EQ(classify(req2), Protocol::kAnthropicModels);
}

TEST(PrepareRequest, OpenAiHeadersAreFilteredAndTheKeyInjected) {
  auto req = request(http::verb::post, "/v1/chat/completions?trace=1");
  req.set(http::field::host, "inference.local");
  req.set(http::field::authorization, "Bearer ward-placeholder-123");
  req.set("X-Api-Key", "caller-key");
  req.set(http::field::cookie, "session=abc");
  req.insert(http::field::cookie, "other=def");
  req.set(http::field::content_type, "application/json");
  req.set(http::field::content_length, "42");
  req.set(http::field::accept, "application/json");
  req.set(http::field::accept_encoding, "gzip, br");
  req.set(http::field::user_agent, "OpenAI/Python 1.51.0");
  req.set("Idempotency-Key", "stainless-retry-1");
  req.set("X-Stainless-Retry-Count", "0");
  req.set("x-stainless-os", "Linux");
  req.set("OpenAI-Organization", "org-1");
  req.set("OpenAI-Project", "proj-1");
  req.set("OpenAI-Beta", "assistants=v2");
  req.set("anthropic-beta", "x");  // not an OpenAI header
  req.set(http::field::connection, "keep-alive");
  req.set(http::field::proxy_authorization, "Basic eA==");
  req.set(http::field::expect, "100-continue");
  req.set("X-Forwarded-For", "10.0.0.1");
  req.set("traceparent", "00-1-2-01");

  Route r = route("api.example.com", 443, "/v1");
  r.scheme = "https";
  prepare_request(req, r, Protocol::kOpenAiChatCompletions);

  std::map<std::string, std::string> got;
  for (const auto& f : req) got[std::string(f.name_string())] += std::string(f.value());
  std::map<std::string, std::string> want = {
      {"Host", "api.example.com"},
      {"Authorization", "Bearer sk-backend"},
      {"Content-Type", "application/json"},
      {"Content-Length", "42"},
      {"Accept", "application/json"},
      {"User-Agent", "OpenAI/Python 1.51.0"},
      {"Idempotency-Key", "stainless-retry-1"},
      {"X-Stainless-Retry-Count", "0"},
      {"x-stainless-os", "Linux"},
      {"OpenAI-Organization", "org-1"},
      {"OpenAI-Project", "proj-1"},
      {"OpenAI-Beta", "assistants=v2"},
  };
  EXPECT_EQ(got, want);
  EXPECT_EQ(req.target(), "/v1/chat/completions?trace=1");
  EXPECT_EQ(req.method(), http::verb::post);
}

TEST(PrepareRequest, AnthropicGetsXApiKeyAndADefaultVersion) {
  auto req = request(http::verb::post, "/v1/messages?beta=true");
  req.set("x-api-key", "ward-placeholder-123");
  req.set(http::field::authorization, "Bearer other");
  req.set("anthropic-beta", "prompt-caching-2024-07-31");
  req.set("OpenAI-Organization", "org-1");  // not an Anthropic header
  Route r = route("127.0.0.1", 8080, "");
  prepare_request(req, r, Protocol::kAnthropicMessages);
  EXPECT_EQ(req["x-api-key"], "sk-backend");
  EXPECT_EQ(req.count(http::field::authorization), 0u);
  EXPECT_EQ(req["anthropic-version"], "2023-06-01");
  EXPECT_EQ(req["anthropic-beta"], "prompt-caching-2024-07-31");
  EXPECT_EQ(req.count("OpenAI-Organization"), 0u);
  EXPECT_EQ(req[http::field::host], "127.0.0.1:8080");
  EXPECT_EQ(req.target(), "/v1/messages?beta=true");

  auto versioned = request(http::verb::get, "/v1/models");
  versioned.set("anthropic-version", "2024-01-01");
  prepare_request(versioned, r, Protocol::kAnthropicModels);
  EXPECT_EQ(versioned["anthropic-version"], "2024-01-01");  // the caller's version is kept
  EXPECT_EQ(versioned.count("anthropic-version"), 1u);
}

TEST(PrepareRequest, NoKeyMeansNoAuthorizationAtAll) {
  Route r = route("localhost", 11434, "/v1", "");
  auto req = request(http::verb::post, "/v1/chat/completions");
  req.set(http::field::authorization, "Bearer ward-placeholder");
  prepare_request(req, r, Protocol::kOpenAiChatCompletions);
  EXPECT_EQ(req.count(http::field::authorization), 0u);
  EXPECT_EQ(req.count("x-api-key"), 0u);
  auto a = request(http::verb::post, "/v1/messages");
  a.set("x-api-key", "ward-placeholder");
  prepare_request(a, r, Protocol::kAnthropicMessages);
  EXPECT_EQ(a.count("x-api-key"), 0u);
  EXPECT_EQ(a.count(http::field::authorization), 0u);
}

TEST(PrepareRequest, ProviderTypeFixesTheKeyHeader) {
  Route r = route("gw", 80, "/v1");
  r.key_header = KeyHeader::kBearer;
  auto a = request(http::verb::post, "/v1/messages");
  prepare_request(a, r, Protocol::kAnthropicMessages);
  EXPECT_EQ(a[http::field::authorization], "Bearer sk-backend");
  EXPECT_EQ(a.count("x-api-key"), 0u);
  r.key_header = KeyHeader::kXApiKey;
  auto o = request(http::verb::post, "/v1/chat/completions");
  prepare_request(o, r, Protocol::kOpenAiChatCompletions);
  EXPECT_EQ(o["x-api-key"], "sk-backend");
  EXPECT_EQ(o.count(http::field::authorization), 0u);
}

TEST(PrepareRequest, TargetsForEndpointsWithAndWithoutV1) {
  EXPECT_EQ(backend_target(route("h", 80, "/v1"), "/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(backend_target(route("h", 80, ""), "/v1/chat/completions"), "/v1/chat/completions");
  EXPECT_EQ(backend_target(route("h", 80, "/api/v1"), "/v1/models/a?x=1"), "/api/v1/models/a?x=1");
  EXPECT_EQ(backend_target(route("h", 80, "/openai"), "/v1/embeddings"), "/openai/v1/embeddings");
  EXPECT_EQ(backend_target(route("h", 80, "/v1"), "/v1/messages?beta=true"),
            "/v1/messages?beta=true");
  EXPECT_EQ(backend_target(route("h", 80, "/v1"), "/v1"), "/v1");
  EXPECT_EQ(backend_target(route("h", 80, "/v10"), "/v1/models"), "/v10/v1/models");

  Route v6 = route("::1", 8443, "/v1");
  v6.scheme = "https";
  auto req = request(http::verb::get, "/v1/models");
  prepare_request(req, v6, Protocol::kOpenAiModels);
  EXPECT_EQ(req[http::field::host], "[::1]:8443");
  Route plain = route("backend.test", 80, "");
  auto req2 = request(http::verb::get, "/v1/models");
  prepare_request(req2, plain, Protocol::kOpenAiModels);
  EXPECT_EQ(req2[http::field::host], "backend.test");
}

TEST(RewriteModel, TheRoutesModelReplacesTheCallers) {
  Route r = route("h", 80, "/v1");
  auto out = rewrite_body(R"({"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o",)"
                          R"("stream":true,"temperature":0.5})",
                          r);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->text, R"({"messages":[{"role":"user","content":"hi"}],"model":"backend-model",)"
                       R"("stream":true,"temperature":0.5})");
  EXPECT_EQ(out->model, "backend-model");
  EXPECT_TRUE(out->stream);

  auto added = rewrite_model(R"({"input":"x"})", r);
  ASSERT_TRUE(added);
  EXPECT_EQ(*added, R"({"input":"x","model":"backend-model"})");
}

TEST(RewriteModel, NoRouteModelKeepsTheBodyByteForByte) {
  Route r = route("h", 80, "/v1");
  r.model = "";
  std::string body = "{ \"model\" : \"llama3\",\n \"stream\": false, \"n\": 1.0 }";
  auto out = rewrite_body(body, r);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->text, body);
  EXPECT_EQ(out->model, "llama3");
  EXPECT_FALSE(out->stream);
}

TEST(RewriteModel, BodiesThatAreNotAJsonObjectAreRefused) {
  Route r = route("h", 80, "/v1");
  for (std::string_view body :
       {"", "not json", "[1,2]", "\"s\"", "42", "{\"a\":", "{} {}", "{\"a\":\"\xff\"}"}) {
    auto out = rewrite_body(body, r);
    EXPECT_FALSE(out) << body;
  }
  auto bad = rewrite_model(R"({"messages":"secret prompt text", oops})", r);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message.find("secret"), std::string::npos);
  std::string deep(300, '[');
  deep = "{\"a\":" + deep + std::string(300, ']') + "}";
  auto d = rewrite_body(deep, r);
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find("256"), std::string::npos);
  std::string fine = "{\"a\":" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_TRUE(rewrite_body(fine, r));
  // Brackets inside strings are not nesting.
  EXPECT_TRUE(rewrite_body("{\"a\":\"" + std::string(1000, '[') + "\"}", r));
}

// Found in review: the body was parsed into an ordered_json document, whose members are found by
// walking the object: {"k0":0,"k1":0,...} of a million members took the proxy's thread for
// minutes. The members are found by a scan now, and the model's value is replaced in place; a
// key spelt with escapes is the same key, and two "model" (or "stream") members are refused
// (backends disagree on which one counts). A caller's model name is cut to 256 bytes for the
// records, at a character's start, and the body is untouched.
TEST(RewriteModel, WideObjectsEscapedKeysAndDuplicates) {
  Route r = route("h", 80, "/v1");
  std::string wide = "{";
  for (int i = 0; i < 300000; ++i) wide += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":0";
  wide += "}";
  auto out = rewrite_body(wide, r);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->text, wide.substr(0, wide.size() - 1) + ",\"model\":\"backend-model\"}");

  auto escaped = rewrite_body(R"({ "mod\u0065l" : "caller", "a": [1, {"model": "inner"}] })", r);
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->text, R"({ "mod\u0065l" : "backend-model", "a": [1, {"model": "inner"}] })");
  auto empty = rewrite_model("{ }", r);
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, R"({ "model":"backend-model"})");

  for (std::string_view twice :
       {R"({"model":"a","x":1,"model":"b"})", R"({"model":"a","mod\u0065l":"b"})",
        R"({"stream":false,"stream":true})"}) {
    auto d = rewrite_body(twice, r);
    ASSERT_FALSE(d) << twice;
    EXPECT_NE(d.error().message.find("two"), std::string::npos) << d.error().message;
  }
  // A backend that matches names regardless of case (Go's encoding/json) would take "Model".
  for (std::string_view cased :
       {R"({"model":"a","Model":"big"})", R"({"MODEL":"big"})", R"({"Stream":true})"}) {
    auto d = rewrite_body(cased, r);
    ASSERT_FALSE(d) << cased;
    EXPECT_NE(d.error().message.find("case"), std::string::npos) << d.error().message;
  }

  Route keep = route("h", 80, "/v1");
  keep.model = "";
  const std::string long_name = std::string(255, 'm') + "\xc3\xa9" + std::string(100, 'n');
  const std::string body = nlohmann::json{{"model", long_name}}.dump();
  auto kept = rewrite_body(body, keep);
  ASSERT_TRUE(kept);
  EXPECT_EQ(kept->text, body);
  EXPECT_EQ(kept->model, std::string(255, 'm'));
}

TEST(RewriteModel, StreamDetection) {
  EXPECT_TRUE(wants_stream(R"({"stream":true})"));
  EXPECT_FALSE(wants_stream(R"({"stream":false})"));
  EXPECT_FALSE(wants_stream(R"({"stream":"true"})"));
  EXPECT_FALSE(wants_stream(R"({"stream":1})"));
  EXPECT_FALSE(wants_stream(R"({"options":{"stream":true}})"));
  EXPECT_FALSE(wants_stream(R"({})"));
  EXPECT_FALSE(wants_stream("not json"));
}

}  // namespace
}  // namespace ward::inference
