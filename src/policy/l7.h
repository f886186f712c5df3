// L7 request matching: what the egress proxy asks, per HTTP request on an intercepted connection,
// before it forwards the request (policy-schema.md, endpoint `access`, `rules`, `deny_rules`).
//
// The proxy first normalises the request path (normalize_request_path) and parses the query
// (parse_query), then picks the endpoint (matcher.h, select_for_path) and calls evaluate_l7. It
// forwards `RequestPath::wire`, never the bytes it received, so the upstream sees exactly the path
// the rules were matched against.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "policy/policy.h"

namespace ward::policy {

inline constexpr std::size_t kMaxRequestPath = 8 * 1024;  // bytes of the raw path
inline constexpr std::size_t kMaxRequestQuery = 16 * 1024;

struct RequestPath {
  std::string match;  // decoded and normalised: what rules are matched against
  std::string wire;   // `match` re-encoded canonically: what the proxy forwards
};

// `raw` is the origin-form path without the query. So that no request slips past a rule by
// spelling it differently:
// - it must start with '/', be at most kMaxRequestPath bytes, and hold no '?', '#' or control
//   character, raw or percent-encoded; a malformed escape ("%", "%4", "%zz", "%u002e") is an error;
// - the decoded path must be valid UTF-8 (overlong forms such as %c0%ae are errors) without C1
//   controls;
// - an encoded slash (%2F, %2f) or backslash (%5C, or a raw '\', which some servers read as '/')
//   is an error unless `allow_encoded_slash`; then it stays the three characters "%2F" / "%5C"
//   inside its segment, in `match` and in `wire`, and never separates segments;
// - "//" collapses, then "." and ".." segments (also spelled %2e) are resolved as RFC 3986
//   remove_dot_segments does; a ".." above the root is an error, not clamped; a segment such as
//   "..;x" (which Tomcat-style servers read as "..") is an error;
// - a trailing '/' is kept (also after a final "." or "..", as RFC 3986 does).
// `wire` percent-encodes (upper-case hex) every byte outside RFC 3986 pchar, and '%' itself.
// normalize_request_path(wire) gives back the same match and wire. A literal "%2F" in a segment
// (sent as %252F) has the same `match` as a kept encoded slash, but a different `wire`.
Result<RequestPath> normalize_request_path(std::string_view raw, bool allow_encoded_slash);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// `q` is the query without its '?': "a=1&b=x%20y&c" gives {a,1} {b,"x y"} {c,""}. '+' is a
// space, names and values are percent-decoded (a malformed escape is an error), empty pairs
// ("&&") are skipped, order and duplicates are kept. At most kMaxRequestQuery bytes.
Result<QueryParams> parse_query(std::string_view q);

// A request-path glob over a normalised path: `*` matches within one segment, also part of it
// (`/repos/*/pulls`, `/v1/*.json`); a segment `**` matches any number of segments, zero included
// (`/**/git-upload-pack`; `**` and `/**` match every path). Only '/' separates segments (a kept
// "%2F" is part of its segment); a trailing '/' on the path is ignored, so `/admin` also matches
// `/admin/`. Runs in O(|glob| * |path|): no exponential backtracking.
bool path_glob_matches(std::string_view glob, std::string_view path);

// What a deny rule's path glob matches: every path path_glob_matches does, and every other
// reading a server may make of it — without segment parameters ("/admin;x" is "/admin" to
// Tomcat and Spring), and regardless of ASCII case (GitHub's owner and repository names).
bool deny_path_matches(std::string_view glob, std::string_view path);

// A query-value glob: `*` matches any run of characters, every other character itself.
bool value_glob_matches(std::string_view glob, std::string_view value);

struct L7Request {
  std::string_view method;             // as received: methods are case-sensitive
  std::string_view path;               // RequestPath::match
  const QueryParams* query = nullptr;  // nullptr: no query
};

struct L7Verdict {
  bool allowed = false;
  bool violation_audited = false;  // denied by the rules but let through: enforcement: audit
  std::string rule;    // what decided: "deny_rules[0]", "rules[2]", "access: read-only"; "" when
                       // no allow rule matched or the endpoint has no L7 rules at all
  std::string detail;  // one sentence for the audit record and the 403 body
};

// Semantics (policy-schema.md): a matching deny rule always wins; then `access` (read-only = GET
// HEAD OPTIONS; read-write = those + POST PUT PATCH; full = any method), or else the `rules`
// allow-list; an endpoint with neither allows whatever no deny rule matches. Methods compare
// exactly ("get" is not GET), except that deny rules compare case-insensitively so a lower-case
// method cannot dodge one. A rule's query matchers: each named parameter must be present, and in
// an allow rule EVERY occurrence must match one of its globs (?a=ok&a=evil fails); in a deny rule
// ANY occurrence suffices. A rule without query matchers ignores the query. Under
// `enforcement: audit` a denial becomes allowed + violation_audited, rule and detail unchanged.
L7Verdict evaluate_l7(const Endpoint& e, const L7Request& r);

// Whether the proxy must see this endpoint's HTTP requests: an HTTP-based protocol (rest; and
// websocket, graphql, json-rpc and mcp, handled as HTTP for now), access/rules/deny_rules, a
// credential binding, or a `path` (choosing among endpoints needs the request path).
bool needs_l7(const Endpoint& e);

}  // namespace ward::policy
