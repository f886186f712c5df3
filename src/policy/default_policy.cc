// The built-in policy: what `ward run` uses without -p, and what `ward policy show-default` prints.
#include <sys/stat.h>

#include <iterator>
#include <string>

#include "policy/policy.h"

namespace ward::policy {
namespace {

// The system directories a dynamically linked program and a shell need. Which of them exist
// differs between distributions (merged /usr or not, multilib or not); a path that does not exist
// would be skipped with a log line under best_effort, so leave it out of the text altogether.
constexpr const char* kSystemDirs[] = {"/usr",   "/bin",   "/sbin",   "/lib",
                                       "/lib64", "/lib32", "/libx32", "/etc"};

constexpr const char* kPassed[] = {"TERM", "COLORTERM", "LANG",    "LANGUAGE",
                                   "LC_*", "TZ",        "NO_COLOR"};

// The default's content, decided once per process (the host's layout does not change under a
// running ward). The YAML that show-default prints is rendered from this, and a test checks that
// loading that text gives this policy back.
const Policy& default_policy() {
  static const Policy policy = [] {
    Policy p;
    p.filesystem.include_workdir = true;
    for (const char* dir : kSystemDirs) {
      struct stat st;
      // stat, not lstat: /bin is a symlink to usr/bin on merged-/usr systems and must still be
      // listed so that #!/bin/sh resolves inside the sandbox.
      if (::stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) p.filesystem.read_only.push_back(dir);
    }
    p.filesystem.read_write = {"/tmp"};
    p.landlock = Compatibility::kBestEffort;
    p.environment.pass.assign(std::begin(kPassed), std::end(kPassed));
    return p;
  }();
  return policy;
}

std::string build_default() {
  const Policy& p = default_policy();
  std::string read_only;
  for (const std::string& dir : p.filesystem.read_only) read_only += "    - " + dir + "\n";
  if (read_only.empty()) read_only = "    []\n";  // not a Unix we know; still a valid policy
  std::string passed;
  for (const std::string& name : p.environment.pass) passed += (passed.empty() ? "" : ", ") + name;

  return R"(# ward's built-in policy: used by `ward run` when no -p POLICY is given.
# It follows OpenShell's restrictive default, adapted to a Linux host: the workload sees the
# system directories read-only, its working directory and a private /tmp read-write, and has
# no network at all. Copy it (`ward policy show-default > policy.yaml`) to start your own.
version: 1

filesystem_policy:
  # The directory `ward run` was started in is readable and writable.
  include_workdir: true
  # System directories, read-only (those that exist on this host).
  read_only:
)" + read_only +
         R"(  # A private, empty /tmp for the sandbox, not the host's.
  read_write:
    - /tmp

landlock:
  # best_effort: run without Landlock on a kernel that lacks it (logged as a finding).
  # hard_requirement: refuse to start instead.
  compatibility: best_effort

# No rules: every outbound connection is denied. Add rules to allow hosts, e.g.
#   github_api:
#     endpoints: [{host: api.github.com, port: 443}]
#     binaries: [{path: /usr/bin/curl}]
network_policies: {}

environment:
  # Only these variables pass from ward's environment; everything else (tokens included) stays out.
  pass: [)" +
         passed + R"(]
)";
}

}  // namespace

std::string_view default_policy_yaml() {
  // Decided once per process: the host's layout does not change under a running ward.
  static const std::string text = build_default();
  return text;
}

LoadResult load_default() {
  // Every `ward run` without -p takes this: built directly, not parsed (yaml-cpp costs a large
  // share of a sandbox's start here).
  LoadResult r;
  r.policy = default_policy();
  return r;
}

}  // namespace ward::policy
