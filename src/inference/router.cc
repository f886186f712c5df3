#include "inference/router.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/strings.h"

namespace ward::inference {
namespace {

constexpr std::size_t kMaxNesting = 256;
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

namespace {

constexpr std::size_t kMaxRecordedModel = 256;

bool json_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The end of the JSON value that starts at `at` in `text`, which is valid JSON (json::accept).
std::size_t value_end(std::string_view text, std::size_t at) {
  if (text[at] == '"') {
    for (std::size_t i = at + 1; i < text.size(); ++i) {
      if (text[i] == '\\')
        ++i;
      else if (text[i] == '"')
        return i + 1;
    }
    return text.size();
  }
  if (text[at] == '{' || text[at] == '[') {
    int depth = 0;
    bool in_string = false;
    for (std::size_t i = at; i < text.size(); ++i) {
      const char c = text[i];
      if (in_string) {
        if (c == '\\')
          ++i;
        else if (c == '"')
          in_string = false;
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return i + 1;
      }
    }
    return text.size();
  }
  std::size_t i = at;  // a number, true, false or null
  while (i < text.size() && !json_space(text[i]) && text[i] != ',' && text[i] != '}' &&
         text[i] != ']')
    ++i;
  return i;
}

}  // namespace

// The body is checked (json::accept, no document built) and its top-level members found by a
// scan of the text; the model's value is replaced in place, everything else kept byte for byte.
// A document is never built: nlohmann's ordered_json finds a member by walking its object, so an
// object of a million members would take the proxy's thread for minutes to parse.
Result<RequestBody> rewrite_body(std::string_view body, const Route& route) {
  if (json_nests_deeper(body, kMaxNesting))
    return fail("the request body nests JSON deeper than 256 levels");
  if (!nlohmann::json::accept(body)) return fail("the request body is not valid JSON");
  std::size_t at = 0;
  while (at < body.size() && json_space(body[at])) ++at;
  if (at == body.size() || body[at] != '{') return fail("the request body must be a JSON object");
  std::optional<std::pair<std::size_t, std::size_t>> model, stream;
  std::size_t members = 0, close = 0;
  for (++at;;) {
    while (json_space(body[at])) ++at;
    if (body[at] == '}') {
      close = at;
      break;
    }
    const std::size_t key_end = value_end(body, at);
    std::string_view raw_key = body.substr(at, key_end - at);
    std::string key(raw_key.substr(1, raw_key.size() - 2));
    if (raw_key.find('\\') != std::string_view::npos)  // "mod\u0065l" is "model" too
      key = nlohmann::json::parse(raw_key).get<std::string>();
    at = key_end;
    while (json_space(body[at]) || body[at] == ':') ++at;
    const std::size_t end = value_end(body, at);
    for (auto [name, slot] : {std::pair{"model", &model}, std::pair{"stream", &stream}}) {
      // Go's encoding/json (Ollama and others) matches member names regardless of case.
      if (key != name && iequals(key, name))
        return fail(std::string("the request body has a member \"") + name +
                    "\" spelt in another case (backends that ignore case would read it)");
      if (key != name) continue;
      if (*slot)  // backends disagree on which of two counts: refused
        return fail(std::string("the request body has two \"") + name + "\" members");
      *slot = std::pair{at, end};
    }
    ++members;
    at = end;
    while (json_space(body[at])) ++at;
    if (body[at] == ',') ++at;
  }
  auto text_of = [&](const std::pair<std::size_t, std::size_t>& span) {
    return body.substr(span.first, span.second - span.first);
  };
  RequestBody out;
  if (stream) out.stream = text_of(*stream) == "true";
  if (route.model.empty()) {
    out.text = std::string(body);
    if (model && body[model->first] == '"')
      out.model = nlohmann::json::parse(text_of(*model)).get<std::string>();
  } else {
    const std::string value = nlohmann::json(route.model).dump();
    if (model) {
      out.text.reserve(body.size() + value.size());
      out.text.append(body.substr(0, model->first))
          .append(value)
          .append(body.substr(model->second));
    } else {
      out.text.append(body.substr(0, close))
          .append(members ? ",\"model\":" : "\"model\":")
          .append(value)
          .append(body.substr(close));
    }
    out.model = route.model;
  }
  // For the records only: a caller's model name is theirs to make as long as they like.
  if (out.model.size() > kMaxRecordedModel) {
    std::size_t cut = kMaxRecordedModel;
    while (cut > 0 && (static_cast<unsigned char>(out.model[cut]) & 0xc0) == 0x80) --cut;
    out.model.resize(cut);  // at a character's start: the record stays valid UTF-8
  }
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
