// libFuzzer target for inference.local's pure parts (src/inference): the routes file, request
// classification and the backend's target, the body's model rewrite, the header rewrite, and the
// usage scanner. Built and run by bench/fuzz-inference.sh.
//
// Input: a selector byte (its value mod 5 picks the part), a flag byte, then the text.
// Invariants, beyond not crashing or hanging:
// 0 routes file (api_key_env WARD_FUZZ_KEY is set to a secret): an error never holds the secret
//   (unless the input did); a loaded route has an http(s) scheme, a lower-case host, a port, a
//   protocol, a base path without a final '/', the secret as its key when it names the variable,
//   and neither backend() nor authority() holds the key; routes_for agrees with route_serves.
// 1 classify (flag bit 0: anthropic-style): an accepted request is POST to one of the five
//   generation paths or GET /v1/models[/id], the models flavour following the flag; a refusal is
//   403 or 405 (with Allow) and says why; the backend's target for an accepted path starts with
//   '/', keeps the query, and once decoded has no empty, "." or ".." segment.
// 2 rewrite_body (flag bit 0: the route names a model): an accepted body comes back as the
//   caller's object with the route's model (equal to it, parsed), or unchanged when the route
//   keeps the caller's;
//   wants_stream agrees with it.
// 3 UsageScanner (flag bit 0: event stream, else JSON; the flag's other bits a chunk size): fed
//   in chunks it reports what it reports fed whole.
// 4 prepare_request (the text is header lines; flag: protocol and key header): only allowlisted
//   fields are left, plus Host (the route's authority) and the key in exactly the header the
//   protocol or provider wants, with exactly the route's value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "inference/router.h"
#include "inference/routes.h"
#include "inference/usage.h"

namespace {

namespace http = boost::beast::http;
using namespace ward::inference;

constexpr std::string_view kEnvSecret = "sk-FUZZ-Env-Secret-7f3e91";
constexpr std::string_view kRouteKey = "sk-FUZZ-Route-Key-42ac";

void check(bool ok) {
  if (!ok) std::abort();
}

bool holds(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

void fuzz_routes(std::string_view text) {
  const std::vector<std::string> env = {"WARD_FUZZ_KEY=" + std::string(kEnvSecret)};
  auto routes = load_routes_string(text, "fuzz.yaml", env);
  if (!routes) {
    check(!routes.error().message.empty());
    check(holds(text, kEnvSecret) || !holds(routes.error().message, kEnvSecret));
    return;
  }
  for (const Route& r : *routes) {
    check(r.scheme == "http" || r.scheme == "https");
    check(!r.host.empty() && r.port != 0 && !r.protocols.empty());
    for (char c : r.host) check(!(c >= 'A' && c <= 'Z'));
    check(r.base_path.empty() || (r.base_path.front() == '/' && r.base_path.back() != '/'));
    if (r.api_key_env == "WARD_FUZZ_KEY") check(r.api_key == kEnvSecret);
    if (r.api_key.size() >= 8) {
      check(!holds(r.backend(), r.api_key) && !holds(r.authority(), r.api_key));
    }
    check(r.backend().starts_with(r.scheme + "://"));
  }
  for (int i = 0; i <= static_cast<int>(Protocol::kAnthropicModels); ++i) {
    const auto p = static_cast<Protocol>(i);
    std::vector<const Route*> serving;
    for (const Route& r : *routes)
      if (route_serves(r, p)) serving.push_back(&r);
    check(routes_for(*routes, p) == serving);
  }
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The path of `target` percent-decoded; its segments after the leading '/'.
std::vector<std::string> decoded_segments(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  std::string decoded;
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] == '%' && i + 2 < path.size() && hex(path[i + 1]) >= 0 && hex(path[i + 2]) >= 0) {
      decoded.push_back(static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2])));
      i += 2;
    } else {
      decoded.push_back(path[i]);
    }
  }
  std::vector<std::string> out;
  std::size_t start = 1;
  for (std::size_t slash; (slash = decoded.find('/', start)) != std::string::npos;
       start = slash + 1)
    out.push_back(decoded.substr(start, slash - start));
  out.push_back(decoded.substr(start));
  return out;
}

void fuzz_classify(std::string_view text, bool anthropic) {
  const std::size_t space = text.find(' ');
  if (space == std::string_view::npos) return;
  const std::string_view method = text.substr(0, space), target = text.substr(space + 1);
  const std::string_view path = target.substr(0, target.find('?'));
  auto p = classify(method, path, anthropic);
  if (!p) {
    check(p.error().status == 403 || p.error().status == 405);
    check(!p.error().reason.empty());
    check(p.error().status != 405 || !p.error().allow.empty());
    return;
  }
  const bool models = *p == Protocol::kOpenAiModels || *p == Protocol::kAnthropicModels;
  if (models) {
    check(method == "GET" && (path == "/v1/models" || path.starts_with("/v1/models/")));
    check(*p == (anthropic ? Protocol::kAnthropicModels : Protocol::kOpenAiModels));
  } else {
    check(method == "POST");
    check(path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/responses" ||
          path == "/v1/embeddings" || path == "/v1/messages");
  }
  const std::string_view query =
      target.find('?') == std::string_view::npos ? "" : target.substr(target.find('?'));
  for (const char* base : {"", "/v1", "/api/v1", "/openai"}) {
    Route route;
    route.base_path = base;
    const std::string out = backend_target(route, target);
    check(!out.empty() && out.front() == '/' && out.ends_with(query));
    for (const std::string& segment : decoded_segments(out))
      check(!segment.empty() && segment != "." && segment != "..");
  }
}

void fuzz_body(std::string_view text, bool names_model) {
  Route route;
  if (names_model) route.model = "fuzz-model";
  auto body = rewrite_body(text, route);
  check(wants_stream(text) == (body && body->stream));
  if (!body) {
    check(!body.error().message.empty());
    return;
  }
  if (!names_model) {
    check(body->text == text);
    return;
  }
  // The body is the caller's, member for member, with the route's model (rewrite_body scans
  // the text instead of parsing it: a parser is the judge here).
  nlohmann::json doc = nlohmann::json::parse(body->text, nullptr, false);
  nlohmann::json caller = nlohmann::json::parse(text, nullptr, false);
  check(caller.is_object());
  caller["model"] = "fuzz-model";
  check(doc == caller && body->model == "fuzz-model");
}

void fuzz_usage(std::string_view text, std::uint8_t flags) {
  const char* type = flags & 1 ? "text/event-stream" : "application/json; charset=utf-8";
  UsageScanner whole(type);
  whole.feed(text);
  UsageScanner pieces(type);
  const std::size_t chunk = 1 + (flags >> 1);
  for (std::size_t at = 0; at < text.size(); at += chunk) pieces.feed(text.substr(at, chunk));
  check(whole.usage() == pieces.usage());
}

bool allowed_after(std::string_view name, Protocol p) {
  static constexpr std::string_view kAlways[] = {
      "content-type",    "content-length", "transfer-encoding", "accept",   "user-agent",
      "idempotency-key", "host",           "authorization",     "x-api-key"};
  static constexpr std::string_view kOpenAi[] = {"openai-organization", "openai-project",
                                                 "openai-beta"};
  static constexpr std::string_view kAnthropic[] = {"anthropic-version", "anthropic-beta"};
  std::string lower(name);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  auto in = [&](const auto& list) {
    for (std::string_view n : list)
      if (n == lower) return true;
    return false;
  };
  if (in(kAlways) || lower.starts_with("x-stainless-")) return true;
  return is_anthropic(p) ? in(kAnthropic) : in(kOpenAi);
}

void fuzz_headers(std::string_view text, std::uint8_t flags) {
  const auto p = static_cast<Protocol>(flags % 7);
  Route route;
  route.scheme = "https";
  route.host = "model.test";
  route.port = 8443;
  route.base_path = "/v1";
  route.api_key = std::string(kRouteKey);
  route.key_header = static_cast<KeyHeader>((flags >> 3) % 3);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(16 * 1024);
  const std::string head =
      "POST /v1/chat/completions?beta=true HTTP/1.1\r\n" + std::string(text) + "\r\n\r\n";
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(head), ec);
  if (ec || !parser.is_header_done()) return;
  http::request_header<> req = parser.get().base();
  prepare_request(req, route, p);
  for (const auto& field : req) check(allowed_after(field.name_string(), p));
  check(req.count(http::field::host) == 1 && req[http::field::host] == route.authority());
  const bool x_api_key = route.key_header == KeyHeader::kXApiKey ||
                         (route.key_header == KeyHeader::kByProtocol && is_anthropic(p));
  if (x_api_key) {
    check(req.count("x-api-key") == 1 && req["x-api-key"] == kRouteKey);
    check(req.count(http::field::authorization) == 0);
  } else {
    check(req.count(http::field::authorization) == 1 &&
          req[http::field::authorization] == "Bearer " + std::string(kRouteKey));
    check(req.count("x-api-key") == 0);
  }
  if (is_anthropic(p)) check(req.count("anthropic-version") >= 1);
  check(req.target() == "/v1/chat/completions?beta=true");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[1];
  const std::string_view text(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch (data[0] % 5) {
    case 0:
      fuzz_routes(text);
      break;
    case 1:
      fuzz_classify(text, flags & 1);
      break;
    case 2:
      fuzz_body(text, flags & 1);
      break;
    case 3:
      fuzz_usage(text, flags);
      break;
    default:
      fuzz_headers(text, flags);
      break;
  }
  return 0;
}
