// L7 request matching as the egress proxy uses it on an intercepted connection: a request path
// spelled to slip past a rule, query smuggling, methods, presets, deny rules, audit mode and
// OpenShell's GitHub provider profile.
#include "policy/l7.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <string>

#include "policy/matcher.h"

namespace ward::policy {
namespace {

// --- normalize_request_path ---

std::string match_of(std::string_view raw, bool allow_encoded_slash = false) {
  auto p = normalize_request_path(raw, allow_encoded_slash);
  EXPECT_TRUE(p.has_value()) << raw << ": " << (p ? "" : p.error().message);
  return p ? p->match : "<error>";
}

std::string wire_of(std::string_view raw, bool allow_encoded_slash = false) {
  auto p = normalize_request_path(raw, allow_encoded_slash);
  EXPECT_TRUE(p.has_value()) << raw << ": " << (p ? "" : p.error().message);
  return p ? p->wire : "<error>";
}

// The error message, or "<accepted>" when the path was normalised.
std::string error_of(std::string_view raw, bool allow_encoded_slash = false) {
  auto p = normalize_request_path(raw, allow_encoded_slash);
  return p ? "<accepted: " + p->match + ">" : p.error().message;
}

#define EXPECT_REFUSED(raw, needle) EXPECT_PRED_FORMAT2(Refused, raw, needle)

::testing::AssertionResult Refused(const char*, const char*, std::string_view raw,
                                   std::string_view needle) {
  std::string e = error_of(raw);
  if (e.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "'" << raw << "': expected an error containing '" << needle << "', got: " << e;
}

TEST(NormalizeRequestPath, APlainPathIsUnchanged) {
  auto p = normalize_request_path("/repos/octo/hello-world/pulls", false);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->match, "/repos/octo/hello-world/pulls");
  EXPECT_EQ(p->wire, "/repos/octo/hello-world/pulls");
  EXPECT_EQ(match_of("/"), "/");
  EXPECT_EQ(match_of("/v1/models/gemini:generateContent"), "/v1/models/gemini:generateContent");
}

TEST(NormalizeRequestPath, DotSegmentsAreResolved) {
  EXPECT_EQ(match_of("/repos/../admin"), "/admin");
  EXPECT_EQ(match_of("/a/./b"), "/a/b");
  EXPECT_EQ(match_of("/a/b/../../c"), "/c");
  EXPECT_EQ(match_of("/a/b/.."), "/a/");
  EXPECT_EQ(match_of("/a/."), "/a/");
  EXPECT_EQ(match_of("/."), "/");
  EXPECT_EQ(wire_of("/repos/../admin"), "/admin");
  // Not dot segments: literal names.
  EXPECT_EQ(match_of("/a/.../b"), "/a/.../b");
  EXPECT_EQ(match_of("/a/.git/b"), "/a/.git/b");
}

TEST(NormalizeRequestPath, EncodedDotSegmentsAreResolvedToo) {
  EXPECT_EQ(match_of("/repos/%2e%2e/admin"), "/admin");
  EXPECT_EQ(match_of("/repos/%2E./admin"), "/admin");
  EXPECT_EQ(match_of("/repos/.%2e/admin"), "/admin");
  EXPECT_EQ(match_of("/a/%2e/b"), "/a/b");
}

TEST(NormalizeRequestPath, ClimbingAboveTheRootIsAnErrorNotClamped) {
  EXPECT_REFUSED("/..", "climbs above the root");
  EXPECT_REFUSED("/../admin", "climbs above the root");
  EXPECT_REFUSED("/%2e%2e/admin", "climbs above the root");
  EXPECT_REFUSED("/a/../../admin", "climbs above the root");
  EXPECT_REFUSED("//../admin", "climbs above the root");
}

TEST(NormalizeRequestPath, DuplicateSlashesCollapse) {
  EXPECT_EQ(match_of("//admin"), "/admin");
  EXPECT_EQ(wire_of("//admin"), "/admin");
  EXPECT_EQ(match_of("/a//b///c"), "/a/b/c");
  EXPECT_EQ(match_of("/a//"), "/a/");
  EXPECT_EQ(match_of("//"), "/");
  EXPECT_EQ(match_of("/a/b/"), "/a/b/");  // a trailing slash is kept
}

TEST(NormalizeRequestPath, EncodedSlashAndBackslashAreRefusedByDefault) {
  EXPECT_REFUSED("/a%2Fb", "encoded slash (%2F) at offset 2");
  EXPECT_REFUSED("/a%2fb", "allow_encoded_slash");
  EXPECT_REFUSED("/repos/..%2Fadmin", "encoded slash");
  EXPECT_REFUSED("/a%5Cb", "backslash");
  EXPECT_REFUSED("/a%5c..%5cadmin", "backslash");
  EXPECT_REFUSED("/a\\..\\admin", "backslash");
}

TEST(NormalizeRequestPath, AnAllowedEncodedSlashStaysInsideItsSegment) {
  auto p = normalize_request_path("/projects/group%2fproject/issues", true);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->match, "/projects/group%2Fproject/issues");
  EXPECT_EQ(p->wire, "/projects/group%2Fproject/issues");
  // Never a separator, so never part of a dot segment either.
  EXPECT_EQ(match_of("/public/..%2Fadmin", true), "/public/..%2Fadmin");
  EXPECT_EQ(match_of("/a%5Cb", true), "/a%5Cb");
  EXPECT_EQ(match_of("/a\\b", true), "/a%5Cb");
  // A literal "%2F" (sent as %252F) is a percent sign on the wire, not a slash.
  EXPECT_EQ(match_of("/a%252Fb", true), "/a%2Fb");
  EXPECT_EQ(wire_of("/a%252Fb", true), "/a%252Fb");
}

TEST(NormalizeRequestPath, MalformedEscapesAreErrors) {
  EXPECT_REFUSED("/%", "invalid percent-escape '%' at offset 1");
  EXPECT_REFUSED("/a%4", "invalid percent-escape '%4' at offset 2");
  EXPECT_REFUSED("/%zz/admin", "invalid percent-escape '%zz'");
  EXPECT_REFUSED("/%u002e%u002e/admin", "invalid percent-escape '%u0'");
  EXPECT_REFUSED("/a%%32%66", "invalid percent-escape");
}

TEST(NormalizeRequestPath, ControlCharactersAreErrorsRawOrDecoded) {
  EXPECT_REFUSED("/a%00b", "decodes to a control character (0x00) at offset 2");
  EXPECT_REFUSED("/a%0d%0aHost:%20evil", "control character (0x0d)");
  EXPECT_REFUSED("/a%7f", "control character (0x7f)");
  EXPECT_REFUSED(std::string_view("/a\0b", 4), "contains a control character (0x00)");
  EXPECT_REFUSED("/a\tb", "contains a control character (0x09)");
}

TEST(NormalizeRequestPath, OverlongAndInvalidUtf8AreErrors) {
  EXPECT_REFUSED("/%c0%ae%c0%ae/admin", "overlong UTF-8 encoding of U+002E");
  EXPECT_REFUSED("/%c0%af", "overlong UTF-8 encoding of U+002F");
  EXPECT_REFUSED("/%e0%80%ae", "overlong");
  EXPECT_REFUSED("/%ff", "does not start a UTF-8 character");
  EXPECT_REFUSED("/%c3", "truncated UTF-8");
  EXPECT_REFUSED("/%ed%a0%80", "invalid UTF-8 code point");
  EXPECT_REFUSED("/%c2%85", "C1 control character U+0085");
  EXPECT_EQ(match_of("/caf%C3%A9"), "/caf\xc3\xa9");
  EXPECT_EQ(wire_of("/caf\xc3\xa9"), "/caf%C3%A9");
}

TEST(NormalizeRequestPath, TheWireFormIsCanonical) {
  EXPECT_EQ(wire_of("/%61%64min"), "/admin");  // unreserved characters are never escaped
  EXPECT_EQ(match_of("/%61%64min"), "/admin");
  EXPECT_EQ(wire_of("/%7e%2D%2e%5f"), "/~-._");
  EXPECT_EQ(wire_of("/a%20b"), "/a%20b");
  EXPECT_EQ(match_of("/a%20b"), "/a b");
  EXPECT_EQ(wire_of("/100%25"), "/100%25");
  EXPECT_EQ(match_of("/100%25"), "/100%");
  EXPECT_EQ(wire_of("/what%3f"), "/what%3F");
  EXPECT_EQ(match_of("/what%3f"), "/what?");
  EXPECT_EQ(wire_of("/a%23b"), "/a%23b");
  EXPECT_EQ(match_of("/a%23b"), "/a#b");
  EXPECT_EQ(wire_of("/{x}|\"<>^`[]"), "/%7Bx%7D%7C%22%3C%3E%5E%60%5B%5D");
  EXPECT_EQ(wire_of("/a:b@c!$&'()*+,;="), "/a:b@c!$&'()*+,;=");
  EXPECT_EQ(wire_of("/%3a%40"), "/:@");
}

TEST(NormalizeRequestPath, NormalisingTheWireFormAgainChangesNothing) {
  for (std::string_view raw :
       {"/a/../b%20c/./d//e/", "/%c3%a9t%c3%a9/%25/%3F", "/x/%7B%7d/..", "/~user/a%2bb"}) {
    auto once = normalize_request_path(raw, false);
    ASSERT_TRUE(once) << raw << ": " << once.error().message;
    auto twice = normalize_request_path(once->wire, false);
    ASSERT_TRUE(twice) << once->wire << ": " << twice.error().message;
    EXPECT_EQ(twice->match, once->match) << raw;
    EXPECT_EQ(twice->wire, once->wire) << raw;
  }
}

TEST(NormalizeRequestPath, NotAnOriginFormPath) {
  EXPECT_REFUSED("", "must start with '/'");
  EXPECT_REFUSED("admin", "must start with '/'");
  EXPECT_REFUSED("*", "must start with '/'");
  EXPECT_REFUSED("http://example.com/", "must start with '/'");
  EXPECT_REFUSED("/a?b=1", "without its query");
  EXPECT_REFUSED("/a#frag", "'#' at offset 2");
}

TEST(NormalizeRequestPath, DotSegmentsWithParametersAreErrors) {
  // Tomcat-style servers strip ";..." and then resolve "..": /public/..;/admin is /admin there.
  EXPECT_REFUSED("/public/..;/admin", "dot segment with parameters ('..;')");
  EXPECT_REFUSED("/public/%2e%2e;x=1/admin", "dot segment with parameters");
  EXPECT_REFUSED("/a/.;x/b", "dot segment with parameters");
  EXPECT_EQ(match_of("/a;v=1/b"), "/a;v=1/b");
}

TEST(NormalizeRequestPath, LongPathsAreRefused) {
  std::string ok = "/" + std::string(kMaxRequestPath - 1, 'a');
  EXPECT_EQ(match_of(ok), ok);
  EXPECT_REFUSED(ok + "a", "the request path is 8193 bytes; at most 8192 are accepted");
}

// --- parse_query ---

QueryParams query_of(std::string_view q) {
  auto r = parse_query(q);
  EXPECT_TRUE(r.has_value()) << q << ": " << (r ? "" : r.error().message);
  return r ? *r : QueryParams{};
}

TEST(ParseQuery, PairsAreDecodedInOrder) {
  EXPECT_EQ(query_of("a=1&b=x%20y&c"), (QueryParams{{"a", "1"}, {"b", "x y"}, {"c", ""}}));
  EXPECT_EQ(query_of("q=a+b&p=%2B&%71%2b=1"), (QueryParams{{"q", "a b"}, {"p", "+"}, {"q+", "1"}}));
  EXPECT_EQ(query_of("a=b=c"), (QueryParams{{"a", "b=c"}}));
  EXPECT_EQ(query_of("a=1&a=2"), (QueryParams{{"a", "1"}, {"a", "2"}}));
}

TEST(ParseQuery, EmptyPairsAreSkipped) {
  EXPECT_EQ(query_of(""), QueryParams{});
  EXPECT_EQ(query_of("&&a=1&"), (QueryParams{{"a", "1"}}));
  EXPECT_EQ(query_of("a="), (QueryParams{{"a", ""}}));
}

TEST(ParseQuery, MalformedEscapesAreErrors) {
  for (std::string_view q : {"a=%zz", "a=%", "a=1&%4=1", "a=%u0041"}) {
    auto r = parse_query(q);
    ASSERT_FALSE(r) << q;
    EXPECT_NE(r.error().message.find("invalid percent-escape"), std::string::npos)
        << r.error().message;
  }
  auto r = parse_query("a=1&b=%g1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "invalid percent-escape '%g1' at offset 6 of the query: '%' must be followed by two "
            "hex digits");
}

TEST(ParseQuery, LongQueriesAreRefused) {
  EXPECT_TRUE(parse_query(std::string(kMaxRequestQuery, 'a')));
  EXPECT_FALSE(parse_query(std::string(kMaxRequestQuery + 1, 'a')));
}

// --- globs ---

TEST(PathGlob, StarStaysWithinOneSegment) {
  EXPECT_TRUE(path_glob_matches("/repos/*/pulls", "/repos/octo/pulls"));
  EXPECT_FALSE(path_glob_matches("/repos/*/pulls", "/repos/octo/x/pulls"));
  EXPECT_FALSE(path_glob_matches("/repos/*/pulls", "/repos/pulls"));
  EXPECT_TRUE(path_glob_matches("/v1/*.json", "/v1/models.json"));
  EXPECT_FALSE(path_glob_matches("/v1/*.json", "/v1/a/models.json"));
  EXPECT_FALSE(path_glob_matches("/v1/*.json", "/v1/models.jsonx"));
  EXPECT_FALSE(path_glob_matches("/v1/models", "/v1/models2"));
  EXPECT_FALSE(path_glob_matches("/v1/models", "/V1/models"));
}

TEST(PathGlob, DoubleStarSpansAnyNumberOfSegments) {
  for (std::string_view glob : {"**", "/**"}) {
    EXPECT_TRUE(path_glob_matches(glob, "/"));
    EXPECT_TRUE(path_glob_matches(glob, "/a"));
    EXPECT_TRUE(path_glob_matches(glob, "/a/b/c/"));
  }
  EXPECT_TRUE(path_glob_matches("/**/git-upload-pack", "/org/repo.git/git-upload-pack"));
  EXPECT_TRUE(path_glob_matches("/**/git-upload-pack", "/git-upload-pack"));
  EXPECT_FALSE(path_glob_matches("/**/git-upload-pack", "/org/repo.git/git-receive-pack"));
  EXPECT_FALSE(path_glob_matches("/**/git-upload-pack", "/org/git-upload-pack/x"));
  EXPECT_TRUE(path_glob_matches("/repos/**", "/repos"));
  EXPECT_TRUE(path_glob_matches("/repos/**", "/repos/a/b"));
  EXPECT_FALSE(path_glob_matches("/repos/**", "/reposx/a"));
  EXPECT_TRUE(path_glob_matches("/a/**/b/**/c", "/a/x/b/y/z/c"));
  EXPECT_FALSE(path_glob_matches("/a/**/b/**/c", "/a/x/c/y/b"));
}

TEST(PathGlob, ATrailingSlashDoesNotDodgeARule) {
  EXPECT_TRUE(path_glob_matches("/admin", "/admin/"));
  EXPECT_TRUE(path_glob_matches("/admin/*", "/admin/x/"));
  EXPECT_FALSE(path_glob_matches("/admin/*", "/admin/"));
}

TEST(PathGlob, AKeptEncodedSlashIsPartOfItsSegment) {
  EXPECT_TRUE(path_glob_matches("/projects/*/issues", "/projects/group%2Fproject/issues"));
  EXPECT_FALSE(
      path_glob_matches("/projects/group/project/issues", "/projects/group%2Fproject/issues"));
}

TEST(PathGlob, HostileInputStaysLinear) {
  std::string path;
  for (int i = 0; i < 2000; ++i) path += "/aaaaaaaa";
  std::string value(20000, 'a');
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(path_glob_matches("/**/a*/**/*a/**/*a*/**/a*a/**/*b", path));
  EXPECT_FALSE(path_glob_matches("/**/*a*a*a*a*a*a*b/**", path));
  EXPECT_FALSE(value_glob_matches("*a*a*a*a*a*a*a*a*a*b", value));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(ValueGlob, StarMatchesAnyRun) {
  EXPECT_TRUE(value_glob_matches("*", ""));
  EXPECT_TRUE(value_glob_matches("*", "a/b?c"));
  EXPECT_TRUE(value_glob_matches("v1*", "v1.2"));
  EXPECT_FALSE(value_glob_matches("v1*", "xv1"));
  EXPECT_TRUE(value_glob_matches("a*c", "abbbc"));
  EXPECT_FALSE(value_glob_matches("a*c", "abbbcd"));
  EXPECT_TRUE(value_glob_matches("exact", "exact"));
  EXPECT_FALSE(value_glob_matches("exact", "exac"));
  EXPECT_FALSE(value_glob_matches("a?c", "abc"));  // only '*' is special
}

// --- evaluate_l7 ---

// One endpoint on api.example.com:443, loaded as a user writes it; `fields` are YAML lines at the
// endpoint's indentation (8 spaces).
Endpoint endpoint(std::string_view fields) {
  std::string yaml =
      "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n      - host: api.example.com\n"
      "        port: 443\n        protocol: rest\n";
  yaml += fields;
  yaml += "    binaries: [{path: \"/**\"}]\n";
  LoadResult r = load_string(yaml, "test.yaml");
  EXPECT_TRUE(r.ok()) << r.first_error() << "\n" << yaml;
  if (!r.ok() || r.policy->network.empty()) return Endpoint{};
  return r.policy->network[0].endpoints.at(0);
}

// As the proxy will do it: normalise the path, parse the query, evaluate.
L7Verdict check(const Endpoint& e, std::string_view method, std::string_view target) {
  size_t q = target.find('?');
  auto path = normalize_request_path(target.substr(0, q), e.allow_encoded_slash);
  EXPECT_TRUE(path) << target << ": " << (path ? "" : path.error().message);
  if (!path) return L7Verdict{};
  QueryParams query;
  if (q != std::string_view::npos) {
    auto parsed = parse_query(target.substr(q + 1));
    EXPECT_TRUE(parsed) << target << ": " << (parsed ? "" : parsed.error().message);
    if (!parsed) return L7Verdict{};
    query = *parsed;
  }
  return evaluate_l7(e, L7Request{method, path->match, &query});
}

bool allowed(const Endpoint& e, std::string_view method, std::string_view target) {
  L7Verdict v = check(e, method, target);
  EXPECT_FALSE(v.violation_audited);
  return v.allowed;
}

TEST(EvaluateL7, ReadOnlyPreset) {
  Endpoint e = endpoint("        enforcement: enforce\n        access: read-only\n");
  for (std::string_view m : {"GET", "HEAD", "OPTIONS"}) {
    L7Verdict v = check(e, m, "/repos/x");
    EXPECT_TRUE(v.allowed) << m;
    EXPECT_EQ(v.rule, "access: read-only");
  }
  L7Verdict post = check(e, "POST", "/repos/x");
  EXPECT_FALSE(post.allowed);
  EXPECT_FALSE(post.violation_audited);
  EXPECT_EQ(post.rule, "access: read-only");
  EXPECT_EQ(post.detail, "POST /repos/x is not allowed by access: read-only (GET, HEAD, OPTIONS)");
  for (std::string_view m : {"PUT", "PATCH", "DELETE", "CONNECT", "TRACE"})
    EXPECT_FALSE(allowed(e, m, "/repos/x")) << m;
}

TEST(EvaluateL7, ReadWriteAndFullPresets) {
  Endpoint rw = endpoint("        enforcement: enforce\n        access: read-write\n");
  for (std::string_view m : {"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"})
    EXPECT_TRUE(allowed(rw, m, "/x")) << m;
  L7Verdict del = check(rw, "DELETE", "/x");
  EXPECT_FALSE(del.allowed);
  EXPECT_EQ(del.detail,
            "DELETE /x is not allowed by access: read-write (GET, HEAD, OPTIONS, POST, PUT, "
            "PATCH)");
  Endpoint full = endpoint("        enforcement: enforce\n        access: full\n");
  for (std::string_view m : {"DELETE", "PURGE", "PROPFIND"}) EXPECT_TRUE(allowed(full, m, "/x"));
  EXPECT_EQ(check(full, "DELETE", "/x").rule, "access: full");
}

TEST(EvaluateL7, MethodsAreCaseSensitiveButCannotDodgeADeny) {
  Endpoint ro = endpoint("        enforcement: enforce\n        access: read-only\n");
  EXPECT_FALSE(allowed(ro, "get", "/x"));
  EXPECT_FALSE(allowed(ro, "Get", "/x"));
  Endpoint rules = endpoint(
      "        enforcement: enforce\n        rules:\n          - allow: {method: GET, path: "
      "\"/**\"}\n");
  EXPECT_FALSE(allowed(rules, "gEt", "/x"));
  Endpoint full = endpoint(
      "        enforcement: enforce\n        access: full\n        deny_rules:\n"
      "          - {method: DELETE, path: \"/**\"}\n");
  for (std::string_view m : {"DELETE", "delete", "Delete"}) {
    L7Verdict v = check(full, m, "/repos/x");
    EXPECT_FALSE(v.allowed) << m;
    EXPECT_EQ(v.rule, "deny_rules[0]");
  }
}

// Found in review: a deny rule was dodged by spelling the path in another case (GitHub resolves
// owner and repository names in any case), by segment parameters (Tomcat and Spring drop
// ";x"), and a deny on GET by HEAD (served by the GET handler). Allow rules stay exact.
TEST(EvaluateL7, ADenyHoldsForEveryReadingOfThePath) {
  Endpoint full = endpoint(
      "        enforcement: enforce\n        access: full\n        deny_rules:\n"
      "          - {method: \"*\", path: \"/repos/acme/prod/**\"}\n"
      "          - {method: GET, path: /export}\n");
  for (std::string_view path : {"/repos/acme/prod/x", "/repos/ACME/Prod/x",
                                "/repos/acme;v=1/prod/x", "/Repos/Acme;x/PROD/y"})
    EXPECT_FALSE(check(full, "DELETE", path).allowed) << path;
  EXPECT_TRUE(check(full, "DELETE", "/repos/acme/dev/x").allowed);
  // Found by a red-team: a format suffix (Rails' (.:format), Spring's suffix match) and trailing
  // dots or spaces (IIS) are the same route to such servers.
  for (std::string_view path :
       {"/export.json", "/export.", "/export%2e", "/export%20", "/Export.CSV", "/export;x.json"})
    EXPECT_FALSE(check(full, "GET", path).allowed) << path;
  for (std::string_view path : {"/repos/acme/prod./x", "/repos/acme/prod%20/x"})
    EXPECT_FALSE(check(full, "DELETE", path).allowed) << path;
  EXPECT_TRUE(check(full, "GET", "/exports").allowed);
  EXPECT_TRUE(check(full, "GET", "/export/x.json").allowed);
  EXPECT_FALSE(check(full, "HEAD", "/export").allowed);
  EXPECT_FALSE(check(full, "head", "/export").allowed);
  EXPECT_TRUE(check(full, "POST", "/export").allowed);
  Endpoint rules = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow: {method: GET, path: /public/**}\n");
  EXPECT_TRUE(check(rules, "GET", "/public/x").allowed);
  EXPECT_FALSE(check(rules, "GET", "/PUBLIC/x").allowed);
  EXPECT_FALSE(check(rules, "HEAD", "/public/x").allowed);
}

TEST(EvaluateL7, RulesAreAnAllowList) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow: {method: GET, path: /repos/*/pulls}\n"
      "          - allow: {method: \"*\", path: /status}\n");
  L7Verdict pulls = check(e, "GET", "/repos/octo/pulls?state=open");
  EXPECT_TRUE(pulls.allowed);
  EXPECT_EQ(pulls.rule, "rules[0]");
  EXPECT_EQ(pulls.detail, "GET /repos/octo/pulls is allowed by rules[0] (GET /repos/*/pulls)");
  EXPECT_EQ(check(e, "DELETE", "/status").rule, "rules[1]");
  L7Verdict other = check(e, "GET", "/repos/octo/issues");
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.rule, "");
  EXPECT_EQ(other.detail, "GET /repos/octo/issues is not allowed by any of the endpoint's 2 rules");
  EXPECT_FALSE(allowed(e, "POST", "/repos/octo/pulls"));
}

TEST(EvaluateL7, PathTricksDoNotSlipPastRules) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow: {method: GET, path: \"/public/**\"}\n"
      "        deny_rules:\n          - {method: GET, path: \"/public/secret/**\"}\n");
  EXPECT_TRUE(allowed(e, "GET", "/public/readme"));
  EXPECT_FALSE(allowed(e, "GET", "/public/../admin"));
  EXPECT_FALSE(allowed(e, "GET", "/public/%2e%2e/admin"));
  EXPECT_FALSE(allowed(e, "GET", "/public/secret/key"));
  EXPECT_FALSE(allowed(e, "GET", "//public//secret/key"));
  EXPECT_FALSE(allowed(e, "GET", "/public/./secret/key"));
  EXPECT_FALSE(allowed(e, "GET", "/public/x/../secret/key"));
  EXPECT_FALSE(allowed(e, "GET", "/public/%73ecret/key"));
  EXPECT_FALSE(allowed(e, "GET", "/public/secret"));
  EXPECT_FALSE(allowed(e, "GET", "/public/secret/"));
}

TEST(EvaluateL7, QueryMatchersCheckEveryOccurrence) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow:\n              method: GET\n              path: /search\n"
      "              query: {q: \"ok*\", type: {any: [code, issues]}}\n");
  EXPECT_TRUE(allowed(e, "GET", "/search?q=ok1&type=code"));
  EXPECT_TRUE(allowed(e, "GET", "/search?type=issues&q=ok&extra=anything"));
  EXPECT_TRUE(allowed(e, "GET", "/search?q=ok&type=code&type=issues"));
  EXPECT_FALSE(allowed(e, "GET", "/search?q=evil&type=code"));
  EXPECT_FALSE(allowed(e, "GET", "/search?type=code"));        // q missing
  EXPECT_FALSE(allowed(e, "GET", "/search?q=ok&type=users"));  // not in any:
  EXPECT_FALSE(allowed(e, "GET", "/search"));
  // Duplicates: every occurrence must match, in either order.
  EXPECT_FALSE(allowed(e, "GET", "/search?q=ok&q=evil&type=code"));
  EXPECT_FALSE(allowed(e, "GET", "/search?q=evil&q=ok&type=code"));
  // Names are compared decoded: %71 is q.
  EXPECT_FALSE(allowed(e, "GET", "/search?q=ok&%71=evil&type=code"));
  // An encoded '&' is part of the value: the upstream sees one q, "ok&q=evil", which starts with
  // ok.
  EXPECT_TRUE(allowed(e, "GET", "/search?q=ok%26q%3Devil&type=code"));
}

TEST(EvaluateL7, ARuleWithoutQueryMatchersAllowsAnyQuery) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n          - allow: {method: GET, path: /x}\n");
  EXPECT_TRUE(allowed(e, "GET", "/x?a=1&a=2&b"));
  EXPECT_TRUE(allowed(e, "GET", "/x"));
}

TEST(EvaluateL7, DenyBeatsAllow) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow: {method: \"*\", path: \"**\"}\n"
      "        deny_rules:\n          - {method: POST, path: \"/**/git-receive-pack\"}\n");
  EXPECT_TRUE(allowed(e, "POST", "/org/repo.git/git-upload-pack"));
  L7Verdict v = check(e, "POST", "/org/repo.git/git-receive-pack");
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.rule, "deny_rules[0]");
  EXPECT_EQ(v.detail,
            "POST /org/repo.git/git-receive-pack is denied by deny_rules[0] (POST "
            "/**/git-receive-pack)");
  Endpoint full = endpoint(
      "        enforcement: enforce\n        access: full\n        deny_rules:\n"
      "          - {method: DELETE, path: \"/repos/**\"}\n");
  EXPECT_FALSE(allowed(full, "DELETE", "/repos/o/r"));
  EXPECT_TRUE(allowed(full, "DELETE", "/gists/1"));
}

TEST(EvaluateL7, ADenyRuleMatchesAnyOccurrenceOfAParameter) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        access: full\n        deny_rules:\n"
      "          - {method: POST, path: /push, query: {force: \"true\"}}\n");
  EXPECT_TRUE(allowed(e, "POST", "/push?force=false"));
  EXPECT_TRUE(allowed(e, "POST", "/push"));
  EXPECT_FALSE(allowed(e, "POST", "/push?force=true"));
  EXPECT_FALSE(allowed(e, "POST", "/push?force=false&force=true"));
  EXPECT_FALSE(allowed(e, "POST", "/push?force=true&force=false"));
}

TEST(EvaluateL7, NoAccessAndNoRulesAllowsWhatIsNotDenied) {
  Endpoint open = endpoint("        enforcement: enforce\n");
  L7Verdict v = check(open, "DELETE", "/anything");
  EXPECT_TRUE(v.allowed);
  EXPECT_EQ(v.rule, "");
  Endpoint deny_only =
      endpoint("        enforcement: enforce\n        deny_rules:\n          - {method: DELETE}\n");
  EXPECT_TRUE(allowed(deny_only, "POST", "/x"));
  EXPECT_FALSE(allowed(deny_only, "DELETE", "/x"));
}

TEST(EvaluateL7, AuditModeLetsAViolationThroughAndSaysSo) {
  Endpoint e = endpoint("        enforcement: audit\n        access: read-only\n");
  L7Verdict post = check(e, "POST", "/repos/x");
  EXPECT_TRUE(post.allowed);
  EXPECT_TRUE(post.violation_audited);
  EXPECT_EQ(post.rule, "access: read-only");
  EXPECT_EQ(post.detail, "POST /repos/x is not allowed by access: read-only (GET, HEAD, OPTIONS)");
  L7Verdict get = check(e, "GET", "/repos/x");
  EXPECT_TRUE(get.allowed);
  EXPECT_FALSE(get.violation_audited);
  Endpoint deny =
      endpoint("        enforcement: audit\n        deny_rules:\n          - {method: DELETE}\n");
  L7Verdict del = check(deny, "DELETE", "/x");
  EXPECT_TRUE(del.allowed);
  EXPECT_TRUE(del.violation_audited);
  EXPECT_EQ(del.rule, "deny_rules[0]");
}

TEST(EvaluateL7, ANullQueryIsNoQuery) {
  Endpoint e = endpoint(
      "        enforcement: enforce\n        rules:\n"
      "          - allow: {method: GET, path: /x, query: {a: \"*\"}}\n");
  EXPECT_FALSE(evaluate_l7(e, L7Request{"GET", "/x", nullptr}).allowed);
  QueryParams q{{"a", ""}};
  EXPECT_TRUE(evaluate_l7(e, L7Request{"GET", "/x", &q}).allowed);
}

TEST(NeedsL7, HttpProtocolsRulesAndCredentials) {
  Endpoint l4;
  EXPECT_FALSE(needs_l7(l4));
  for (Protocol p : {Protocol::kRest, Protocol::kWebsocket, Protocol::kGraphql, Protocol::kJsonRpc,
                     Protocol::kMcp}) {
    Endpoint e;
    e.protocol = p;
    EXPECT_TRUE(needs_l7(e));
  }
  for (Protocol p : {Protocol::kSql, Protocol::kTcp}) {
    Endpoint e;
    e.protocol = p;
    EXPECT_FALSE(needs_l7(e));
  }
  Endpoint access;
  access.access = Access::kFull;
  EXPECT_TRUE(needs_l7(access));
  Endpoint deny;
  deny.deny_rules.push_back(L7Rule{"DELETE", "**", {}});
  EXPECT_TRUE(needs_l7(deny));
  Endpoint creds;
  creds.credential_provider = "github";
  EXPECT_TRUE(needs_l7(creds));
  Endpoint path;
  path.path = "/graphql";
  EXPECT_TRUE(needs_l7(path));
}

// --- OpenShell's GitHub provider profile ---

// The profile's `endpoints:` and `binaries:` (everything from `endpoints:` on) as one
// network_policies rule.
LoadResult load_github_profile() {
  std::ifstream in(WARD_SHARED_DIR
                   "/reference/openshell-policies/providers__github.provider-profile.yaml");
  std::string yaml = "version: 1\nnetwork_policies:\n  github:\n", line;
  bool copying = false;
  while (std::getline(in, line)) {
    copying |= line.rfind("endpoints:", 0) == 0;
    if (copying) yaml += "    " + line + "\n";
  }
  return load_string(yaml, "github.provider-profile.yaml");
}

class GithubProfile : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access(WARD_SHARED_DIR "/reference/openshell-policies", R_OK) != 0)
      GTEST_SKIP() << WARD_SHARED_DIR "/reference/openshell-policies is missing";
    result_ = load_github_profile();
    ASSERT_TRUE(result_.ok()) << result_.first_error();
    matcher_.emplace(result_.policy->network);
  }

  // The verdict for `method target` from git, endpoint chosen as the proxy will.
  L7Verdict request(std::string_view host, std::string_view method, std::string_view target) {
    auto path = normalize_request_path(target.substr(0, target.find('?')), false);
    EXPECT_TRUE(path);
    std::vector<Match> candidates = matcher_->matches(host, 443, {"/usr/bin/git"});
    const Match* m = select_for_path(candidates, path ? path->match : "/");
    EXPECT_NE(m, nullptr);
    if (!m || !path) return L7Verdict{};
    EXPECT_EQ(*m->rule, "github");
    return check(*m->endpoint, method, target);
  }

  LoadResult result_;
  std::optional<NetworkMatcher> matcher_;
};

TEST_F(GithubProfile, CloneAndFetchWorkPushIsDenied) {
  L7Verdict refs = request("github.com", "GET", "/octo/repo.git/info/refs?service=git-upload-pack");
  EXPECT_TRUE(refs.allowed);
  EXPECT_EQ(refs.rule, "rules[0]");
  L7Verdict fetch = request("github.com", "POST", "/octo/repo.git/git-upload-pack");
  EXPECT_TRUE(fetch.allowed);
  EXPECT_EQ(fetch.rule, "rules[3]");
  L7Verdict push = request("github.com", "POST", "/octo/repo.git/git-receive-pack");
  EXPECT_FALSE(push.allowed);
  EXPECT_FALSE(push.violation_audited);
  EXPECT_EQ(push.rule, "");
  EXPECT_EQ(push.detail,
            "POST /octo/repo.git/git-receive-pack is not allowed by any of the endpoint's 4 rules");
  EXPECT_FALSE(
      request("github.com", "POST", "/octo/repo.git/git-upload-pack/../git-receive-pack").allowed);
  EXPECT_FALSE(request("github.com", "DELETE", "/octo/repo").allowed);
}

TEST_F(GithubProfile, TheApiIsReadOnlyAndGraphqlHasItsOwnEndpoint) {
  EXPECT_TRUE(request("api.github.com", "GET", "/repos/octo/repo/pulls").allowed);
  L7Verdict post = request("api.github.com", "POST", "/repos/octo/repo/issues");
  EXPECT_FALSE(post.allowed);
  EXPECT_EQ(
      post.detail,
      "POST /repos/octo/repo/issues is not allowed by access: read-only (GET, HEAD, OPTIONS)");
  std::vector<Match> candidates = matcher_->matches("api.github.com", 443, {"/usr/bin/gh"});
  ASSERT_EQ(candidates.size(), 2u);
  const Match* graphql = select_for_path(candidates, "/graphql");
  ASSERT_NE(graphql, nullptr);
  EXPECT_EQ(graphql->endpoint->protocol, Protocol::kGraphql);
  const Match* rest = select_for_path(candidates, "/graphql/x");
  ASSERT_NE(rest, nullptr);
  EXPECT_EQ(rest->endpoint->protocol, Protocol::kRest);
}

}  // namespace
}  // namespace ward::policy
