// `ward policy lint FILE [-o json]` and `ward policy show-default`.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "cli/commands.h"
#include "policy/policy.h"

namespace ward::cli {
namespace {

const char* severity_name(policy::Diagnostic::Severity s) {
  return s == policy::Diagnostic::Severity::kError ? "error" : "warning";
}

int lint(const std::string& file, const std::string& format) {
  policy::LoadResult loaded = policy::load_file(file);
  int errors = 0, warnings = 0;
  for (const auto& d : loaded.diagnostics)
    (d.severity == policy::Diagnostic::Severity::kError ? errors : warnings)++;
  if (format == "json") {
    nlohmann::json out = {{"file", file},
                          {"valid", loaded.ok()},
                          {"errors", errors},
                          {"warnings", warnings},
                          {"diagnostics", nlohmann::json::array()}};
    for (const auto& d : loaded.diagnostics)
      out["diagnostics"].push_back({{"severity", severity_name(d.severity)},
                                    {"file", d.file},
                                    {"line", d.line},
                                    {"column", d.column},
                                    {"key", d.key_path},
                                    {"message", d.message}});
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const auto& d : loaded.diagnostics) std::printf("%s\n", d.format().c_str());
    std::printf("%s: %s (%d error%s, %d warning%s)\n", file.c_str(),
                loaded.ok() ? "valid" : "invalid", errors, errors == 1 ? "" : "s", warnings,
                warnings == 1 ? "" : "s");
  }
  return loaded.ok() ? 0 : 1;
}

}  // namespace

Action add_policy(CLI::App& app) {
  struct Args {
    std::string file;
    std::string format = "text";
  };
  auto args = std::make_shared<Args>();
  CLI::App* policy = app.add_subcommand("policy", "Check and show policies");
  policy->require_subcommand(1);
  CLI::App* lint_cmd = policy->add_subcommand("lint", "Report every problem in a policy file");
  lint_cmd->add_option("file", args->file, "Policy file (YAML or JSON)")->required();
  lint_cmd->add_option("-o,--output", args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  CLI::App* show = policy->add_subcommand("show-default", "Print the built-in default policy");
  return [args, lint_cmd, show]() {
    if (lint_cmd->parsed()) return lint(args->file, args->format);
    if (show->parsed()) {
      std::fputs(std::string(policy::default_policy_yaml()).c_str(), stdout);
      return 0;
    }
    return 2;
  };
}

}  // namespace ward::cli
