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

namespace {

// Edits (insert, delete, replace a letter) between two words: "polcy" is one from "policy".
std::size_t distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The listed subcommands of `parent`, and the one named `word` (a name or an alias) among them.
std::vector<const CLI::App*> listed_subcommands(const CLI::App& parent) {
  return parent.get_subcommands([](const CLI::App* sub) { return !sub->get_group().empty(); });
}
const CLI::App* find_subcommand(const CLI::App& parent, std::string_view word) {
  for (const CLI::App* sub : parent.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == word) return sub;
    for (const std::string& alias : sub->get_aliases())
      if (alias == word) return sub;
  }
  return nullptr;
}

// `ward polcy lint x`, `ward sandbox crate foo`: an unknown command named as such, with the
// nearest one and the list (CLI11 would say "A subcommand is required", or list the words it
// did not expect, last first). `where` is "" or "sandbox "; returns the exit status, 2.
int unknown_command(const CLI::App& parent, std::string_view where, std::string_view word) {
  std::string names, nearest;
  std::size_t best = 3;  // at most two edits away
  for (const CLI::App* sub : listed_subcommands(parent)) {
    names += (names.empty() ? "" : ", ") + sub->get_name();
    if (const std::size_t d = distance(word, sub->get_name()); d < best) {
      best = d;
      nearest = sub->get_name();
    }
  }
  std::string hint;
  if (!nearest.empty()) hint = "; did you mean 'ward " + std::string(where) + nearest + "'?";
  // Words from other tools for a sandbox's terminal or for its other verbs.
  static constexpr std::string_view kTerminal[] = {"connect", "term",   "terminal",
                                                   "shell",   "attach", "ssh"};
  static constexpr std::string_view kSandboxVerbs[] = {
      "create", "list", "ls", "get", "exec", "stop", "start", "delete", "rm", "upload", "download"};
  if (where.empty()) {
    if (std::find(std::begin(kTerminal), std::end(kTerminal), word) != std::end(kTerminal))
      hint = "; a terminal in a sandbox is 'ward sandbox connect NAME'";
    else if (std::find(std::begin(kSandboxVerbs), std::end(kSandboxVerbs), word) !=
             std::end(kSandboxVerbs))
      hint = "; did you mean 'ward sandbox " + std::string(word) + "'?";
  }
  std::fprintf(stderr, "ward: unknown %s '%.*s'%s\nward: %s: %s (ward help %sCOMMAND)\n",
               where.empty() ? "command" : "subcommand", static_cast<int>(word.size()), word.data(),
               hint.c_str(), where.empty() ? "commands" : "its subcommands", names.c_str(),
               std::string(where).c_str());
  return 2;
}

}  // namespace

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
  std::vector<std::string> help_topic;
  help->add_option("command", help_topic, "A command to explain (ward help sandbox exec)");

  // A first word that is no command, or a second that is none of the command's subcommands:
  // said before CLI11 parses, which would report them in its own terms.
  if (!first.empty() && first.front() != '-' && !known && first != "help")
    return unknown_command(app, "", first);
  if (known && cli_argc > 2 && argv[2][0] != '-') {
    const CLI::App* command = find_subcommand(app, first);
    if (command && command->get_require_subcommand_min() > 0 && !find_subcommand(*command, argv[2]))
      return unknown_command(*command, std::string(first) + " ", argv[2]);
  }

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
    // `ward help sandbox exec`: down the words, each a subcommand of the one before.
    const CLI::App* at = &app;
    std::string parent, path = "ward";  // at's parent's words, and at's own
    for (const std::string& word : help_topic) {
      const CLI::App* sub = find_subcommand(*at, word);
      if (!sub || sub == help || sub->get_group().empty()) {
        std::fprintf(stderr, "ward: no command named '%s %s'\n", path.c_str(), word.c_str());
        return 2;
      }
      parent = path;
      path += " " + sub->get_name();
      at = sub;
    }
    std::fputs(at->help(parent).c_str(), stdout);
    return 0;
  }
  // The whole usage, rendered only now (most runs never need it): clear() forgets the parsed
  // `help`, whose own help CLI11 would render instead.
  const int rc = app.get_subcommands().empty() && argc > 1 ? 2 : 0;
  app.clear();
  std::fputs(app.help().c_str(), stdout);
  return rc;
}
