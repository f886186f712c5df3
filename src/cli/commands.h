// The CLI's subcommands. Each registers itself on the CLI11 app and returns ward's exit code
// through `exit_code` once parsed.
#pragma once

#include <CLI/App.hpp>

namespace ward::cli {

// Registered subcommand: a function run after parsing, returning the process exit code.
using Action = std::function<int()>;

// `ward run [OPTIONS] -- CMD ARGS...`: main() cuts argv at the first "--" (everything after it
// belongs to the command, even another "--") and hands the tail over here.
Action add_run(CLI::App& app, std::vector<std::string> command_after_dashes);
Action add_demo(CLI::App& app);
Action add_policy(CLI::App& app);
Action add_doctor(CLI::App& app);

}  // namespace ward::cli
