// The supervisor of one long-lived sandbox: `ward __sandbox DIR`, started by the gateway.
//
// It owns the sandbox (the init is its child and shares its memory), so the sandbox outlives the
// gateway: a gateway that restarts connects to DIR/control.sock and takes the egress listener
// again. It is single-threaded: one poll loop over the init's socket, the signalfd, the control
// listener and the connected gateways, woken too when the sandbox's lifetime is up.
#include "gateway/supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <ctime>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "base/log.h"
#include "gateway/control.h"
#include "gateway/spec.h"
#include "policy/policy.h"
#include "sandbox/sandbox.h"

namespace ward::gateway {
namespace {

using nlohmann::json;
using sandbox::Persistent;

constexpr int kFirstGatewayFd = 3;  // the socketpair end of the gateway that started us

struct Client {
  UniqueFd sock;
  bool closed = false;
};

// When the sandbox must stop, and the reason its record then gives.
struct Lifetime {
  std::chrono::steady_clock::time_point end;
  std::string reason;
};

struct Running {
  bool main = false;         // the sandbox's main command
  Client* client = nullptr;  // who asked for it; null once that gateway went away
  std::int64_t id = 0;       // the gateway's exec id
};

class Supervisor {
 public:
  Supervisor(std::string dir, SandboxSpec spec, std::unique_ptr<Persistent> sandbox)
      : dir_(std::move(dir)), spec_(std::move(spec)), sandbox_(std::move(sandbox)) {
    egress_ = sandbox_->take_egress();
  }

  Result<void> listen();
  Result<void> start_main();
  void set_lifetime(Lifetime lifetime) { lifetime_ = std::move(lifetime); }
  Client& add_client(UniqueFd sock) { return clients_.emplace_back(Client{std::move(sock)}); }
  void hello(Client& c);
  int loop();

 private:
  void publish(const json& m) {
    for (Client& c : clients_)
      if (!c.closed) static_cast<void>(send_control(c.sock.get(), m));
  }
  void save_state();
  // The stop protocol for everything, once; `reason` is what the record says (a main command it
  // ends is no failure).
  void begin_stop(std::string reason);
  void on_request(Client& c, ControlMessage m);
  void on_event(const Persistent::Event& e);
  void drop(Client& c);

  std::string dir_;
  SandboxSpec spec_;
  std::unique_ptr<Persistent> sandbox_;
  sandbox::EgressEndpoint egress_;
  UniqueFd listener_;
  std::list<Client> clients_;
  std::map<int, Running> running_;  // by exec slot
  SandboxState state_;
  bool stopping_ = false;
  std::string stop_reason_ = "stopped";
  std::optional<Lifetime> lifetime_;
};

// "2 s", or "1500 ms" when it is no whole number of seconds.
std::string duration_text(std::int64_t ms) {
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

Result<void> Supervisor::listen() {
  const std::string path = dir_ + "/control.sock";
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return fail(path + ": path too long for a socket");
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  listener_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!listener_) return fail_errno("socket");
  ::unlink(path.c_str());
  const mode_t old = ::umask(0077);
  const int rc = ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::umask(old);
  if (rc != 0) return fail_errno("bind " + path);
  if (::listen(listener_.get(), 16) != 0) return fail_errno("listen " + path);
  return {};
}

Result<void> Supervisor::start_main() {
  state_.status = "running";
  state_.supervisor_pid = ::getpid();
  state_.init_pid = sandbox_->init_pid();
  if (spec_.command.empty()) {
    save_state();
    return {};
  }
  const std::string log = dir_ + "/output.log";
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!out) return fail_errno("open " + log);
  Persistent::Exec exec;
  exec.argv = spec_.command;
  exec.env = spec_.env;
  exec.stdio[0].reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  exec.stdio[1].reset(::dup(out.get()));
  exec.stdio[2] = std::move(out);
  auto slot = sandbox_->exec(std::move(exec));
  if (!slot) return tl::unexpected(slot.error());
  running_[*slot] = Running{true, nullptr, 0};
  save_state();
  return {};
}

void Supervisor::save_state() {
  if (auto r = write_state(dir_ + "/state.json", state_); !r)
    log::error("{}", r.error().describe());
}

void Supervisor::hello(Client& c) {
  // ward's placeholders, for downloads to leave out; as many as fit in a control message with
  // room to spare (a few dozen in a workspace, a few per repository in it), and only those JSON
  // can carry (UTF-8): one that is not would make the whole hello unsendable.
  json placeholders = json::array();
  std::size_t room = kMaxControlMessage / 2;
  for (std::string& path : sandbox_->placeholders()) {
    json one = std::move(path);
    std::string text;
    try {
      text = one.dump();
    } catch (const json::type_error&) {
      continue;
    }
    if (text.size() + 1 > room) break;
    room -= text.size() + 1;
    placeholders.push_back(std::move(one));
  }
  json m = {{"op", "hello"},
            {"init_pid", sandbox_->init_pid()},
            {"supervisor_pid", ::getpid()},
            {"workdir", sandbox_->workdir()},
            {"placeholders", std::move(placeholders)},
            {"main", nullptr}};
  if (state_.main)
    m["main"] = {
        {"code", state_.main->code}, {"signal", state_.main->signal}, {"at", state_.main->at}};
  std::vector<int> fds;
  if (egress_.listener) fds = {egress_.listener.get(), egress_.diag.get()};
  if (!send_control(c.sock.get(), m, fds)) drop(c);
}

void Supervisor::begin_stop(std::string reason) {
  if (stopping_) return;
  stopping_ = true;
  stop_reason_ = std::move(reason);
  sandbox_->stop();
}

void Supervisor::drop(Client& c) {
  if (c.closed) return;
  c.closed = true;
  c.sock.reset();
  // Commands started for a gateway that went away have nobody to stream to.
  for (auto& [slot, r] : running_) {
    if (r.client != &c) continue;
    r.client = nullptr;
    sandbox_->signal(slot, SIGKILL);
  }
}

void Supervisor::on_request(Client& c, ControlMessage m) {
  const std::string op = m.body["op"].get<std::string>();
  if (op == "hello") return hello(c);
  if (op == "stop") {
    // Why, as the gateway says ("stopped"; "idle for its --idle-ttl of 600 s").
    const auto reason = m.body.find("reason");
    begin_stop(reason != m.body.end() && reason->is_string() ? reason->get<std::string>()
                                                             : "stopped");
    return;
  }
  const std::int64_t id = m.body.value("id", std::int64_t{0});
  if (op == "signal") {
    for (auto& [slot, r] : running_)
      if (r.client == &c && r.id == id) sandbox_->signal(slot, m.body.value("signal", SIGKILL));
    return;
  }
  if (op != "exec") return;
  auto refuse = [&](int code, const std::string& message) {
    static_cast<void>(send_control(
        c.sock.get(), {{"op", "failed"}, {"id", id}, {"code", code}, {"message", message}}));
  };
  Persistent::Exec exec;
  try {
    exec.argv = m.body.at("argv").get<std::vector<std::string>>();
    exec.env = spec_.env;
    for (auto& e : m.body.value("env", std::vector<std::string>{})) exec.env.push_back(e);
    exec.workdir = m.body.value("workdir", "");
    // A relative workdir is the workspace's, as paths are for the files API and MCP (the init's
    // own directory is /).
    if (!exec.workdir.empty() && exec.workdir.front() != '/')
      exec.workdir = sandbox_->workdir() + "/" + exec.workdir;
    exec.tty = m.body.value("tty", false);
  } catch (const json::exception&) {
    return refuse(sandbox::kExitSetupFailed, "malformed exec request");
  }
  if (m.fds.size() != 3) return refuse(sandbox::kExitSetupFailed, "exec needs three fds");
  for (int i = 0; i < 3; ++i) exec.stdio[i] = std::move(m.fds[i]);
  auto slot = sandbox_->exec(std::move(exec));
  if (!slot) return refuse(sandbox::kExitSetupFailed, slot.error().describe());
  running_[*slot] = Running{false, &c, id};
}

void Supervisor::on_event(const Persistent::Event& e) {
  auto it = running_.find(e.slot);
  if (it == running_.end()) return;
  const Running r = it->second;
  if (e.kind != Persistent::Event::Kind::kStarted) running_.erase(it);
  if (r.main) {
    if (e.kind == Persistent::Event::Kind::kStarted) return;
    MainExit exit{e.exit_code, 0, unix_now()};
    if (e.kind == Persistent::Event::Kind::kExited && WIFSIGNALED(e.status))
      exit.signal = WTERMSIG(e.status);
    state_.main = exit;
    if (stopping_) {
      // A stop (asked for, or a limit reached) ends the main command however it takes its
      // signal: stopped, for the stop's reason. (Its code and signal are in `main`.)
      state_.status = "stopped";
      state_.reason = stop_reason_;
    } else {
      state_.status = exit.code == 0 ? "stopped" : "error";
      state_.reason = e.kind == Persistent::Event::Kind::kFailed ? e.message
                      : exit.signal
                          ? "the main command was killed by signal " + std::to_string(exit.signal)
                          : "the main command exited with code " + std::to_string(exit.code);
    }
    lifetime_.reset();  // the sandbox ends with its main command: no limit is what ends it
    save_state();
    publish({{"op", "main_exit"}, {"code", exit.code}, {"signal", exit.signal}});
    // The sandbox lives as long as its main command (as a container does).
    sandbox_->stop();
    return;
  }
  if (!r.client || r.client->closed) return;
  json m;
  switch (e.kind) {
    case Persistent::Event::Kind::kStarted:
      m = {{"op", "started"}, {"id", r.id}, {"pid", e.pid}};
      break;
    case Persistent::Event::Kind::kFailed:
      m = {{"op", "failed"}, {"id", r.id}, {"code", e.exit_code}, {"message", e.message}};
      break;
    case Persistent::Event::Kind::kExited:
      m = {{"op", "exit"},
           {"id", r.id},
           {"code", e.exit_code},
           {"signal", WIFSIGNALED(e.status) ? WTERMSIG(e.status) : 0}};
      break;
  }
  if (!send_control(r.client->sock.get(), m)) drop(*r.client);
}

int Supervisor::loop() {
  while (!sandbox_->ended()) {
    std::vector<struct pollfd> fds = {{sandbox_->socket_fd(), POLLIN, 0},
                                      {sandbox_->signal_fd(), POLLIN, 0},
                                      {listener_.get(), POLLIN, 0}};
    std::vector<Client*> polled;
    for (Client& c : clients_) {
      if (c.closed) continue;
      fds.push_back({c.sock.get(), POLLIN, 0});
      polled.push_back(&c);
    }
    int wait_ms = -1;  // until something happens, or the lifetime ends
    if (lifetime_ && !stopping_) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(
          lifetime_->end - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        begin_stop(lifetime_->reason);
      else
        wait_ms = static_cast<int>(std::min<std::int64_t>(left.count(), INT_MAX));
    }
    if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR) break;
    if (fds[0].revents)
      for (const auto& e : sandbox_->read_events()) on_event(e);
    if (fds[1].revents) {
      for (int sig : sandbox_->read_signals()) {
        // SIGTERM / SIGINT to the supervisor: stop the sandbox (the host is shutting down).
        if (sig == SIGTERM || sig == SIGINT) begin_stop("stopped");
      }
    }
    if (fds[2].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) break;
        add_client(UniqueFd(fd));
      }
    }
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (!fds[3 + i].revents) continue;
      Client& c = *polled[i];
      for (;;) {
        auto m = receive_control(c.sock.get());
        if (!m) {
          drop(c);
          break;
        }
        if (!*m) break;
        on_request(c, std::move(**m));
        if (c.closed) break;
      }
    }
    clients_.remove_if([](const Client& c) { return c.closed; });
  }
  // The sandbox is gone: say how, once, to whoever listens, and leave the account behind.
  const sandbox::Outcome outcome = sandbox_->outcome();
  if (!state_.main) {
    const bool failed = outcome.kind == sandbox::Outcome::Kind::kSetupFailed ||
                        outcome.kind == sandbox::Outcome::Kind::kOutOfMemory;
    state_.status = failed ? "error" : "stopped";
    state_.reason = stopping_ ? stop_reason_ : outcome.message;
  }
  state_.init_pid = 0;
  save_state();
  ::unlink((dir_ + "/control.sock").c_str());
  publish({{"op", "ended"}, {"status", state_.status}, {"reason", state_.reason}});
  return 0;
}

}  // namespace

int supervisor_main(const std::string& dir) {
  UniqueFd first(kFirstGatewayFd);
  if (::fcntl(first.get(), F_GETFD) < 0) first.release();
  if (first) ::fcntl(first.get(), F_SETFD, FD_CLOEXEC);
  auto refuse = [&](const std::string& why) {
    log::error("{}", why);
    SandboxState state;
    state.status = "error";
    state.reason = why;
    static_cast<void>(write_state(dir + "/state.json", state));
    if (first) static_cast<void>(send_control(first.get(), {{"op", "error"}, {"message", why}}));
    return 1;
  };

  auto spec = read_spec(dir + "/spec.json");
  if (!spec) return refuse(spec.error().describe());
  policy::LoadResult loaded = policy::load_file(spec->policy_file);
  if (!loaded.ok()) return refuse(loaded.first_error());
  auto policy = std::make_shared<policy::Policy>(std::move(*loaded.policy));
  // The sandbox's lifetime (--max-lifetime, or the policy's resources.timeout when shorter) is
  // kept here rather than by the init: the stop then begins the moment it ends, as an asked-for
  // one does, and the record says which limit it was. (The init's time limit, meant for a
  // workload, ended a main command as a failure, and in a sandbox with nothing running in it
  // began only after a whole grace period: no exit came to wake the init.)
  std::optional<std::pair<std::chrono::milliseconds, std::string>> lifetime;
  if (spec->max_lifetime_ms > 0)
    lifetime = {std::chrono::milliseconds(spec->max_lifetime_ms),
                "reached its --max-lifetime of " + duration_text(spec->max_lifetime_ms)};
  if (const auto timeout = policy->resources.timeout;
      timeout && (!lifetime || *timeout < lifetime->first))
    lifetime = {*timeout,
                "reached its policy's resources.timeout of " + duration_text(timeout->count())};
  policy->resources.timeout.reset();

  sandbox::RunOptions options;
  options.policy = policy.get();
  options.workdir = spec->workdir;
  options.egress_port = spec->egress_port;
  options.trust_layer = spec->trust_layer;
  options.hidden = spec->hidden;
  options.secret_env = spec->secret_env;
  options.inference = spec->inference;
  options.grace = std::chrono::milliseconds(spec->grace_ms);
  options.cgroup_name = "ward-" + spec->id;
  auto sandbox = Persistent::start(std::move(options));
  if (!sandbox) return refuse(sandbox.error().describe());

  Supervisor supervisor(dir, std::move(*spec), std::move(*sandbox));
  if (lifetime)
    supervisor.set_lifetime({std::chrono::steady_clock::now() + lifetime->first, lifetime->second});
  if (auto r = supervisor.listen(); !r) return refuse(r.error().describe());
  if (auto r = supervisor.start_main(); !r) return refuse(r.error().describe());
  if (first) supervisor.hello(supervisor.add_client(std::move(first)));
  return supervisor.loop();
}

}  // namespace ward::gateway
