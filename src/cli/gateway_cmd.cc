// `ward gateway` (the daemon) and `ward __sandbox DIR` (a sandbox's supervisor, started by it).
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "base/files.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/egress_setup.h"
#include "cli/mcp_setup.h"
#include "cli/options.h"
#include "gateway/gateway.h"
#include "gateway/supervisor.h"
#include "mcp/http.h"

namespace ward::cli {
namespace {

// The options that need nothing but themselves to be judged, checked before the gateway makes
// its state directory, its token or its CA, or says anything about them: a usage error leaves
// nothing behind. (run_gateway checks --listen again as it binds.) The message; "" when fine.
std::string bad_options(const gateway::GatewayOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty())
    return "--tls-cert and --tls-key go together";
  if (!options.tls_cert.empty() && options.listen.empty())
    return "--tls-cert: HTTPS is for --listen addresses; give one (--listen HOST:PORT)";
  for (const std::string& address : options.listen) {
    const auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
    boost::system::error_code ec;
    const auto ip = boost::asio::ip::make_address(host, ec);
    char* end = nullptr;
    const unsigned long number = std::strtoul(port.c_str(), &end, 10);
    if (ec || port.empty() || *end || number > 65535)
      return "--listen " + address + ": not an IP address and port (127.0.0.1:8080, [::1]:8080)";
    if (options.no_auth && !ip.is_loopback())
      return "--listen " + address + ": --no-auth is only allowed on a loopback address";
  }
  // Looked up in /etc/group itself: the static binary's getgrnam(3) crashes on a name its
  // files do not hold (glibc then tries NSS modules it cannot load), and the gateway calls it
  // only once the group is known to be there.
  if (!options.socket_group.empty()) {
    std::ifstream groups("/etc/group");
    bool found = false;
    for (std::string line; !found && std::getline(groups, line);)
      found = line.compare(0, line.find(':'), options.socket_group) == 0 &&
              line.find(':') != std::string::npos;
    if (!found) return "--socket-group " + options.socket_group + ": no such group in /etc/group";
  }
  return {};
}

}  // namespace

Action add_gateway(CLI::App& app) {
  auto options = std::make_shared<gateway::GatewayOptions>();
  auto state = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "gateway", "Run the daemon that keeps long-lived sandboxes (foreground; see `ward sandbox`)");
  cmd->add_option("--state-dir", *state,
                  "Where the gateway keeps its database, sandboxes and workspaces (default: "
                  "$WARD_STATE_DIR, else /var/lib/ward for root, else $XDG_STATE_HOME/ward or "
                  "~/.local/state/ward)");
  cmd->add_option("--socket", options->socket_path,
                  "The API's Unix socket (default: STATE/gateway.sock, mode 0600)");
  cmd->add_option("--socket-group", options->socket_group,
                  "Make the socket 0660 and owned by this group, for its members to use");
  cmd->add_flag("--stop-sandboxes-on-exit", options->stop_sandboxes_on_exit,
                "Stop every sandbox when the gateway stops (by default they keep running and "
                "the next gateway takes them back)");
  cmd->add_option("--upstream-ca", options->upstream_ca,
                  "A PEM file of CA certificates trusted for upstream servers besides the "
                  "system's (repeatable)")
      ->check(readable_file());
  cmd->add_option("--hosts", options->hosts_file,
                  "A hosts file the sandboxes' egress proxies resolve names from before DNS")
      ->check(readable_file());
  cmd->add_option("--listen", options->listen,
                  "Also serve the API and /mcp over TCP at HOST:PORT (repeatable), with a bearer "
                  "token");
  auto token_file = std::make_shared<std::string>();
  cmd->add_option("--token-file", *token_file,
                  "The bearer token for --listen (default: $WARD_GATEWAY_TOKEN, else one is made "
                  "and kept in STATE/token, 0600)");
  cmd->add_flag("--no-auth", options->no_auth,
                "No token on --listen; refused unless every --listen address is a loopback one");
  cmd->add_option("--tls-cert", options->tls_cert,
                  "Serve --listen over HTTPS with this PEM certificate (chain, the leaf first)");
  cmd->add_option("--tls-key", options->tls_key, "The --tls-cert's PEM private key (unencrypted)");
  // Hidden: for tests that must not wait the default 30 s.
  auto header_timeout = std::make_shared<double>(30);
  cmd->add_option("--api-header-timeout", *header_timeout,
                  "Seconds a --listen client has to send a request's header")
      ->check(number_between(0, 3600, "seconds", true))
      ->group("");
  auto mcp = std::make_shared<McpSetup>();
  add_mcp_options(cmd, *mcp);
  auto audit_max_mib = std::make_shared<std::size_t>(options->audit_max_bytes >> 20);
  cmd->add_option("--audit-max-mib", *audit_max_mib,
                  "Past this many MiB a sandbox's audit.jsonl becomes audit.jsonl.1 (replacing "
                  "the one before) and a new one starts; 0: no limit")
      ->check(whole_number_between(0, 1 << 20))
      ->capture_default_str();
  add_egress_limits(cmd, options->egress_limits);  // for every sandbox's proxy
  cmd->add_flag("-v,--verbose", options->verbose, "Log each API request and egress decision");
  return [options, state, token_file, header_timeout, mcp, audit_max_mib]() {
    log::set_verbose(options->verbose);
    options->audit_max_bytes = *audit_max_mib << 20;
    options->header_timeout = std::chrono::milliseconds(std::llround(*header_timeout * 1000));
    if (std::string why = bad_options(*options); !why.empty()) {
      log::error("{}", why);
      return 2;
    }
    options->state_dir = state_dir(*state);
    if (::mkdir(options->state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      log::error("mkdir {}: {}", options->state_dir, std::strerror(errno));
      return 1;
    }
    char real[PATH_MAX];
    if (::realpath(options->state_dir.c_str(), real)) options->state_dir = real;
    // The state directory holds the token, provider secrets and the socket: it must be this
    // user's alone. One made by someone else first (a --state-dir in /tmp) is refused; one of
    // ours that others may enter is closed.
    {
      UniqueFd dir(::open(options->state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      struct stat st;
      if (!dir || ::fstat(dir.get(), &st) != 0) {
        log::error("{}: {}", options->state_dir, std::strerror(errno));
        return 1;
      }
      if (st.st_uid != ::geteuid()) {
        log::error(
            "the state directory {} belongs to uid {}, not to ward's uid {}: choose "
            "another (--state-dir)",
            options->state_dir, st.st_uid, ::geteuid());
        return 1;
      }
      if ((st.st_mode & 077) != 0 && ::fchmod(dir.get(), 0700) != 0) {
        log::error("chmod 700 {}: {}", options->state_dir, std::strerror(errno));
        return 1;
      }
    }
    // ward's CA, so that sandboxes can have L7 rules, credentials and inference.local.
    auto trust = prepare_trust(options->state_dir);
    if (trust)
      options->trust_layer = trust->layer;
    else
      log::warn("ward's CA: {}; HTTPS interception is off for every sandbox",
                trust.error().describe());
    if (!options->listen.empty() && options->no_auth)
      log::warn(
          "--no-auth: any process of this host, any user's, can use this gateway's API on "
          "{} and run commands in its sandboxes (and move files as uid {}): for a machine "
          "of one user, or a network namespace of its own",
          options->listen.front(), ::geteuid());
    if (!options->listen.empty() && !options->no_auth) {
      auto token = bearer_token(*token_file, options->state_dir);
      if (!token) {
        log::error("{}", token.error().describe());
        return 1;
      }
      options->token = *token;
    }
    // MCP at /mcp: its tools reach the sandboxes through this gateway's own socket.
    if (options->socket_path.empty()) options->socket_path = options->state_dir + "/gateway.sock";
    options->hidden = private_paths(*state, {options->socket_path, *token_file, options->tls_key});
    auto server = make_mcp_server(*mcp, client::Endpoint{options->socket_path, {}});
    if (!server) return 1;
    auto endpoint = std::make_shared<mcp::HttpEndpoint>(*server->server);
    options->mcp = [endpoint](gateway::HandOff h) { endpoint->serve(std::move(h)); };
    // Chat sandboxes stopped long enough are deleted; sessions idle for an hour end. Looked at
    // every minute, or more often when --mcp-remove-after is short.
    const auto period = std::chrono::seconds(std::clamp(mcp->remove_after_s / 4, 1L, 60L));
    options->on_listening = [server, endpoint, period] {
      for (;;) {
        if (server->sandboxes) (void)server->sandboxes->sweep();
        endpoint->expire(std::chrono::hours(1));
        std::this_thread::sleep_for(period);
      }
    };
    return gateway::run_gateway(*options);
  };
}

Action add_supervisor(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("__sandbox", "");  // internal: started by the gateway
  cmd->group("");                                       // not listed in help
  cmd->add_option("dir", *dir)->required();
  return [dir]() { return gateway::supervisor_main(*dir); };
}

}  // namespace ward::cli
