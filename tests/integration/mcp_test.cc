// MCP with the MCP project's own clients: the official conformance suite against the gateway's
// /mcp (40/40 in the test mode, the checked-in baseline in the normal mode), and the official
// TypeScript SDK's stdio client against `ward mcp --embedded` (tests/clients/mcp_stdio.cjs).
// Attacks on the HTTP transport are in mcp_http_test.cc.
#include <unistd.h>

#include "integration/egress_util.h"
#include "integration/harness.h"

namespace ward::test {
namespace {

std::string npm_clients() {
  const char* env = std::getenv("WARD_TEST_NPM_CLIENTS");
  return env && *env ? env : WARD_NPM_CLIENTS;
}

std::string conformance_js() {
  return npm_clients() + "/node_modules/@modelcontextprotocol/conformance/dist/index.js";
}

// Why the Node tests cannot run here, "" when they can.
std::string node_tools_missing() {
  if (auto why = node22_missing(); !why.empty()) return why;
  if (!exists(conformance_js()) ||
      !exists(npm_clients() + "/node_modules/@modelcontextprotocol/sdk/package.json"))
    return "the MCP conformance suite and SDK are not installed in " + npm_clients() +
           " (tools/test.sh installs them)";
  return "";
}

// `ward gateway --listen 127.0.0.1:PORT --no-auth` on a state directory of its own.
struct Gateway {
  explicit Gateway(const std::vector<std::string>& extra) : dir(Mode::kRoot), port(free_port()) {
    std::vector<std::string> args = {"gateway",
                                     "--state-dir",
                                     dir.file("state"),
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port),
                                     "--no-auth",
                                     "--stop-sandboxes-on-exit"};
    args.insert(args.end(), extra.begin(), extra.end());
    RunOptions options;
    process = std::make_unique<Background>(ward_background(args, options, dir.path()), dir.path());
    ready = wait_until([&] { return exists(dir.file("state/gateway.sock")); },
                       std::chrono::seconds(10));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/mcp"; }
  std::string suite(const std::string& args) const {
    return "cd " + shell_quote(dir.path()) + " && timeout 600 " + shell_quote(node22()) + " " +
           shell_quote(conformance_js()) + " server --url " + url() + " " + args;
  }

  TempDir dir;
  int port;
  std::unique_ptr<Background> process;
  bool ready = false;
};

TEST(McpConformance, TestModePassesEveryCheck) {
  if (auto why = node_tools_missing(); !why.empty()) GTEST_SKIP() << why;
  Gateway gateway({"--mcp-fixtures"});
  ASSERT_TRUE(gateway.ready);
  auto [code, out] = host_shell(gateway.suite(""));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("Total: 40 passed, 0 failed"), std::string::npos) << out;
}

TEST(McpConformance, NormalModeFailsOnlyTheFixtureScenarios) {
  if (auto why = node_tools_missing(); !why.empty()) GTEST_SKIP() << why;
  Gateway gateway({});
  ASSERT_TRUE(gateway.ready);
  // The suite exits 1 on a failure the baseline does not list, and on a listed one that passed.
  auto [code, out] = host_shell(
      gateway.suite("--expected-failures " +
                    shell_quote(std::string(WARD_CLIENTS_DIR) + "/mcp-conformance-baseline.yml")));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("Baseline check passed"), std::string::npos) << out;
  // What does not need a fixture passes: the transport, the session rules, DNS rebinding.
  for (const char* passing :
       {"server-initialize: 1 passed", "ping: 1 passed", "server-sse-multiple-streams: 2 passed",
        "dns-rebinding-protection: 2 passed", "tools-list: 1 passed"})
    EXPECT_NE(out.find(passing), std::string::npos) << passing << "\n" << out;
}

TEST(McpStdio, SdkClientCallsEveryTool) {
  if (auto why = node_tools_missing(); !why.empty()) GTEST_SKIP() << why;
  if (auto why = unavailable(Mode::kRoot); !why.empty()) GTEST_SKIP() << why;
  TempDir dir(Mode::kRoot);
  // `ward mcp --embedded` runs its own gateway in a temporary state directory (under
  // XDG_RUNTIME_DIR) and removes it at the end.
  auto [code, out] = host_shell(
      "cd " + shell_quote(dir.path()) + " && XDG_RUNTIME_DIR=" + shell_quote(dir.path()) +
      " NODE_PATH=" + shell_quote(npm_clients() + "/node_modules") + " timeout 240 " +
      shell_quote(node22()) + " " + shell_quote(std::string(WARD_CLIENTS_DIR) + "/mcp_stdio.cjs") +
      " " + shell_quote(ward_binary()));
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out.find("FAIL"), std::string::npos) << out;
  EXPECT_NE(out.find("ok audit resource shows the denied attempt"), std::string::npos) << out;
  // Nothing of the embedded gateway is left.
  auto [ls_code, left] = host_shell("ls -d " + shell_quote(dir.path()) + "/ward-mcp.*");
  EXPECT_NE(ls_code, 0) << "the embedded gateway's state directory was left behind: " << left;
}

}  // namespace
}  // namespace ward::test
