#include "sandbox/environment.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "base/strings.h"

namespace ward::sandbox {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

bool is_glob(std::string_view s) {
  return s.find_first_of("*?[") != std::string_view::npos;
}

}  // namespace

bool looks_secret(std::string_view name, std::string_view value) {
  std::string upper(name);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  static constexpr std::string_view kMarkers[] = {
      "TOKEN",  "SECRET",      "PASSWORD",   "PASSWD",     "API_KEY",
      "APIKEY", "PRIVATE_KEY", "ACCESS_KEY", "CREDENTIAL", "PASSPHRASE"};
  for (std::string_view marker : kMarkers)
    if (upper.find(marker) != std::string::npos) return true;
  // Whole words only: AUTH is a secret in NPM_AUTH, not in GIT_AUTHOR_NAME.
  static constexpr std::string_view kWords[] = {"KEY",    "AUTH",   "PWD", "PAT",    "JWT",
                                                "BEARER", "COOKIE", "DSN", "WEBHOOK"};
  if (upper != "PWD") {
    for (std::size_t start = 0; start <= upper.size();) {
      const std::size_t end = std::min(upper.find('_', start), upper.size());
      const std::string_view word = std::string_view(upper).substr(start, end - start);
      if (std::find(std::begin(kWords), std::end(kWords), word) != std::end(kWords)) return true;
      start = end + 1;
    }
  }
  // scheme://user:password@host...: a password inside a URL (DATABASE_URL, REDIS_URL).
  if (std::size_t scheme = value.find("://"); scheme != std::string_view::npos) {
    const std::string_view authority =
        value.substr(scheme + 3, value.find('/', scheme + 3) - (scheme + 3));
    const std::size_t at = authority.rfind('@');
    if (at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos)
      return true;
  }
  return false;
}

std::vector<std::string> build_environment(const policy::Environment& policy,
                                           const std::vector<std::string>& host,
                                           const EnvContext& context) {
  // std::map keeps the output sorted and lets later sources override earlier ones.
  std::map<std::string, std::string> env;
  env["PATH"] = kDefaultPath;
  env["HOME"] = context.home;
  env["USER"] = context.user_name;
  env["LOGNAME"] = context.user_name;
  env["PWD"] = context.workdir;
  env["SHELL"] = "/bin/sh";

  for (const std::string& entry : host) {
    size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    std::string name = entry.substr(0, eq);
    for (const std::string& pattern : policy.pass) {
      bool exact = pattern == name;
      bool by_glob = !exact && is_glob(pattern) && glob_match(pattern, name);
      if (exact || (by_glob && !looks_secret(name, std::string_view(entry).substr(eq + 1)))) {
        env[name] = entry.substr(eq + 1);
        break;
      }
    }
  }
  for (const auto& [name, value] : policy.set) env[name] = value;
  if (context.egress_port) {
    const std::string proxy = "http://127.0.0.1:" + std::to_string(context.egress_port);
    for (const char* name :
         {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"})
      env[name] = proxy;
    // Servers the workload runs itself stay reachable directly.
    env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1";
    env["NODE_USE_ENV_PROXY"] = "1";  // Node 22.21+/24: fetch and http honour the variables
  }
  if (!context.ca_bundle.empty()) {
    for (const char* name :
         {"SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS",
          "GIT_SSL_CAINFO", "PIP_CERT", "DENO_CERT", "AWS_CA_BUNDLE"})
      env[name] = context.ca_bundle;
  }
  if (context.inference) {
    env["OPENAI_BASE_URL"] = "https://inference.local/v1";
    env["ANTHROPIC_BASE_URL"] = "https://inference.local";
    env["OPENAI_API_KEY"] = env["ANTHROPIC_API_KEY"] = "ward-inference-local";
  }
  for (const auto& [name, placeholder] : context.secrets) env[name] = placeholder;

  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [name, value] : env) out.push_back(name + "=" + value);
  return out;
}

}  // namespace ward::sandbox
