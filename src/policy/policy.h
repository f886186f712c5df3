// The policy model: OpenShell's `version: 1` format plus ward's `resources` and `environment`.
//
// load() parses YAML (or JSON) into a validated Policy, collecting every problem it finds as a
// Diagnostic naming file, line, column and the key path. A Policy is immutable once loaded; every
// front door (CLI, API, MCP) builds one through load() and nothing else.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ward::policy {

enum class Compatibility { kBestEffort, kHardRequirement };

struct FilesystemPolicy {
  bool include_workdir = false;
  std::vector<std::string> read_only;   // absolute, normalised (no trailing slash, no "//")
  std::vector<std::string> read_write;  // absolute, normalised
  bool operator==(const FilesystemPolicy&) const = default;
};

struct ProcessPolicy {
  std::optional<std::string> run_as_user;   // a name or a decimal id, never 0/root
  std::optional<std::string> run_as_group;  // a name or a decimal id, never 0/root
  bool operator==(const ProcessPolicy&) const = default;
};

// ward: limits for the whole sandbox (every process in it).
struct Resources {
  std::optional<std::uint64_t> memory_bytes;         // "512M", "2G", "1048576"
  std::optional<std::uint64_t> pids;                 // maximum number of tasks
  std::optional<double> cpus;                        // CPU bandwidth in cores, e.g. 0.5 or 2
  std::optional<std::chrono::milliseconds> timeout;  // wall clock: 30, "30s", "5m", "1h"
  bool operator==(const Resources&) const = default;
};

// ward: the workload's environment. Nothing from ward's environment passes unless named here.
struct Environment {
  std::vector<std::string>
      pass;  // names, or globs such as LC_*; secret-like names need an exact entry
  std::vector<std::pair<std::string, std::string>> set;  // in file order
  bool operator==(const Environment&) const = default;
};

// --- network_policies (dynamic; enforced by the proxy) ---

enum class Protocol { kL4, kRest, kWebsocket, kGraphql, kJsonRpc, kMcp, kSql, kTcp };
enum class Tls { kAuto, kSkip };
enum class Enforcement { kEnforce, kAudit };
enum class Access { kReadOnly, kReadWrite, kFull };

struct QueryMatcher {
  std::string name;
  std::vector<std::string> any;  // value globs; `name: glob` is stored as a single entry
};

struct L7Rule {
  std::string method;  // GET HEAD POST PUT DELETE PATCH OPTIONS or "*"
  std::string path;    // glob: `*` one segment, `**` any number
  std::vector<QueryMatcher> query;
};

struct Cidr {
  std::string text;  // as written, for messages
  bool v6 = false;
  unsigned char addr[16] = {};  // network address, v4 in the first 4 bytes
  int prefix = 0;
};

struct Endpoint {
  std::string host;                  // lower-cased; exact or glob
  std::vector<std::uint16_t> ports;  // `ports` wins over `port`; empty = not given
  std::string path;                  // "" = any
  Protocol protocol = Protocol::kL4;
  Tls tls = Tls::kAuto;
  std::optional<Enforcement> enforcement;  // unset: ward enforces (lint warns)
  std::optional<Access> access;
  std::vector<L7Rule> rules;
  std::vector<L7Rule> deny_rules;
  std::vector<Cidr> allowed_ips;
  bool allow_encoded_slash = false;
  bool request_body_credential_rewrite = false;
  bool websocket_credential_rewrite = false;
  std::string credential_provider;  // credential_binding.provider, "" = none
};

struct NetworkRule {
  std::string key;   // the map key: the rule's stable identity
  std::string name;  // display name, defaults to key
  std::vector<Endpoint> endpoints;
  std::vector<std::string> binaries;  // path globs; "/**" = any binary
};

struct Policy {
  FilesystemPolicy filesystem;
  Compatibility landlock = Compatibility::kBestEffort;
  ProcessPolicy process;
  std::vector<NetworkRule> network;  // in file order
  Resources resources;
  Environment environment;
};

struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  std::string file;      // as given to load(); "<default>" for the built-in policy
  int line = 0;          // 1-based; 0 when unknown
  int column = 0;        // 1-based; 0 when unknown
  std::string key_path;  // e.g. "filesystem_policy.read_write[1]"
  std::string message;
  int count = 1;  // the problems it stands for (past the cap, one line says how many more)

  // "file:line:column: error: key_path: message"
  std::string format() const;
};

struct LoadResult {
  std::optional<Policy> policy;  // set iff there is no error-severity diagnostic
  std::vector<Diagnostic> diagnostics;

  bool ok() const { return policy.has_value(); }
  // The first error, formatted (for callers that report one line).
  std::string first_error() const;
};

// Parses and validates. `file` names the source in diagnostics.
LoadResult load_string(std::string_view text, std::string_view file);
LoadResult load_file(const std::string& path);

// A reload may change only the dynamic sections (network_policies): the name of the first static
// section that differs between the running policy and an update ("filesystem_policy",
// "landlock", "process", "resources", "environment"), or "" when none does.
std::string changed_static_section(const Policy& running, const Policy& update);

// The built-in policy used when `ward run` gets no -p: system directories read-only, the workdir
// and a private /tmp read-write, no network.
std::string_view default_policy_yaml();
LoadResult load_default();

}  // namespace ward::policy
