// L7 rules of an endpoint: rules (allow), deny_rules, and their method/path/query matchers.
#include <fmt/core.h>

#include <algorithm>
#include <iterator>

#include "policy/reader.h"

namespace ward::policy::detail {

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// A request-path glob: `*` one segment, `**` any number; starts with '/' or a wildcard.
std::optional<std::string> read_path_glob(Sink& sink, const Field& f) {
  std::optional<std::string> p = read_string(sink, f, "a path glob such as /repos/**");
  if (!p) return std::nullopt;
  if (p->empty() || ((*p)[0] != '/' && (*p)[0] != '*')) {
    sink.error(f, fmt::format("path {} must start with '/' (or be a glob such as **)", quote(*p)));
    return std::nullopt;
  }
  if (has_control(*p) || p->find(' ') != std::string::npos) {
    sink.error(f, fmt::format("path {} contains a space or a control character", quote(*p)));
    return std::nullopt;
  }
  if (p->size() > 4096) {
    sink.error(f, "path is longer than 4096 characters");
    return std::nullopt;
  }
  return p;
}

namespace {

constexpr std::string_view kMethods[] = {"GET",    "HEAD",  "POST",    "PUT",
                                         "DELETE", "PATCH", "OPTIONS", "*"};

// A value glob of a query matcher.
std::optional<std::string> read_value_glob(Sink& sink, const Field& f) {
  std::optional<std::string> v = read_string(sink, f, "a value glob");
  if (v && has_control(*v)) {
    sink.error(f, fmt::format("query value {} contains a control character", quote(*v)));
    return std::nullopt;
  }
  return v;
}

// query: {name: glob} or {name: {any: [glob, ...]}}
std::vector<QueryMatcher> read_query(Sink& sink, const Field& f, bool& ok) {
  std::vector<QueryMatcher> out;
  auto entries = read_map(sink, f, f.path, {});
  if (!entries) {
    ok = false;
    return out;
  }
  for (const Entry& e : *entries) {
    QueryMatcher m;
    m.name = e.key;
    if (e.key.empty() || has_control(e.key)) {
      sink.error(Field{e.value.node, e.value.path, e.key_at},
                 "query parameter names must be non-empty text");
      ok = false;
      continue;
    }
    if (e.value.node.IsMap()) {
      auto any = read_map(sink, e.value, e.value.path, {"any"});
      const Entry* list = any ? find(*any, "any") : nullptr;
      if (!any) {
        ok = false;
        continue;
      }
      if (!list) {
        sink.error(e.value, "expected {any: [globs]}");
        ok = false;
        continue;
      }
      auto items = read_list(sink, list->value, "a list of value globs");
      if (!items) {
        ok = false;
        continue;
      }
      if (items->empty()) {
        sink.error(list->value, "any: [] matches no value; list at least one glob");
        ok = false;
        continue;
      }
      for (const Field& item : *items) {
        if (auto g = read_value_glob(sink, item)) {
          m.any.push_back(*g);
        } else {
          ok = false;
        }
      }
    } else if (e.value.node.IsScalar()) {
      if (auto g = read_value_glob(sink, e.value)) {
        m.any.push_back(*g);
      } else {
        ok = false;
      }
    } else {
      sink.error(e.value, fmt::format("expected a value glob or {{any: [globs]}}, got {}",
                                      describe(e.value.node)));
      ok = false;
      continue;
    }
    out.push_back(std::move(m));
  }
  return out;
}

// {method, path, query}: a rule's matcher, the body of `allow:` or a deny_rules entry.
std::optional<L7Rule> read_matcher(Sink& sink, const Field& f) {
  auto entries = read_map(sink, f, f.path, {"method", "path", "query"});
  if (!entries) return std::nullopt;
  bool ok = true;
  L7Rule rule;
  const Entry* method = find(*entries, "method");
  const Entry* path = find(*entries, "path");
  const Entry* query = find(*entries, "query");
  if (!method && !path) {
    // An empty matcher would match every request; whoever means that should say access: full.
    sink.error(f, "a rule needs a method or a path (\"*\" and \"**\" match any)");
    return std::nullopt;
  }
  rule.method = "*";
  if (method) {
    std::optional<std::string> m = read_string(sink, method->value, "an HTTP method");
    if (m) {
      std::string upper;
      for (char c : *m)
        upper.push_back((c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c);
      if (std::find(std::begin(kMethods), std::end(kMethods), upper) == std::end(kMethods)) {
        sink.error(method->value,
                   fmt::format("method {} is not one of GET, HEAD, POST, PUT, DELETE, PATCH, "
                               "OPTIONS or * (any)",
                               quote(*m)));
        ok = false;
      }
      rule.method = upper;
    } else {
      ok = false;
    }
  }
  rule.path = "**";
  if (path) {
    std::optional<std::string> p = read_path_glob(sink, path->value);
    if (p) {
      rule.path = *p;
    } else {
      ok = false;
    }
  }
  if (query) rule.query = read_query(sink, query->value, ok);
  if (!ok) return std::nullopt;
  return rule;
}

bool has_key(const YAML::Node& map, std::string_view key) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    YAML::Node k = it->first;
    if (k.IsScalar() && k.Scalar() == key) return true;
  }
  return false;
}

}  // namespace

std::vector<L7Rule> read_rules(Sink& sink, const Entry* e, bool wrapped) {
  std::vector<L7Rule> out;
  if (!e) return out;
  auto items = read_list(
      sink, e->value, wrapped ? "a list of {allow: {method, path}}" : "a list of {method, path}");
  if (!items) return out;
  for (const Field& item : *items) {
    // The two lists differ by one level of nesting, an easy slip: name it in one error instead of
    // a cascade of unknown-key errors.
    if (item.node.IsNull()) {
      sink.error(item, "empty rule");
      continue;
    }
    if (item.node.IsMap() && wrapped != has_key(item.node, "allow")) {
      sink.error(item,
                 wrapped
                     ? "a rule is written {allow: {method: GET, path: /foo}}; this one lacks allow:"
                     : "a deny rule is written {method: DELETE, path: /foo}, without allow:");
      continue;
    }
    Field body = item;
    if (wrapped) {
      auto entries = read_map(sink, item, item.path, {"allow"});
      if (!entries) continue;
      const Entry* allow = find(*entries, "allow");
      if (!allow) continue;  // reported: not a mapping, or a duplicate/odd key
      body = allow->value;
    }
    if (auto rule = read_matcher(sink, body)) out.push_back(std::move(*rule));
  }
  return out;
}

}  // namespace ward::policy::detail
