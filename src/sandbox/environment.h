// The workload's environment: scrubbed. Only what the policy passes or sets reaches it, plus the
// few variables every program expects (PATH, HOME, USER, LOGNAME, PWD, SHELL).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/policy.h"

namespace ward::sandbox {

// Variables that look like credentials: they pass only when the policy names them exactly, never
// through a glob. A name holding TOKEN, SECRET, PASSWORD, PASSWD, API_KEY, APIKEY, PRIVATE_KEY,
// ACCESS_KEY, CREDENTIAL or PASSPHRASE, or a word (between underscores) KEY, AUTH, PWD (not PWD and
// OLDPWD themselves), PAT, JWT, BEARER, COOKIE, DSN, WEBHOOK; or a value that is a URL with a
// password in it (postgres://user:password@host/).
bool looks_secret(std::string_view name, std::string_view value = {});

struct EnvContext {
  std::string home;       // HOME inside the sandbox
  std::string user_name;  // USER and LOGNAME
  std::string workdir;    // PWD
  // The egress proxy's port inside the sandbox (0: none). The proxy variables that curl, wget,
  // python, node, pip and git read point at it, and override anything the policy sets.
  unsigned egress_port = 0;
  // ward's CA bundle inside the sandbox ("" when none): the variables through which OpenSSL,
  // curl, python requests, node, git, pip, deno and the AWS SDKs pick a trust store point at it.
  std::string ca_bundle;
  // inference.local is served: the OpenAI and Anthropic SDKs are pointed at it, with keys that
  // mean nothing (the proxy strips them and puts the route's key in).
  bool inference = false;
  // Credential placeholders (NAME, placeholder): set last, over anything passed or set, so a
  // provider's variable never carries the real value from ward's environment.
  std::vector<std::pair<std::string, std::string>> secrets;
};

// `host` is ward's own environment ("NAME=value" strings, as in environ).
std::vector<std::string> build_environment(const policy::Environment& policy,
                                           const std::vector<std::string>& host,
                                           const EnvContext& context);

}  // namespace ward::sandbox
