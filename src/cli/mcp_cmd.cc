// `ward mcp`: MCP over stdio for a client that starts ward itself (Claude Desktop, Claude Code),
// talking to the running gateway, or with --embedded to a gateway of its own. Also what the
// gateway's /mcp shares with it (mcp_setup.h).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/egress_setup.h"
#include "cli/gateway_client.h"
#include "cli/mcp_setup.h"
#include "cli/options.h"
#include "mcp/stdio.h"
#include "policy/policy.h"

extern char** environ;

namespace ward::cli {
namespace {

// rm -rf of a temporary state directory, after its gateway stopped.
void remove_dir(const std::string& dir) {
  pid_t pid;
  const char* argv[] = {"rm", "-rf", "--", dir.c_str(), nullptr};
  if (posix_spawnp(&pid, "rm", nullptr, nullptr, const_cast<char**>(argv), environ) == 0)
    ::waitpid(pid, nullptr, 0);
}

// `ward gateway` as a child, its output on our stderr (stdout is the protocol's).
struct EmbeddedGateway {
  pid_t pid = -1;
  std::string state_dir;
  bool temporary = false;

  ~EmbeddedGateway() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    if (temporary) remove_dir(state_dir);
  }
};

Result<std::unique_ptr<EmbeddedGateway>> start_embedded(const std::string& state,
                                                        const std::string& policy_file) {
  auto g = std::make_unique<EmbeddedGateway>();
  if (state.empty()) {
    const char* base = std::getenv("XDG_RUNTIME_DIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/ward-mcp.XXXXXX";
    if (!::mkdtemp(tmpl.data())) return fail_errno("mkdtemp " + tmpl);
    g->state_dir = tmpl;
    g->temporary = true;
  } else {
    g->state_dir = state;
  }
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return fail_errno("readlink /proc/self/exe");
  exe[n] = 0;
  std::vector<std::string> args = {exe, "gateway", "--state-dir", g->state_dir,
                                   "--stop-sandboxes-on-exit"};
  if (!policy_file.empty()) args.insert(args.end(), {"--mcp-policy", policy_file});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // fork, not posix_spawn: the gateway must get SIGTERM (and stop its sandboxes) when this
  // process dies, however it dies.
  const pid_t parent = ::getpid();
  g->pid = ::fork();
  if (g->pid < 0) return fail_errno("fork");
  if (g->pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);
    const int null = ::open("/dev/null", O_RDONLY);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(2, 1) < 0) ::_exit(1);
    ::execve(exe, argv.data(), environ);
    ::_exit(127);
  }
  // Ready once it answers.
  client::GatewayClient probe(g->state_dir + "/gateway.sock");
  for (int i = 0; i < 200; ++i) {
    if (auto r = probe.request({.target = "/v1/status"}); r && r->ok()) return g;
    int status;
    if (::waitpid(g->pid, &status, WNOHANG) == g->pid) {
      g->pid = -1;
      return fail("the embedded gateway exited at start (its messages are above)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return fail("the embedded gateway did not answer within 5 s");
}

}  // namespace

void add_mcp_options(CLI::App* command, McpSetup& setup) {
  command
      ->add_option("--mcp-policy", setup.policy_file,
                   "The policy of the sandboxes MCP sessions get (default: the gateway's "
                   "default policy)")
      ->check(readable_file());
  command
      ->add_option("--mcp-idle-ttl", setup.idle_ttl_s,
                   "Stop a chat's sandbox after this many seconds without a command")
      ->capture_default_str();
  command
      ->add_option("--mcp-remove-after", setup.remove_after_s,
                   "Delete a chat's sandbox once it has been stopped this many seconds")
      ->capture_default_str();
  command
      ->add_option("--mcp-command-timeout", setup.command_timeout_s,
                   "bash_tool's timeout in seconds")
      ->capture_default_str();
  command
      ->add_option("--mcp-progress-every", setup.progress_every_s,
                   "Seconds between progress notifications while a tool runs")
      ->capture_default_str();
  command->add_flag("--mcp-fixtures", setup.fixtures,
                    "Test mode: also serve the MCP conformance suite's test_* fixtures");
}

std::shared_ptr<McpServer> make_mcp_server(const McpSetup& setup, client::Endpoint gateway) {
  mcp::SandboxesOptions sandboxes;
  if (!setup.policy_file.empty()) {
    policy::LoadResult loaded = policy::load_file(setup.policy_file);
    for (const auto& d : loaded.diagnostics) std::fprintf(stderr, "%s\n", d.format().c_str());
    if (!loaded.ok()) return nullptr;
    std::ifstream in(setup.policy_file);
    std::stringstream text;
    text << in.rdbuf();
    sandboxes.policy = text.str();
  }
  sandboxes.idle_ttl = std::chrono::seconds(setup.idle_ttl_s);
  sandboxes.remove_after = std::chrono::seconds(setup.remove_after_s);
  auto server = std::make_shared<McpServer>();
  server->sandboxes = std::make_unique<mcp::Sandboxes>(std::move(gateway), sandboxes);
  mcp::ServerOptions options;
  options.fixtures = setup.fixtures;
  options.limits.command_timeout = std::chrono::seconds(setup.command_timeout_s);
  options.limits.progress_every = std::chrono::seconds(std::max(1L, setup.progress_every_s));
  server->server = std::make_unique<mcp::Server>(options, server->sandboxes.get());
  return server;
}

Result<std::string> bearer_token(const std::string& token_file, const std::string& state_dir) {
  auto trimmed = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  };
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::stringstream text;
    text << in.rdbuf();
    const std::string token = trimmed(text.str());
    if (!in && token.empty()) return fail_errno("--token-file " + token_file);
    if (token.size() < 16)
      return fail("--token-file " + token_file + ": a token has 16 characters or more");
    return token;
  }
  if (const char* env = std::getenv("WARD_GATEWAY_TOKEN"); env && *env) {
    if (std::strlen(env) < 16) return fail("WARD_GATEWAY_TOKEN: a token has 16 characters or more");
    return std::string(env);
  }
  const std::string path = state_dir + "/token";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd) {
    auto text = files::read_all(fd.get(), path);
    if (!text) return tl::unexpected(text.error());
    if (std::string t = trimmed(*text); t.size() >= 16) return t;
  }
  auto token = random_hex(32);
  if (!token) return tl::unexpected(token.error());
  auto lock = files::lock(state_dir);
  if (!lock) return tl::unexpected(lock.error());
  if (auto r = files::replace(state_dir, "token", *token + "\n", 0600); !r)
    return tl::unexpected(r.error());
  log::info("the bearer token for --listen is in {} (0600)", path);
  return *token;
}

Action add_mcp(CLI::App& app) {
  struct Options {
    GatewayOptions gateway;
    McpSetup setup;
    bool embedded = false;
    std::string state;
    std::string chat;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "mcp", "Serve MCP over stdio: a policed sandbox for the conversation (see docs/mcp.md)");
  cmd->add_option("--gateway", o->gateway.gateway,
                  "The gateway (default: $WARD_GATEWAY, else gateway.sock in ward's state "
                  "directory)");
  cmd->add_flag("--embedded", o->embedded,
                "Run a gateway of its own for this session instead of using a running one");
  cmd->add_option("--state-dir", o->state,
                  "With --embedded: the gateway's state directory (default: a temporary one, "
                  "removed at the end)");
  cmd->add_option("--chat", o->chat,
                  "A chat id: its sandbox (and workspace) outlives this process and is used "
                  "again by the next `ward mcp --chat` with the same id (default: a sandbox of "
                  "this session alone, deleted at the end)");
  cmd->add_option("--policy", o->setup.policy_file,
                  "The policy of the session's sandbox (default: the gateway's default policy)")
      ->check(readable_file());
  cmd->add_option("--command-timeout", o->setup.command_timeout_s, "bash_tool's timeout, seconds")
      ->capture_default_str();
  cmd->add_flag("--fixtures", o->setup.fixtures,
                "Test mode: also serve the MCP conformance suite's test_* fixtures");
  return [o]() {
    if (!o->chat.empty() && !mcp::Sandboxes::valid_chat_id(o->chat)) {
      log::error("--chat: 1-128 characters of A-Z a-z 0-9 . _ - (not starting with . or -)");
      return 2;
    }
    std::unique_ptr<EmbeddedGateway> embedded;
    client::Endpoint endpoint;
    if (o->embedded) {
      auto started = start_embedded(o->state, o->setup.policy_file);
      if (!started) {
        log::error("{}", started.error().describe());
        return 1;
      }
      embedded = std::move(*started);
      endpoint.address = embedded->state_dir + "/gateway.sock";
    } else {
      endpoint = gateway_endpoint(o->gateway.gateway);
      client::GatewayClient probe(endpoint);
      auto status = probe.request({.target = "/v1/status"});
      if (!status) {
        std::fprintf(stderr,
                     "ward: no gateway is running at %s: start one with 'ward gateway', or run "
                     "'ward mcp --embedded'\n",
                     endpoint.address.c_str());
        return 1;
      }
    }
    auto server = make_mcp_server(o->setup, endpoint);
    if (!server) return 1;
    const bool own = o->chat.empty();
    std::string chat = o->chat;
    if (own) {
      auto id = random_hex(8);
      if (!id) {
        log::error("{}", id.error().describe());
        return 1;
      }
      chat = "stdio-" + *id;
    }
    ::signal(SIGPIPE, SIG_IGN);
    const int rc = mcp::serve_stdio(*server->server, chat);
    if (own) (void)server->sandboxes->remove(chat);
    return rc;
  };
}

}  // namespace ward::cli
