// What `ward run` and `ward gateway` prepare for the egress proxy besides the policy: ward's state
// directory, its CA and the trust layer the sandbox sees it through, the credentials of
// --provider, and the proxy's limits as options.
#pragma once

#include <CLI/App.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "creds/vault.h"
#include "policy/policy.h"
#include "proxy/proxy.h"
#include "tls/ca.h"

namespace ward::cli {

// ward's state directory: `flag` when given, else $WARD_STATE_DIR, else /var/lib/ward for root,
// else $XDG_STATE_HOME/ward, else ~/.local/state/ward.
std::string state_dir(const std::string& flag);
// The last two: where ward keeps its state when nothing says otherwise.
std::string default_state_dir();

// What no sandbox may see, whatever its policy lists (sandbox::RunOptions::hidden): the state
// directory of `flag`, of $WARD_STATE_DIR and the default one (every one of them may hold a
// gateway's socket, provider secrets and a CA key), the socket $WARD_GATEWAY names, plus `extra`
// (a socket or token file kept elsewhere). The default directory is made (0700) when missing, so
// that a gateway started later puts its socket where the sandboxes already see an empty directory.
std::vector<std::string> private_paths(const std::string& flag,
                                       const std::vector<std::string>& extra = {});

struct Trust {
  std::shared_ptr<tls::Authority> authority;  // null when the files were up to date (see below)
  std::string layer;  // a directory laid out like /etc with the bundle (sandbox::RunOptions)
};

// Makes sure ward's CA exists in `state` (made on first use), that the bundle (system CAs +
// ward's) is up to date, and that the layer of hard links to it under the names the sandbox will
// see is in place. When all of it already is (a few stat(2)), the CA is not loaded here: its key
// is decoded later, by the proxy, at the first connection that needs it.
Result<Trust> prepare_trust(const std::string& state);

// The credentials of each `--provider NAME`: a profile from `profile_files` with that id, else a
// built-in one; values from ward's environment. Warns about policy endpoints bound to a provider
// that was not given.
Result<std::shared_ptr<creds::Vault>> prepare_vault(const std::vector<std::string>& providers,
                                                    const std::vector<std::string>& profile_files,
                                                    const policy::Policy& policy);

// The proxy's limits as options of `command`, shown with their defaults: --header-timeout,
// --idle-timeout, --max-connections, --max-buffered-mib, --upstream-idle-ms.
void add_egress_limits(CLI::App* command, proxy::Limits& limits);

}  // namespace ward::cli
