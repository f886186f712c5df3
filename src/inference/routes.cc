// Routes file YAML → Route list, with the policy loader's diagnostics (file:line:column, key path).
#include "inference/routes.h"

#include <arpa/inet.h>
#include <fmt/core.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <exception>
#include <new>

#include "base/strings.h"
#include "policy/reader.h"

namespace ward::inference {
namespace {

namespace urls = boost::urls;
using policy::Diagnostic;
using policy::detail::child_path;
using policy::detail::Entry;
using policy::detail::Field;
using policy::detail::find;
using policy::detail::quote;
using policy::detail::Sink;

// A routes file is a few hundred bytes; this keeps `--inference /dev/zero` from eating memory.
constexpr std::size_t kMaxFileSize = 1 << 20;
constexpr std::size_t kMaxNameLength = 128;
constexpr std::size_t kMaxModelLength = 256;
constexpr std::size_t kMaxKeyLength = 8192;

struct ProtocolName {
  Protocol protocol;
  std::string_view name;
};
constexpr std::array<ProtocolName, 7> kProtocols = {{
    {Protocol::kOpenAiChatCompletions, "openai_chat_completions"},
    {Protocol::kOpenAiCompletions, "openai_completions"},
    {Protocol::kOpenAiResponses, "openai_responses"},
    {Protocol::kOpenAiEmbeddings, "openai_embeddings"},
    {Protocol::kOpenAiModels, "openai_models"},
    {Protocol::kAnthropicMessages, "anthropic_messages"},
    {Protocol::kAnthropicModels, "anthropic_models"},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (name.front() >= '0' && name.front() <= '9') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Why a secret cannot go into a header, or "" when it can. Never quotes the value.
std::string bad_secret(std::string_view value) {
  if (value.empty()) return "is empty";
  if (value.size() > kMaxKeyLength) return fmt::format("is longer than {} bytes", kMaxKeyLength);
  if (value.find_first_of("\r\n") != std::string_view::npos)
    return "contains a line break (CR or LF), which would split the header it goes into";
  if (policy::detail::has_control(value)) return "contains a control character";
  if (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t')
    return "starts or ends with white space";
  return "";
}

// A non-empty single-line text: reported and nullopt otherwise.
std::optional<std::string> read_text(Sink& sink, const Field& f, std::string_view what,
                                     std::size_t max, bool allow_empty) {
  std::optional<std::string> s;
  if (allow_empty && f.node.IsNull()) return std::string();
  s = policy::detail::read_string(sink, f, what);
  if (!s) return std::nullopt;
  if ((!allow_empty && s->empty()) || s->size() > max || policy::detail::has_control(*s)) {
    sink.error(f, fmt::format("expected {} ({} to {} characters, no control characters), got {}",
                              what, allow_empty ? 0 : 1, max, quote(*s)));
    return std::nullopt;
  }
  return s;
}

// The canonical text of an IP literal (inet_ntop: dotted quad, RFC 5952 IPv6).
std::optional<std::string> canonical_ip(int family, const std::string& text) {
  unsigned char bytes[16];
  if (::inet_pton(family, text.c_str(), bytes) != 1) return std::nullopt;
  char out[INET6_ADDRSTRLEN];
  if (!::inet_ntop(family, bytes, out, sizeof out)) return std::nullopt;
  return std::string(out);
}

// Fills scheme, host, port and base_path from the endpoint URL. The messages never repeat the
// URL: a user name, password or query in it could be a key.
void read_endpoint_url(Sink& sink, const Field& f, const std::string& text, Route& r) {
  auto parsed = urls::parse_absolute_uri(text);
  if (!parsed) {
    sink.error(f, "expected an absolute URL: http://host[:port][/path] or https://...");
    return;
  }
  const urls::url_view& u = *parsed;
  if (u.scheme_id() == urls::scheme::http) {
    r.scheme = "http";
  } else if (u.scheme_id() == urls::scheme::https) {
    r.scheme = "https";
  } else {
    sink.error(f, fmt::format("the endpoint's scheme must be http or https, got {}",
                              quote(u.scheme(), 16)));
    return;
  }
  if (u.has_userinfo()) {
    sink.error(f,
               "the endpoint must not carry a user name or password; put the key in api_key "
               "or api_key_env");
    return;
  }
  if (u.has_query() || u.has_fragment()) {
    sink.error(f, "the endpoint must not have a query (?...) or fragment (#...)");
    return;
  }
  switch (u.host_type()) {
    case urls::host_type::ipv4:
      r.host = canonical_ip(AF_INET, u.host_address()).value_or("");
      break;
    case urls::host_type::ipv6:
      r.host = canonical_ip(AF_INET6, u.host_address()).value_or("");
      break;
    case urls::host_type::name: {
      std::string host = lower(u.encoded_host());
      if (!host.empty() && host.back() == '.') host.pop_back();
      bool ok =
          !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                   c == '_';
          });
      if (ok) r.host = host;
      break;
    }
    default:
      break;
  }
  if (r.host.empty()) {
    sink.error(f, "the endpoint's host must be a DNS name or an IP address");
    return;
  }
  if (u.has_port() && !u.port().empty()) {
    std::optional<std::uint64_t> port = policy::detail::parse_decimal(u.port());
    if (!port || *port == 0 || *port > 65535) {
      sink.error(f, fmt::format("the endpoint's port must be 1 to 65535, got {}", quote(u.port())));
      return;
    }
    r.port = static_cast<std::uint16_t>(*port);
  } else {
    r.port = r.scheme == "https" ? 443 : 80;
  }
  std::string path(u.encoded_path());
  // After an authority a path is empty or starts with '/'. Boost.URL 1.81 takes
  // "http://h:x80/v1" as host "h", an empty port and the path "x80/v1" (found by fuzzing).
  if (!path.empty() && path.front() != '/') {
    sink.error(f, "the endpoint's port must be 1 to 65535, and its path start with '/'");
    return;
  }
  while (!path.empty() && path.back() == '/') path.pop_back();
  for (std::string_view segment : split(path, '/')) {
    if (segment == "." || segment == ".." || segment == "%2e" || segment == "%2E" ||
        segment.find("%2e%2e") != std::string_view::npos ||
        segment.find("%2E%2E") != std::string_view::npos) {
      sink.error(f, "the endpoint's path must not contain '.' or '..' segments");
      return;
    }
  }
  r.base_path = path;
}

void read_protocols(Sink& sink, const Field& f, Route& r) {
  auto items = policy::detail::read_list(sink, f, "a list of protocols");
  if (!items) return;
  auto add = [&](Protocol p) {
    if (std::find(r.protocols.begin(), r.protocols.end(), p) == r.protocols.end())
      r.protocols.push_back(p);
  };
  for (const Field& item : *items) {
    std::optional<std::string> name = policy::detail::read_string(sink, item, "a protocol name");
    if (!name) continue;
    std::string key = lower(*name);
    if (key == "model_discovery") {
      add(Protocol::kOpenAiModels);
      add(Protocol::kAnthropicModels);
    } else if (std::optional<Protocol> p = parse_protocol(key)) {
      add(*p);
    } else {
      sink.error(item, fmt::format("unknown protocol {}: expected openai_chat_completions, "
                                   "openai_completions, openai_responses, openai_embeddings, "
                                   "openai_models, anthropic_messages, anthropic_models or "
                                   "model_discovery",
                                   quote(*name)));
    }
  }
  if (r.protocols.empty() && !items->empty()) return;  // each bad entry is reported already
  if (r.protocols.empty()) sink.error(f, "a route serves at least one protocol");
}

// The value of NAME in `env` ("NAME=value" entries), first match.
const std::string* lookup(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& e : env) {
    if (e.size() > name.size() && e[name.size()] == '=' && e.compare(0, name.size(), name) == 0)
      return &e;
  }
  return nullptr;
}

void read_key(Sink& sink, const std::vector<Entry>& entries, const std::vector<std::string>& env,
              Route& r) {
  const Entry* inline_key = find(entries, "api_key");
  const Entry* env_key = find(entries, "api_key_env");
  if (inline_key && env_key) {
    sink.error(Field{env_key->value.node, env_key->value.path, env_key->key_at},
               "a route takes api_key or api_key_env, not both");
    return;
  }
  if (inline_key) {
    const Field& f = inline_key->value;
    if (!f.node.IsScalar()) {
      sink.error(
          f, fmt::format("expected the key as a string, got {}", policy::detail::describe(f.node)));
      return;
    }
    if (std::string why = bad_secret(f.node.Scalar()); !why.empty()) {
      sink.error(f, fmt::format("api_key {}; remove api_key for a backend that takes no key", why));
      return;
    }
    r.api_key = f.node.Scalar();
  } else if (env_key) {
    const Field& f = env_key->value;
    std::optional<std::string> name = policy::detail::read_string(sink, f, "a variable name");
    if (!name) return;
    if (!valid_env_name(*name)) {
      sink.error(f, fmt::format("{} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                                quote(*name)));
      return;
    }
    const std::string* entry = lookup(env, *name);
    if (!entry) {
      sink.error(f, fmt::format("the environment variable {} is not set", *name));
      return;
    }
    std::string_view value = std::string_view(*entry).substr(name->size() + 1);
    if (std::string why = bad_secret(value); !why.empty()) {
      sink.error(f, fmt::format("the value of {} {}", *name, why));
      return;
    }
    r.api_key_env = *name;
    r.api_key = std::string(value);
  }
}

void read_route(Sink& sink, const Field& f, const std::vector<std::string>& env,
                std::vector<Route>& out) {
  auto entries = policy::detail::read_map(
      sink, f, f.path,
      {"name", "endpoint", "model", "protocols", "api_key", "api_key_env", "provider_type"});
  if (!entries) return;
  // Any error fails the whole load, so a route with problems is still kept here: the readers
  // below go on and report every problem of the file at once.
  Route r;
  auto required = [&](std::string_view key) -> const Entry* {
    const Entry* e = find(*entries, key);
    if (!e) {
      sink.error(Field{f.node, child_path(f.path, key), f.at},
                 fmt::format("missing {}: a route has name, endpoint and protocols", key));
    }
    return e;
  };
  if (const Entry* e = required("name")) {
    if (auto n = read_text(sink, e->value, "a route name", kMaxNameLength, false)) r.name = *n;
  }
  if (const Entry* e = required("endpoint")) {
    if (auto url = policy::detail::read_string(sink, e->value, "a URL")) {
      r.endpoint = *url;
      read_endpoint_url(sink, e->value, *url, r);
    }
  }
  if (const Entry* e = find(*entries, "model")) {
    if (auto m = read_text(sink, e->value, "a model name", kMaxModelLength, true)) r.model = *m;
  }
  if (const Entry* e = required("protocols")) read_protocols(sink, e->value, r);
  if (const Entry* e = find(*entries, "provider_type")) {
    if (auto t = policy::detail::read_string(sink, e->value, "a provider type")) {
      r.provider_type = lower(*t);
      if (r.provider_type == "anthropic") {
        r.key_header = KeyHeader::kXApiKey;
      } else if (r.provider_type == "openai" || r.provider_type == "nvidia" ||
                 r.provider_type == "bitdeer-ai") {
        r.key_header = KeyHeader::kBearer;
      } else {
        sink.error(e->value, fmt::format("unknown provider_type {}: expected openai, anthropic, "
                                         "nvidia or bitdeer-ai (or no provider_type: the key "
                                         "header then follows each request's protocol)",
                                         quote(*t)));
      }
    }
  }
  read_key(sink, *entries, env, r);
  out.push_back(std::move(r));
}

void read_routes(Sink& sink, const YAML::Node& doc, const std::vector<std::string>& env,
                 std::vector<Route>& out) {
  Field root{doc, "", policy::detail::where_of(doc.Mark())};
  if (root.at.line == 0 || doc.IsNull()) root.at = {1, 1};
  if (!doc.IsMap()) {
    sink.error(root, fmt::format("expected a routes file (a mapping with routes:), got {}",
                                 policy::detail::describe(doc)));
    return;
  }
  auto entries = policy::detail::read_map(sink, root, "the routes file", {"routes"});
  if (!entries) return;
  const Entry* e = find(*entries, "routes");
  if (!e) {
    sink.error(Field{doc, "routes", root.at}, "missing routes: the file lists its routes there");
    return;
  }
  auto items = policy::detail::read_list(sink, e->value, "a list of routes");
  if (!items) return;
  if (items->empty()) {
    sink.error(Field{e->value.node, e->value.path, e->key_at}, "the list of routes is empty");
    return;
  }
  for (const Field& item : *items) read_route(sink, item, env, out);
}

bool blank_document(std::string_view text) {
  for (std::string_view line : split(text, '\n')) {
    std::size_t i = line.find_first_not_of(" \t\r");
    if (i != std::string_view::npos && line[i] != '#') return false;
  }
  return true;
}

}  // namespace

std::string_view protocol_name(Protocol p) {
  for (const ProtocolName& n : kProtocols) {
    if (n.protocol == p) return n.name;
  }
  return "unknown";
}

std::optional<Protocol> parse_protocol(std::string_view name) {
  std::string key = lower(name);
  for (const ProtocolName& n : kProtocols) {
    if (n.name == key) return n.protocol;
  }
  return std::nullopt;
}

bool is_anthropic(Protocol p) {
  return p == Protocol::kAnthropicMessages || p == Protocol::kAnthropicModels;
}

std::string Route::authority() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  return default_port ? h : fmt::format("{}:{}", h, port);
}

std::string Route::backend() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return fmt::format("{}://{}:{}", scheme, h, port);
}

bool route_serves(const Route& route, Protocol p) {
  for (Protocol listed : route.protocols) {
    if (listed == p) return true;
    if (p == Protocol::kOpenAiModels && !is_anthropic(listed)) return true;
    if (p == Protocol::kAnthropicModels && listed == Protocol::kAnthropicMessages) return true;
  }
  return false;
}

std::vector<const Route*> routes_for(const std::vector<Route>& routes, Protocol p) {
  std::vector<const Route*> out;
  for (const Route& r : routes) {
    if (route_serves(r, p)) out.push_back(&r);
  }
  return out;
}

Result<std::vector<Route>> load_routes_string(std::string_view text, std::string_view file,
                                              const std::vector<std::string>& env) {
  Sink sink{std::string(file)};
  std::vector<Route> routes;
  try {
    if (blank_document(text)) {
      sink.add(Diagnostic::Severity::kError, {}, "",
               "the routes file is empty: expected routes: with at least one route");
    } else if (std::optional<YAML::Node> doc =
                   policy::detail::parse_document(sink, std::string(text))) {
      read_routes(sink, *doc, env, routes);
    }
  } catch (const std::bad_alloc&) {
    sink.add(Diagnostic::Severity::kError, {}, "", "out of memory while reading the routes");
  } catch (const std::exception& e) {
    sink.add(Diagnostic::Severity::kError, {}, "",
             fmt::format("internal error while reading the routes: {}", e.what()));
  }
  if (!sink.has_error()) return routes;
  std::string errors;
  for (const Diagnostic& d : sink.take()) {
    if (d.severity != Diagnostic::Severity::kError) continue;
    if (!errors.empty()) errors += '\n';
    errors += d.format();
  }
  return fail(std::move(errors));
}

Result<std::vector<Route>> load_routes_file(const std::string& path,
                                            const std::vector<std::string>& env) {
  auto text = policy::detail::read_config_file(path, "routes file", kMaxFileSize);
  if (!text) return fail(path + ": " + text.error().message, text.error().err);
  return load_routes_string(*text, path, env);
}

}  // namespace ward::inference
