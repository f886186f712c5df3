// `ward policy lint FILE [-o json|yaml]` and `ward policy show-default` (local), and the gateway's
// policies: `ward policy get [NAME]`, `ward policy set NAME FILE`, `ward policy list NAME`.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/gateway_client.h"
#include "cli/options.h"
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
    (d.severity == policy::Diagnostic::Severity::kError ? errors : warnings) += d.count;
  if (format != "text") {
    Json out = {{"file", file},
                {"valid", loaded.ok()},
                {"errors", errors},
                {"warnings", warnings},
                {"diagnostics", Json::array()}};
    for (const auto& d : loaded.diagnostics)
      out["diagnostics"].push_back({{"severity", severity_name(d.severity)},
                                    {"file", d.file},
                                    {"line", d.line},
                                    {"column", d.column},
                                    {"key", d.key_path},
                                    {"message", d.message},
                                    {"count", d.count}});
    if (format == "json")
      std::printf("%s\n", out.dump(2).c_str());
    else
      std::fputs(to_yaml(out).c_str(), stdout);
  } else {
    for (const auto& d : loaded.diagnostics) std::printf("%s\n", d.format().c_str());
    std::printf("%s: %s (%d error%s, %d warning%s)\n", file.c_str(),
                loaded.ok() ? "valid" : "invalid", errors, errors == 1 ? "" : "s", warnings,
                warnings == 1 ? "" : "s");
  }
  return loaded.ok() ? 0 : 1;
}

std::string policy_path(const std::string& sandbox) {
  return sandbox.empty() ? "/v1/policy" : "/v1/sandboxes/" + percent_encode(sandbox) + "/policy";
}

// Table form: the policy's text alone, ready for `ward policy set`.
int get(const GatewayOptions& options, const std::string& sandbox) {
  auto answer = call(options, {"GET", policy_path(sandbox)});
  if (!answer) return 1;
  if (print_structured(*answer, options)) return 0;
  std::string text = field(*answer, "policy");
  if (!text.empty() && text.back() != '\n') text += '\n';
  std::fputs(text.c_str(), stdout);
  return 0;
}

int set(const GatewayOptions& options, const std::string& sandbox, const std::string& file) {
  if (std::string why = unreadable_file(file); !why.empty()) {
    std::fprintf(stderr, "ward: policy set: cannot read %s\n", printable(why).c_str());
    return 1;
  }
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    std::fprintf(stderr, "ward: policy set: cannot read %s: %s\n", printable(file).c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::string body = json_body({{"policy", text.str()}}, file);
  auto answer = call(options, {"PUT", policy_path(sandbox), body}, file);
  if (!answer) return 1;
  if (print_structured(*answer, options)) return 0;
  const bool changed = answer->value("changed", false);
  if (sandbox.empty())
    std::printf("the gateway's default policy %s (hash %s)\n", changed ? "changed" : "is unchanged",
                field(*answer, "hash").c_str());
  else if (changed)
    std::printf("%s: policy revision %s\n", sandbox.c_str(), field(*answer, "revision").c_str());
  else
    std::printf("%s: policy unchanged (revision %s)\n", sandbox.c_str(),
                field(*answer, "revision").c_str());
  return 0;
}

int list(const GatewayOptions& options, const std::string& sandbox) {
  auto answer = call(options, {"GET", policy_path(sandbox) + "/revisions"});
  if (!answer) return 1;
  if (print_structured(*answer, options)) return 0;
  std::vector<std::vector<std::string>> rows = {{"REVISION", "STATUS", "HASH", "AGE", "CREATED"}};
  for (const auto& r : member(*answer, "revisions"))
    rows.push_back({field(r, "revision"), field(r, "status"), field(r, "hash").substr(0, 16),
                    age(field(r, "created_at")), field(r, "created_at")});
  print_table(rows);
  return 0;
}

}  // namespace

Action add_policy(CLI::App& app) {
  struct Args {
    std::string file;
    std::string format = "text";
    GatewayOptions gateway;
    std::string sandbox;
    bool gateway_default = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* policy =
      app.add_subcommand("policy", "Check and show policies, and those of the gateway's sandboxes");
  policy->require_subcommand(1);
  CLI::App* lint_cmd = policy->add_subcommand("lint", "Report every problem in a policy file");
  lint_cmd->add_option("file", args->file, "Policy file (YAML or JSON)")->required();
  lint_cmd->add_option("-o,--output", args->format, "text, json or yaml")
      ->check(CLI::IsMember({"text", "json", "yaml"}))
      ->capture_default_str();
  CLI::App* show = policy->add_subcommand("show-default", "Print the built-in default policy");

  CLI::App* get_cmd = policy->add_subcommand(
      "get", "Print a sandbox's current policy (without NAME: the gateway's default)");
  get_cmd->add_option("name", args->sandbox, "The sandbox's name or id");
  add_gateway_options(get_cmd, args->gateway);
  CLI::App* set_cmd = policy->add_subcommand(
      "set", "Give a sandbox a new policy: its network sections apply at once");
  set_cmd->add_option("name", args->sandbox, "The sandbox's name or id (not with --default)");
  set_cmd->add_option("file", args->file, "Policy file (YAML or JSON)");
  set_cmd->add_flag("--default", args->gateway_default,
                    "Set the gateway's default policy (for sandboxes created without one): "
                    "ward policy set --default FILE");
  add_gateway_options(set_cmd, args->gateway);
  CLI::App* list_cmd = policy->add_subcommand("list", "List a sandbox's policy revisions");
  list_cmd->add_option("name", args->sandbox, "The sandbox's name or id")->required();
  add_gateway_options(list_cmd, args->gateway);

  return [args, lint_cmd, show, get_cmd, set_cmd, list_cmd]() {
    if (lint_cmd->parsed()) return lint(args->file, args->format);
    if (show->parsed()) {
      std::fputs(std::string(policy::default_policy_yaml()).c_str(), stdout);
      return 0;
    }
    if (get_cmd->parsed()) return guarded([&] { return get(args->gateway, args->sandbox); });
    if (list_cmd->parsed()) return guarded([&] { return list(args->gateway, args->sandbox); });
    if (set_cmd->parsed()) {
      // With --default the one argument is the file.
      if (args->gateway_default && args->file.empty()) std::swap(args->sandbox, args->file);
      if (args->gateway_default == !args->sandbox.empty() || args->file.empty()) {
        std::fprintf(stderr,
                     "ward: policy set: give NAME FILE, or --default FILE for the gateway's "
                     "default\n");
        return 2;
      }
      return guarded([&] { return set(args->gateway, args->sandbox, args->file); });
    }
    return 2;
  };
}

}  // namespace ward::cli
