// The CLI's subcommands. Each registers itself on the CLI11 app and returns ward's exit code
// through `exit_code` once parsed.
#pragma once

#include <CLI/App.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace ward::cli {

// Registered subcommand: a function run after parsing, returning the process exit code.
using Action = std::function<int()>;

// `ward run [OPTIONS] -- CMD ARGS...`: main() cuts argv at the first "--" (everything after it
// belongs to the command, even another "--") and hands the tail over here.
Action add_run(CLI::App& app, std::vector<std::string> command_after_dashes);
Action add_demo(CLI::App& app);
Action add_policy(CLI::App& app);
Action add_doctor(CLI::App& app);

// Clients of the gateway (`ward gateway`, docs/gateway-api.md), in sandbox_cmd.cc. `ward sandbox
// create|exec ... -- CMD ARGS` take the command after "--" as `ward run` does; `ward policy`
// (above) has the gateway's get|set|list besides lint and show-default.
// `verb`: the word after `sandbox` (only that subcommand is registered when it names one).
Action add_sandbox(CLI::App& app, std::vector<std::string> command_after_dashes,
                   std::string_view verb);
Action add_logs(CLI::App& app);
Action add_status(CLI::App& app);
Action add_provider(CLI::App& app);

// `ward gateway` and its internal `ward __sandbox DIR`, in gateway_cmd.cc (registered in main.cc
// once that file is part of the build).
Action add_gateway(CLI::App& app);
Action add_supervisor(CLI::App& app);

// `ward mcp` (MCP over stdio), in mcp_cmd.cc.
Action add_mcp(CLI::App& app);

}  // namespace ward::cli
