// Provider profiles: which environment variables hold a provider's credentials and which endpoints
// those credentials may be sent to. The format is OpenShell's provider-profile YAML
// (id, display_name, description, category, inference_capable, credentials, discovery, endpoints,
// binaries); `endpoints` are network_policies endpoint maps, read and validated by the policy's own
// endpoint reader.
//
// In ward a profile's endpoints bind its credentials (the proxy substitutes a placeholder only
// towards them); what a sandbox may do there is still decided by the policy's network_policies.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "policy/policy.h"

namespace ward::creds {

// How the client presents the credential. Informational: the proxy substitutes a placeholder
// wherever it appears (headers, Basic auth, target, opted-in bodies), whatever the style.
enum class AuthStyle { kUnspecified, kBearer, kHeader, kBasic, kQuery };

struct Credential {
  std::string name;  // unique within the profile
  std::string description;
  std::vector<std::string> env_vars;  // [A-Za-z_][A-Za-z0-9_]*, unique within the profile
  bool required = false;              // Vault::create fails when none of env_vars is set
  AuthStyle auth_style = AuthStyle::kUnspecified;
  std::string header_name;  // required for bearer and header
  std::string query_param;  // required for query
};

struct Profile {
  std::string id;  // lower-case kebab-case: github, google-vertex-ai
  std::string display_name;
  std::string description;
  std::string category = "other";  // inference agent source_control messaging data knowledge other
  bool inference_capable = false;
  std::vector<Credential> credentials;
  std::vector<std::string> discovery;  // names of credentials (discovery.credentials)
  std::vector<policy::Endpoint> endpoints;
  std::vector<std::string> binaries;  // absolute path globs (informational in ward)
  std::vector<std::string> warnings;  // "file:line:column: warning: key: message"
};

// Every problem found, as the policy loader reports them (unknown keys are errors): `profile` is
// set iff none is an error. Warnings are in `diagnostics` and in the profile's `warnings`.
struct ProfileLoad {
  std::optional<Profile> profile;
  std::vector<policy::Diagnostic> diagnostics;
};
ProfileLoad load_profile(std::string_view text, std::string_view file);

// The same, errors carrying every problem, one per line, each "file:line:column: error: key:
// message" (the policy loader's format).
Result<Profile> load_profile_string(std::string_view text, std::string_view file);
Result<Profile> load_profile_file(const std::string& path);

// Profiles compiled into ward (embedded YAML in the format above, loaded by the same code):
// anthropic, github, gitlab, npm, openai, pypi. nullptr for an unknown id.
const Profile* builtin_profile(std::string_view id);
std::vector<std::string> builtin_ids();  // sorted

}  // namespace ward::creds
