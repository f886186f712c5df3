// `ward gateway` (the daemon) and `ward __sandbox DIR` (a sandbox's supervisor, started by it).
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/log.h"
#include "cli/commands.h"
#include "cli/egress_setup.h"
#include "gateway/gateway.h"
#include "gateway/supervisor.h"

namespace ward::cli {

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
      ->check(CLI::ExistingFile);
  cmd->add_option("--hosts", options->hosts_file,
                  "A hosts file the sandboxes' egress proxies resolve names from before DNS")
      ->check(CLI::ExistingFile);
  cmd->add_flag("-v,--verbose", options->verbose, "Log each API request and egress decision");
  return [options, state]() {
    log::set_verbose(options->verbose);
    options->state_dir = state_dir(*state);
    if (::mkdir(options->state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      log::error("mkdir {}: {}", options->state_dir, std::strerror(errno));
      return 1;
    }
    char real[PATH_MAX];
    if (::realpath(options->state_dir.c_str(), real)) options->state_dir = real;
    // ward's CA, so that sandboxes can have L7 rules, credentials and inference.local.
    auto trust = prepare_trust(options->state_dir);
    if (trust)
      options->trust_layer = trust->layer;
    else
      log::warn("ward's CA: {}; HTTPS interception is off for every sandbox",
                trust.error().describe());
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
