// libFuzzer target for the L7 request matching the proxy applies to intercepted requests: path
// normalisation, query parsing, the path and value globs and evaluate_l7. Built and run by
// bench/fuzz-l7.sh.
//
// Input: one flag byte (bit 0: allow_encoded_slash), then the bytes, which are fed whole to
// normalize_request_path and parse_query, and split at the first NUL into (glob, text) for the
// globs. Invariants, beyond not crashing or hanging:
// - a normalised path starts with '/' and its match form holds no "//", "/./", "/../", no final
//   "/." or "/..", and no control character; its wire form holds only pchar, '/' and "%XX";
//   normalising the wire form again gives the same match and wire;
// - a parsed query, re-encoded, parses back to the same pairs;
// - "**" matches every path, "*" every value, a glob without '*' matches itself; a deny rule with
//   the glob denies exactly what deny_path_matches says, which includes all path_glob_matches does.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/l7.h"

namespace {

using namespace ward::policy;

void check(bool ok) {
  if (!ok) std::abort();
}

bool is_pchar_or_slash(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
         std::string_view("-._~!$&'()*+,;=:@/").find(c) != std::string_view::npos;
}

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');  // the wire form is upper-case
}

void check_path(std::string_view raw, bool allow_encoded_slash) {
  auto p = normalize_request_path(raw, allow_encoded_slash);
  if (!p) {
    check(!p.error().message.empty());
    return;
  }
  const std::string& m = p->match;
  check(!m.empty() && m[0] == '/' && !p->wire.empty() && p->wire[0] == '/');
  for (std::string_view bad : {"//", "/./", "/../"}) check(m.find(bad) == std::string::npos);
  auto ends_with = [&](std::string_view s) {
    return m.size() >= s.size() && m.compare(m.size() - s.size(), s.size(), s) == 0;
  };
  check(!ends_with("/.") && !ends_with("/.."));
  for (char c : m) check(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
  const std::string& w = p->wire;
  for (size_t i = 0; i < w.size(); ++i) {
    if (w[i] == '%') {
      check(i + 2 < w.size() && is_hex(w[i + 1]) && is_hex(w[i + 2]));
      i += 2;
    } else {
      check(is_pchar_or_slash(w[i]));
    }
  }
  check(w.size() <= 3 * raw.size());
  auto again = normalize_request_path(w, allow_encoded_slash);
  check(again && again->match == m && again->wire == w);
  check(path_glob_matches("**", m) && path_glob_matches("/**", m));
  if (m.find('*') == std::string::npos) check(path_glob_matches(m, m));
}

std::string encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[u >> 4];
    out += kHex[u & 0xf];
  }
  return out;
}

void check_query(std::string_view q) {
  auto params = parse_query(q);
  if (!params) {
    check(!params.error().message.empty());
    return;
  }
  std::string again;
  for (const auto& [name, value] : *params) {
    again += (again.empty() ? "" : "&") + encode(name) + "=" + encode(value);
  }
  if (again.size() > kMaxRequestQuery) return;
  auto reparsed = parse_query(again);
  // A pair "x" (no '=') comes back as "x=", the same pair.
  check(reparsed && *reparsed == *params);
}

void check_globs(std::string_view glob, std::string_view text) {
  bool path = path_glob_matches(glob, text);
  (void)value_glob_matches(glob, text);
  check(value_glob_matches("*", text) && path_glob_matches("**", text));
  if (text.find('*') == std::string_view::npos) check(value_glob_matches(text, text));

  Endpoint e;
  e.deny_rules.push_back(L7Rule{"*", std::string(glob), {}});
  QueryParams none;
  L7Verdict v = evaluate_l7(e, L7Request{"GET", text, &none});
  const bool denied = deny_path_matches(glob, text);
  check(!path || denied);  // a deny rule holds at least where the glob matches
  check(v.allowed == !denied && v.rule == (denied ? "deny_rules[0]" : "") && !v.detail.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  bool allow_encoded_slash = data[0] & 1;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  check_path(input, allow_encoded_slash);
  check_query(input);
  size_t nul = input.find('\0');
  if (nul != std::string_view::npos) check_globs(input.substr(0, nul), input.substr(nul + 1));
  return 0;
}
