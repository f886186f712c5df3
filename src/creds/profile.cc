// Provider profile YAML → Profile, with the policy loader's diagnostics (file:line:column, key
// path).
#include "creds/profile.h"

#include <fmt/core.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <unordered_set>

#include "base/strings.h"
#include "policy/reader.h"

namespace ward::creds {
namespace {

using policy::Diagnostic;
using policy::detail::Entry;
using policy::detail::Field;
using policy::detail::find;
using policy::detail::quote;
using policy::detail::Sink;

// A profile is a few hundred bytes; this keeps `-f /dev/zero` from eating memory.
constexpr std::size_t kMaxFileSize = 1 << 20;
constexpr std::size_t kMaxNameLength = 128;

bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxNameLength || id.front() == '-' || id.back() == '-')
    return false;
  char prev = 0;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok || (c == '-' && prev == '-')) return false;
    prev = c;
  }
  return true;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  if (name.front() >= '0' && name.front() <= '9') return false;
  for (char c : name) {
    bool ok =
        (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return true;
}

// A non-empty single-line text (names, header names): reported and nullopt otherwise.
std::optional<std::string> read_name(Sink& sink, const Field& f, std::string_view what) {
  std::optional<std::string> s = policy::detail::read_string(sink, f, what);
  if (!s) return std::nullopt;
  if (s->empty() || s->size() > kMaxNameLength || policy::detail::has_control(*s)) {
    sink.error(f, fmt::format("expected {} (1 to {} characters, no control characters), got {}",
                              what, kMaxNameLength, quote(*s)));
    return std::nullopt;
  }
  return s;
}

// An HTTP field name (RFC 9110 token).
bool valid_header_name(std::string_view name) {
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return !name.empty();
}

void read_env_vars(Sink& sink, const Field& f, Credential& out,
                   std::unordered_set<std::string>& seen) {
  auto items = policy::detail::read_list(sink, f, "a list of environment variable names");
  if (!items) return;
  for (const Field& item : *items) {
    std::optional<std::string> name = policy::detail::read_string(sink, item, "a variable name");
    if (!name) continue;
    if (!valid_env_name(*name)) {
      sink.error(item, fmt::format("{} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*"
                                   ", at most {} characters)",
                                   quote(*name), kMaxNameLength));
      continue;
    }
    if (!seen.insert(*name).second) {
      sink.error(item, fmt::format("variable {} is listed twice in this profile", quote(*name)));
      continue;
    }
    out.env_vars.push_back(*name);
  }
}

void read_credential(Sink& sink, const Field& f, std::vector<Credential>& out,
                     std::unordered_set<std::string>& names,
                     std::unordered_set<std::string>& vars) {
  auto entries = policy::detail::read_map(
      sink, f, f.path,
      {"name", "description", "env_vars", "required", "auth_style", "header_name", "query_param"},
      {"refresh"});
  if (!entries) return;
  Credential c;
  if (const Entry* e = find(*entries, "refresh")) {
    sink.error(Field{e->value.node, e->value.path, e->key_at},
               "credential refresh (tokens minted by a gateway) is not supported by ward; remove "
               "it and pass the token in the environment");
  }
  if (const Entry* e = find(*entries, "name")) {
    if (auto n = read_name(sink, e->value, "a credential name")) {
      if (names.insert(*n).second) {
        c.name = *n;
      } else {
        sink.error(e->value, fmt::format("duplicate credential name {}", quote(*n)));
      }
    }
  } else {
    sink.error(Field{f.node, policy::detail::child_path(f.path, "name"), f.at},
               "missing name: every credential has a name (api_key)");
  }
  if (const Entry* e = find(*entries, "description")) {
    if (auto d = policy::detail::read_string(sink, e->value, "a description")) c.description = *d;
  }
  const Entry* env = find(*entries, "env_vars");
  if (env) read_env_vars(sink, env->value, c, vars);
  if (const Entry* e = find(*entries, "required")) {
    if (auto b = policy::detail::read_bool(sink, e->value)) c.required = *b;
  }
  if (c.required && (!env || c.env_vars.empty())) {
    sink.error(
        Field{f.node, policy::detail::child_path(f.path, "env_vars"), env ? env->value.at : f.at},
        "a required credential needs at least one variable in env_vars");
  }
  const Entry* header = find(*entries, "header_name");
  if (header) {
    if (auto h = read_name(sink, header->value, "a header name")) {
      if (valid_header_name(*h)) {
        c.header_name = *h;
      } else {
        sink.error(header->value, fmt::format("{} is not an HTTP header name", quote(*h)));
      }
    }
  }
  const Entry* query = find(*entries, "query_param");
  if (query) {
    if (auto q = read_name(sink, query->value, "a query parameter name")) c.query_param = *q;
  }
  if (const Entry* e = find(*entries, "auth_style")) {
    auto style =
        policy::detail::read_choice(sink, e->value, {"bearer", "header", "basic", "query", ""});
    if (style == "bearer" || style == "header") {
      c.auth_style = *style == "bearer" ? AuthStyle::kBearer : AuthStyle::kHeader;
      if (!header) {
        sink.error(e->value, fmt::format("auth_style: {} needs header_name (authorization, "
                                         "x-api-key, ...)",
                                         *style));
      }
    } else if (style == "basic") {
      c.auth_style = AuthStyle::kBasic;
    } else if (style == "query") {
      c.auth_style = AuthStyle::kQuery;
      if (!query) sink.error(e->value, "auth_style: query needs query_param (the parameter name)");
    }
  }
  out.push_back(std::move(c));
}

void read_discovery(Sink& sink, const Field& f, const std::unordered_set<std::string>& names,
                    std::vector<std::string>& out) {
  auto entries = policy::detail::read_map(sink, f, f.path, {"credentials"});
  if (!entries) return;
  const Entry* e = find(*entries, "credentials");
  if (!e) return;
  auto items = policy::detail::read_list(sink, e->value, "a list of credential names");
  if (!items) return;
  std::unordered_set<std::string> seen;
  for (const Field& item : *items) {
    auto n = read_name(sink, item, "a credential name");
    if (!n) continue;
    if (!names.contains(*n)) {
      sink.error(item, fmt::format("unknown credential {}: discovery names entries of credentials",
                                   quote(*n)));
    } else if (!seen.insert(*n).second) {
      sink.error(item, fmt::format("credential {} is listed twice", quote(*n)));
    } else {
      out.push_back(*n);
    }
  }
}

std::optional<std::string> read_binary(Sink& sink, const Field& item) {
  Field f = item;
  if (item.node.IsMap()) {  // {path: /usr/bin/gh, harness: true} or a bare path
    auto entries = policy::detail::read_map(sink, item, item.path, {"path", "harness"});
    if (!entries) return std::nullopt;
    if (const Entry* h = find(*entries, "harness")) policy::detail::read_bool(sink, h->value);
    const Entry* path = find(*entries, "path");
    if (!path) {
      sink.error(Field{item.node, policy::detail::child_path(item.path, "path"), item.at},
                 "missing path: a binary is {path: /usr/bin/gh} or a bare path");
      return std::nullopt;
    }
    f = path->value;
  }
  std::optional<std::string> p = policy::detail::read_string(sink, f, "a binary path");
  if (!p) return std::nullopt;
  std::optional<std::string> norm;
  if (!policy::detail::has_control(*p) && p->size() <= 4096) norm = normalize_absolute_path(*p);
  if (!norm) {
    sink.error(f, fmt::format("binary path {} must be absolute, without '..' or control "
                              "characters",
                              quote(*p)));
  }
  return norm;
}

void read_profile(Sink& sink, const YAML::Node& doc, Profile& p) {
  Field root{doc, "", policy::detail::where_of(doc.Mark())};
  if (root.at.line == 0 || doc.IsNull()) root.at = {1, 1};
  if (!doc.IsMap()) {
    sink.error(root, fmt::format("expected a provider profile (a mapping that starts with id:), "
                                 "got {}",
                                 policy::detail::describe(doc)));
    return;
  }
  auto entries = policy::detail::read_map(
      sink, root, "the provider profile",
      {"id", "display_name", "description", "category", "inference_capable", "credentials",
       "discovery", "endpoints", "binaries"});
  if (!entries) return;
  auto required_name = [&](std::string_view key, std::string& out) -> const Entry* {
    const Entry* e = find(*entries, key);
    if (!e) {
      sink.error(
          Field{doc, std::string(key), root.at},
          fmt::format("missing {}: a provider profile starts with id and display_name", key));
    } else if (auto n = read_name(sink, e->value, key == "id" ? "an id" : "a display name")) {
      out = *n;
    }
    return e;
  };
  if (const Entry* id = required_name("id", p.id); id && !p.id.empty() && !valid_id(p.id)) {
    sink.error(id->value,
               fmt::format("id {} must be lower-case kebab-case (a-z, 0-9, '-')", quote(p.id)));
  }
  required_name("display_name", p.display_name);
  if (const Entry* e = find(*entries, "description")) {
    if (auto d = policy::detail::read_string(sink, e->value, "a description")) p.description = *d;
  }
  if (const Entry* e = find(*entries, "category")) {
    if (auto c = policy::detail::read_choice(
            sink, e->value,
            {"inference", "agent", "source_control", "messaging", "data", "knowledge", "other"})) {
      p.category = *c;
    }
  }
  if (const Entry* e = find(*entries, "inference_capable")) {
    if (auto b = policy::detail::read_bool(sink, e->value)) p.inference_capable = *b;
  }
  std::unordered_set<std::string> names;
  if (const Entry* e = find(*entries, "credentials")) {
    std::unordered_set<std::string> vars;
    if (auto items = policy::detail::read_list(sink, e->value, "a list of credentials")) {
      for (const Field& item : *items) read_credential(sink, item, p.credentials, names, vars);
    }
  }
  if (const Entry* e = find(*entries, "discovery"))
    read_discovery(sink, e->value, names, p.discovery);
  if (const Entry* e = find(*entries, "endpoints")) {
    if (auto items = policy::detail::read_list(sink, e->value, "a list of endpoints")) {
      for (const Field& item : *items) {
        if (auto ep = policy::detail::read_endpoint(sink, item)) p.endpoints.push_back(*ep);
      }
    }
  }
  if (const Entry* e = find(*entries, "binaries")) {
    if (auto items = policy::detail::read_list(sink, e->value, "a list of binary paths")) {
      for (const Field& item : *items) {
        if (auto b = read_binary(sink, item)) p.binaries.push_back(*b);
      }
    }
  }
}

}  // namespace

ProfileLoad load_profile(std::string_view text, std::string_view file) {
  Sink sink{std::string(file)};
  Profile profile;
  try {
    if (std::optional<YAML::Node> doc = policy::detail::parse_document(sink, std::string(text)))
      read_profile(sink, *doc, profile);
  } catch (const std::bad_alloc&) {
    sink.add(Diagnostic::Severity::kError, {}, "", "out of memory while reading the profile");
  } catch (const std::exception& e) {
    sink.add(Diagnostic::Severity::kError, {}, "",
             fmt::format("internal error while reading the profile: {}", e.what()));
  }
  ProfileLoad loaded;
  const bool failed = sink.has_error();
  loaded.diagnostics = sink.take();
  for (const Diagnostic& d : loaded.diagnostics)
    if (d.severity == Diagnostic::Severity::kWarning) profile.warnings.push_back(d.format());
  if (!failed) loaded.profile = std::move(profile);
  return loaded;
}

Result<Profile> load_profile_string(std::string_view text, std::string_view file) {
  ProfileLoad loaded = load_profile(text, file);
  if (loaded.profile) return std::move(*loaded.profile);
  std::string errors;
  for (const Diagnostic& d : loaded.diagnostics) {
    if (d.severity == Diagnostic::Severity::kWarning) continue;
    if (!errors.empty()) errors += '\n';
    errors += d.format();
  }
  return fail(std::move(errors));
}

Result<Profile> load_profile_file(const std::string& path) {
  auto text = policy::detail::read_config_file(path, "provider profile", kMaxFileSize);
  if (!text) return fail(path + ": " + text.error().message, text.error().err);
  return load_profile_string(*text, path);
}

}  // namespace ward::creds
