// The commands around `ward run`: version, help, doctor, policy lint and show-default.
#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "integration/harness.h"

namespace ward::test {
namespace {

Result ward_cli(const std::vector<std::string>& args) {
  RunOptions options;
  options.mode = ::geteuid() == 0 ? Mode::kRoot : Mode::kRootless;
  options.cwd = "/";
  return ward(args, options);
}

TEST(Cli, VersionAndHelp) {
  Result v = ward_cli({"--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_EQ(v.out.rfind("ward ", 0), 0u) << v.out;
  EXPECT_EQ(ward_cli({"version"}).out, v.out);
  Result help = ward_cli({"help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* command : {"run", "demo", "policy", "doctor"})
    EXPECT_NE(help.out.find(command), std::string::npos) << command;
  Result run_help = ward_cli({"help", "run"});
  EXPECT_EQ(run_help.exit_code, 0);
  EXPECT_NE(run_help.out.find("Usage: ward run"), std::string::npos) << run_help.out;
  EXPECT_NE(run_help.out.find("--policy"), std::string::npos) << run_help.out;
  EXPECT_EQ(ward_cli({"help", "no-such-command"}).exit_code, 2);
  EXPECT_EQ(ward_cli({"no-such-command"}).exit_code, 2);
}

TEST(Cli, DoctorReportsEveryLayerAsJson) {
  Result r = ward_cli({"doctor", "-o", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto report = nlohmann::json::parse(r.out);
  EXPECT_TRUE(report["can_run_sandboxes"].get<bool>());
  std::vector<std::string> names;
  for (const auto& check : report["checks"]) {
    names.push_back(check["name"]);
    EXPECT_FALSE(check["detail"].get<std::string>().empty());
    // What ward does without a missing piece is always said.
    if (!check["ok"].get<bool>()) {
      EXPECT_FALSE(check["without"].get<std::string>().empty());
    }
  }
  for (const char* name : {"user namespaces", "landlock", "seccomp", "cgroup v2", "cgroup v1"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
}

TEST(Cli, LintReportsEveryProblemAndExitsOne) {
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  std::string bad = dir.write("bad.yaml",
                              "version: 1\n"
                              "filesystem_policy:\n"
                              "  read_only: [usr]\n"
                              "  read_write: [/]\n"
                              "  bogus: true\n");
  Result text = ward_cli({"policy", "lint", bad});
  EXPECT_EQ(text.exit_code, 1);
  EXPECT_NE(text.out.find("bad.yaml:3:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bad.yaml:4:"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("bad.yaml:5:3"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("3 errors"), std::string::npos) << text.out;

  Result json = ward_cli({"policy", "lint", "-o", "json", bad});
  EXPECT_EQ(json.exit_code, 1);
  auto report = nlohmann::json::parse(json.out);
  EXPECT_FALSE(report["valid"].get<bool>());
  ASSERT_EQ(report["diagnostics"].size(), 3u);
  EXPECT_EQ(report["diagnostics"][2]["key"], "filesystem_policy.bogus");
  EXPECT_EQ(report["diagnostics"][2]["line"], 5);
  EXPECT_EQ(report["diagnostics"][2]["column"], 3);
}

TEST(Cli, TheDefaultPolicyLintsClean) {
  TempDir dir(::geteuid() == 0 ? Mode::kRoot : Mode::kRootless);
  Result shown = ward_cli({"policy", "show-default"});
  ASSERT_EQ(shown.exit_code, 0);
  std::string file = dir.write("default.yaml", shown.out);
  Result lint = ward_cli({"policy", "lint", file});
  EXPECT_EQ(lint.exit_code, 0) << lint.out;
  EXPECT_NE(lint.out.find("valid (0 errors, 0 warnings)"), std::string::npos) << lint.out;
}

TEST(Cli, OpenShellPoliciesLintAsPinned) {
  std::string dir = std::string(WARD_SHARED_DIR) + "/reference/openshell-policies/";
  if (!exists(dir)) GTEST_SKIP() << dir << " is missing";
  EXPECT_EQ(ward_cli({"policy", "lint", dir + "examples__sandbox-policy-quickstart__policy.yaml"})
                .exit_code,
            0);
  Result middleware = ward_cli(
      {"policy", "lint", dir + "examples__supervisor-middleware-content-guard__policy.yaml"});
  EXPECT_EQ(middleware.exit_code, 1);
  EXPECT_NE(middleware.out.find("network_middlewares"), std::string::npos) << middleware.out;
}

}  // namespace
}  // namespace ward::test
