#include "policy/l7.h"

#include "policy/matcher.h"

#include <fmt/core.h>

#include <algorithm>
#include <cstdint>

namespace ward::policy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The escape at s[i] ('%'), or -1 when it is not '%' and two hex digits.
int escape_at(std::string_view s, size_t i) {
  if (i + 2 >= s.size()) return -1;
  int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::string escape_excerpt(std::string_view s, size_t i) {
  std::string out;
  for (char c : s.substr(i, 3)) {
    auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u >= 0x7f ? fmt::format("\\x{:02x}", u) : std::string(1, c);
  }
  return out;
}

bool is_control(unsigned char c) {
  return c < 0x20 || c == 0x7f;
}

// RFC 3986 pchar minus pct-encoded: unreserved / sub-delims / ":" / "@".
bool is_pchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("-._~!$&'()*+,;=:@").find(static_cast<char>(c)) != std::string_view::npos;
}

void append_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += '%';
  out += kHex[c >> 4];
  out += kHex[c & 0xf];
}

// "" when `s` is valid UTF-8 without C1 controls, else what is wrong.
std::string utf8_problem(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    std::uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return fmt::format("byte 0x{:02x} at decoded offset {} does not start a UTF-8 character", c,
                         i);
    }
    if (i + len > s.size()) return fmt::format("truncated UTF-8 character at decoded offset {}", i);
    for (size_t k = 1; k < len; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80)
        return fmt::format("invalid UTF-8 character at decoded offset {}", i);
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min)
      return fmt::format("overlong UTF-8 encoding of U+{:04X} at decoded offset {}", cp, i);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return fmt::format("invalid UTF-8 code point at decoded offset {}", i);
    if (cp <= 0x9f) return fmt::format("C1 control character U+{:04X} at decoded offset {}", cp, i);
    i += len;
  }
  return "";
}

struct Segment {
  std::string match;
  std::string wire;
};

// One raw segment (between raw '/'), decoded; `offset` is its position in the whole path.
Result<Segment> decode_segment(std::string_view raw, size_t offset, bool allow_encoded_slash) {
  Segment seg;
  for (size_t i = 0; i < raw.size(); ++i) {
    auto byte = static_cast<unsigned char>(raw[i]);
    bool escaped = false;
    if (byte == '%') {
      int v = escape_at(raw, i);
      if (v < 0)
        return fail(
            fmt::format("invalid percent-escape '{}' at offset {} of the request path: "
                        "'%' must be followed by two hex digits",
                        escape_excerpt(raw, i), offset + i));
      byte = static_cast<unsigned char>(v);
      escaped = true;
      i += 2;
    } else if (byte == '?' || byte == '#') {
      return fail(
          fmt::format("'{}' at offset {} of the request path: the path is passed without "
                      "its query, and a fragment is never sent",
                      static_cast<char>(byte), offset + i));
    }
    if (byte == '/' || byte == '\\') {
      // Raw '/' never gets here (it separates segments); a raw '\' is treated like %5C.
      std::string_view name = byte == '/' ? "an encoded slash (%2F)" : "a backslash (\\ or %5C)";
      if (!allow_encoded_slash)
        return fail(
            fmt::format("{} at offset {} of the request path is refused: some servers "
                        "read it as a path separator (the endpoint may set "
                        "allow_encoded_slash)",
                        name, offset + i - (escaped ? 2 : 0)));
      std::string_view kept = byte == '/' ? "%2F" : "%5C";
      seg.match += kept;
      seg.wire += kept;
      continue;
    }
    if (is_control(byte))
      return fail(fmt::format("the request path {} a control character (0x{:02x}) at offset {}",
                              escaped ? "decodes to" : "contains", byte,
                              offset + i - (escaped ? 2 : 0)));
    seg.match += static_cast<char>(byte);
    if (is_pchar(byte)) {
      seg.wire += static_cast<char>(byte);
    } else {
      append_escape(seg.wire, byte);
    }
  }
  return seg;
}

std::vector<std::string_view> segments_of(std::string_view path) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (end > start) out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ascii_iequal(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [&](char x, char y) { return lower(x) == lower(y); });
}

// A deny rule on GET holds for HEAD too: servers answer HEAD with the GET handler (Rails, Express,
// Flask), side effects included.
bool method_matches(std::string_view rule_method, std::string_view method, bool deny) {
  if (rule_method == "*") return true;
  if (!deny) return rule_method == method;
  return ascii_iequal(rule_method, method) ||
         (ascii_iequal(rule_method, "GET") && ascii_iequal(method, "HEAD"));
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// The path without the parameters of its segments ("/admin;x/y" is "/admin/y").
std::string without_params(std::string_view path) {
  std::string out;
  bool in_params = false;
  for (char c : path) {
    if (c == '/') in_params = false;
    if (c == ';') in_params = true;
    if (!in_params) out += c;
  }
  return out;
}

// `path` as a server that ignores a format suffix or trailing dots and spaces reads it: in every
// segment trailing '.' and ' ' go (IIS, Windows' file names), and from the last one a ".ext"
// (Rails routes' optional (.:format), Spring's suffix pattern match: /x/delete.json is delete).
std::string without_suffixes(std::string_view path) {
  std::string out;
  for (std::size_t start = 0; start < path.size();) {
    std::size_t end = path.find('/', start + 1);
    const bool last = end == std::string_view::npos;
    if (last) end = path.size();
    std::string_view segment = path.substr(start, end - start);  // with its leading '/'
    while (segment.size() > 1 && (segment.back() == '.' || segment.back() == ' '))
      segment.remove_suffix(1);
    if (last) {
      const std::size_t dot = segment.rfind('.');
      if (dot != std::string_view::npos && dot > 1 && dot + 1 < segment.size() &&
          std::all_of(segment.begin() + static_cast<std::ptrdiff_t>(dot) + 1, segment.end(),
                      [](unsigned char c) { return std::isalnum(c); }))
        segment = segment.substr(0, dot);
    }
    out += segment;
    start = end;
  }
  return out;
}

// Allow rules: every occurrence of each named parameter must match one of its globs. Deny rules:
// one matching occurrence of each named parameter suffices.
bool query_matches(const std::vector<QueryMatcher>& matchers, const QueryParams& query, bool deny) {
  for (const QueryMatcher& m : matchers) {
    bool present = false, any_ok = false, all_ok = true;
    for (const auto& param : query) {
      if (param.first != m.name) continue;
      present = true;
      bool ok = std::any_of(m.any.begin(), m.any.end(), [&](const std::string& g) {
        return value_glob_matches(g, param.second);
      });
      any_ok |= ok;
      all_ok &= ok;
    }
    if (!present || !(deny ? any_ok : all_ok)) return false;
  }
  return true;
}

bool rule_matches(const L7Rule& rule, const L7Request& r, const QueryParams& query, bool deny) {
  return method_matches(rule.method, r.method, deny) &&
         (deny ? deny_path_matches(rule.path, r.path) : path_glob_matches(rule.path, r.path)) &&
         query_matches(rule.query, query, deny);
}

std::string describe(const L7Rule& rule) {
  std::string out = rule.method + " " + rule.path;
  for (const QueryMatcher& m : rule.query) {
    out += &m == &rule.query.front() ? " ?" : "&";
    out += m.name + "=";
    for (const std::string& g : m.any) out += (&g == &m.any.front() ? "" : "|") + g;
  }
  return out;
}

std::string_view access_name(Access a) {
  switch (a) {
    case Access::kReadOnly:
      return "read-only";
    case Access::kReadWrite:
      return "read-write";
    case Access::kFull:
      return "full";
  }
  return "?";
}

std::string_view access_methods(Access a) {
  switch (a) {
    case Access::kReadOnly:
      return "GET, HEAD, OPTIONS";
    case Access::kReadWrite:
      return "GET, HEAD, OPTIONS, POST, PUT, PATCH";
    case Access::kFull:
      return "any method";
  }
  return "?";
}

bool access_allows(Access a, std::string_view method) {
  static constexpr std::string_view kReadOnly[] = {"GET", "HEAD", "OPTIONS"};
  static constexpr std::string_view kWrite[] = {"POST", "PUT", "PATCH"};
  auto in = [&](const auto& list) {
    return std::find(std::begin(list), std::end(list), method) != std::end(list);
  };
  switch (a) {
    case Access::kFull:
      return true;
    case Access::kReadWrite:
      return in(kReadOnly) || in(kWrite);
    case Access::kReadOnly:
      return in(kReadOnly);
  }
  return false;
}

L7Verdict verdict(const Endpoint& e, bool allowed, std::string rule, std::string detail) {
  L7Verdict v{allowed, false, std::move(rule), std::move(detail)};
  if (!allowed && e.enforcement == Enforcement::kAudit) {
    v.allowed = true;
    v.violation_audited = true;
  }
  return v;
}

}  // namespace

// A deny rule holds for every reading of the path a server may make: as it is, with segment
// parameters dropped (Tomcat, Jetty, Spring read "/admin;x" as "/admin"), without a format suffix
// or trailing dots and spaces (without_suffixes), and regardless of case (GitHub's owner and
// repository names, Express's and ASP.NET's default routes).
bool deny_path_matches(std::string_view glob, std::string_view path) {
  if (path_glob_matches(glob, path)) return true;
  const std::string plain = without_params(path);
  const std::string lower_glob = ascii_lower(glob);
  for (const std::string& reading : {plain, without_suffixes(path), without_suffixes(plain)})
    if (path_glob_matches(glob, reading) || path_glob_matches(lower_glob, ascii_lower(reading)))
      return true;
  return path_glob_matches(lower_glob, ascii_lower(path));
}

Result<RequestPath> normalize_request_path(std::string_view raw, bool allow_encoded_slash) {
  if (raw.size() > kMaxRequestPath)
    return fail(fmt::format("the request path is {} bytes; at most {} are accepted", raw.size(),
                            kMaxRequestPath));
  if (raw.empty() || raw[0] != '/') return fail("the request path must start with '/'");

  std::vector<Segment> out;
  bool trailing_slash = false;  // the output ends with '/'
  size_t start = 1;
  while (start <= raw.size()) {
    size_t end = raw.find('/', start);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view piece = raw.substr(start, end - start);
    bool last = end == raw.size();
    start = end + 1;
    if (piece.empty()) {  // "//" collapses; a final empty piece is a trailing slash
      if (last) trailing_slash = true;
      continue;
    }
    auto seg = decode_segment(piece, end - piece.size(), allow_encoded_slash);
    if (!seg) return tl::unexpected(seg.error());
    const std::string& m = seg->match;
    if (m == "." || m == "..") {
      if (m == "..") {
        if (out.empty())
          return fail("the request path climbs above the root with '..' (or %2e%2e)");
        out.pop_back();
      }
      trailing_slash = last;  // "/a/b/.." is "/a/", as RFC 3986 resolves it
      continue;
    }
    std::string_view before_params = std::string_view(m).substr(0, m.find(';'));
    if (m.find(';') != std::string::npos && (before_params == "." || before_params == ".."))
      return fail(fmt::format(
          "the request path has a dot segment with parameters ('{}'), which some servers resolve "
          "as '{}'",
          m, before_params));
    trailing_slash = false;
    out.push_back(std::move(*seg));
  }

  RequestPath p;
  for (const Segment& s : out) {
    p.match += '/' + s.match;
    p.wire += '/' + s.wire;
  }
  if (out.empty() || trailing_slash) {
    p.match += '/';
    p.wire += '/';
  }
  if (std::string why = utf8_problem(p.match); !why.empty())
    return fail("the request path does not decode to valid text: " + why);
  return p;
}

Result<QueryParams> parse_query(std::string_view q) {
  if (q.size() > kMaxRequestQuery)
    return fail(
        fmt::format("the query is {} bytes; at most {} are accepted", q.size(), kMaxRequestQuery));
  auto decode = [&](std::string_view s, size_t offset) -> Result<std::string> {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '+') {
        out += ' ';
      } else if (s[i] != '%') {
        out += s[i];
      } else {
        int v = escape_at(s, i);
        if (v < 0)
          return fail(
              fmt::format("invalid percent-escape '{}' at offset {} of the query: '%' "
                          "must be followed by two hex digits",
                          escape_excerpt(s, i), offset + i));
        out += static_cast<char>(v);
        i += 2;
      }
    }
    return out;
  };
  QueryParams params;
  size_t start = 0;
  while (start <= q.size()) {
    size_t end = q.find('&', start);
    if (end == std::string_view::npos) end = q.size();
    std::string_view pair = q.substr(start, end - start);
    size_t offset = start;
    start = end + 1;
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto name = decode(pair.substr(0, eq), offset);
    if (!name) return tl::unexpected(name.error());
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = decode(pair.substr(eq + 1), offset + eq + 1);
      if (!v) return tl::unexpected(v.error());
      value = std::move(*v);
    }
    params.emplace_back(std::move(*name), std::move(value));
  }
  return params;
}

bool path_glob_matches(std::string_view glob, std::string_view path) {
  std::vector<std::string_view> pattern;
  for (std::string_view s : segments_of(glob))
    if (s != "**" || pattern.empty() || pattern.back() != "**") pattern.push_back(s);
  std::vector<std::string_view> text = segments_of(path);
  // Each non-`**` segment consumes exactly one path segment, so the greedy algorithm with one
  // resume point (the last `**`) is exact, as for `*` over characters.
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == "**") {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && star_match(pattern[p], text[t])) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == "**") ++p;
  return p == pattern.size();
}

bool value_glob_matches(std::string_view glob, std::string_view value) {
  return star_match(glob, value);
}

L7Verdict evaluate_l7(const Endpoint& e, const L7Request& r) {
  static const QueryParams kNoQuery;
  const QueryParams& query = r.query ? *r.query : kNoQuery;
  std::string what = fmt::format("{} {}", r.method, r.path);

  for (size_t i = 0; i < e.deny_rules.size(); ++i) {
    const L7Rule& rule = e.deny_rules[i];
    if (rule_matches(rule, r, query, true)) {
      std::string name = fmt::format("deny_rules[{}]", i);
      return verdict(e, false, name,
                     fmt::format("{} is denied by {} ({})", what, name, describe(rule)));
    }
  }
  if (e.access) {
    std::string name = fmt::format("access: {}", access_name(*e.access));
    if (access_allows(*e.access, r.method))
      return verdict(e, true, name, fmt::format("{} is allowed by {}", what, name));
    return verdict(
        e, false, name,
        fmt::format("{} is not allowed by {} ({})", what, name, access_methods(*e.access)));
  }
  if (!e.rules.empty()) {
    for (size_t i = 0; i < e.rules.size(); ++i) {
      const L7Rule& rule = e.rules[i];
      if (rule_matches(rule, r, query, false)) {
        std::string name = fmt::format("rules[{}]", i);
        return verdict(e, true, name,
                       fmt::format("{} is allowed by {} ({})", what, name, describe(rule)));
      }
    }
    return verdict(e, false, "",
                   e.rules.size() == 1
                       ? fmt::format("{} is not allowed by the endpoint's rule", what)
                       : fmt::format("{} is not allowed by any of the endpoint's {} rules", what,
                                     e.rules.size()));
  }
  return verdict(
      e, true, "",
      fmt::format("{} is allowed: the endpoint has no access preset and no rules", what));
}

bool needs_l7(const Endpoint& e) {
  switch (e.protocol) {
    case Protocol::kRest:
    case Protocol::kWebsocket:
    case Protocol::kGraphql:
    case Protocol::kJsonRpc:
    case Protocol::kMcp:
      return true;
    case Protocol::kL4:
    case Protocol::kSql:
    case Protocol::kTcp:
      break;
  }
  return e.access || !e.rules.empty() || !e.deny_rules.empty() || !e.credential_provider.empty() ||
         !e.path.empty();
}

}  // namespace ward::policy
