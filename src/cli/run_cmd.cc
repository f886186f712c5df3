// `ward run` and `ward demo`.
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "base/log.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/egress_setup.h"
#include "cli/options.h"
#include "cli/reload.h"
#include "inference/routes.h"
#include "policy/l7.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "sandbox/plan.h"
#include "sandbox/sandbox.h"

namespace ward::cli {
namespace {

struct RunArgs {
  std::string policy_file;
  std::string workdir;
  std::vector<std::string> command;
  double grace_seconds = 3;
  bool verbose = false;
  // The egress proxy.
  std::string hosts_file;
  std::string audit_file;
  std::size_t audit_max_mib = 0;  // 0: the file grows without limit
  bool watch = false;
  proxy::Limits limits;
  // HTTPS interception and credentials.
  std::string state_dir;
  std::vector<std::string> upstream_ca;
  std::vector<std::string> providers;
  std::vector<std::string> provider_profiles;
  std::string inference_routes;
};

constexpr std::uint16_t kEgressPort = 3128;

int report_policy_errors(const policy::LoadResult& loaded) {
  for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
  return sandbox::kExitSetupFailed;
}

// The host paths the sandbox may write, as listed and resolved: the policy's read_write and the
// workdir (when the policy binds it). Not /tmp, always a private tmpfs of the sandbox whatever
// is listed, nor what the sandbox provides itself (its /proc, its /dev).
std::vector<std::string> writable_paths(const policy::Policy& policy, const std::string& workdir) {
  std::vector<std::string> writable;
  for (const std::string& p : policy.filesystem.read_write)
    if (p != "/tmp" && !sandbox::provided_by_sandbox(p)) writable.push_back(p);
  if (policy.filesystem.include_workdir) writable.push_back(workdir);
  for (std::size_t i = 0, n = writable.size(); i < n; ++i) {
    char resolved[PATH_MAX];
    if (::realpath(writable[i].c_str(), resolved) && writable[i] != resolved)
      writable.emplace_back(resolved);
  }
  return writable;
}

// The first symlink on the way to `path` (as the kernel would walk it from ward's directory)
// that lies inside one of `writable`: an earlier sandbox may have planted it there, pointing
// anywhere ward's user may write. "" when there is none.
std::string symlink_in_writable(const std::string& path, const std::vector<std::string>& writable) {
  std::string at;  // resolved so far
  if (path.empty() || path.front() != '/') {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) return {};
    at = cwd;
  }
  std::vector<std::string_view> parts = split(path, '/');
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::string_view part = parts[i];
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      at = at.substr(0, at.rfind('/'));
      if (at.empty()) at = "/";
      continue;
    }
    const std::string next = (at == "/" ? "" : at) + "/" + std::string(part);
    struct stat st;
    if (::lstat(next.c_str(), &st) != 0) return {};  // missing: nothing further to follow
    if (S_ISLNK(st.st_mode)) {
      for (const std::string& w : writable)
        if (path_within(next, w) && next != w) return next;
      char resolved[PATH_MAX];
      if (!::realpath(next.c_str(), resolved)) return {};
      at = resolved;
    } else {
      at = next;
    }
  }
  return {};
}

int run_sandbox(const RunArgs& args) {
  log::set_verbose(args.verbose);
  // Files named on the command line, checked before anything is read or made: a missing policy
  // is a bad policy (exit 125), said with the file and the reason.
  const std::pair<const char*, std::vector<std::string>> files[] = {
      {"--policy", {args.policy_file}},
      {"--hosts", {args.hosts_file}},
      {"--upstream-ca", args.upstream_ca},
      {"--inference", {args.inference_routes}},
      {"--provider-profile", args.provider_profiles}};
  for (const auto& [option, paths] : files)
    for (const std::string& path : paths)
      if (std::string why = path.empty() ? "" : unreadable_file(path); !why.empty()) {
        log::error("{} {}", option, why);
        return sandbox::kExitSetupFailed;
      }
  policy::LoadResult loaded =
      args.policy_file.empty() ? policy::load_default() : policy::load_file(args.policy_file);
  if (!loaded.ok()) return report_policy_errors(loaded);
  for (const auto& d : loaded.diagnostics)
    if (args.verbose) std::fprintf(stderr, "%s\n", d.format().c_str());

  std::string workdir = args.workdir;
  if (workdir.empty()) {
    char cwd[PATH_MAX];
    if (!::getcwd(cwd, sizeof cwd)) {
      log::error("cannot determine the current directory: use --workdir");
      return sandbox::kExitSetupFailed;
    }
    workdir = cwd;
  } else {
    char real[PATH_MAX];
    if (!::realpath(workdir.c_str(), real)) {
      log::error("--workdir {}: {}", workdir, std::strerror(errno));
      return sandbox::kExitSetupFailed;
    }
    workdir = real;
  }

  auto policy = std::make_shared<const policy::Policy>(std::move(*loaded.policy));
  proxy::Options proxy_options;
  proxy_options.limits = args.limits;
  proxy_options.audit_path = args.audit_file;
  proxy_options.audit_max_bytes = args.audit_max_mib << 20;
  const std::vector<std::string> writable = writable_paths(*policy, workdir);
  // The audit file is created and written by ward, as ward's user (root, often): a symlink that
  // an earlier sandbox left in a path it could write must not make ward create or append to
  // what it points at. Refused before anything is opened (the sandbox's plan refuses it too, but
  // only after the proxy has opened the file).
  if (!args.audit_file.empty()) {
    if (std::string link = symlink_in_writable(args.audit_file, writable); !link.empty()) {
      log::error(
          "--audit {}: {} is a symbolic link in a path the sandbox may write, so the sandbox "
          "could point it anywhere; give the audit file's real path",
          args.audit_file, link);
      return sandbox::kExitSetupFailed;
    }
  }
  if (args.audit_max_mib && !args.audit_file.empty()) {
    // Rotating renames the file and starts a new one: inside a path the sandbox may write, the
    // new file would not be the one kept read-only for it.
    const std::string file = args.audit_file;
    const auto slash = file.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : file.substr(0, slash ? slash : 1);
    char real[PATH_MAX];
    if (::realpath(dir.c_str(), real)) {
      for (const std::string& w : writable)
        if (path_within(real, w)) {
          log::error(
              "--audit-max-mib: the audit file is in {}, which the sandbox may write; "
              "keep a rotated audit file outside it",
              w);
          return sandbox::kExitSetupFailed;
        }
    }
  }
  proxy_options.audit_stderr = args.verbose;
  if (!args.hosts_file.empty()) {
    auto hosts = proxy::HostsFile::load(args.hosts_file);
    if (!hosts) {
      log::error("--hosts: {}", hosts.error().describe());
      return sandbox::kExitSetupFailed;
    }
    proxy_options.hosts = std::move(*hosts);
  }
  sandbox::RunOptions options;
  // ward's state directories stay out of reach even where the workdir holds them ($HOME): the
  // CA key, provider secrets, a gateway's socket (the same uid could connect to it).
  options.hidden = private_paths(args.state_dir);
  // The files ward reads while the sandbox runs, or writes for the user, stay out of its reach
  // even in the workdir: the policy (reloaded on --watch or SIGHUP), the audit records, the
  // hosts file and the upstream CAs; a routes file may hold a backend's key: hidden.
  options.guarded = {args.policy_file, args.audit_file, args.hosts_file};
  options.guarded.insert(options.guarded.end(), args.upstream_ca.begin(), args.upstream_ca.end());
  options.guarded.insert(options.guarded.end(), args.provider_profiles.begin(),
                         args.provider_profiles.end());
  if (!args.inference_routes.empty()) options.hidden.push_back(args.inference_routes);
  // The workdir is bound writable whatever it holds: inside a state directory it would show the
  // CA key, provider secrets or a gateway's socket.
  if (std::string h = sandbox::hidden_holding(workdir, options.hidden);
      policy->filesystem.include_workdir && !h.empty()) {
    log::error("the workdir {} is inside {}, ward's own state, which no sandbox may see", workdir,
               h);
    return sandbox::kExitSetupFailed;
  }
  if (!args.inference_routes.empty()) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    auto routes = inference::load_routes_file(args.inference_routes, env);
    if (!routes) {
      // One diagnostic a line ("FILE:LINE:COLUMN: error: ..."), as `ward policy lint` prints
      // them (log::error would show the line breaks between them as \x0a).
      const std::string errors = routes.error().describe();
      for (std::string_view line : split(errors, '\n'))
        std::fprintf(stderr, "%s\n", printable(line).c_str());
      return sandbox::kExitSetupFailed;
    }
    proxy_options.inference_routes =
        std::make_shared<const std::vector<inference::Route>>(std::move(*routes));
    options.inference = true;
  }
  // ward's CA, for HTTPS whose requests must be read (L7 rules, credentials, inference.local).
  // Not for the built-in policy alone: it allows no network, and only a file can be reloaded
  // into one that does.
  if (!args.policy_file.empty() || !args.providers.empty() || options.inference) {
    const std::string state = state_dir(args.state_dir);
    auto trust = prepare_trust(state);
    // Without a CA, credentials and inference.local cannot work: refuse. A policy can still run:
    // its L7 endpoints are then refused (fail closed), and the message says why.
    const bool required = !args.providers.empty() || options.inference;
    bool l7 = false;
    for (const auto& rule : policy->network)
      for (const auto& e : rule.endpoints) l7 = l7 || policy::needs_l7(e);
    if (!trust && required) {
      log::error("ward's CA (state directory {}): {}", state, trust.error().describe());
      return sandbox::kExitSetupFailed;
    }
    if (!trust) {
      const std::string why = fmt::format(
          "ward's CA (state directory {}): {}; HTTPS interception is off (set --state-dir or "
          "WARD_STATE_DIR)",
          state, trust.error().describe());
      if (l7)
        log::warn("{}: the policy's L7 endpoints will be refused", why);
      else
        log::debug("{}", why);
    } else {
      proxy_options.ca_state_dir = state;
      proxy_options.authority = trust->authority;
      proxy_options.upstream_ca = args.upstream_ca;
      options.trust_layer = trust->layer;
    }
  }
  if (!args.providers.empty()) {
    auto vault = prepare_vault(args.providers, args.provider_profiles, *policy);
    if (!vault) {
      log::error("{}", vault.error().describe());
      return sandbox::kExitSetupFailed;
    }
    for (const std::string& entry : (*vault)->environment()) {
      const auto eq = entry.find('=');
      options.secret_env.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
    }
    proxy_options.vault = std::move(*vault);
  } else if (!args.provider_profiles.empty()) {
    log::warn("--provider-profile loads profiles, but no --provider names one: no credentials");
  }
  auto egress = proxy::Proxy::create(std::move(proxy_options), policy);
  if (!egress) {
    log::error("{}", egress.error().describe());
    return sandbox::kExitSetupFailed;
  }
  proxy::Proxy& proxy = **egress;
  const std::string sandbox_id = "ward-" + std::to_string(::getpid());
  std::optional<Reloader> reloader;
  if (!args.policy_file.empty()) reloader.emplace(args.policy_file, policy, proxy);
  if (args.watch) {
    if (!reloader) {
      log::error("--watch needs a policy file (-p)");
      return sandbox::kExitSetupFailed;
    }
    if (auto r = reloader->watch(); !r) {
      log::error("--watch: {}", r.error().describe());
      return sandbox::kExitSetupFailed;
    }
  }

  options.policy = policy.get();
  options.egress_port = kEgressPort;
  options.on_egress = [&](sandbox::EgressEndpoint e) {
    if (auto served = proxy.serve(sandbox_id, std::move(e.listener), std::move(e.diag), e.init_pid);
        !served)
      log::error("egress proxy: {}; the sandbox's connections out are refused",
                 served.error().describe());
  };
  if (reloader) options.on_sighup = [&] { reloader->reload("SIGHUP"); };
  options.workdir = workdir;
  options.argv = args.command;
  options.grace = std::chrono::milliseconds(static_cast<long>(args.grace_seconds * 1000));
  options.verbose = args.verbose;
  auto outcome = sandbox::run(options);
  proxy.stop();  // close records for the tunnels still open
  if (!outcome) {
    log::error("{}", outcome.error().describe());
    return sandbox::kExitSetupFailed;
  }
  if (!outcome->message.empty())
    log::info("{}", outcome->message);
  else if (args.verbose && outcome->kind == sandbox::Outcome::Kind::kSignaled)
    log::debug("the workload was killed by signal {}", outcome->signal);
  return outcome->exit_code;
}

}  // namespace

Action add_run(CLI::App& app, std::vector<std::string> command_after_dashes) {
  auto args = std::make_shared<RunArgs>();
  auto after_dashes = std::make_shared<std::vector<std::string>>(std::move(command_after_dashes));
  CLI::App* run = app.add_subcommand("run", "Run a command in a new sandbox");
  run->add_option("-p,--policy", args->policy_file,
                  "Policy file (YAML or JSON); without it, the built-in default");
  run->add_option("-w,--workdir", args->workdir,
                  "Directory bound read-write at the same path and used as the working directory "
                  "(default: the current directory)");
  run->add_option("--grace", args->grace_seconds,
                  "Seconds between SIGTERM and SIGKILL when the sandbox is stopped")
      ->check(number_between(0, 3600, "seconds"))
      ->capture_default_str();
  run->add_flag("-v,--verbose", args->verbose,
                "Say which layers were applied and how, and print each egress decision");
  run->add_option("--hosts", args->hosts_file,
                  "A hosts file (/etc/hosts format) the egress proxy resolves names from before "
                  "DNS");
  run->add_option("--audit", args->audit_file,
                  "Append an OCSF JSON record of every egress decision to this file");
  run->add_option("--audit-max-mib", args->audit_max_mib,
                  "Past this many MiB the audit file becomes FILE.1 (replacing the one before) "
                  "and a new one starts (default: no limit; the file must be outside the paths "
                  "the sandbox may write)")
      ->check(whole_number_between(1, 1 << 20));
  run->add_flag("--watch", args->watch,
                "Reload the policy's network sections when the policy file changes (SIGHUP to "
                "ward does the same)");
  run->add_option("--state-dir", args->state_dir,
                  "ward's state directory, where its CA lives (default: $WARD_STATE_DIR, else "
                  "/var/lib/ward for root, else $XDG_STATE_HOME/ward or ~/.local/state/ward)");
  run->add_option("--upstream-ca", args->upstream_ca,
                  "A PEM file of CA certificates trusted for upstream servers besides the "
                  "system's (repeatable; for private PKI and tests)")
      ->allow_extra_args(false);
  run->add_option("--provider", args->providers,
                  "Give the sandbox a provider's credentials as placeholders; the proxy puts the "
                  "real values (from ward's environment) into requests to the provider's "
                  "endpoints only (repeatable; built in: anthropic, github, gitlab, npm, openai, "
                  "pypi)")
      ->allow_extra_args(false);  // one value each time: the command follows
  run->add_option("--inference", args->inference_routes,
                  "Serve https://inference.local inside the sandbox from these routes (OpenShell's "
                  "routes file: name, endpoint, model, protocols, api_key or api_key_env), tried "
                  "in order");
  run->add_option("--provider-profile", args->provider_profiles,
                  "Load a provider profile (OpenShell's provider-profile YAML) that --provider "
                  "can then name (repeatable)")
      ->allow_extra_args(false);
  add_egress_limits(run, args->limits);
  // The command starts at the first argument that is not one of ward's options, and is taken
  // whole, in order (its own options included): no positional is declared, or CLI11 would take
  // the command's words as positionals and its options as leftovers, out of order.
  run->prefix_command();
  run->footer(
      "ward run [OPTIONS] [--] COMMAND [ARGS...]: the command follows ward's options (after -- "
      "when it could be taken for one). Exit status: the command's own, 128+N when a signal N "
      "ended it, 124 on timeout, 125 when ward could not start the sandbox, 126/127 when the "
      "command cannot be executed / found, 2 for a usage error.");
  return [args, run, after_dashes]() {
    std::vector<std::string> command = run->remaining();
    if (!command.empty() && command[0].size() > 1 && command[0][0] == '-') {
      std::fprintf(stderr, "ward: run: unknown option %s (the command goes after --)\n",
                   command[0].c_str());
      return 2;
    }
    // `ward run cmd a -- b`: the "--" came after the command started, so it is the command's.
    if (!command.empty() && !after_dashes->empty()) command.push_back("--");
    command.insert(command.end(), after_dashes->begin(), after_dashes->end());
    if (command.empty()) {
      std::fprintf(stderr, "ward: run: no command given (ward run [OPTIONS] -- COMMAND...)\n");
      return 2;
    }
    args->command = std::move(command);
    return run_sandbox(*args);
  };
}

// The README's first command ends here: a sandboxed command under the default policy that shows
// an allowed write, a denied read of a secret, and a denied network call.
Action add_demo(CLI::App& app) {
  auto verbose = std::make_shared<bool>(false);
  CLI::App* demo = app.add_subcommand("demo", "Show what the default policy allows and denies");
  demo->add_flag("-v,--verbose", *verbose, "Say which layers were applied");
  return [verbose]() {
    char tmpl[] = "/tmp/ward-demo-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      log::error("mkdtemp: {}", std::strerror(errno));
      return 1;
    }
    std::string base = tmpl;
    std::string project = base + "/project", secrets = base + "/home/.ssh";
    ::mkdir(project.c_str(), 0755);
    ::mkdir((base + "/home").c_str(), 0755);
    ::mkdir(secrets.c_str(), 0700);
    std::string secret = secrets + "/id_demo";
    std::ofstream(secret) << "DEMO-PRIVATE-KEY (a stand-in, not a real key)\n";
    ::chmod(base.c_str(), 0755);

    std::string script =
        "echo 'ward demo: a shell under the built-in default policy (ward policy show-default)'\n"
        "echo\n"
        "printf '1. write a file in the project directory   '\n"
        "if echo hello > notes.txt 2>/dev/null; then echo \"ALLOWED  ($PWD/notes.txt)\";"
        " else echo 'DENIED   (unexpected!)'; fail=1; fi\n"
        "printf '2. read a private key outside the project   '\n"
        "if err=$(cat " +
        secret +
        " 2>&1 >/dev/null); then echo 'ALLOWED  (unexpected!)'; fail=1;"
        " else echo \"DENIED   (${err##*: })\"; fi\n"
        "printf '3. connect to 203.0.113.10:80 (no proxy)     '\n"
        "if err=$( (exec 3<>/dev/tcp/203.0.113.10/80) 2>&1); then echo 'ALLOWED  (unexpected!)'; "
        "fail=1;"
        " else echo \"DENIED   (${err##*: })\"; fi\n"
        "printf '4. CONNECT example.com:443 through the proxy '\n"
        "if exec 3<>/dev/tcp/127.0.0.1/3128 && printf 'CONNECT example.com:443 "
        "HTTP/1.1\\r\\n\\r\\n' "
        ">&3 && IFS= read -r status <&3; then case $status in *' 200 '*) echo 'ALLOWED  "
        "(unexpected!)'; fail=1;; *) echo \"DENIED   (${status%$'\\r'}: no rule allows it)\";; "
        "esac; exec 3>&-; else echo 'DENIED   (no proxy?)'; fi\n"
        "printf '5. write to /usr                             '\n"
        "if err=$( (echo x > /usr/ward-demo) 2>&1); then echo 'ALLOWED  (unexpected!)'; fail=1;"
        " else echo \"DENIED   (${err##*: })\"; fi\n"
        "printf '6. processes visible                         '\n"
        "set -- /proc/[0-9]*; echo \"$# (the sandbox's own: the host's are hidden)\"\n"
        "exit ${fail:-0}\n";

    RunArgs args;
    args.workdir = project;
    args.command = {"/bin/bash", "--noprofile", "--norc", "-c", script};
    args.verbose = *verbose;
    int rc = run_sandbox(args);
    std::printf("\n%s\n", rc == 0 ? "All six behaved as the policy says."
                                  : "Something did not behave as the policy says (see above).");
    std::string cleanup = "rm -rf '" + base + "'";
    int ignored = std::system(cleanup.c_str());
    (void)ignored;
    return rc;
  };
}

}  // namespace ward::cli
