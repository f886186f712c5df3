// `ward gateway`: sandboxes as long-lived objects behind an HTTP/JSON API (docs/gateway-api.md).
#include "gateway/gateway.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <poll.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/url/parse.hpp>

#include <atomic>
#include <ctime>
#include <deque>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "base/files.h"
#include "base/log.h"
#include "base/strings.h"
#include "creds/profile.h"
#include "creds/vault.h"
#include "gateway/http_util.h"
#include "gateway/runtime.h"
#include "gateway/secrets.h"
#include "gateway/spec.h"
#include "gateway/store.h"
#include "policy/policy.h"
#include "sandbox/plan.h"
#include "tls/context.h"

extern char** environ;

namespace ward::gateway {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
using namespace asio::experimental::awaitable_operators;  // (a || b): the first to complete

constexpr std::size_t kMaxBody = 1 << 20;
constexpr std::size_t kMaxUpload = 64 << 20;
constexpr std::size_t kMaxMcpBody = 32 << 20;  // mcp/http.h
constexpr auto kStartTimeout = std::chrono::seconds(30);
constexpr auto kExecStartTimeout = std::chrono::seconds(10);
constexpr auto kDrainAfterExit = std::chrono::milliseconds(200);
// --listen: a request's body stalls for at most this long; a connection refused before its body
// is read drops what still comes for at most kLinger (and kLingerBytes).
constexpr auto kBodyTimeout = std::chrono::seconds(30);
constexpr auto kLinger = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 1 << 20;
// --listen: connections that have not yet passed the token check, at most (more are refused at
// once); an accept that fails (out of descriptors) is tried again after kAcceptPause.
constexpr std::size_t kMaxUnauthenticated = 256;
// ... and from any one address at most this many, so that one client cannot take every place
// and turn away everyone with a token.
constexpr std::size_t kMaxUnauthenticatedPerAddress = 32;
constexpr auto kAcceptPause = std::chrono::milliseconds(100);
constexpr std::uint16_t kEgressPort = 3128;

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

std::string random_id() {
  auto hex = random_hex(8);
  if (!hex) std::abort();  // no randomness: nothing is safe
  return "sb-" + *hex;
}

bool valid_name(const std::string& name) {
  static const std::regex kName("[a-z0-9][a-z0-9-]{0,62}");
  return std::regex_match(name, kName);
}

Reply too_large() {
  return Reply::error(413, "body_too_large", "the body is larger than the endpoint accepts");
}

Reply bad_request(const std::string& why) {
  return Reply::error(400, "bad_request", "malformed HTTP request: " + why);
}

// Closes a --listen connection at once (past kMaxUnauthenticated), with a 503 where plain HTTP
// is served: written without waiting, as the new socket's empty buffer takes it whole.
void turn_away(asio::ip::tcp::socket& socket, bool plain_http) {
  if (plain_http) {
    const std::string body =
        R"({"error":"unavailable","message":"too many connections without a token; try again"})";
    const std::string answer =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: "
        "1\r\nConnection: close\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    static_cast<void>(
        ::send(socket.native_handle(), answer.data(), answer.size(), MSG_DONTWAIT | MSG_NOSIGNAL));
  }
  boost::system::error_code ignored;
  socket.close(ignored);
}

Reply too_slow() {
  return Reply::error(408, "request_timeout", "the request did not arrive in time");
}

// Set when the gateway stops: a removal on the janitor's thread gives up at its next entry (what
// is left in the trash is removed at the next start).
std::atomic<bool> g_removals_stop{false};

// rm -rf, never led outside the tree (files::remove_tree).
void remove_tree(const std::string& path) {
  files::remove_tree(path, &g_removals_stop);
}

// Commands in a running sandbox.
struct Started {
  std::string sandbox;
  std::int64_t id = 0;
  pid_t pid = 0;
  json failure;  // set when it did not start: {"op":"failed","code","message"}
  std::shared_ptr<ExecState> state;
  std::shared_ptr<asio::posix::stream_descriptor> out, err;
  std::shared_ptr<asio::posix::stream_descriptor> terminal;  // a terminal's master side (connect)
};
// A terminal for a command (connect): its size.
struct Terminal {
  unsigned short cols = 80, rows = 24;
};
struct Finished {
  int code = 0;
  int signal = 0;
  bool timed_out = false;
  bool client_gone = false;
  bool lost = false;  // the sandbox ended first
};
struct Collected {
  std::string out, err;
  std::string error;  // "" on exit code 0
  bool too_big = false;
};

// A --listen connection that has not yet passed the token check, counted while it lasts.
// Counted in all and by the client's address.
class Unauthenticated {
 public:
  Unauthenticated(std::size_t& count, std::map<asio::ip::address, std::size_t>& by_address,
                  asio::ip::address address)
      : count_(count), by_address_(by_address), address_(std::move(address)) {
    ++count_;
    ++by_address_[address_];
  }
  ~Unauthenticated() {
    --count_;
    if (--by_address_[address_] == 0) by_address_.erase(address_);
  }
  Unauthenticated(const Unauthenticated&) = delete;
  Unauthenticated& operator=(const Unauthenticated&) = delete;

 private:
  std::size_t& count_;
  std::map<asio::ip::address, std::size_t>& by_address_;
  asio::ip::address address_;
};

class Gateway {
 public:
  Gateway(const GatewayOptions& options, Store store, SecretStore secrets)
      : options_(options), store_(std::move(store)), secrets_(std::move(secrets)) {
    g_removals_stop = false;  // one gateway a process at a time; a later one removes again
  }
  ~Gateway() {
    g_removals_stop = true;
    janitor_.join();
  }

  int run();

 private:
  // ---- sandboxes ----
  std::string dir_of(const std::string& id) const {
    return options_.state_dir + "/sandboxes/" + id;
  }
  // Takes a deleted sandbox's tree out of the way at once — renamed into the state directory's
  // trash, so that its name can be used again — and removes it on the janitor's thread: a
  // workspace of a hundred thousand files must not hold up every other API call.
  void discard(const std::string& path);
  // What a gateway that stopped mid-removal left in the trash.
  void empty_trash();
  json sandbox_json(const SandboxRecord& r) const;
  Result<std::shared_ptr<const policy::Policy>> active_policy(const SandboxRecord& r);
  asio::awaitable<Reply> start_sandbox(SandboxRecord& record);
  asio::awaitable<Reply> stop_sandbox(SandboxRecord& record, std::string reason = "stopped");
  asio::awaitable<void> idle_sweep();
  bool attach(const std::string& id, UniqueFd control, pid_t supervisor_pid);
  Result<std::shared_ptr<creds::Vault>> make_vault(const SandboxRecord& record,
                                                   const std::vector<std::string>& reuse);
  void on_message(Runtime& rt, const json& m, std::vector<UniqueFd>& fds);
  void on_closed(Runtime& rt);
  void reattach_all();
  void settle(const std::string& id);

  // ---- the API ----
  asio::awaitable<void> accept_loop(local::acceptor& acceptor);
  asio::awaitable<void> accept_tcp(asio::ip::tcp::acceptor& acceptor, bool loopback);
  std::optional<Socket> adopt(int family, int protocol, int fd);
  asio::awaitable<void> pause_accepting(boost::system::error_code ec);
  // An HTTPS connection (--tls-cert): its plaintext is served by serve() through a socket pair.
  asio::awaitable<void> serve_tls(asio::ip::tcp::socket socket, bool loopback,
                                  std::shared_ptr<Unauthenticated> unauthenticated);
  // The --listen checks: the bearer token, and Host/Origin on a loopback address.
  std::optional<Reply> refuse_tcp(const Request& req, bool loopback) const;
  // `unauthenticated` (TCP) is let go once a request passes the token check.
  asio::awaitable<void> serve(Socket socket, bool tcp, bool loopback,
                              std::shared_ptr<Unauthenticated> unauthenticated = nullptr);
  // Gives the connection to the MCP endpoint (GatewayOptions::mcp).
  void hand_off(Socket& socket, Request& req, beast::flat_buffer& buffer, bool tcp, bool loopback,
                uid_t uid);
  asio::awaitable<Reply> route(Request& req, Socket& socket, bool& streamed);
  asio::awaitable<Reply> create(const json& body);
  asio::awaitable<Reply> exec(SandboxRecord& record, const json& body, Socket& socket,
                              bool& streamed);

  // `data` is only valid until the returned awaitable completes.
  using OutputSink = std::function<asio::awaitable<bool>(bool is_stderr, const std::string& data)>;
  // With `terminal`, the command's stdio is a new pseudo-terminal's slave side and
  // Started::terminal its master side (stdin_data unused; stderr is the terminal's output too).
  asio::awaitable<Result<Started>> start_command(Runtime& rt, json argv,
                                                 std::vector<std::string> env, std::string workdir,
                                                 std::string stdin_data,
                                                 std::optional<Terminal> terminal = std::nullopt);
  asio::awaitable<Reply> connect(SandboxRecord& record, const Request& req, const Query& query,
                                 Socket& socket, bool& streamed);
  asio::awaitable<Finished> pump(const Started& s, OutputSink sink,
                                 std::optional<std::chrono::milliseconds> timeout);
  asio::awaitable<Collected> collect(Runtime& rt, json argv, std::string stdin_data);
  void forget(const Started& s);
  void kill_command(const std::string& sandbox, std::int64_t id);
  asio::awaitable<Reply> logs(const SandboxRecord& record, const Query& query, Socket& socket,
                              bool& streamed);
  Reply set_policy(SandboxRecord& record, const json& body);
  Reply status();
  Reply metrics();
  asio::awaitable<Reply> files_get(const SandboxRecord& record, const Query& query);
  asio::awaitable<Reply> files_put(const SandboxRecord& record, const Query& query,
                                   const Request& req);
  Reply providers_post(const json& body);

  Result<std::optional<SandboxRecord>> find(const std::string& key) {
    return store_.find_sandbox(key);
  }

  const GatewayOptions& options_;
  asio::io_context io_{1};
  Store store_;
  SecretStore secrets_;
  std::map<std::string, std::unique_ptr<Runtime>> runtimes_;
  std::optional<asio::ssl::context> tls_;  // --tls-cert/--tls-key: --listen serves HTTPS
  std::string exe_;
  std::int64_t started_at_ = unix_now();
  bool stopping_ = false;
  std::size_t unauthenticated_ = 0;  // --listen connections before their token check
  std::map<asio::ip::address, std::size_t> unauthenticated_by_address_;
  bool accept_failing_ = false;  // (logged once)
  // /metrics counters.
  std::map<std::string, std::uint64_t> requests_;
  std::uint64_t execs_ = 0;
  Histogram exec_seconds_;
  asio::thread_pool janitor_{1};  // removes discarded trees
};

void Gateway::discard(const std::string& path) {
  std::string slot = options_.state_dir + "/trash/XXXXXX";
  if (!::mkdtemp(slot.data())) {
    log::warn("mkdtemp {}: {}; removing {} in place", slot, std::strerror(errno), path);
    remove_tree(path);
    return;
  }
  if (::rename(path.c_str(), (slot + "/tree").c_str()) != 0 && errno != ENOENT) {
    log::warn("moving {} to the trash: {}; removing it in place", path, std::strerror(errno));
    remove_tree(path);
  }
  asio::post(janitor_, [slot] { remove_tree(slot); });
}

void Gateway::empty_trash() {
  const std::string trash = options_.state_dir + "/trash";
  DIR* d = ::opendir(trash.c_str());
  if (!d) return;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    asio::post(janitor_, [path = trash + "/" + name] { remove_tree(path); });
  }
  ::closedir(d);
}

// ---- sandbox objects ----

json Gateway::sandbox_json(const SandboxRecord& r) const {
  json spec = json::parse(r.spec, nullptr, false);
  json j = {{"id", r.id},
            {"name", r.name},
            {"status", r.status},
            {"reason", r.reason},
            {"created_at", rfc3339(r.created_at)},
            {"updated_at", rfc3339(r.updated_at)},
            {"workdir", r.workdir},
            {"managed_workspace", r.managed_workspace},
            {"command", spec.is_object() ? spec.value("command", json::array()) : json::array()},
            {"labels", r.labels},
            {"providers", r.providers},
            {"max_lifetime_s", spec.is_object() ? spec.value("max_lifetime_s", 0) : 0},
            {"idle_ttl_s", spec.is_object() ? spec.value("idle_ttl_s", 0) : 0}};
  auto revision = const_cast<Store&>(store_).active_revision(r.id);
  j["policy_revision"] = revision && *revision ? (*revision)->revision : 0;
  if (r.exit_code)
    j["exit"] = {{"code", *r.exit_code}, {"signal", r.exit_signal}, {"at", rfc3339(r.exit_at)}};
  auto it = runtimes_.find(r.id);
  if (it != runtimes_.end() && it->second->init_pid()) j["init_pid"] = it->second->init_pid();
  return j;
}

Result<std::shared_ptr<const policy::Policy>> Gateway::active_policy(const SandboxRecord& r) {
  auto revision = store_.active_revision(r.id);
  if (!revision) return tl::unexpected(revision.error());
  if (!*revision) return fail("the sandbox has no policy revision");
  policy::LoadResult loaded = policy::load_string((*revision)->content, "policy");
  if (!loaded.ok()) return fail(loaded.first_error());
  return std::make_shared<const policy::Policy>(std::move(*loaded.policy));
}

// Spawns the supervisor (`ward __sandbox DIR`), in a session of its own so that nothing aimed at
// the gateway's terminal or process group reaches it, and waits for its hello.
asio::awaitable<Reply> Gateway::start_sandbox(SandboxRecord& record) {
  const std::string dir = dir_of(record.id);
  json spec_json = json::parse(record.spec, nullptr, false);
  auto policy = active_policy(record);
  if (!policy) co_return Reply::error(500, "internal", policy.error().describe());
  auto revision = store_.active_revision(record.id);
  const std::string policy_file = dir + "/policy.yaml";
  if (auto r = write_file_atomic(policy_file, (*revision)->content, 0600); !r)
    co_return Reply::error(500, "internal", r.error().describe());

  SandboxSpec spec;
  spec.id = record.id;
  spec.name = record.name;
  spec.policy_file = policy_file;
  spec.workdir = record.workdir;
  spec.command = spec_json.value("command", std::vector<std::string>{});
  for (auto& [k, v] : spec_json.value("env", std::map<std::string, std::string>{}))
    spec.env.push_back(k + "=" + v);
  spec.trust_layer = options_.trust_layer;
  spec.hidden = options_.hidden;
  spec.hidden.push_back(options_.state_dir);
  spec.max_lifetime_ms = spec_json.value("max_lifetime_s", std::int64_t{0}) * 1000;
  spec.egress_port = kEgressPort;
  // Providers: placeholders in the sandbox; the values stay with the gateway (its proxy).
  if (!record.providers.empty()) {
    auto vault = make_vault(record, {});
    if (!vault) co_return Reply::error(409, "conflict", vault.error().describe());
    for (const std::string& entry : (*vault)->environment()) {
      const auto eq = entry.find('=');
      spec.secret_env.emplace_back(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  if (auto r = write_spec(dir + "/spec.json", spec); !r)
    co_return Reply::error(500, "internal", r.error().describe());
  ::unlink((dir + "/state.json").c_str());

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0)
    co_return Reply::error(500, "internal", std::string("socketpair: ") + std::strerror(errno));
  UniqueFd ours(pair[0]), theirs(pair[1]);
  if (theirs.get() == 3) theirs.reset(::fcntl(3, F_DUPFD_CLOEXEC, 4));  // dup2(3, 3) keeps CLOEXEC
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  const std::string log_file = dir + "/supervisor.log";
  posix_spawn_file_actions_addopen(&actions, 1, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3);
  // Nothing else of the gateway's (Asio accepts API clients without CLOEXEC): a client's
  // connection held open by a supervisor would never see its end.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::string arg0 = "ward", arg1 = "__sandbox", arg2 = dir;
  char* argv[] = {arg0.data(), arg1.data(), arg2.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe_.c_str(), &actions, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  theirs.reset();
  if (rc != 0)
    co_return Reply::error(500, "internal",
                           "cannot start the supervisor: " + std::string(std::strerror(rc)));

  record.status = "creating";
  record.reason.clear();
  record.exit_code.reset();
  record.exit_signal = 0;
  record.exit_at = 0;
  record.updated_at = unix_now();
  static_cast<void>(store_.update_sandbox(record));
  if (!attach(record.id, std::move(ours), pid)) {
    ::kill(pid, SIGKILL);  // its sandbox ends with it
    record.status = "error";
    record.reason = "the gateway could not watch the sandbox's control socket";
    record.updated_at = unix_now();
    static_cast<void>(store_.update_sandbox(record));
    co_return Reply::error(500, "start_failed", record.reason);
  }
  Runtime& rt = *runtimes_.at(record.id);
  rt.policy = *policy;
  rt.idle_ttl = std::chrono::seconds(spec_json.value("idle_ttl_s", std::int64_t{0}));
  auto hello = co_await rt.hello().wait(kStartTimeout);
  auto fresh = store_.find_sandbox(record.id);
  if (fresh && *fresh) record = **fresh;
  // (rt may be gone by now: the sandbox can have ended meanwhile.)
  // Its proxy could not be made. (An `error` with an exit is a main command that ended at once,
  // after its hello: a sandbox that did start, answered as such.)
  const bool stopped_at_hello = record.status == "error" && !record.exit_code;
  if (!hello || (*hello)["op"] != "hello" || stopped_at_hello) {
    std::string why = stopped_at_hello ? record.reason
                      : hello          ? hello->value("message", "the sandbox could not start")
                                       : "the sandbox did not start in time";
    if (!hello) ::kill(pid, SIGKILL);
    record.status = "error";
    record.reason = why;
    record.updated_at = unix_now();
    static_cast<void>(store_.update_sandbox(record));
    co_return Reply::error(500, "start_failed", why);
  }
  co_return Reply::json(200, sandbox_json(record));
}

Result<std::shared_ptr<creds::Vault>> Gateway::make_vault(const SandboxRecord& record,
                                                          const std::vector<std::string>& reuse) {
  std::vector<const creds::Profile*> profiles;
  std::deque<creds::Profile> user_defined;  // Vault::create copies what it needs from them
  std::vector<std::string> values;
  for (const std::string& name : record.providers) {
    auto found = store_.find_provider(name);
    if (!found || !*found) return fail("provider " + name + " does not exist");
    const creds::Profile* profile = creds::builtin_profile((*found)->profile);
    if (!(*found)->profile_yaml.empty()) {
      auto loaded = creds::load_profile_string((*found)->profile_yaml, "profile of " + name);
      if (!loaded) return fail("provider " + name + ": " + loaded.error().message);
      profile = &user_defined.emplace_back(std::move(*loaded));
    }
    if (!profile) return fail("provider " + name + ": unknown profile " + (*found)->profile);
    profiles.push_back(profile);
    if (auto v = secrets_.get(name))
      for (auto& [var, value] : *v) values.push_back(var + "=" + value);
  }
  auto made = creds::Vault::create(profiles, values, reuse);
  if (!made) return tl::unexpected(made.error());
  return std::make_shared<creds::Vault>(std::move(*made));
}

// False when the control socket cannot join the event loop (epoll out of memory, or the user's
// fs.epoll.max_user_watches reached): Asio throws then.
bool Gateway::attach(const std::string& id, UniqueFd control, pid_t supervisor_pid) {
  std::unique_ptr<Runtime> rt;
  try {
    rt = std::make_unique<Runtime>(io_, id, std::move(control), supervisor_pid);
  } catch (const boost::system::system_error& e) {
    log::error("sandbox {}: its control socket: {}", id, e.code().message());
    return false;
  }
  Runtime& ref = *rt;
  runtimes_[id] = std::move(rt);
  ref.start(
      [this](Runtime& r, const json& m, std::vector<UniqueFd>& fds) { on_message(r, m, fds); },
      [this](Runtime& r) { on_closed(r); });
  return true;
}

void Gateway::on_message(Runtime& rt, const json& m, std::vector<UniqueFd>& fds) {
  const std::string op = m["op"].get<std::string>();
  auto found = store_.find_sandbox(rt.id());
  if (!found || !*found) return;
  SandboxRecord record = **found;
  if (op == "hello") {
    record.status = "running";
    record.reason.clear();
    rt.placeholders.clear();
    if (m.contains("placeholders") && m["placeholders"].is_array())
      for (const json& path : m["placeholders"])
        if (path.is_string()) rt.placeholders.push_back(path.get<std::string>());
    if (m.contains("main") && m["main"].is_object()) {
      record.exit_code = m["main"].value("code", 0);
      record.exit_signal = m["main"].value("signal", 0);
      record.exit_at = m["main"].value("at", std::int64_t{0});
    }
    if (fds.size() == 2 && !rt.proxy) {
      std::string unloadable;  // the stored policy no longer loads (a ward upgrade, say)
      if (!rt.policy) {
        auto p = active_policy(record);
        if (p)
          rt.policy = *p;
        else
          unloadable = p.error().describe();
      }
      proxy::Options po;
      po.limits = options_.egress_limits;
      po.audit_path = dir_of(record.id) + "/audit.jsonl";
      po.audit_max_bytes = options_.audit_max_bytes;
      po.audit_stderr = options_.verbose;
      if (!options_.trust_layer.empty()) {
        po.ca_state_dir = options_.state_dir;
        po.upstream_ca = options_.upstream_ca;
      }
      if (!options_.hosts_file.empty()) {
        auto hosts = proxy::HostsFile::load(options_.hosts_file);
        if (hosts) po.hosts = std::move(*hosts);
      }
      if (!record.providers.empty()) {
        // The placeholders the sandbox holds were made when it started (spec.json keeps them):
        // the vault is made again around them, with the values from the secret store.
        std::vector<std::string> reuse;
        if (auto spec = read_spec(dir_of(record.id) + "/spec.json"))
          for (auto& [name, placeholder] : spec->secret_env)
            reuse.push_back(name + "=" + placeholder);
        auto vault = make_vault(record, reuse);
        if (vault)
          po.vault = std::move(*vault);
        else
          log::error("sandbox {}: credentials: {}", record.name, vault.error().describe());
      }
      Result<void> served = fail("its policy cannot be loaded: " + unloadable);
      if (rt.policy) {
        auto made = proxy::Proxy::create(std::move(po), rt.policy);
        served =
            made ? (*made)->serve(record.id, std::move(fds[0]), std::move(fds[1]), rt.init_pid())
                 : Result<void>(tl::unexpected(made.error()));
        if (served) rt.proxy = std::move(*made);
      }
      if (!served) {
        // The supervisor keeps the listener (for a gateway that restarts), so without a proxy
        // the sandbox's connections out would wait unanswered: it is stopped instead, in error.
        rt.failure = "its egress proxy could not start: " + served.error().describe();
        log::error("sandbox {}: {}", record.name, rt.failure);
        if (!rt.send(json{{"op", "stop"}}) && rt.supervisor_pid() > 0)
          ::kill(rt.supervisor_pid(), SIGKILL);
        record.status = "error";
        record.reason = rt.failure;
      }
    }
  } else if (op == "main_exit") {
    record.exit_code = m.value("code", 0);
    record.exit_signal = m.value("signal", 0);
    record.exit_at = unix_now();
  } else if (op == "ended") {
    record.status = rt.failure.empty() ? m.value("status", "stopped") : "error";
    record.reason = rt.failure.empty() ? m.value("reason", "") : rt.failure;
  } else {
    return;
  }
  record.updated_at = unix_now();
  static_cast<void>(store_.update_sandbox(record));
}

// The supervisor's connection ended: the sandbox is gone (or the supervisor died with it).
void Gateway::on_closed(Runtime& rt) {
  const std::string id = rt.id();
  if (stopping_) return;
  settle(id);
  // Destroyed later: we are inside its read loop.
  auto it = runtimes_.find(id);
  if (it == runtimes_.end()) return;
  std::shared_ptr<Runtime> doomed(std::move(it->second));
  runtimes_.erase(it);
  asio::post(io_, [doomed] {});
}

// Records what became of a sandbox whose supervisor is gone: its state file says, else error.
void Gateway::settle(const std::string& id) {
  auto found = store_.find_sandbox(id);
  if (!found || !*found) return;
  SandboxRecord record = **found;
  if (record.status != "running" && record.status != "creating") return;
  auto state = read_state(dir_of(id) + "/state.json");
  if (state && state->status != "running") {
    record.status = state->status;
    record.reason = state->reason;
    if (state->main) {
      record.exit_code = state->main->code;
      record.exit_signal = state->main->signal;
      record.exit_at = state->main->at;
    }
  } else {
    record.status = "error";
    record.reason = "the sandbox's supervisor died";
  }
  record.updated_at = unix_now();
  static_cast<void>(store_.update_sandbox(record));
}

asio::awaitable<Reply> Gateway::stop_sandbox(SandboxRecord& record, std::string reason) {
  auto it = runtimes_.find(record.id);
  if (it == runtimes_.end()) {
    if (record.status == "running" || record.status == "creating") {
      record.status = "stopped";
      record.reason = "stopped";
      record.updated_at = unix_now();
      static_cast<void>(store_.update_sandbox(record));
    }
    co_return Reply::json(200, sandbox_json(record));
  }
  Runtime& rt = *it->second;
  static_cast<void>(rt.send(json{{"op", "stop"}, {"reason", reason}}));
  auto ended = co_await rt.ended().wait(std::chrono::seconds(60));
  if (!ended) {
    // (0 would be the gateway's own process group: unknown when a reattached sandbox's state
    // file was missing and its hello has not come.)
    if (rt.supervisor_pid() > 0) ::kill(rt.supervisor_pid(), SIGKILL);
    co_await rt.ended().wait(std::chrono::seconds(5));
  }
  auto fresh = store_.find_sandbox(record.id);
  if (fresh && *fresh) record = **fresh;
  if (record.status == "running" || record.status == "creating" ||
      (record.status == "stopped" && !record.exit_code)) {
    record.status = "stopped";
    record.reason = reason;
    record.updated_at = unix_now();
    static_cast<void>(store_.update_sandbox(record));
  }
  co_return Reply::json(200, sandbox_json(record));
}

// Stops the sandboxes whose idle TTL has passed with no command running.
asio::awaitable<void> Gateway::idle_sweep() {
  asio::steady_timer tick(io_);
  while (!stopping_) {
    tick.expires_after(std::chrono::seconds(1));
    co_await tick.async_wait(kNoThrow);
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::pair<std::string, std::chrono::seconds>> expired;
    for (auto& [id, rt] : runtimes_)
      if (rt->idle_expired(now)) {
        expired.emplace_back(id, rt->idle_ttl);
        rt->idle_ttl = std::chrono::seconds(0);  // once
      }
    for (const auto& [id, ttl] : expired) {
      auto found = store_.find_sandbox(id);
      if (!found || !*found) continue;
      SandboxRecord record = **found;
      log::info("sandbox {}: idle for its TTL, stopping it", record.name);
      co_await stop_sandbox(record,
                            "idle for its --idle-ttl of " + std::to_string(ttl.count()) + " s");
    }
  }
}

// At start-up: every sandbox the store says runs is either re-attached (its supervisor answers
// on its control socket; the egress listener comes back with the hello) or settled.
void Gateway::reattach_all() {
  auto all = store_.list_sandboxes();
  if (!all) return;
  for (const SandboxRecord& r : *all) {
    if (r.status != "running" && r.status != "creating") continue;
    const std::string path = dir_of(r.id) + "/control.sock";
    UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    struct sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    if (!sock || ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      settle(r.id);
      continue;
    }
    auto state = read_state(dir_of(r.id) + "/state.json");
    if (!attach(r.id, std::move(sock), state ? state->supervisor_pid : 0)) continue;
    json spec = json::parse(r.spec, nullptr, false);
    if (spec.is_object())
      runtimes_.at(r.id)->idle_ttl =
          std::chrono::seconds(spec.value("idle_ttl_s", std::int64_t{0}));
    static_cast<void>(runtimes_.at(r.id)->send(json{{"op", "hello"}}));
    log::info("re-attached sandbox {} ({})", r.name, r.id);
  }
}

// ---- the API ----

asio::awaitable<void> Gateway::accept_loop(local::acceptor& acceptor) {
  for (;;) {
    // Straight into the generic socket serve() takes: converting a local one afterwards cost a
    // getsockname and the descriptor's removal from and return to epoll.
    Socket socket(io_);
    std::tuple<boost::system::error_code> accepted =
        co_await acceptor.async_accept(socket, kNoThrow);
    const boost::system::error_code ec = std::get<0>(accepted);
    if (ec == asio::error::operation_aborted || stopping_) co_return;
    if (ec) {
      co_await pause_accepting(ec);
      continue;
    }
    accept_failing_ = false;
    asio::co_spawn(io_, serve(std::move(socket), false, false), asio::detached);
  }
}

// An accept that failed: out of descriptors (EMFILE, ENFILE) or memory, the connection stays
// in the backlog and the listener readable, so accepting again at once would spin the one
// thread every sandbox shares. It waits a moment instead.
asio::awaitable<void> Gateway::pause_accepting(boost::system::error_code ec) {
  if (!accept_failing_)
    log::warn("accepting API connections: {}; trying again every {} ms", ec.message(),
              kAcceptPause.count());
  accept_failing_ = true;
  asio::steady_timer pause(io_, kAcceptPause);
  co_await pause.async_wait(kNoThrow);
}

asio::awaitable<void> Gateway::accept_tcp(asio::ip::tcp::acceptor& acceptor, bool loopback) {
  for (;;) {
    std::tuple<boost::system::error_code, asio::ip::tcp::socket> accepted =
        co_await acceptor.async_accept(kNoThrow);
    const boost::system::error_code ec = std::get<0>(accepted);
    if (ec == asio::error::operation_aborted || stopping_) co_return;
    if (ec) {
      co_await pause_accepting(ec);
      continue;
    }
    accept_failing_ = false;
    asio::ip::tcp::socket socket = std::move(std::get<1>(accepted));
    boost::system::error_code ignored;
    const asio::ip::address from = socket.remote_endpoint(ignored).address();
    const auto mine = unauthenticated_by_address_.find(from);
    if (unauthenticated_ >= kMaxUnauthenticated ||
        (mine != unauthenticated_by_address_.end() &&
         mine->second >= kMaxUnauthenticatedPerAddress)) {
      turn_away(socket, !tls_);  // too many connections have not shown the token yet
      continue;
    }
    auto pending =
        std::make_shared<Unauthenticated>(unauthenticated_, unauthenticated_by_address_, from);
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (tls_) {
      asio::co_spawn(io_, serve_tls(std::move(socket), loopback, std::move(pending)),
                     asio::detached);
      continue;
    }
    const auto local = socket.local_endpoint(ignored);
    const int fd = ignored ? -1 : socket.release(ignored);
    std::optional<Socket> generic = adopt(local.protocol().family(), IPPROTO_TCP, fd);
    if (!generic) continue;
    asio::co_spawn(io_, serve(std::move(*generic), true, loopback, std::move(pending)),
                   asio::detached);
  }
}

// A descriptor made a socket of the event loop; closed, and nullopt, when epoll cannot take it
// (out of memory, or the user's fs.epoll.max_user_watches reached), where Asio's constructor
// would throw and end the coroutine with the descriptor leaked.
std::optional<Socket> Gateway::adopt(int family, int protocol, int fd) {
  if (fd < 0) return std::nullopt;
  Socket socket(io_);
  boost::system::error_code ec;
  socket.assign(asio::generic::stream_protocol(family, protocol), fd, ec);
  if (ec) {
    ::close(fd);
    log::warn("a connection could not join the event loop: {}", ec.message());
    return std::nullopt;
  }
  return socket;
}

using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

// One direction of an HTTPS connection's relay (TLS → plaintext, or back), until either side
// ends. The client's end (close_notify, or the connection closing) closes the plaintext side,
// which serve() sees as the client going away (an exec is then cancelled, as on any connection).
// (std::get, not a structured binding, across the second co_await: GCC 12.)
template <class From, class To>
asio::awaitable<void> relay(From& from, To& to) {
  std::array<char, 16 * 1024> buffer;
  for (;;) {
    std::tuple<boost::system::error_code, std::size_t> got =
        co_await from.async_read_some(asio::buffer(buffer), kNoThrow);
    const std::size_t n = std::get<1>(got);
    if (n > 0) {
      std::tuple<boost::system::error_code, std::size_t> written =
          co_await asio::async_write(to, asio::buffer(buffer.data(), n), kNoThrow);
      if (std::get<0>(written)) co_return;
    }
    if (std::get<0>(got)) co_return;
  }
}

asio::awaitable<void> Gateway::serve_tls(asio::ip::tcp::socket socket, bool loopback,
                                         std::shared_ptr<Unauthenticated> unauthenticated) {
  asio::steady_timer deadline(io_);
  // A client that connects and never completes a handshake holds nothing for long.
  deadline.expires_after(std::chrono::seconds(10));
  std::variant<std::tuple<boost::system::error_code>, std::tuple<boost::system::error_code>>
      readable = co_await (socket.async_wait(asio::ip::tcp::socket::wait_read, kNoThrow) ||
                           deadline.async_wait(kNoThrow));
  unsigned char first = 0;
  if (readable.index() != 0 ||
      ::recv(socket.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
    co_return;
  if (first != 0x16) {  // not a TLS handshake record: plain HTTP gets an answer it can read
    static constexpr std::string_view kBody =
        R"({"error":"https_required","message":"this address serves HTTPS: use https://"})";
    const std::string answer =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n"
        "Content-Length: " +
        std::to_string(kBody.size()) + "\r\n\r\n" + std::string(kBody);
    co_await asio::async_write(socket, asio::buffer(answer), kNoThrow);
    co_return;
  }
  TlsStream tls(std::move(socket), *tls_);
  std::variant<std::tuple<boost::system::error_code>, std::tuple<boost::system::error_code>>
      shaken = co_await (tls.async_handshake(asio::ssl::stream_base::server, kNoThrow) ||
                         deadline.async_wait(kNoThrow));
  if (shaken.index() != 0 || std::get<0>(std::get<0>(shaken))) {
    if (options_.verbose)
      log::info("TLS handshake on --listen failed: {}",
                shaken.index() != 0 ? std::string("timed out")
                                    : std::get<0>(std::get<0>(shaken)).message());
    co_return;
  }
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) co_return;
  std::optional<Socket> plain = adopt(AF_UNIX, 0, pair[0]);
  std::optional<Socket> inner = adopt(AF_UNIX, 0, pair[1]);
  if (!plain || !inner) co_return;
  asio::co_spawn(io_, serve(std::move(*inner), true, loopback, std::move(unauthenticated)),
                 asio::detached);
  // Until either side ends; the other direction is then cancelled.
  std::variant<std::monostate, std::monostate> ended =
      co_await (relay(*plain, tls) || relay(tls, *plain));
  if (ended.index() == 0) {
    // The gateway ended the connection: close_notify, for a client to tell the end from a cut.
    deadline.expires_after(std::chrono::seconds(2));
    co_await (tls.async_shutdown(kNoThrow) || deadline.async_wait(kNoThrow));
  }
  boost::system::error_code ignored;
  tls.next_layer().close(ignored);
}

// The host part of a Host header or an Origin's authority: "localhost", "127.0.0.1", "::1".
std::string host_of(std::string_view value) {
  if (auto scheme = value.find("://"); scheme != std::string_view::npos)
    value.remove_prefix(scheme + 3);
  if (value.starts_with('[')) return std::string(value.substr(1, value.find(']') - 1));
  return std::string(value.substr(0, value.find(':')));
}

std::optional<Reply> Gateway::refuse_tcp(const Request& req, bool loopback) const {
  if (loopback) {
    auto local_name = [](std::string_view value) {  // names are case-insensitive (RFC 9110)
      const std::string host = host_of(value);
      return beast::iequals(host, "localhost") || host == "127.0.0.1" || host == "::1";
    };
    const auto origin = req[http::field::origin];
    if (!local_name(req[http::field::host]) || (!origin.empty() && !local_name(origin)))
      return Reply::error(403, "forbidden",
                          "a Host or Origin that is not localhost is refused on a loopback "
                          "listener");
  }
  if (options_.no_auth) return std::nullopt;
  // The scheme's name is case-insensitive (RFC 9110 section 11.1), the token is not.
  std::string_view given = req[http::field::authorization];
  if (given.size() >= 7 && beast::iequals(given.substr(0, 7), "Bearer "))
    given.remove_prefix(7);
  else
    given = {};
  const std::string& expected = options_.token;
  // Compared as SHA-256 digests: constant time, whatever the lengths.
  unsigned char a[SHA256_DIGEST_LENGTH], b[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(given.data()), given.size(), a);
  ::SHA256(reinterpret_cast<const unsigned char*>(expected.data()), expected.size(), b);
  if (CRYPTO_memcmp(a, b, sizeof a) != 0) {
    Reply r = Reply::error(401, "unauthorized", "a valid bearer token is required");
    r.www_authenticate = true;
    return r;
  }
  return std::nullopt;
}

void Gateway::hand_off(Socket& socket, Request& req, beast::flat_buffer& buffer, bool tcp,
                       bool loopback, uid_t uid) {
  HandOff h;
  h.request = std::move(req);
  h.buffered = beast::buffers_to_string(buffer.data());
  h.tcp = tcp;
  h.loopback = loopback;
  h.peer_uid = uid;
  if (tcp) h.header_timeout = options_.header_timeout;
  if (tcp)
    h.refused = [this, loopback](const Request& r) {
      auto no = refuse_tcp(r, loopback);
      return no ? no->status : 0;
    };
  boost::system::error_code ignored;
  socket.native_non_blocking(false, ignored);
  h.fd = socket.release(ignored);
  if (h.fd >= 0) options_.mcp(std::move(h));
}

// Answers a request refused before its body was read, and closes the connection gently: the
// client may still be sending the body, and a close with unread bytes is a reset, which can
// destroy the answer before the client reads it. Our side is shut down and whatever still comes
// is read and dropped, for kLinger and kLingerBytes at most.
asio::awaitable<void> refuse_early(Socket& socket, Reply reply) {
  if (!co_await write_reply(socket, std::move(reply), false)) co_return;
  boost::system::error_code ignored;
  socket.shutdown(Socket::shutdown_send, ignored);
  asio::steady_timer deadline(socket.get_executor(), kLinger);
  std::array<char, 4096> dropped;
  std::size_t total = 0;
  while (total < kLingerBytes) {
    std::variant<std::tuple<boost::system::error_code, std::size_t>,
                 std::tuple<boost::system::error_code>>
        got = co_await (socket.async_read_some(asio::buffer(dropped), kNoThrow) ||
                        deadline.async_wait(kNoThrow));
    if (got.index() != 0 || std::get<0>(std::get<0>(got))) break;
    total += std::get<1>(std::get<0>(got));
  }
}

asio::awaitable<void> Gateway::serve(Socket socket, bool tcp, bool loopback,
                                     std::shared_ptr<Unauthenticated> unauthenticated) {
  struct ucred peer = {};
  peer.uid = static_cast<uid_t>(-1);
  socklen_t len = sizeof peer;
  if (!tcp) ::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &peer, &len);
  beast::flat_buffer buffer;
  // On TCP (--listen) a request's header has options_.header_timeout from when the gateway
  // starts waiting for it, and its body must keep coming (kBodyTimeout without a byte ends it):
  // a client that trickles bytes holds nothing for long.
  asio::steady_timer deadline(io_);
  using ReadOrTimeout = std::variant<std::tuple<boost::system::error_code, std::size_t>,
                                     std::tuple<boost::system::error_code>>;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(kMaxUpload);  // the real limit is chosen once the target is known
    boost::system::error_code ec;
    if (tcp) {
      deadline.expires_after(options_.header_timeout);
      ReadOrTimeout head = co_await (http::async_read_header(socket, buffer, parser, kNoThrow) ||
                                     deadline.async_wait(kNoThrow));
      if (head.index() != 0) {
        // Silence from an idle connection just ends it; half a request is told why.
        if (parser.got_some() || buffer.size() > 0) co_await refuse_early(socket, too_slow());
        co_return;
      }
      ec = std::get<0>(std::get<0>(head));
    } else {
      std::tuple<boost::system::error_code, std::size_t> head =
          co_await http::async_read_header(socket, buffer, parser, kNoThrow);
      ec = std::get<0>(head);
    }
    if (ec) {
      if (ec == http::error::body_limit) {
        co_await write_reply(socket, too_large(), false);
      } else if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                 ec != asio::error::connection_reset) {
        co_await write_reply(socket, bad_request(ec.message()), false);
      }
      co_return;
    }
    // On TCP the token (and, on loopback, Host and Origin) are checked on the header alone: a
    // body is only ever read for a request that may be served.
    if (tcp) {
      if (std::optional<Reply> refused = refuse_tcp(parser.get(), loopback)) {
        co_await refuse_early(socket, std::move(*refused));
        co_return;
      }
      unauthenticated.reset();
    }
    // Only an upload (PUT /v1/sandboxes/NAME/files) may send 64 MiB: anything else holding
    // "/files" somewhere (a query string) gets the small limit.
    const std::string_view head_target = parser.get().target();
    const auto segments = split(head_target.substr(0, head_target.find('?')), '/');
    const bool upload = parser.get().method() == http::verb::put && segments.size() == 5 &&
                        segments[0].empty() && segments[1] == "v1" && segments[2] == "sandboxes" &&
                        !segments[3].empty() && segments[4] == "files";
    const bool mcp = head_target == "/mcp" || head_target.starts_with("/mcp?");
    const std::size_t limit = upload ? kMaxUpload : mcp ? kMaxMcpBody : kMaxBody;
    if (parser.content_length() && *parser.content_length() > limit) {
      co_await refuse_early(socket, too_large());
      co_return;
    }
    parser.body_limit(limit);
    bool timed_out = false;
    if (tcp) {
      while (!parser.is_done()) {
        deadline.expires_after(kBodyTimeout);
        ReadOrTimeout got = co_await (http::async_read_some(socket, buffer, parser, kNoThrow) ||
                                      deadline.async_wait(kNoThrow));
        if (got.index() != 0) {
          timed_out = true;
          break;
        }
        ec = std::get<0>(std::get<0>(got));
        if (ec) break;
      }
    } else {
      std::tuple<boost::system::error_code, std::size_t> got =
          co_await http::async_read(socket, buffer, parser, kNoThrow);
      ec = std::get<0>(got);
    }
    if (timed_out) {
      co_await refuse_early(socket, too_slow());
      co_return;
    }
    if (ec == http::error::body_limit) {
      co_await write_reply(socket, too_large(), false);
      co_return;
    }
    if (ec) {
      co_await write_reply(socket, bad_request(ec.message()), false);
      co_return;
    }
    Request req = parser.release();
    const bool keep_alive = req.keep_alive();
    bool streamed = false;
    Reply reply;
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (path == "/mcp" && options_.mcp) {
      // The MCP endpoint takes the connection over, on a thread of its own.
      hand_off(socket, req, buffer, tcp, loopback, peer.uid);
      co_return;
    }
    try {
      reply = co_await route(req, socket, streamed);
    } catch (const std::exception& e) {
      // Input the checks did not foresee (a JSON value of an unexpected type): refused, never a
      // dropped connection. (A stream already under way just ends.)
      reply = Reply::error(400, "bad_request",
                           std::string("the request cannot be handled: ") + e.what());
    }
    if (options_.verbose) {
      // A connection from this very process is the MCP endpoint's (its tools, its sweep of chat
      // sandboxes), which reaches the sandboxes through the gateway's own socket.
      const std::string who = !tcp && peer.pid == ::getpid() ? std::string("internal (mcp)")
                                                             : "uid " + std::to_string(peer.uid);
      log::info("{}: {} {} -> {}", who, std::string(req.method_string()), std::string(req.target()),
                streamed ? 200 : reply.status);
    }
    if (streamed) co_return;  // the stream ended the connection
    if (!co_await write_reply(socket, std::move(reply), keep_alive) || !keep_alive) co_return;
  }
}

asio::awaitable<Reply> Gateway::route(Request& req, Socket& socket, bool& streamed) {
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) co_return Reply::error(400, "bad_request", "malformed request target");
  std::vector<std::string> seg;
  for (auto s : target->segments()) seg.push_back(s);
  Query query;
  for (auto p : target->params()) query.emplace_back(p.key, p.value);
  const http::verb method = req.method();
  // By method, the API's own; any other token a client sends counts as "other" (one counter
  // each would let a client grow the map, and /metrics, without bound).
  const http::verb verb = req.method();
  const bool known = verb == http::verb::get || verb == http::verb::post ||
                     verb == http::verb::put || verb == http::verb::delete_ ||
                     verb == http::verb::patch || verb == http::verb::head ||
                     verb == http::verb::options;
  ++requests_[known ? std::string(req.method_string()) : std::string("other")];

  if (seg.size() == 1 && seg[0] == "metrics") {
    if (method != http::verb::get) co_return Reply::not_allowed("GET");
    co_return metrics();
  }
  if (seg.empty() || seg[0] != "v1") co_return Reply::error(404, "not_found", "no such endpoint");
  seg.erase(seg.begin());
  if (seg.empty()) co_return Reply::error(404, "not_found", "no such endpoint");

  json body = json::object();
  const bool has_json_body =
      !req.body().empty() && !(seg.size() == 3 && seg[0] == "sandboxes" && seg[2] == "files");
  if (has_json_body) {
    if (json_nests_deeper(req.body()))
      co_return Reply::error(400, "invalid_json",
                             "the body nests arrays and objects deeper than " +
                                 std::to_string(kMaxJsonDepth) + " levels");
    body = json::parse(req.body(), nullptr, false);
    if (body.is_discarded() || !body.is_object())
      co_return Reply::error(400, "invalid_json", "the body is not a JSON object");
  }

  if (seg.size() == 1 && seg[0] == "status") {
    if (method != http::verb::get) co_return Reply::not_allowed("GET");
    co_return status();
  }
  if (seg.size() == 1 && seg[0] == "policy") {
    if (method == http::verb::get) {
      auto text = store_.setting("default_policy");
      std::string policy = text && *text ? **text : std::string(policy::default_policy_yaml());
      co_return Reply::json(200, {{"policy", policy}, {"hash", sha256_hex(policy)}});
    }
    if (method != http::verb::put) co_return Reply::not_allowed("GET, PUT");
    if (auto bad = check_fields(body, {"policy"}, {"policy"})) co_return *bad;
    if (!body["policy"].is_string())
      co_return Reply::error(400, "bad_request", "policy must be a string");
    const std::string text = body["policy"];
    policy::LoadResult loaded = policy::load_string(text, "policy");
    if (!loaded.ok()) co_return Reply::invalid_policy(loaded);
    auto old = store_.setting("default_policy");
    const bool changed = !(old && *old && **old == text);
    if (auto r = store_.set_setting("default_policy", text); !r)
      co_return Reply::error(500, "internal", r.error().describe());
    co_return Reply::json(200, {{"hash", sha256_hex(text)}, {"changed", changed}});
  }
  if (seg[0] == "providers") {
    if (seg.size() == 1 && method == http::verb::post) co_return providers_post(body);
    if (seg.size() == 1 && method != http::verb::get) co_return Reply::not_allowed("POST, GET");
    if (seg.size() == 1) {
      auto all = store_.list_providers();
      if (!all) co_return Reply::error(500, "internal", all.error().describe());
      json list = json::array();
      for (const auto& p : *all) list.push_back(provider_json(p));
      co_return Reply::json(200, {{"providers", list}});
    }
    if (seg.size() != 2) co_return Reply::error(404, "not_found", "no such endpoint");
    if (method == http::verb::get) {
      auto p = store_.find_provider(seg[1]);
      if (!p || !*p) co_return Reply::error(404, "not_found", "no provider " + seg[1]);
      co_return Reply::json(200, provider_json(**p));
    }
    if (method == http::verb::delete_) {
      auto all = store_.list_sandboxes();
      if (all)
        for (const auto& s : *all)
          if (std::find(s.providers.begin(), s.providers.end(), seg[1]) != s.providers.end())
            co_return Reply::error(409, "conflict",
                                   "provider " + seg[1] + " is attached to sandbox " + s.name);
      auto gone = store_.delete_provider(seg[1]);
      if (!gone) co_return Reply::error(500, "internal", gone.error().describe());
      if (!*gone) co_return Reply::error(404, "not_found", "no provider " + seg[1]);
      if (auto r = secrets_.erase(seg[1]); !r)
        co_return Reply::error(500, "internal", r.error().describe());
      co_return Reply::json(200, {{"deleted", seg[1]}});
    }
    co_return Reply::not_allowed("GET, DELETE");
  }
  if (seg[0] != "sandboxes") co_return Reply::error(404, "not_found", "no such endpoint");
  if (seg.size() == 1) {
    if (method == http::verb::post) co_return co_await create(body);
    if (method != http::verb::get) co_return Reply::not_allowed("POST, GET");
    auto all = store_.list_sandboxes();
    if (!all) co_return Reply::error(500, "internal", all.error().describe());
    json list = json::array();
    for (const auto& r : *all) {
      bool match = true;
      for (const auto& [k, v] : query) {
        if (k != "label") continue;
        const auto eq = v.find('=');
        auto it = r.labels.find(v.substr(0, eq));
        match = match && it != r.labels.end() &&
                (eq == std::string::npos || it->second == v.substr(eq + 1));
      }
      if (match) list.push_back(sandbox_json(r));
    }
    co_return Reply::json(200, {{"sandboxes", list}});
  }

  auto found = find(seg[1]);
  if (!found) co_return Reply::error(500, "internal", found.error().describe());
  if (!*found) co_return Reply::error(404, "not_found", "no sandbox named " + seg[1]);
  SandboxRecord record = **found;
  if (seg.size() == 2) {
    if (method == http::verb::get) co_return Reply::json(200, sandbox_json(record));
    if (method != http::verb::delete_) co_return Reply::not_allowed("GET, DELETE");
    if (runtimes_.count(record.id)) co_await stop_sandbox(record);
    if (auto r = store_.delete_sandbox(record.id); !r)
      co_return Reply::error(500, "internal", r.error().describe());
    discard(dir_of(record.id));
    if (record.managed_workspace) discard(record.workdir);
    co_return Reply::json(200, {{"deleted", record.id}});
  }
  const std::string& action = seg[2];
  if (seg.size() == 3 && action == "stop") {
    if (method != http::verb::post) co_return Reply::not_allowed("POST");
    co_return co_await stop_sandbox(record);
  }
  if (seg.size() == 3 && action == "start") {
    if (method != http::verb::post) co_return Reply::not_allowed("POST");
    // As a stop of a sandbox that does not run is: nothing to do, the sandbox as it is.
    if (runtimes_.count(record.id)) {
      if (record.status == "running" || record.status == "creating")
        co_return Reply::json(200, sandbox_json(record));
      co_return Reply::error(409, "conflict",
                             "sandbox " + record.name + " is still stopping: start it once it has");
    }
    co_return co_await start_sandbox(record);
  }
  if (seg.size() == 3 && action == "connect") {
    if (method != http::verb::get) co_return Reply::not_allowed("GET");
    co_return co_await connect(record, req, query, socket, streamed);
  }
  if (seg.size() == 3 && action == "exec") {
    if (method != http::verb::post) co_return Reply::not_allowed("POST");
    co_return co_await exec(record, body, socket, streamed);
  }
  if (seg.size() == 3 && action == "logs") {
    if (method != http::verb::get) co_return Reply::not_allowed("GET");
    co_return co_await logs(record, query, socket, streamed);
  }
  if (seg.size() == 3 && action == "files") {
    if (method == http::verb::get) co_return co_await files_get(record, query);
    if (method == http::verb::put) co_return co_await files_put(record, query, req);
    co_return Reply::not_allowed("GET, PUT");
  }
  if (action == "policy" && seg.size() == 3) {
    if (method == http::verb::put) co_return set_policy(record, body);
    if (method != http::verb::get) co_return Reply::not_allowed("PUT, GET");
    auto rev = store_.active_revision(record.id);
    if (!rev || !*rev) co_return Reply::error(500, "internal", "no active policy revision");
    co_return Reply::json(200, revision_json(**rev, true));
  }
  if (action == "policy" && seg.size() == 4 && seg[3] == "revisions") {
    if (method != http::verb::get) co_return Reply::not_allowed("GET");
    auto all = store_.revisions(record.id);
    if (!all) co_return Reply::error(500, "internal", all.error().describe());
    json list = json::array();
    for (const auto& r : *all) list.push_back(revision_json(r, false));
    co_return Reply::json(200, {{"revisions", list}});
  }
  co_return Reply::error(404, "not_found", "no such endpoint");
}

asio::awaitable<Reply> Gateway::create(const json& body) {
  static const std::vector<std::string> kFields = {
      "name",   "policy",    "workdir",        "command",   "env",
      "labels", "providers", "max_lifetime_s", "idle_ttl_s"};
  if (auto bad = check_fields(body, kFields, {})) co_return *bad;
  SandboxRecord record;
  record.id = random_id();
  if (body.contains("name") && !body["name"].is_string())
    co_return Reply::error(400, "invalid_name", "name must be a string");
  record.name = body.value("name", record.id);
  if (!valid_name(record.name))
    co_return Reply::error(400, "invalid_name",
                           "a name is 1-63 characters of a-z, 0-9 and '-', starting with a letter "
                           "or digit");
  auto existing = store_.find_sandbox(record.name);
  if (existing && *existing)
    co_return Reply::error(409, "already_exists", "a sandbox named " + record.name + " exists");

  // Types of the optional fields.
  auto string_list = [&](const char* key) {
    return !body.contains(key) ||
           (body[key].is_array() && std::all_of(body[key].begin(), body[key].end(),
                                                [](const json& v) { return v.is_string(); }));
  };
  auto string_map = [&](const char* key) {
    return !body.contains(key) ||
           (body[key].is_object() && std::all_of(body[key].begin(), body[key].end(),
                                                 [](const json& v) { return v.is_string(); }));
  };
  if (!string_list("command") || !string_list("providers"))
    co_return Reply::error(400, "bad_request", "command and providers are lists of strings");
  if (!string_map("env") || !string_map("labels"))
    co_return Reply::error(400, "bad_request", "env and labels are objects of strings");
  for (const char* key : {"max_lifetime_s", "idle_ttl_s"})
    if (body.contains(key) && (!body[key].is_number_integer() || body[key].get<std::int64_t>() < 0))
      co_return Reply::error(400, "bad_request", std::string(key) + " is a whole number >= 0");
  if (body.contains("env"))
    for (auto& [k, v] : body["env"].items())
      if (k.empty() || k.find_first_of(std::string_view("=\0", 2)) != std::string::npos)
        co_return Reply::error(400, "bad_request", "env: not a variable name: " + k);
  if (holds_nul(body.value("command", json())) || holds_nul(body.value("env", json())))
    co_return Reply::error(400, "bad_request",
                           "a command or variable holding a NUL byte cannot be passed on");

  std::string text;
  if (body.contains("policy")) {
    if (!body["policy"].is_string())
      co_return Reply::error(400, "bad_request", "policy must be a string");
    text = body["policy"];
  } else {
    auto d = store_.setting("default_policy");
    text = d && *d ? **d : std::string(policy::default_policy_yaml());
  }
  policy::LoadResult loaded = policy::load_string(text, "policy");
  if (!loaded.ok()) co_return Reply::invalid_policy(loaded);

  if (body.contains("workdir")) {
    if (!body["workdir"].is_string())
      co_return Reply::error(400, "bad_request", "workdir must be a string");
    const std::string w = body["workdir"];
    char real[PATH_MAX];
    struct stat st;
    if (w.empty() || w[0] != '/' || !::realpath(w.c_str(), real) || ::stat(real, &st) != 0 ||
        !S_ISDIR(st.st_mode))
      co_return Reply::error(400, "invalid_path", "workdir must be an existing absolute directory");
    if (std::string(real) == "/")
      co_return Reply::error(400, "invalid_path", "workdir cannot be /");
    if (sandbox::provided_by_sandbox(real))
      co_return Reply::error(400, "invalid_path",
                             "workdir cannot be " + std::string(real) +
                                 ", which every sandbox has of its own (its /proc, its /dev)");
    // The gateway's state (its socket, the CA key, provider secrets, other sandboxes'
    // workspaces) is hidden from every sandbox; a workdir inside it would show it.
    std::vector<std::string> hidden = options_.hidden;
    hidden.push_back(options_.state_dir);
    if (std::string h = sandbox::hidden_holding(real, hidden); !h.empty())
      co_return Reply::error(
          400, "invalid_path",
          "workdir is inside " + h + ", the gateway's own state, which no sandbox may see");
    record.workdir = real;
    // Through a symlink the real path can hold bytes that JSON (its records, the sandbox's
    // spec) cannot carry.
    bool utf8 = true;
    try {
      static_cast<void>(json(record.workdir).dump());
    } catch (const json::type_error&) {
      utf8 = false;
    }
    if (!utf8)
      co_return Reply::error(400, "invalid_path",
                             "workdir resolves to a path that is not valid UTF-8");
  } else {
    record.workdir = options_.state_dir + "/workspaces/" + record.name;
    record.managed_workspace = true;
  }
  for (const auto& name : body.value("providers", std::vector<std::string>{})) {
    auto p = store_.find_provider(name);
    if (!p || !*p) co_return Reply::error(404, "not_found", "no provider named " + name);
    record.providers.push_back(name);
  }
  record.labels = body.value("labels", std::map<std::string, std::string>{});
  json spec = {{"command", body.value("command", std::vector<std::string>{})},
               {"env", body.value("env", std::map<std::string, std::string>{})},
               {"max_lifetime_s", body.value("max_lifetime_s", std::int64_t{0})},
               {"idle_ttl_s", body.value("idle_ttl_s", std::int64_t{0})}};
  record.spec = spec.dump();
  record.status = "creating";
  record.created_at = record.updated_at = unix_now();

  const std::string dir = dir_of(record.id);
  if (::mkdir(dir.c_str(), 0700) != 0)
    co_return Reply::error(500, "internal", "mkdir " + dir + ": " + std::strerror(errno));
  if (record.managed_workspace && ::mkdir(record.workdir.c_str(), 0755) != 0) {
    remove_tree(dir);
    co_return Reply::error(500, "internal",
                           "mkdir " + record.workdir + ": " + std::strerror(errno));
  }
  if (auto r = store_.insert_sandbox(record); !r) {
    remove_tree(dir);
    if (record.managed_workspace) remove_tree(record.workdir);
    if (r.error().message == "already exists")
      co_return Reply::error(409, "already_exists", "a sandbox named " + record.name + " exists");
    co_return Reply::error(500, "internal", r.error().describe());
  }
  if (auto r = store_.add_revision(record.id, text); !r)
    co_return Reply::error(500, "internal", r.error().describe());
  Reply reply = co_await start_sandbox(record);
  if (reply.status == 200) {
    reply.status = 201;
  } else if (reply.status >= 400 && reply.status < 500) {
    // Refused for what was asked (a provider whose values cannot be used, say): as if it had
    // never been, so that the name stays free.
    static_cast<void>(store_.delete_sandbox(record.id));
    remove_tree(dir);
    if (record.managed_workspace) remove_tree(record.workdir);
  } else if (auto fresh = store_.find_sandbox(record.id);
             fresh && *fresh && (*fresh)->status == "creating") {
    // It failed before its supervisor started (out of descriptors, say): said so in the record,
    // never left "creating".
    record = **fresh;
    record.status = "error";
    record.reason = json::parse(reply.body, nullptr, false).value("message", "the start failed");
    record.updated_at = unix_now();
    static_cast<void>(store_.update_sandbox(record));
  }
  co_return reply;
}

Reply Gateway::set_policy(SandboxRecord& record, const json& body) {
  if (auto bad = check_fields(body, {"policy"}, {"policy"})) return *bad;
  if (!body["policy"].is_string())
    return Reply::error(400, "bad_request", "policy must be a string");
  const std::string text = body["policy"];
  policy::LoadResult loaded = policy::load_string(text, "policy");
  if (!loaded.ok()) return Reply::invalid_policy(loaded);
  auto running = active_policy(record);
  if (!running) return Reply::error(500, "internal", running.error().describe());
  if (std::string section = policy::changed_static_section(**running, *loaded.policy);
      !section.empty())
    return Reply::error(409, "conflict",
                        "the update changes " + section +
                            ", a static section: only network_policies can change while a "
                            "sandbox exists");
  auto added = store_.add_revision(record.id, text);
  if (!added) return Reply::error(500, "internal", added.error().describe());
  if (added->changed) {
    auto it = runtimes_.find(record.id);
    if (it != runtimes_.end() && it->second->proxy) {
      auto policy = std::make_shared<const policy::Policy>(std::move(*loaded.policy));
      it->second->policy = policy;
      it->second->proxy->install(policy);
    }
  }
  return Reply::json(200, {{"revision", added->revision.revision},
                           {"hash", added->revision.hash},
                           {"changed", added->changed}});
}

// ---- exec ----

// Tells the exec's pump when the client goes away: its socket turns readable (EOF) while the
// gateway only writes. Ended by socket.cancel().
asio::awaitable<void> watch_client(Socket* socket, std::shared_ptr<ExecState> state) {
  std::tuple<boost::system::error_code> waited =
      co_await socket->async_wait(Socket::wait_read, kNoThrow);
  if (std::get<0>(waited) == asio::error::operation_aborted) co_return;
  char probe;
  if (::recv(socket->native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT) > 0) co_return;
  state->client_gone = true;
  state->alert();
}

// The exec stream's lines (built outside coroutines: GCC 12 mishandles string-literal
// initializer lists inside them).
json started_line(pid_t pid) {
  return {{"type", "started"}, {"pid", pid}};
}

// What stands for the exit of a command whose sandbox ended first.
json lost_exit() {
  return {{"lost", true}};
}

json exit_line(const Finished& f) {
  if (f.lost) return {{"type", "error"}, {"code", 125}, {"message", "the sandbox ended"}};
  return {{"type", "exit"}, {"code", f.code}, {"signal", f.signal}, {"timed_out", f.timed_out}};
}

// connect's last text frame when a malformed control message ended it.
json refused_line(const std::string& why) {
  return {{"type", "error"}, {"message", why}};
}

// A command the supervisor was not asked to start: the client's fault when what it asked for
// cannot be put into a control message (EILSEQ: not UTF-8), else the gateway's.
Reply unstarted(const Error& e) {
  return e.err == EILSEQ ? Reply::error(400, "bad_request", e.describe())
                         : Reply::error(503, "unavailable", e.describe());
}

Reply failed_reply(const json& failure) {
  Reply r = Reply::json(200, {{"type", "error"},
                              {"code", failure.value("code", 125)},
                              {"message", failure.value("message", "")}});
  r.content_type = "application/x-ndjson";
  return r;
}

// Starts a command in a running sandbox: pipes for its stdio, the request to the supervisor, its
// answer. The command's stdout and stderr then arrive on the returned state's channel.
// A pseudo-terminal of the size asked: {master, slave}.
Result<std::pair<UniqueFd, UniqueFd>> open_terminal(const Terminal& size) {
  UniqueFd master(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master || ::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0)
    return fail_errno("posix_openpt");
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof name) != 0) return fail_errno("ptsname");
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) return fail_errno(std::string("open ") + name);
  struct winsize ws = {};
  ws.ws_col = size.cols;
  ws.ws_row = size.rows;
  ::ioctl(master.get(), TIOCSWINSZ, &ws);
  return std::make_pair(std::move(master), std::move(slave));
}

asio::awaitable<Result<Started>> Gateway::start_command(Runtime& rt, json argv,
                                                        std::vector<std::string> env,
                                                        std::string workdir, std::string stdin_data,
                                                        std::optional<Terminal> terminal) {
  int in[2], out[2], err[2];
  // Without input the command's stdin is /dev/null, which reads as the empty pipe would: no
  // pipe, no writer to start and stop.
  UniqueFd in_r, in_w;
  if (stdin_data.empty() && !terminal) {
    in_r = UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!in_r) co_return fail_errno("open /dev/null");
  } else if (!terminal) {
    if (::pipe2(in, O_CLOEXEC) != 0) co_return fail_errno("pipe");
    in_r = UniqueFd(in[0]);
    in_w = UniqueFd(in[1]);
  }
  if (::pipe2(out, O_CLOEXEC) != 0) co_return fail_errno("pipe");
  UniqueFd out_r(out[0]), out_w(out[1]);
  if (::pipe2(err, O_CLOEXEC) != 0) co_return fail_errno("pipe");
  UniqueFd err_r(err[0]), err_w(err[1]);
  UniqueFd master;
  if (terminal) {
    // The terminal is all three: the command's stdio is its slave side, its output is read
    // from the master. The pipes' replaced ends close, so stderr's pipe reads as ended at once.
    auto pty = open_terminal(*terminal);
    if (!pty) co_return tl::unexpected(pty.error());
    master = std::move(pty->first);
    in_r = UniqueFd(::fcntl(pty->second.get(), F_DUPFD_CLOEXEC, 0));
    out_w = UniqueFd(::fcntl(pty->second.get(), F_DUPFD_CLOEXEC, 0));
    err_w = std::move(pty->second);
    out_r = UniqueFd(::fcntl(master.get(), F_DUPFD_CLOEXEC, 0));
    if (!in_r || !out_w || !out_r) co_return fail_errno("dup");
  }

  Started s;
  s.sandbox = rt.id();
  s.id = rt.next_exec_id();
  s.state = std::make_shared<ExecState>(io_.get_executor());
  rt.add_exec(s.id, s.state);
  json request = {{"op", "exec"}, {"id", s.id}, {"argv", argv}, {"env", env}, {"workdir", workdir}};
  if (terminal) request["tty"] = true;
  const int fds[3] = {in_r.get(), out_w.get(), err_w.get()};
  if (auto r = rt.send(request, fds); !r) {
    forget(s);
    co_return tl::unexpected(r.error());
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  auto answer = co_await s.state->started.wait(kExecStartTimeout);
  if (!answer || (*answer)["op"] != "started") {
    forget(s);
    s.failure =
        answer ? *answer
               : json{{"op", "failed"}, {"code", 125}, {"message", "the command did not start"}};
    co_return s;
  }
  s.pid = (*answer).value("pid", 0);
  ++execs_;

  // stdin written then closed; stdout and stderr read until their end.
  if (terminal) {
    s.terminal = std::make_shared<asio::posix::stream_descriptor>(io_, master.release());
  } else if (in_w) {
    auto in_pipe = std::make_shared<asio::posix::stream_descriptor>(io_, in_w.release());
    asio::co_spawn(io_, feed(in_pipe, std::move(stdin_data)), asio::detached);
  }
  s.out = std::make_shared<asio::posix::stream_descriptor>(io_, out_r.release());
  s.err = std::make_shared<asio::posix::stream_descriptor>(io_, err_r.release());
  asio::co_spawn(io_, drain_pipe(s.out, s.state, false), asio::detached);
  asio::co_spawn(io_, drain_pipe(s.err, s.state, true), asio::detached);
  co_return s;
}

void Gateway::forget(const Started& s) {
  auto found = runtimes_.find(s.sandbox);
  if (found != runtimes_.end()) found->second->remove_exec(s.id);
}

void Gateway::kill_command(const std::string& sandbox, std::int64_t id) {
  auto found = runtimes_.find(sandbox);
  if (found != runtimes_.end())
    static_cast<void>(found->second->send(json{{"op", "signal"}, {"id", id}, {"signal", SIGKILL}}));
}

// Ends the reading of a command's output pipe (or terminal) that something still holds open —
// a background process the command left — once its output has had kDrainAfterExit to end. A
// pipe whose writers are all gone (POLLHUP) is left to be read to its end: what it holds is the
// command's own last output.
void cut_if_held(asio::posix::stream_descriptor& pipe) {
  if (!pipe.is_open()) return;
  pollfd p{pipe.native_handle(), POLLIN, 0};
  if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR))) return;
  boost::system::error_code ignored;
  pipe.close(ignored);  // its reader sees the end at once, after what it queued
}

// Delivers a started command's output to `sink` until it exits (and its output has ended, or a
// background process kept the pipes open for longer than kDrainAfterExit). A sink returning
// false, the timeout, or the client going away kill the command. None of these needs room on
// the events channel, which a command's output fills whenever the client reads slower than the
// command writes: the timeout kills the command itself, and the others are flags on the state.
asio::awaitable<Finished> Gateway::pump(const Started& s, OutputSink sink,
                                        std::optional<std::chrono::milliseconds> timeout) {
  auto state = s.state;
  asio::steady_timer deadline(io_);
  if (timeout) {
    deadline.expires_after(*timeout);
    deadline.async_wait(
        [this, state, sandbox = s.sandbox, id = s.id](boost::system::error_code ec) {
          if (ec || state->timed_out || state->exit) return;  // an exit on its way is not late
          state->timed_out = true;
          kill_command(sandbox, id);
          state->alert();
        });
  }
  Finished f;
  bool out_open = true, err_open = true, killed = false;
  std::optional<json> exit;
  // Armed once the exit is known: the pipes' writers then have kDrainAfterExit to be gone.
  asio::steady_timer drain(io_);
  auto exited = [&](json message) {
    exit = std::move(message);
    deadline.cancel();
    drain.expires_after(kDrainAfterExit);
    drain.async_wait([out = s.out, err = s.err](boost::system::error_code ec) {
      if (ec) return;
      cut_if_held(*out);
      cut_if_held(*err);
    });
  };
  while (!(exit && !out_open && !err_open)) {
    // (No structured binding and no co_await inside a switch here: GCC 12 destroys such
    // coroutine temporaries twice.)
    std::tuple<boost::system::error_code, ExecEvent> received =
        co_await state->events.async_receive(kNoThrow);
    if (std::get<0>(received)) break;
    ExecEvent event = std::move(std::get<1>(received));
    const bool output =
        event.kind == ExecEvent::Kind::kStdout || event.kind == ExecEvent::Kind::kStderr;
    if (output && !f.client_gone) {
      const bool delivered = co_await sink(event.kind == ExecEvent::Kind::kStderr, event.data);
      if (!delivered) f.client_gone = true;
    }
    // The flags, whatever the event was (a timeout that fires once the exit is known is late).
    f.client_gone = f.client_gone || state->client_gone;
    if (!exit) f.timed_out = state->timed_out;
    if ((f.client_gone || f.timed_out) && !killed) {
      if (!f.timed_out) kill_command(s.sandbox, s.id);  // (the timeout killed it already)
      killed = true;
    }
    if (event.kind == ExecEvent::Kind::kStdoutEnd) {
      out_open = false;
    } else if (event.kind == ExecEvent::Kind::kStderrEnd) {
      err_open = false;
    } else if (event.kind == ExecEvent::Kind::kExit && !exit) {
      exited(json::parse(event.data, nullptr, false));
    }
    // The sandbox's end counts once nothing it sent before (its exit among it) is still queued.
    // An exit that arrived before the end but is not queued yet still counts.
    if (state->lost && !exit && !state->events.ready())
      exited(state->exit ? json::parse(*state->exit, nullptr, false) : lost_exit());
  }
  deadline.cancel();
  drain.cancel();
  boost::system::error_code ignored;
  s.out->close(ignored);
  s.err->close(ignored);
  forget(s);
  f.lost = !exit || exit->value("lost", false);
  f.code = exit ? exit->value("code", 125) : 125;
  f.signal = exit ? exit->value("signal", 0) : 0;
  co_return f;
}

asio::awaitable<Collected> Gateway::collect(Runtime& rt, json argv, std::string stdin_data) {
  Collected c;
  auto started = co_await start_command(rt, std::move(argv), {}, "", std::move(stdin_data));
  if (!started) {
    c.error = started.error().describe();
    co_return c;
  }
  if (!started->failure.is_null()) {
    c.error = started->failure.value("message", "the command did not start");
    co_return c;
  }
  std::size_t total = 0;
  bool too_big = false;
  Finished f = co_await pump(
      *started,
      [&](bool is_stderr, const std::string& data) -> asio::awaitable<bool> {
        total += data.size();
        if (total > kMaxUpload) {
          too_big = true;
          co_return false;
        }
        (is_stderr ? c.err : c.out) += data;
        co_return true;
      },
      std::chrono::seconds(120));
  c.too_big = too_big;
  if (too_big)
    c.error = "more than 64 MiB";
  else if (f.lost)
    c.error = "the sandbox ended";
  else if (f.timed_out)
    c.error = "timed out";
  else if (f.code != 0)
    c.error = "exit code " + std::to_string(f.code) + ": " + c.err;
  co_return c;
}

asio::awaitable<Reply> Gateway::exec(SandboxRecord& record, const json& body, Socket& socket,
                                     bool& streamed) {
  if (auto bad = check_fields(
          body, {"command", "env", "workdir", "stdin", "stdin_base64", "timeout_ms"}, {"command"}))
    co_return *bad;
  if (!body["command"].is_array() || body["command"].empty() ||
      !std::all_of(body["command"].begin(), body["command"].end(),
                   [](const json& v) { return v.is_string(); }))
    co_return Reply::error(400, "bad_request", "command is a non-empty list of strings");
  if (body.contains("env") && !body["env"].is_object())
    co_return Reply::error(400, "bad_request", "env is an object of strings");
  if (body.contains("stdin") && !body["stdin"].is_string())
    co_return Reply::error(400, "bad_request", "stdin is a string");
  // Bytes that are not UTF-8 cannot be a JSON string: stdin_base64 carries any.
  std::string stdin_data = body.value("stdin", "");
  if (body.contains("stdin_base64")) {
    if (body.contains("stdin"))
      co_return Reply::error(400, "bad_request", "give stdin or stdin_base64, not both");
    std::optional<std::string> bytes;
    if (body["stdin_base64"].is_string()) bytes = unbase64(body["stdin_base64"].get<std::string>());
    if (!bytes) co_return Reply::error(400, "bad_request", "stdin_base64 is a base64 string");
    stdin_data = std::move(*bytes);
  }
  if (body.contains("workdir") && !body["workdir"].is_string())
    co_return Reply::error(400, "bad_request", "workdir is a string");
  if (body.contains("timeout_ms") &&
      (!body["timeout_ms"].is_number_integer() || body["timeout_ms"].get<std::int64_t>() <= 0))
    co_return Reply::error(400, "bad_request", "timeout_ms is a whole number > 0");
  std::vector<std::string> env;
  if (body.contains("env")) {
    for (auto& [k, v] : body["env"].items()) {
      if (!v.is_string() || k.empty() || k.find('=') != std::string::npos)
        co_return Reply::error(400, "bad_request", "env is an object of strings");
      env.push_back(k + "=" + v.get<std::string>());
    }
  }
  auto it = runtimes_.find(record.id);
  if (it == runtimes_.end() || record.status != "running")
    co_return Reply::error(409, "not_running", "sandbox " + record.name + " is not running");
  const auto began = std::chrono::steady_clock::now();
  auto started = co_await start_command(*it->second, body["command"], std::move(env),
                                        body.value("workdir", ""), std::move(stdin_data));
  if (!started) co_return unstarted(started.error());
  if (!started->failure.is_null()) co_return failed_reply(started->failure);

  // From here on the answer streams, and the client going away kills the command: its socket
  // turns readable (EOF) while we only write.
  streamed = true;
  ChunkedWriter writer(socket);
  co_await writer.begin("application/x-ndjson", started_line(started->pid));
  asio::co_spawn(io_, watch_client(&socket, started->state), asio::detached);
  std::optional<std::chrono::milliseconds> timeout;
  if (body.contains("timeout_ms"))
    timeout = std::chrono::milliseconds(body["timeout_ms"].get<std::int64_t>());
  Finished f = co_await pump(
      *started,
      [&writer](bool is_stderr, const std::string& data) -> asio::awaitable<bool> {
        json line = {{"type", std::string(is_stderr ? "stderr" : "stdout")},
                     {"data", base64(data)}};
        co_return co_await writer.line(line);
      },
      timeout);
  boost::system::error_code ignored;
  socket.cancel(ignored);
  exec_seconds_.observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  if (!f.client_gone) {
    co_await writer.end(exit_line(f));
  }
  socket.close(ignored);
  co_return Reply{};
}

// ---- connect: a terminal over WebSocket ----

using WebSocket = beast::websocket::stream<Socket&>;

// One `connect`: the client's WebSocket and the command's terminal.
struct Connection {
  Connection(Socket& socket, asio::any_io_executor executor) : ws(socket), done(executor) {}
  WebSocket ws;
  std::shared_ptr<asio::posix::stream_descriptor> terminal;  // the master side
  std::shared_ptr<ExecState> state;
  std::function<void(int)> signal;  // to the command's process group
  Latch done;                       // the client's side has ended
  std::string refused;              // why: a malformed control message ended it
};

// A text frame from the client: {"type":"resize","cols":C,"rows":R} or {"type":"signal",
// "signal":N}. Returns why it is refused ("" once it is applied): anything else, or either of
// these with members of other types, is a malformed control message.
std::string control(Connection& c, std::string_view text) {
  if (json_nests_deeper(text)) return "nested too deep";
  const json m = json::parse(text, nullptr, false);
  if (!m.is_object()) return "not a JSON object";
  const auto type = m.find("type");
  if (type == m.end() || !type->is_string()) return "type must be a string";
  if (*type == "resize") {
    const auto cols = m.find("cols"), rows = m.find("rows");
    if (cols == m.end() || rows == m.end() || !cols->is_number_unsigned() ||
        !rows->is_number_unsigned())
      return "resize needs cols and rows, whole numbers";
    struct winsize ws = {};
    ws.ws_col = static_cast<unsigned short>(std::clamp<std::uint64_t>(*cols, 1, 1000));
    ws.ws_row = static_cast<unsigned short>(std::clamp<std::uint64_t>(*rows, 1, 1000));
    ::ioctl(c.terminal->native_handle(), TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH
    return "";
  }
  if (*type == "signal") {
    const auto sig = m.find("signal");
    if (sig == m.end() || !sig->is_number_integer() || *sig < 1 || *sig > 31)
      return "signal needs signal, a number from 1 to 31";
    c.signal(sig->get<int>());
    return "";
  }
  return "no control message of type " + type->get<std::string>();
}

// The client's frames until it goes: binary ones are typed into the terminal, text ones are
// control messages. Its end kills the command (as an exec client's going away does), and so
// does a malformed control message, which connect() then answers with an error and a close.
asio::awaitable<void> terminal_input(std::shared_ptr<Connection> c) {
  beast::flat_buffer buffer;
  for (;;) {
    std::tuple<boost::system::error_code, std::size_t> got =
        co_await c->ws.async_read(buffer, kNoThrow);
    if (std::get<0>(got)) break;
    if (c->ws.got_text()) {
      std::string refused = control(*c, beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      if (refused.empty()) continue;
      c->refused = "malformed control message: " + refused;
      break;
    }
    std::tuple<boost::system::error_code, std::size_t> wrote =
        co_await asio::async_write(*c->terminal, buffer.data(), kNoThrow);
    buffer.consume(buffer.size());
    if (std::get<0>(wrote)) break;
  }
  c->state->client_gone = true;
  c->state->alert();
  c->done.set(json(true));
}

// The terminal's output, as binary frames.
asio::awaitable<bool> send_output(Connection* c, std::string data) {
  std::tuple<boost::system::error_code, std::size_t> wrote =
      co_await c->ws.async_write(asio::buffer(data), kNoThrow);
  co_return !std::get<0>(wrote);
}

asio::awaitable<Reply> Gateway::connect(SandboxRecord& record, const Request& req,
                                        const Query& query, Socket& socket, bool& streamed) {
  if (!beast::websocket::is_upgrade(req))
    co_return Reply::error(400, "bad_request",
                           "connect is a WebSocket: send a GET with Upgrade: websocket");
  json argv = json::array();
  std::vector<std::string> env;
  std::string workdir;
  Terminal size;
  static const std::regex kTerm("[A-Za-z0-9._+-]{1,64}");
  for (const auto& [k, v] : query) {
    if (k == "command") {
      argv.push_back(v);
    } else if (k == "cols" || k == "rows") {
      char* end = nullptr;
      const unsigned long n = std::strtoul(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1000)
        co_return Reply::error(400, "bad_request", k + " is a whole number from 1 to 1000");
      (k == "cols" ? size.cols : size.rows) = static_cast<unsigned short>(n);
    } else if (k == "term") {
      if (!std::regex_match(v, kTerm))
        co_return Reply::error(400, "bad_request", "term is a terminal type such as xterm");
      env.push_back("TERM=" + v);
    } else if (k == "workdir") {
      workdir = v;
    }
  }
  if (env.empty()) env.push_back("TERM=xterm-256color");
  if (argv.empty())  // an interactive shell: bash when the sandbox has it
    argv = {"/bin/sh", "-c",
            "if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi"};
  auto it = runtimes_.find(record.id);
  if (it == runtimes_.end() || record.status != "running")
    co_return Reply::error(409, "not_running", "sandbox " + record.name + " is not running");
  auto started =
      co_await start_command(*it->second, std::move(argv), std::move(env), workdir, "", size);
  if (!started) co_return unstarted(started.error());
  if (!started->failure.is_null()) {
    // Before the upgrade: a JSON error, with the code the command would have exited with (127
    // not found, 126 not executable, 125 a workdir it cannot enter), not exec's event stream.
    co_return Reply::json(500, {{"error", "command_failed"},
                                {"message", started->failure.value("message", "")},
                                {"code", started->failure.value("code", 125)}});
  }

  streamed = true;
  auto c = std::make_shared<Connection>(socket, io_.get_executor());
  c->terminal = started->terminal;
  c->state = started->state;
  c->signal = [this, id = record.id, exec = started->id](int sig) {
    if (auto r = runtimes_.find(id); r != runtimes_.end())
      static_cast<void>(r->second->send(json{{"op", "signal"}, {"id", exec}, {"signal", sig}}));
  };
  // The opening and closing handshakes are bounded; an idle terminal is not.
  beast::websocket::stream_base::timeout limits{};
  limits.handshake_timeout = std::chrono::seconds(10);
  limits.idle_timeout = beast::websocket::stream_base::none();
  limits.keep_alive_pings = false;
  c->ws.set_option(limits);
  std::tuple<boost::system::error_code> accepted = co_await c->ws.async_accept(req, kNoThrow);
  if (std::get<0>(accepted)) {
    c->state->client_gone = true;
    c->state->alert();
    c->done.set(json(true));
  } else {
    c->ws.binary(true);
    asio::co_spawn(io_, terminal_input(c), asio::detached);
  }
  Connection* conn = c.get();
  Finished f = co_await pump(
      *started, [conn](bool, const std::string& data) { return send_output(conn, data); },
      std::nullopt);
  boost::system::error_code ignored;
  started->terminal->close(ignored);
  if (!c->refused.empty()) {
    // The client is still there, reading: it is told why, in the exit line's place.
    c->ws.text(true);
    co_await send_output(conn, refused_line(c->refused).dump());
    std::tuple<boost::system::error_code> closed = co_await c->ws.async_close(
        beast::websocket::close_reason(beast::websocket::close_code::policy_error,
                                       "malformed control message"),
        kNoThrow);
    if (std::get<0>(closed)) socket.close(ignored);
  } else if (!f.client_gone) {
    c->ws.text(true);
    const std::string last = exit_line(f).dump();
    co_await send_output(conn, last);
    std::tuple<boost::system::error_code> closed =
        co_await c->ws.async_close(beast::websocket::close_code::normal, kNoThrow);
    if (std::get<0>(closed)) socket.close(ignored);
  }
  // The reader holds the socket: it ends before the connection's frame does.
  if (!(co_await c->done.wait(std::chrono::seconds(5)))) {
    socket.close(ignored);
    co_await c->done.wait(std::chrono::seconds(5));
  }
  co_return Reply{};
}

// ---- logs ----

asio::awaitable<Reply> Gateway::logs(const SandboxRecord& record, const Query& query,
                                     Socket& socket, bool& streamed) {
  std::string source = "all";
  long tail = -1;
  bool follow = false;
  for (const auto& [k, v] : query) {
    if (k == "source") source = v;
    if (k == "tail") {
      char* end = nullptr;
      tail = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || tail < 0)
        co_return Reply::error(400, "bad_request", "tail is a whole number");
    }
    if (k == "follow") follow = v == "1" || v == "true";
  }
  if (source != "all" && source != "audit" && source != "output")
    co_return Reply::error(400, "bad_request", "source is audit, output or all");
  std::vector<LogFile> files;
  if (source != "output") files.push_back(LogFile{dir_of(record.id) + "/audit.jsonl", "audit"});
  if (source != "audit") files.push_back(LogFile{dir_of(record.id) + "/output.log", "output"});

  streamed = true;
  ChunkedWriter writer(socket);
  if (!co_await writer.begin("application/x-ndjson")) co_return Reply{};
  // A chunk at a time (LogFile): a log of any size costs bounded memory, and the writes between
  // chunks let the gateway serve everyone else meanwhile.
  for (LogFile& f : files) {
    for (const std::string& line : f.initial(tail))
      if (!co_await writer.line_text(f.format(line))) co_return Reply{};
    while (f.pending())
      for (const std::string& line : f.more())
        if (!co_await writer.line_text(f.format(line))) co_return Reply{};
  }
  if (follow) {
    // New lines as they are written, until no more can come, the client goes away, the sandbox
    // is deleted (its files go with it, and its name may soon be another's) or the gateway stops.
    // No more can come once the sandbox is no longer running — one with a main command stops
    // when that command has ended, once its leftovers are gone too, so their last lines are
    // read — and, for the output alone, when there is no main command to write it.
    const json spec = json::parse(record.spec, nullptr, false);
    const bool has_main = spec.is_object() && spec.value("command", json::array()).is_array() &&
                          !spec.value("command", json::array()).empty();
    asio::steady_timer tick(io_);
    for (bool more = true; more;) {
      tick.expires_after(std::chrono::milliseconds(100));
      co_await tick.async_wait(kNoThrow);
      if (stopping_) break;
      auto still = store_.find_sandbox(record.id);
      if (still && !*still) break;
      // Decided before the last read: what was written before the end is sent.
      if (still && *still) {
        const std::string& status = (*still)->status;
        more = (status == "running" || status == "creating") && (source != "output" || has_main);
      }
      char probe;
      const ssize_t peek = ::recv(socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
      if (peek == 0 || (peek < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) co_return Reply{};
      for (LogFile& f : files) {
        do {
          for (const std::string& line : f.more())
            if (!co_await writer.line_text(f.format(line))) co_return Reply{};
        } while (f.pending());
      }
    }
  }
  co_await writer.end();
  boost::system::error_code ignored;
  socket.close(ignored);
  co_return Reply{};
}

// ---- files ----

// The system's tar inside the sandbox, by its path: a `tar` found through a PATH the sandbox's
// policy sets could be the workload's own, writing any archive it likes for the user's side.
constexpr const char* kSandboxTar = "/bin/tar";

// `excluded`: member names ("./.mcp.json") left out, with what is beneath them; matched whole
// and literally, whatever characters they hold.
json tar_pack(const std::string& dir, const std::vector<std::string>& excluded) {
  json argv = {kSandboxTar, "-C", dir, "-cf", "-", "--anchored", "--no-wildcards"};
  for (const std::string& name : excluded) argv.push_back("--exclude=" + name);
  argv.push_back(".");
  return argv;
}

json tar_unpack(const std::string& dir) {
  return {kSandboxTar, "-C", dir, "--no-same-owner", "--no-same-permissions", "-xf", "-"};
}

// The path the kernel knows an open descriptor by ("" when it has none).
std::string path_of(int fd) {
  char buf[PATH_MAX];
  const ssize_t n =
      ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1);
  return n > 0 && buf[0] == '/' ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

// ward's placeholders (the empty read-only names it reserves in a sandbox's writable paths while
// the sandbox runs, sandbox/launch.h) are not the workload's work, and no download carries them:
// an open file or directory is one when it bears their mark, or is one of those the sandbox
// holds (`listed`, host paths: marks need a filesystem that keeps extended attributes).
bool is_placeholder(int fd, const std::vector<std::string>& listed) {
  char mark;
  if (::fgetxattr(fd, "user.ward.placeholder", &mark, 1) == 1) return true;
  struct stat st, held;
  if (::fstat(fd, &st) != 0) return false;
  for (const std::string& path : listed)
    if (::lstat(path.c_str(), &held) == 0 && held.st_dev == st.st_dev && held.st_ino == st.st_ino)
      return true;
  return false;
}

// The placeholders of `listed` beneath the open directory `dir`, as tar names them when it packs
// `dir` as "." ("./.mcp.json", "./repo/.git/commondir"). Both sides are compared as the kernel
// resolves them, so a workdir reached through a symlink, or a directory downloaded through a
// symlink inside the workspace, still finds them.
std::vector<std::string> placeholders_beneath(int dir, const std::vector<std::string>& listed) {
  std::vector<std::string> names;
  const std::string top = path_of(dir);
  if (top.empty()) return names;
  for (const std::string& path : listed) {
    UniqueFd held(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    const std::string real = held ? path_of(held.get()) : "";
    if (top == "/" && real.size() > 1)
      names.push_back("." + real);
    else if (real.size() > top.size() + 1 && real.starts_with(top) && real[top.size()] == '/')
      names.push_back("." + real.substr(top.size()));
  }
  return names;
}

// Single files are read and written by the gateway itself, beneath the workspace (openat2
// RESOLVE_BENEATH: no `..` or symlink leads out). Directories travel as tar archives packed and
// unpacked by `tar` inside the sandbox — with the sandbox's own rights, never the gateway's — so
// the sandbox must be running for them.
asio::awaitable<Reply> Gateway::files_get(const SandboxRecord& record, const Query& query) {
  auto path = query_value(query, "path");
  if (!path) co_return Reply::error(400, "bad_request", "path is required");
  auto opened = open_in_workspace(record.workdir, *path, O_RDONLY);
  if (!opened) co_return Reply::error(400, "invalid_path", opened.error().describe());
  struct stat st;
  if (::fstat(opened->get(), &st) != 0) co_return Reply::error(500, "internal", "fstat");
  auto it = runtimes_.find(record.id);
  const std::vector<std::string> no_placeholders;
  const std::vector<std::string>& placeholders =
      it == runtimes_.end() ? no_placeholders : it->second->placeholders;
  if (is_placeholder(opened->get(), placeholders))
    co_return Reply::error(404, "not_found",
                           *path +
                               " is a placeholder ward keeps while the sandbox runs, not a "
                               "file of the workspace");
  if (S_ISDIR(st.st_mode)) {
    if (it == runtimes_.end() || record.status != "running")
      co_return Reply::error(409, "not_running",
                             "a directory is packed inside the sandbox: start it first");
    const std::string inside = record.workdir + "/" + *path;
    Collected c = co_await collect(
        *it->second, tar_pack(inside, placeholders_beneath(opened->get(), placeholders)), "");
    if (c.too_big)
      co_return Reply::error(413, "body_too_large", "the directory packs to more than 64 MiB");
    if (!c.error.empty()) co_return Reply::error(500, "internal", "tar: " + c.error);
    Reply r;
    r.content_type = "application/x-tar";
    r.body = std::move(c.out);
    co_return r;
  }
  if (!S_ISREG(st.st_mode)) co_return Reply::error(400, "invalid_path", "not a regular file");
  if (static_cast<std::size_t>(st.st_size) > kMaxUpload)
    co_return Reply::error(413, "body_too_large", "the file is larger than 64 MiB");
  std::string data(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t at = 0;
  while (at < data.size()) {
    ssize_t n = ::read(opened->get(), data.data() + at, data.size() - at);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  data.resize(at);
  Reply r;
  r.content_type = "application/octet-stream";
  r.body = std::move(data);
  co_return r;
}

asio::awaitable<Reply> Gateway::files_put(const SandboxRecord& record, const Query& query,
                                          const Request& req) {
  auto path = query_value(query, "path");
  if (!path) co_return Reply::error(400, "bad_request", "path is required");
  if (req[http::field::content_type].starts_with("application/x-tar")) {
    auto it = runtimes_.find(record.id);
    if (it == runtimes_.end() || record.status != "running")
      co_return Reply::error(409, "not_running",
                             "a directory is unpacked inside the sandbox: start it first");
    auto dir = open_in_workspace(record.workdir, *path, O_RDONLY | O_DIRECTORY, true);
    if (!dir) co_return Reply::error(400, "invalid_path", dir.error().describe());
    const std::string inside = record.workdir + "/" + *path;
    Collected c = co_await collect(*it->second, tar_unpack(inside), req.body());
    if (!c.error.empty()) co_return Reply::error(400, "bad_request", "tar: " + c.error);
    co_return Reply::json(200, {{"path", *path}, {"bytes", req.body().size()}});
  }
  const std::string& data = req.body();
  if (auto written = write_in_workspace(record.workdir, *path, data); !written) {
    if (written.error().err == 0)
      co_return Reply::error(400, "invalid_path", written.error().describe());
    co_return Reply::error(500, "internal", written.error().message);
  }
  co_return Reply::json(200, {{"path", *path}, {"bytes", data.size()}});
}

// ---- providers ----

Reply Gateway::providers_post(const json& body) {
  if (auto bad =
          check_fields(body, {"name", "profile", "profile_yaml", "values"}, {"name", "values"}))
    return *bad;
  if (!body["name"].is_string() || !valid_name(body["name"]))
    return Reply::error(400, "invalid_name", "a provider name is 1-63 characters of a-z, 0-9, '-'");
  const std::string name = body["name"];
  if ((body.contains("profile") && !body["profile"].is_string()) ||
      (body.contains("profile_yaml") && !body["profile_yaml"].is_string()))
    return Reply::error(400, "bad_request", "profile and profile_yaml are strings");
  // A user-defined profile comes as its file's text and is kept with the provider.
  std::optional<creds::Profile> loaded;
  const std::string profile_yaml = body.value("profile_yaml", "");
  if (body.contains("profile_yaml")) {
    creds::ProfileLoad made = creds::load_profile(profile_yaml, "profile_yaml");
    // Every problem with its position, as invalid_policy gives them.
    if (!made.profile) return Reply::invalid("invalid_profile", made.diagnostics);
    loaded = std::move(*made.profile);
    if (body.contains("profile") && body["profile"] != loaded->id)
      return Reply::error(400, "bad_request",
                          "profile " + body["profile"].get<std::string>() +
                              " is not the id of profile_yaml (" + loaded->id + ")");
  }
  const std::string profile_id = loaded ? loaded->id : body.value("profile", name);
  const creds::Profile* profile = loaded ? &*loaded : creds::builtin_profile(profile_id);
  if (!profile)
    return Reply::error(400, "bad_request",
                        "no built-in profile named " + profile_id +
                            " (give a profile of your own as profile_yaml)");
  if (!body["values"].is_object() || body["values"].empty())
    return Reply::error(400, "bad_request", "values is an object of VARIABLE: value");
  std::map<std::string, std::string> values;
  std::vector<std::string> known;
  for (const auto& c : profile->credentials)
    for (const auto& v : c.env_vars) known.push_back(v);
  for (auto& [k, v] : body["values"].items()) {
    if (!v.is_string()) return Reply::error(400, "bad_request", "values are strings");
    if (std::find(known.begin(), known.end(), k) == known.end())
      return Reply::error(400, "bad_request", "profile " + profile_id + " has no variable " + k);
    values[k] = v.get<std::string>();
    // What no header can carry would only fail every sandbox that is given it (the vault's
    // check); refused here, where it is given. The value itself is never quoted.
    if (values[k].find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos)
      return Reply::error(400, "invalid_value",
                          k + " holds a carriage return, line feed or NUL byte");
  }
  ProviderRecord record{name, profile_id, profile_yaml, {}, unix_now()};
  for (const auto& [k, v] : values) record.variables.push_back(k);
  if (auto r = store_.insert_provider(record); !r) {
    if (r.error().message == "already exists")
      return Reply::error(409, "already_exists", "a provider named " + name + " exists");
    return Reply::error(500, "internal", r.error().describe());
  }
  if (auto r = secrets_.put(name, values); !r) {
    static_cast<void>(store_.delete_provider(name));
    return Reply::error(500, "internal", r.error().describe());
  }
  return Reply::json(201, provider_json(record));
}

// ---- status and metrics ----

Reply Gateway::status() {
  json counts = {{"creating", 0}, {"running", 0}, {"stopped", 0}, {"error", 0}};
  auto all = store_.list_sandboxes();
  if (all)
    for (const auto& r : *all) counts[r.status] = counts.value(r.status, 0) + 1;
  return Reply::json(200, {{"version", WARD_VERSION},
                           {"state_dir", options_.state_dir},
                           {"socket", options_.socket_path},
                           {"pid", ::getpid()},
                           {"uptime_s", unix_now() - started_at_},
                           {"sandboxes", counts}});
}

Reply Gateway::metrics() {
  std::string out;
  out += "# HELP ward_sandboxes Sandboxes by state.\n# TYPE ward_sandboxes gauge\n";
  std::map<std::string, int> counts = {
      {"creating", 0}, {"running", 0}, {"stopped", 0}, {"error", 0}};
  auto all = store_.list_sandboxes();
  if (all)
    for (const auto& r : *all) ++counts[r.status];
  for (const auto& [state, n] : counts)
    out += "ward_sandboxes{state=\"" + state + "\"} " + std::to_string(n) + "\n";
  out +=
      "# HELP ward_api_requests_total API requests by method.\n# TYPE ward_api_requests_total "
      "counter\n";
  for (const auto& [method, n] : requests_)
    out += "ward_api_requests_total{method=\"" + method + "\"} " + std::to_string(n) + "\n";
  out += "# HELP ward_execs_total Commands started with exec.\n# TYPE ward_execs_total counter\n";
  out += "ward_execs_total " + std::to_string(execs_) + "\n";
  out += exec_seconds_.render("ward_exec_duration_seconds",
                              "Exec round trips, from request to the command's exit.");
  out += proxy_metrics(options_.state_dir + "/sandboxes");
  Reply r;
  r.status = 200;
  r.content_type = "text/plain; version=0.0.4";
  r.body = std::move(out);
  return r;
}

int Gateway::run() {
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    log::error("cannot find ward's own executable: {}", std::strerror(errno));
    return 1;
  }
  exe_.assign(exe, static_cast<std::size_t>(n));

  const std::string socket_path = options_.socket_path;
  // Only a socket nobody listens on (a gateway that was killed left it) is replaced: not another
  // gateway's, not a file that happens to have the name.
  if (struct stat st; ::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log::error("{} exists and is not a socket: not replaced", socket_path);
      return 1;
    }
    local::socket probe(io_);
    boost::system::error_code refused;
    probe.connect(local::endpoint(socket_path), refused);
    if (!refused) {
      log::error("{}: something listens there already (another gateway?)", socket_path);
      return 1;
    }
    ::unlink(socket_path.c_str());
  }
  local::acceptor acceptor(io_);
  boost::system::error_code ec;
  acceptor.open(local(), ec);
  const mode_t old = ::umask(options_.socket_group.empty() ? 0177 : 0117);
  if (!ec) acceptor.bind(local::endpoint(socket_path), ec);
  ::umask(old);
  if (!ec) acceptor.listen(128, ec);
  if (ec) {
    log::error("{}: {}", socket_path, ec.message());
    return 1;
  }
  // Removed when the gateway ends, however it returns, if it is still the one bound here.
  struct OwnSocket {
    std::string path;
    struct stat made = {};
    ~OwnSocket() {
      struct stat now;
      if (::lstat(path.c_str(), &now) == 0 && now.st_dev == made.st_dev &&
          now.st_ino == made.st_ino)
        ::unlink(path.c_str());
    }
  } own{socket_path};
  ::lstat(socket_path.c_str(), &own.made);
  if (!options_.socket_group.empty()) {
    struct group* g = ::getgrnam(options_.socket_group.c_str());
    if (!g || ::chown(socket_path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
      log::error("--socket-group {}: no such group, or the socket cannot be given to it",
                 options_.socket_group);
      return 1;
    }
  }

  // --listen: TCP listeners, HTTPS with --tls-cert.
  if (!options_.tls_cert.empty()) {
    auto context = tls::make_server_context(options_.tls_cert, options_.tls_key);
    if (!context) {
      log::error("--tls-cert/--tls-key: {}", context.error().describe());
      return 1;
    }
    tls_.emplace(std::move(*context));
  }
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> tcp;
  for (const std::string& address : options_.listen) {
    const auto colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    const std::string port = colon == std::string::npos ? "" : address.substr(colon + 1);
    auto ip = asio::ip::make_address(host, ec);
    char* end = nullptr;
    const unsigned long number = std::strtoul(port.c_str(), &end, 10);
    if (ec || port.empty() || *end || number > 65535) {
      log::error("--listen {}: not an IP address and port (127.0.0.1:8080, [::1]:8080)", address);
      return 1;
    }
    if (options_.no_auth && !ip.is_loopback()) {
      log::error("--listen {}: --no-auth is only allowed on a loopback address", address);
      return 1;
    }
    if (!options_.no_auth && options_.token.empty()) {
      log::error("--listen {}: a bearer token is needed", address);
      return 1;
    }
    auto acceptor = std::make_unique<asio::ip::tcp::acceptor>(io_);
    const asio::ip::tcp::endpoint where(ip, static_cast<unsigned short>(number));
    acceptor->open(where.protocol(), ec);
    if (!ec) acceptor->set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor->bind(where, ec);
    // The kernel's largest backlog: a burst of connections waits there rather than being
    // dropped (and retried a second later) while the loop accepts.
    if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      log::error("--listen {}: {}", address, ec.message());
      return 1;
    }
    log::info("gateway listening on {}://{} ({})", tls_ ? "https" : "http", address,
              options_.no_auth ? "no token: loopback only" : "bearer token");
    asio::co_spawn(io_, accept_tcp(*acceptor, ip.is_loopback()), asio::detached);
    tcp.push_back(std::move(acceptor));
  }

  asio::signal_set signals(io_, SIGINT, SIGTERM, SIGCHLD);
  std::function<void(boost::system::error_code, int)> on_signal;
  on_signal = [&](boost::system::error_code e, int sig) {
    if (e) return;
    if (sig == SIGCHLD) {
      // Supervisors the gateway started: reaped here, their end is told by their socket.
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
      }
      signals.async_wait(on_signal);
      return;
    }
    log::info("{}: stopping the gateway ({})", sig == SIGINT ? "SIGINT" : "SIGTERM",
              options_.stop_sandboxes_on_exit ? "and its sandboxes" : "sandboxes keep running");
    asio::co_spawn(
        io_,
        [this, &acceptor, &tcp, &signals]() -> asio::awaitable<void> {
          if (options_.stop_sandboxes_on_exit) {
            std::vector<std::string> ids;
            for (auto& [id, rt] : runtimes_) ids.push_back(id);
            for (const std::string& id : ids) {
              auto r = store_.find_sandbox(id);
              if (r && *r) co_await stop_sandbox(**r);
            }
          }
          stopping_ = true;
          boost::system::error_code ignored;
          acceptor.close(ignored);
          for (auto& a : tcp) a->close(ignored);
          signals.cancel(ignored);
          runtimes_.clear();
          io_.stop();
        },
        asio::detached);
  };
  signals.async_wait(on_signal);

  reattach_all();
  empty_trash();
  asio::co_spawn(io_, accept_loop(acceptor), asio::detached);
  asio::co_spawn(io_, idle_sweep(), asio::detached);
  log::info("gateway listening on {} (state in {})", socket_path, options_.state_dir);
  if (options_.on_listening) std::thread(options_.on_listening).detach();
  io_.run();
  return 0;
}

}  // namespace

int run_gateway(const GatewayOptions& given) {
  GatewayOptions options = given;
  // A command that stops reading its stdin (`head -c 5`), or tar at the end of an uploaded
  // archive, closes the pipe the gateway is still writing: that is an EPIPE for the one write,
  // never the gateway's end. (Supervisors are spawned with every signal at its default.)
  ::signal(SIGPIPE, SIG_IGN);
  // Every API connection, sandbox control socket and proxied connection is a descriptor: the
  // soft limit (1024 by default) would run out long before the hard one.
  proxy::raise_file_limit();
  if (options.socket_path.empty()) options.socket_path = options.state_dir + "/gateway.sock";
  for (const std::string& sub : {std::string(), std::string("/sandboxes"),
                                 std::string("/workspaces"), std::string("/trash")}) {
    const std::string dir = options.state_dir + sub;
    if (::mkdir(dir.c_str(), sub == "/workspaces" ? 0755 : 0700) != 0 && errno != EEXIST) {
      log::error("mkdir {}: {}", dir, std::strerror(errno));
      return 1;
    }
  }
  // One gateway per state directory.
  const std::string lock_path = options.state_dir + "/gateway.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    log::error("another gateway is running with the state directory {}", options.state_dir);
    return 1;
  }
  auto store = Store::open(options.state_dir + "/ward.db");
  if (!store) {
    log::error("{}", store.error().describe());
    return 1;
  }
  auto secrets = SecretStore::open(options.state_dir + "/secrets.json");
  if (!secrets) {
    log::error("{}", secrets.error().describe());
    return 1;
  }
  Gateway gateway(options, std::move(*store), std::move(*secrets));
  return gateway.run();
}

}  // namespace ward::gateway
