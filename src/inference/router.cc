#include "inference/router.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/strings.h"

namespace ward::inference {
namespace {

constexpr int kMaxNesting = 256;
constexpr std::string_view kAnthropicVersion = "2023-06-01";
constexpr std::string_view kModelsPath = "/v1/models";

struct PostPath {
  std::string_view path;
  Protocol protocol;
};
constexpr std::array<PostPath, 5> kPostPaths = {{
    {"/v1/chat/completions", Protocol::kOpenAiChatCompletions},
    {"/v1/completions", Protocol::kOpenAiCompletions},
    {"/v1/responses", Protocol::kOpenAiResponses},
    {"/v1/embeddings", Protocol::kOpenAiEmbeddings},
    {"/v1/messages", Protocol::kAnthropicMessages},
}};

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto low = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return low(x) == low(y);
         });
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 3986 pchar minus '%' (handled by the caller).
bool pchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
}

// A model id in /v1/models/{id}: path characters, "/" allowed between segments; once decoded no
// segment is empty, "." or "..", and no control byte or backslash (which some servers read as
// "/"). A backend that decodes %2F before resolving dot segments sees no ".." either.
bool valid_model_id(std::string_view id) {
  if (id.empty()) return false;
  std::string decoded;
  for (std::size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    if (c == '%') {
      if (i + 2 >= id.size()) return false;
      int h = hex(id[i + 1]), l = hex(id[i + 2]);
      if (h < 0 || l < 0) return false;
      decoded.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '/' || pchar(c)) {
      decoded.push_back(c);
    } else {
      return false;
    }
  }
  for (char c : decoded) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') return false;
  }
  for (std::string_view segment : split(decoded, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return false;
  }
  return true;
}

bool allowed_header(std::string_view name, Protocol p) {
  static constexpr std::string_view kCommon[] = {"content-type",      "content-length",
                                                 "transfer-encoding", "accept",
                                                 "user-agent",        "idempotency-key"};
  static constexpr std::string_view kOpenAi[] = {"openai-organization", "openai-project",
                                                 "openai-beta"};
  static constexpr std::string_view kAnthropic[] = {"anthropic-version", "anthropic-beta"};
  auto listed = [&](auto& list) {
    return std::any_of(std::begin(list), std::end(list),
                       [&](std::string_view n) { return iequals(n, name); });
  };
  if (listed(kCommon) || istarts_with(name, "x-stainless-")) return true;
  return is_anthropic(p) ? listed(kAnthropic) : listed(kOpenAi);
}

// Counts nesting outside strings; true when it never goes deeper than kMaxNesting.
bool shallow_enough(std::string_view body) {
  int depth = 0;
  bool in_string = false, escape = false;
  for (char c : body) {
    if (in_string) {
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxNesting) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

}  // namespace

tl::expected<Protocol, Refusal> classify(std::string_view method, std::string_view path,
                                         bool anthropic_style) {
  for (const PostPath& p : kPostPaths) {
    if (path != p.path) continue;
    if (method == "POST") return p.protocol;
    return tl::unexpected(Refusal{405, "this inference API path takes POST", "POST"});
  }
  bool models = path == kModelsPath || (path.size() > kModelsPath.size() + 1 &&
                                        path.substr(0, kModelsPath.size() + 1) == "/v1/models/" &&
                                        valid_model_id(path.substr(kModelsPath.size() + 1)));
  if (models) {
    if (method == "GET")
      return anthropic_style ? Protocol::kAnthropicModels : Protocol::kOpenAiModels;
    return tl::unexpected(Refusal{405, "the models API takes GET", "GET"});
  }
  return tl::unexpected(
      Refusal{403,
              "inference.local serves /v1/chat/completions, /v1/completions, /v1/responses, "
              "/v1/embeddings, /v1/messages and /v1/models only",
              ""});
}

bool anthropic_style(const http::request_header<>& req) {
  return req.find("anthropic-version") != req.end() || req.find("x-api-key") != req.end();
}

tl::expected<Protocol, Refusal> classify(const http::request_header<>& req) {
  std::string_view target = req.target();
  return classify(req.method_string(), target.substr(0, target.find('?')), anthropic_style(req));
}

std::string backend_target(const Route& route, std::string_view target) {
  std::size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? "" : target.substr(q);
  const std::string& base = route.base_path;
  bool versioned = path == "/v1" || path.substr(0, 4) == "/v1/";
  bool base_versioned = base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0;
  std::string out = base;
  out += versioned && base_versioned ? path.substr(3) : path;
  if (out.empty() || out.front() != '/') out.insert(out.begin(), '/');
  out += query;
  return out;
}

void prepare_request(http::request_header<>& req, const Route& route, Protocol p) {
  std::vector<std::string> drop;
  for (const auto& field : req) {
    std::string_view name = field.name_string();
    if (!allowed_header(name, p)) drop.emplace_back(name);
  }
  for (const std::string& name : drop) req.erase(name);
  req.set(http::field::host, route.authority());
  if (!route.api_key.empty()) {
    bool x_api_key = route.key_header == KeyHeader::kXApiKey ||
                     (route.key_header == KeyHeader::kByProtocol && is_anthropic(p));
    if (x_api_key) {
      req.set("x-api-key", route.api_key);
    } else {
      req.set(http::field::authorization, "Bearer " + route.api_key);
    }
  }
  if (is_anthropic(p) && req.find("anthropic-version") == req.end())
    req.set("anthropic-version", kAnthropicVersion);
  req.target(backend_target(route, req.target()));
}

Result<RequestBody> rewrite_body(std::string_view body, const Route& route) {
  if (!shallow_enough(body)) return fail("the request body nests JSON deeper than 256 levels");
  // ordered_json keeps the caller's member order when the body is written back.
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(body, nullptr, false);
  if (doc.is_discarded()) return fail("the request body is not valid JSON");
  if (!doc.is_object()) return fail("the request body must be a JSON object");
  RequestBody out;
  if (route.model.empty()) {
    out.text = std::string(body);
  } else {
    doc["model"] = route.model;
    out.text = doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  }
  if (auto it = doc.find("model"); it != doc.end() && it->is_string())
    out.model = it->get<std::string>();
  if (auto it = doc.find("stream"); it != doc.end() && it->is_boolean())
    out.stream = it->get<bool>();
  return out;
}

Result<std::string> rewrite_model(std::string_view body, const Route& route) {
  Result<RequestBody> r = rewrite_body(body, route);
  if (!r) return tl::unexpected(r.error());
  return std::move(r->text);
}

bool wants_stream(std::string_view body) {
  Route keep;  // no model: nothing is rewritten
  Result<RequestBody> r = rewrite_body(body, keep);
  return r && r->stream;
}

}  // namespace ward::inference
