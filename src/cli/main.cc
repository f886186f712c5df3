// ward: run AI agents on Linux without trusting them.
#include <fcntl.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "sandbox/sandbox.h"

int main(int argc, char** argv) {
  ward::sandbox::remember_title_area(argc, argv);
  // A closed 0, 1 or 2 would be reused by the next file ward opens (and passed to the workload as
  // its stdin or stdout): fill them with /dev/null first.
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/null", O_RDWR) != fd) return 125;

  // CLI11 reports --version and --help by throwing, and the first exception a static binary
  // throws sorts the unwind entries of all its code (~6 ms here): answered without one.
  if (argc == 2 && std::string_view(argv[1]) == "--version") {
    std::printf("ward %s\n", WARD_VERSION);
    return 0;
  }
  static char help_command[] = "help";
  if (argc == 2 && (std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h"))
    argv[1] = help_command;

  CLI::App app{"ward: run AI agents on Linux without trusting them", "ward"};
  app.require_subcommand(0, 1);
  app.set_version_flag("--version", std::string("ward ") + WARD_VERSION);
  app.fallthrough(false);

  // Cut at the first "--": CLI11 sees the options, the sandbox gets the command untouched (ward
  // run, ward sandbox create and exec).
  int cli_argc = argc;
  std::vector<std::string> command;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      cli_argc = i;
      command.assign(argv + i + 1, argv + argc);
      break;
    }
  }
  // Only the command being run is registered: CLI11 building every command's options cost
  // about a millisecond at each start. Anything else (no command, `help`, an option first, a
  // typo) gets them all, for the usage and the error messages.
  using ward::cli::Action;
  const std::pair<const char*, std::function<Action()>> commands[] = {
      {"run", [&] { return ward::cli::add_run(app, command); }},
      {"demo", [&] { return ward::cli::add_demo(app); }},
      {"policy", [&] { return ward::cli::add_policy(app); }},
      {"doctor", [&] { return ward::cli::add_doctor(app); }},
      {"sandbox", [&] { return ward::cli::add_sandbox(app, command, argc > 2 ? argv[2] : ""); }},
      {"logs", [&] { return ward::cli::add_logs(app); }},
      {"status", [&] { return ward::cli::add_status(app); }},
      {"provider", [&] { return ward::cli::add_provider(app); }},
      {"gateway", [&] { return ward::cli::add_gateway(app); }},
      {"__sandbox", [&] { return ward::cli::add_supervisor(app); }},
      {"mcp", [&] { return ward::cli::add_mcp(app); }},
  };
  const std::string_view first = argc > 1 ? argv[1] : "";
  const bool known =
      first == "version" || std::any_of(std::begin(commands), std::end(commands),
                                        [&](const auto& c) { return first == c.first; });
  std::vector<std::pair<std::string, Action>> actions;
  for (const auto& [name, add] : commands)
    if (!known || first == name) actions.emplace_back(name, add());
  CLI::App* version = app.add_subcommand("version", "Print ward's version");
  CLI::App* help = app.add_subcommand("help", "Show this help, or a command's: ward help run");
  std::string help_topic;
  help->add_option("command", help_topic, "A command to explain");

  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;  // usage errors: 2, as every Unix tool does
  }
  for (const auto& [name, action] : actions) {
    if (!app.got_subcommand(name)) continue;
    const int rc = action();
    if (name != "run") return rc;
    // A sandbox run has nothing left to release once its command returns (every resource is
    // scoped inside it): exit without destroying the CLI and the static objects, whose code and
    // data would be paged in just to be freed.
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  if (version->parsed()) {
    std::printf("ward %s\n", WARD_VERSION);
    return 0;
  }
  if (help->parsed() && !help_topic.empty()) {
    for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
      if (sub->get_name() == help_topic) {
        std::fputs(sub->help("ward").c_str(), stdout);
        return 0;
      }
    }
    std::fprintf(stderr, "ward: no command named '%s'\n", help_topic.c_str());
    return 2;
  }
  // The whole usage, rendered only now (most runs never need it): clear() forgets the parsed
  // `help`, whose own help CLI11 would render instead.
  const int rc = app.get_subcommands().empty() && argc > 1 ? 2 : 0;
  app.clear();
  std::fputs(app.help().c_str(), stdout);
  return rc;
}
