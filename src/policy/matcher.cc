#include "policy/matcher.h"

#include <algorithm>

#include "base/strings.h"
#include "policy/l7.h"

namespace ward::policy {
namespace {

std::vector<std::string_view> labels_of(std::string_view host) {
  return split(host, '.');
}

}  // namespace

bool star_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

HostPattern::HostPattern(std::string_view pattern) {
  for (auto label : labels_of(pattern)) labels_.emplace_back(label);
}

bool HostPattern::matches(std::string_view host) const {
  auto labels = labels_of(host);
  size_t fixed = labels_.size();
  if (!labels_.empty() && labels_[0] == "**") {
    // One or more labels, then the rest exactly as the pattern says.
    --fixed;
    if (labels.size() < fixed + 1) return false;
    size_t offset = labels.size() - fixed;
    for (size_t i = 0; i < fixed; ++i)
      if (!star_match(labels_[i + 1], labels[offset + i])) return false;
    return true;
  }
  if (labels.size() != fixed) return false;
  for (size_t i = 0; i < fixed; ++i)
    if (!star_match(labels_[i], labels[i])) return false;
  return true;
}

// The same segment glob as an L7 path: linear in the path for any number of `**` (a recursive
// match was O(depth^k) for k of them, and the workload picks how deep its executable lives).
bool binary_matches(std::string_view pattern, std::string_view path) {
  if (pattern == "/**") return true;
  return path_glob_matches(pattern, path);
}

NetworkMatcher::NetworkMatcher(const std::vector<NetworkRule>& rules) {
  for (const NetworkRule& rule : rules) {
    CompiledRule compiled{rule.key, &rule.key, {}, rule.binaries};
    for (const Endpoint& e : rule.endpoints)
      compiled.endpoints.push_back({HostPattern(e.host), e.ports, &e});
    rules_.push_back(std::move(compiled));
  }
}

Decision NetworkMatcher::decide(std::string_view host, std::uint16_t port,
                                const std::vector<std::string>& binaries) const {
  Decision d;
  std::string host_only_rule;  // a rule that names host:port but not this binary
  for (const CompiledRule& rule : rules_) {
    const CompiledEndpoint* hit = nullptr;
    for (const CompiledEndpoint& e : rule.endpoints) {
      if (std::find(e.ports.begin(), e.ports.end(), port) != e.ports.end() &&
          e.host.matches(host)) {
        hit = &e;
        break;
      }
    }
    if (!hit) continue;
    for (const std::string& pattern : rule.binaries) {
      if (pattern == "/**") {  // any binary, even one the proxy could not identify
        d.allowed = true;
        d.rule = rule.key;
        d.endpoint = hit->source;
        d.reason = "allowed by " + rule.key + " (any binary)";
        return d;
      }
      for (const std::string& binary : binaries) {
        if (binary_matches(pattern, binary)) {
          d.allowed = true;
          d.rule = rule.key;
          d.endpoint = hit->source;
          d.reason = "allowed by " + rule.key + " (binary " + binary + ")";
          return d;
        }
      }
    }
    if (host_only_rule.empty()) host_only_rule = rule.key;
  }
  std::string binary = binaries.empty() ? std::string("an unknown binary") : binaries.front();
  d.reason = host_only_rule.empty()
                 ? "no rule allows " + std::string(host) + ":" + std::to_string(port)
                 : "rule " + host_only_rule + " allows " + std::string(host) + ":" +
                       std::to_string(port) + " but not " + binary + " or its ancestors";
  return d;
}

std::vector<Match> NetworkMatcher::matches(std::string_view host, std::uint16_t port,
                                           const std::vector<std::string>& binaries) const {
  std::vector<Match> out;
  for (const CompiledRule& rule : rules_) {
    bool admitted = std::any_of(rule.binaries.begin(), rule.binaries.end(), [&](const auto& p) {
      return p == "/**" || std::any_of(binaries.begin(), binaries.end(),
                                       [&](const auto& b) { return binary_matches(p, b); });
    });
    if (!admitted) continue;
    for (const CompiledEndpoint& e : rule.endpoints) {
      if (std::find(e.ports.begin(), e.ports.end(), port) != e.ports.end() && e.host.matches(host))
        out.push_back({rule.source_key, e.source});
    }
  }
  return out;
}

const Match* select_for_path(const std::vector<Match>& candidates, std::string_view match_path) {
  const Match* with_path = nullptr;
  const Match* without_path = nullptr;
  for (const Match& m : candidates) {
    const std::string& glob = m.endpoint->path;
    if (glob.empty()) {
      if (!without_path) without_path = &m;
    } else if (path_glob_matches(glob, match_path) &&
               (!with_path || glob.size() > with_path->endpoint->path.size())) {
      with_path = &m;
    }
  }
  return with_path ? with_path : without_path;
}

}  // namespace ward::policy
