// The provider profiles compiled into ward, written in the provider-profile format and loaded by
// load_profile_string like any file. Endpoints are L7 (`protocol: rest`) so that the proxy
// terminates TLS towards them, which substitution needs; what a sandbox may do there is the
// policy's business.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "creds/profile.h"

namespace ward::creds {
namespace {

constexpr std::string_view kAnthropic = R"(id: anthropic
display_name: Anthropic
description: Anthropic API (Claude)
category: inference
inference_capable: true
credentials:
  - name: api_key
    description: Anthropic API key
    env_vars: [ANTHROPIC_API_KEY]
    auth_style: header
    header_name: x-api-key
  - name: auth_token
    description: Anthropic OAuth or gateway token
    env_vars: [ANTHROPIC_AUTH_TOKEN]
    auth_style: bearer
    header_name: authorization
discovery:
  credentials: [api_key, auth_token]
endpoints:
  - {host: api.anthropic.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

constexpr std::string_view kOpenai = R"(id: openai
display_name: OpenAI
description: OpenAI API
category: inference
inference_capable: true
credentials:
  - name: api_key
    description: OpenAI API key
    env_vars: [OPENAI_API_KEY]
    required: true
    auth_style: bearer
    header_name: authorization
discovery:
  credentials: [api_key]
endpoints:
  - {host: api.openai.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

constexpr std::string_view kGithub = R"(id: github
display_name: GitHub
description: GitHub API and Git over HTTPS
category: source_control
credentials:
  - name: api_token
    description: GitHub token (git sends it as Basic x-access-token:<token>)
    env_vars: [GITHUB_TOKEN, GH_TOKEN]
    required: true
    auth_style: bearer
    header_name: authorization
discovery:
  credentials: [api_token]
endpoints:
  - {host: api.github.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
  - {host: github.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
  - {host: uploads.github.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

constexpr std::string_view kGitlab = R"(id: gitlab
display_name: GitLab
description: GitLab.com API and Git over HTTPS
category: source_control
credentials:
  - name: api_token
    description: GitLab personal, project or group access token
    env_vars: [GITLAB_TOKEN]
    required: true
    auth_style: header
    header_name: private-token
discovery:
  credentials: [api_token]
endpoints:
  - {host: gitlab.com, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

constexpr std::string_view kNpm = R"(id: npm
display_name: npm
description: npm registry (install and publish)
category: data
credentials:
  - name: auth_token
    description: npm access token (//registry.npmjs.org/:_authToken=${NPM_TOKEN} in .npmrc)
    env_vars: [NPM_TOKEN]
    required: true
    auth_style: bearer
    header_name: authorization
discovery:
  credentials: [auth_token]
endpoints:
  - {host: registry.npmjs.org, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

constexpr std::string_view kPypi = R"(id: pypi
display_name: PyPI
description: Publishing to PyPI (twine, uv publish)
category: data
credentials:
  - name: api_token
    description: PyPI API token, sent as Basic __token__:<token>
    env_vars: [PYPI_TOKEN, TWINE_PASSWORD, UV_PUBLISH_TOKEN]
    required: true
    auth_style: basic
discovery:
  credentials: [api_token]
endpoints:
  - {host: upload.pypi.org, port: 443, protocol: rest, access: read-write, enforcement: enforce}
)";

const std::map<std::string, Profile, std::less<>>& builtins() {
  static const std::map<std::string, Profile, std::less<>> profiles = [] {
    std::map<std::string, Profile, std::less<>> out;
    for (std::string_view yaml : {kAnthropic, kOpenai, kGithub, kGitlab, kNpm, kPypi}) {
      Result<Profile> p = load_profile_string(yaml, "<builtin>");
      if (!p) {  // a broken invariant: the unit tests load every built-in
        std::fprintf(stderr, "ward: built-in provider profile: %s\n", p.error().message.c_str());
        std::abort();
      }
      std::string id = p->id;
      out.emplace(std::move(id), std::move(*p));
    }
    return out;
  }();
  return profiles;
}

}  // namespace

const Profile* builtin_profile(std::string_view id) {
  const auto& all = builtins();
  auto it = all.find(id);
  return it == all.end() ? nullptr : &it->second;
}

std::vector<std::string> builtin_ids() {
  std::vector<std::string> ids;
  for (const auto& [id, profile] : builtins()) ids.push_back(id);
  return ids;
}

}  // namespace ward::creds
