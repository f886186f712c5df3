#include "cli/egress_setup.h"

#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/log.h"
#include "cli/options.h"
#include "tls/bundle.h"
#include "tls/ca.h"

extern char** environ;

namespace ward::cli {
namespace {

// mkdir -p, 0755 (the layer's directories are what the sandbox lists under /etc).
Result<void> make_dirs(const std::string& path) {
  for (std::size_t at = 1; at <= path.size(); ++at) {
    if (at != path.size() && path[at] != '/') continue;
    std::string part = path.substr(0, at);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return fail_errno("mkdir " + part);
  }
  return {};
}

// `link` becomes a hard link to `target` (replaced atomically when it is another file).
Result<void> hard_link(const std::string& target, const std::string& link) {
  struct stat want, have;
  if (::stat(target.c_str(), &want) != 0) return fail_errno("stat " + target);
  if (::lstat(link.c_str(), &have) == 0 && have.st_ino == want.st_ino && have.st_dev == want.st_dev)
    return {};
  const std::string tmp = link + ".new." + std::to_string(::getpid());
  ::unlink(tmp.c_str());
  if (::link(target.c_str(), tmp.c_str()) != 0) return fail_errno("link " + tmp);
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail_errno("rename " + link);
  }
  return {};
}

// The bundle is newer than ward's CA certificate and than the system bundle it was made from.
bool bundle_up_to_date(const std::string& tls_dir) {
  struct stat bundle, ca;
  if (::stat((tls_dir + "/ca-bundle.pem").c_str(), &bundle) != 0 ||
      ::stat((tls_dir + "/ca.pem").c_str(), &ca) != 0 ||
      ::access((tls_dir + "/ca.key").c_str(), F_OK) != 0)
    return false;
  auto older = [](const struct stat& a, const struct stat& b) {
    return a.st_mtim.tv_sec < b.st_mtim.tv_sec ||
           (a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec < b.st_mtim.tv_nsec);
  };
  if (older(bundle, ca)) return false;
  for (const char* system : tls::kSystemBundles) {
    struct stat st;
    if (::stat(system, &st) == 0) return !older(bundle, st);
  }
  return true;
}

}  // namespace

std::string state_dir(const std::string& flag) {
  if (!flag.empty()) {
    // The overlay that shows the CA bundle inside the sandbox is mounted from the init, whose
    // working directory is not ward's: a relative directory would point elsewhere there.
    if (flag.front() == '/') return flag;
    char cwd[PATH_MAX];
    return ::getcwd(cwd, sizeof cwd) ? std::string(cwd) + "/" + flag : flag;
  }
  if (const char* env = ::getenv("WARD_STATE_DIR"); env && *env) return env;
  return default_state_dir();
}

std::string default_state_dir() {
  if (::geteuid() == 0) return "/var/lib/ward";
  if (const char* xdg = ::getenv("XDG_STATE_HOME"); xdg && *xdg == '/')
    return std::string(xdg) + "/ward";
  const char* home = ::getenv("HOME");
  if (!home || *home != '/') {
    const struct passwd* pw = ::getpwuid(::geteuid());
    home = pw ? pw->pw_dir : "/tmp";
  }
  return std::string(home) + "/.local/state/ward";
}

std::vector<std::string> private_paths(const std::string& flag,
                                       const std::vector<std::string>& extra) {
  std::vector<std::string> paths;
  const std::string base = default_state_dir();
  // Made like `mkdir -p` when missing, the last component private.
  struct stat st;
  if (::stat(base.c_str(), &st) != 0) {
    for (std::size_t slash = 1; (slash = base.find('/', slash)) != std::string::npos; ++slash)
      ::mkdir(base.substr(0, slash).c_str(), 0755);
    ::mkdir(base.c_str(), 0700);
  }
  std::vector<std::string> wanted = {state_dir(flag), base};
  if (const char* env = ::getenv("WARD_STATE_DIR"); env && *env == '/') wanted.push_back(env);
  // The gateway the CLI talks to, whose socket may be kept outside any state directory.
  if (const char* env = ::getenv("WARD_GATEWAY"); env && *env == '/') wanted.push_back(env);
  wanted.insert(wanted.end(), extra.begin(), extra.end());
  char cwd[PATH_MAX];
  for (std::string p : wanted) {
    if (p.empty()) continue;
    if (p.front() != '/' && ::getcwd(cwd, sizeof cwd)) p = std::string(cwd) + "/" + p;
    if (std::find(paths.begin(), paths.end(), p) == paths.end()) paths.push_back(p);
  }
  return paths;  // resolved by make_plan, when the sandbox starts (a socket may come later)
}

Result<Trust> prepare_trust(const std::string& state) {
  Trust trust;
  const std::string tls_dir = state + "/tls";
  const std::string bundle_path = tls_dir + "/ca-bundle.pem";
  if (!bundle_up_to_date(tls_dir)) {
    auto authority = tls::Authority::load_or_create(state);
    if (!authority) return tl::unexpected(authority.error());
    trust.authority = std::move(*authority);
    auto bundle = tls::write_bundle(*trust.authority, state);
    if (!bundle) return tl::unexpected(bundle.error());
  }
  trust.layer = state + "/tls/etc";
  // /etc/ward/tls/ca-bundle.pem always; the system bundle names only where the host has them.
  static constexpr const char* kNames[] = {
      "ward/tls/ca-bundle.pem", "ssl/certs/ca-certificates.crt", "pki/tls/certs/ca-bundle.crt"};
  for (const char* name : kNames) {
    const std::string system = std::string("/etc/") + name;
    if (std::string_view(name) != kNames[0] && ::access(system.c_str(), F_OK) != 0) continue;
    const std::string link = trust.layer + "/" + name;
    if (auto r = make_dirs(link.substr(0, link.rfind('/'))); !r) return tl::unexpected(r.error());
    if (auto r = hard_link(bundle_path, link); !r) return tl::unexpected(r.error());
  }
  return trust;
}

Result<std::shared_ptr<creds::Vault>> prepare_vault(const std::vector<std::string>& providers,
                                                    const std::vector<std::string>& profile_files,
                                                    const policy::Policy& policy) {
  std::vector<creds::Profile> loaded;
  loaded.reserve(profile_files.size());
  for (const std::string& file : profile_files) {
    auto profile = creds::load_profile_file(file);
    if (!profile) return tl::unexpected(profile.error());
    for (const std::string& w : profile->warnings) log::warn("{}", w);
    loaded.push_back(std::move(*profile));
  }
  std::vector<const creds::Profile*> chosen;
  for (const std::string& name : providers) {
    const creds::Profile* found = nullptr;
    for (const creds::Profile& p : loaded)
      if (p.id == name) found = &p;
    if (!found) found = creds::builtin_profile(name);
    if (!found) {
      std::string known;
      for (const std::string& id : creds::builtin_ids()) known += (known.empty() ? "" : ", ") + id;
      return fail("--provider " + name + ": no such provider (built in: " + known +
                  "; or load one with --provider-profile FILE)");
    }
    chosen.push_back(found);
  }
  for (const policy::NetworkRule& rule : policy.network)
    for (const policy::Endpoint& e : rule.endpoints)
      if (!e.credential_provider.empty() &&
          std::find(providers.begin(), providers.end(), e.credential_provider) == providers.end())
        log::warn("rule {} binds provider {} to {}, but no --provider {} was given", rule.key,
                  e.credential_provider, e.host, e.credential_provider);
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  auto vault = creds::Vault::create(chosen, env);
  if (!vault) return tl::unexpected(vault.error());
  return std::make_shared<creds::Vault>(std::move(*vault));
}

void add_egress_limits(CLI::App* command, proxy::Limits& limits) {
  // A whole number of seconds, at least 1.
  auto add_seconds = [command](const std::string& name, std::chrono::seconds& value,
                               const std::string& help) {
    command
        ->add_option_function<long>(
            name, [&value](long s) { value = std::chrono::seconds(s); }, help)
        ->check(whole_number_between(1, 86400))
        ->default_str(std::to_string(value.count()));
  };
  add_seconds("--header-timeout", limits.header_timeout,
              "Seconds a client has to send a complete request head (then 408)");
  add_seconds("--idle-timeout", limits.idle_timeout,
              "Seconds an egress connection may stay silent before it is closed");
  command
      ->add_option("--max-connections", limits.max_connections,
                   "Open egress connections allowed per sandbox (then 503)")
      ->check(whole_number_between(1, 10'000'000))
      ->capture_default_str();
  std::size_t& buffered = limits.max_buffered;
  command
      ->add_option_function<std::size_t>(
          "--max-buffered-mib", [&buffered](std::size_t mib) { buffered = mib << 20; },
          "MiB of request bodies the proxy may hold whole per sandbox, for inference.local and "
          "credential rewriting (then 503)")
      ->check(whole_number_between(1, 65536))
      ->default_str(std::to_string(buffered >> 20));
  auto& upstream_idle = limits.upstream_idle;
  command
      ->add_option_function<unsigned>(
          "--upstream-idle-ms",
          [&upstream_idle](unsigned ms) { upstream_idle = std::chrono::milliseconds(ms); },
          "Milliseconds an intercepted upstream connection is kept after its last response, for "
          "the sandbox's next CONNECT to the same host and port from the same binaries (0: none)")
      ->check(whole_number_between(0, 60000))
      ->default_str(std::to_string(upstream_idle.count()));
}

}  // namespace ward::cli
