// network_policies compiled into an immutable matcher: the egress proxy's L4 decision (host, port,
// calling binary) without any parsing on the hot path. One NetworkMatcher is one policy
// generation; a reload builds a new one.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace ward::policy {

// A host pattern as policy-schema.md defines it: exact (case-insensitive), `*.example.com` (one
// label), `**.example.com` (one or more labels, not the apex), `*-aiplatform.googleapis.com` (a
// wildcard inside a label), `*.s3.*.amazonaws.com` (whole middle labels).
class HostPattern {
 public:
  explicit HostPattern(std::string_view pattern);
  // `host` must already be normalised: lower-case, no trailing dot.
  bool matches(std::string_view host) const;

 private:
  std::vector<std::string> labels_;  // "**" only ever first
};

// `*` matches any run of characters, every other character itself (greedy with one resume
// point: O(|glob| * |text|)). Callers give one host label, path segment or query value.
bool star_match(std::string_view glob, std::string_view text);

// A binary path glob: `*` within one path segment, `**` across any number of segments, "/**" any.
bool binary_matches(std::string_view pattern, std::string_view path);

struct Decision {
  bool allowed = false;
  std::string rule;    // the network_policies key that allowed it, or "" when denied
  std::string reason;  // why, for the audit record and the 403 body
  const Endpoint* endpoint = nullptr;  // the endpoint that matched (L7 settings live there)
};

// One endpoint that admits a connection, and the network_policies key of its rule. Both point into
// the Policy the matcher was built from.
struct Match {
  const std::string* rule;
  const Endpoint* endpoint;
};

class NetworkMatcher {
 public:
  explicit NetworkMatcher(const std::vector<NetworkRule>& rules);

  // `binaries`: the calling process's executable first, then its ancestors' up to the sandbox's
  // entrypoint. `host` is normalised (lower-case, no trailing dot; IP literals in canonical form).
  Decision decide(std::string_view host, std::uint16_t port,
                  const std::vector<std::string>& binaries) const;

  // Every endpoint matching (host, port) in a rule whose binaries admit the caller, in file order
  // (rules, then endpoints within a rule). On an intercepted connection the proxy narrows these
  // per request with select_for_path.
  std::vector<Match> matches(std::string_view host, std::uint16_t port,
                             const std::vector<std::string>& binaries) const;

 private:
  struct CompiledEndpoint {
    HostPattern host;
    std::vector<std::uint16_t> ports;
    const Endpoint* source;
  };
  struct CompiledRule {
    std::string key;
    const std::string* source_key;
    std::vector<CompiledEndpoint> endpoints;
    std::vector<std::string> binaries;
  };
  std::vector<CompiledRule> rules_;
};

// The endpoint of `candidates` that governs a request for `match_path` (RequestPath::match): an
// endpoint whose `path` glob matches beats one without a `path` (the longest such glob wins; on a
// tie the first); an endpoint whose `path` does not match never applies. nullptr when none does.
const Match* select_for_path(const std::vector<Match>& candidates, std::string_view match_path);

}  // namespace ward::policy
