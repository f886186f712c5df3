// Persistent: a long-lived sandbox whose init starts commands on request (see sandbox.h).
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "base/log.h"
#include "sandbox/launch.h"
#include "sandbox/sandbox.h"

namespace ward::sandbox {
namespace {

constexpr auto kReadyTimeout = std::chrono::seconds(30);

// What a slot's command needs until it has exec'd (the init reads it from our memory).
struct PendingExec {
  std::vector<std::string> argv, env;
  std::string workdir;
  std::vector<char*> argv_c, env_c;
};

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string_view name_of(const std::string& entry) {
  return std::string_view(entry).substr(0, entry.find('='));
}

bool send_with_fds(int sock, const Message& m, const int* fds, int count) {
  struct iovec iov = {const_cast<Message*>(&m), sizeof m};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(3 * sizeof(int))] = {};
  attach_fds(msg, control, fds, static_cast<std::size_t>(count));
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof m);
}

int exit_code_of(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

struct Persistent::Impl {
  RunOptions options;
  std::unique_ptr<Launch> launch;
  EgressEndpoint egress;
  std::array<std::unique_ptr<PendingExec>, kMaxExecs> pending;
  std::array<bool, kMaxExecs> busy{};
  bool ended = false;
  bool exit_reported = false;
  Message exit_report;
  int init_status = 0;
  Outcome outcome;

  void finish();
};

Persistent::Persistent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Persistent>> Persistent::start(RunOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->options.argv.clear();
  auto prepared = Launch::prepare(impl->options, true);
  if (!prepared) return tl::unexpected(prepared.error());
  impl->launch = std::move(*prepared);
  Launch& l = *impl->launch;
  if (auto started = l.start(); !started) return tl::unexpected(started.error());

  // Sync 3: the init builds the root and answers kReady (with the egress fds) or kSetupError.
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      l.abort();
      return fail("the sandbox init did not become ready in time");
    }
    struct pollfd fd = {l.sock.get(), POLLIN, 0};
    if (::poll(&fd, 1, static_cast<int>(left.count())) < 0 && errno != EINTR)
      return fail_errno("poll");
    Message m;
    std::vector<UniqueFd> fds;
    ssize_t got = receive_message(l.sock.get(), m, &fds);
    if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (got != static_cast<ssize_t>(sizeof m)) {
      l.abort();
      return fail("the sandbox init died before reporting");
    }
    if (m.type == Message::kSetupError) {
      l.abort();
      return fail("cannot start the sandbox: " + describe_error(m.error));
    }
    if (m.type != Message::kReady) continue;
    if (fds.size() == 2)
      impl->egress = EgressEndpoint{std::move(fds[0]), std::move(fds[1]), l.init};
    break;
  }
  return std::unique_ptr<Persistent>(new Persistent(std::move(impl)));
}

Persistent::~Persistent() {
  if (!impl_) return;
  // Launch's destructor kills and reaps the init; the cgroups go after it.
  impl_->launch->abort();
  if (impl_->launch->cgroups) impl_->launch->cgroups->remove();
}

pid_t Persistent::init_pid() const {
  return impl_->launch->init;
}

const std::string& Persistent::workdir() const {
  return impl_->launch->plan.workdir;
}

std::vector<std::string> Persistent::placeholders() const {
  return impl_->launch->placeholders.wards();
}

EgressEndpoint Persistent::take_egress() {
  return std::move(impl_->egress);
}

int Persistent::socket_fd() const {
  return impl_->launch->sock.get();
}

int Persistent::signal_fd() const {
  return impl_->launch->sigfd.get();
}

Result<int> Persistent::exec(Exec exec) {
  Impl& m = *impl_;
  if (m.ended) return fail("the sandbox has ended");
  if (exec.argv.empty()) return fail("no command given");
  int slot = -1;
  for (int i = 0; i < kMaxExecs && slot < 0; ++i)
    if (!m.busy[i]) slot = i;
  if (slot < 0)
    return fail("too many commands running in this sandbox (" + std::to_string(kMaxExecs) + ")");

  for (const UniqueFd& fd : exec.stdio)
    if (!fd) return fail("exec needs stdin, stdout and stderr");
  auto p = std::make_unique<PendingExec>();
  p->argv = std::move(exec.argv);
  p->env = m.launch->env;
  for (std::string& entry : exec.env) {
    if (entry.find('=') == std::string::npos) return fail("not NAME=value: " + entry);
    std::erase_if(p->env, [&](const std::string& e) { return name_of(e) == name_of(entry); });
    p->env.push_back(std::move(entry));
  }
  p->workdir = exec.workdir.empty() ? m.launch->plan.workdir : std::move(exec.workdir);
  p->argv_c = pointers(p->argv);
  p->env_c = pointers(p->env);
  ExecSlot& s = m.launch->spec.execs[slot];
  s.argv = p->argv_c.data();
  s.envp = p->env_c.data();
  s.workdir = p->workdir.c_str();
  s.tty = exec.tty;

  Message req;
  req.type = Message::kExec;
  req.slot = slot;
  const int fds[3] = {exec.stdio[0].get(), exec.stdio[1].get(), exec.stdio[2].get()};
  if (!send_with_fds(m.launch->sock.get(), req, fds, 3)) return fail_errno("send to the init");
  m.pending[slot] = std::move(p);
  m.busy[slot] = true;
  return slot;
}

void Persistent::signal(int slot, int sig) {
  Impl& m = *impl_;
  if (m.ended || slot < 0 || slot >= kMaxExecs || !m.busy[slot]) return;
  Message req;
  req.type = Message::kSignal;
  req.slot = slot;
  req.value = sig;
  ::send(m.launch->sock.get(), &req, sizeof req, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void Persistent::stop() {
  Impl& m = *impl_;
  if (m.ended) return;
  Message req;
  req.type = Message::kStop;
  if (::send(m.launch->sock.get(), &req, sizeof req, MSG_NOSIGNAL) != sizeof req)
    ::kill(m.launch->init, SIGKILL);  // an init that cannot hear us cannot be asked nicely
}

std::vector<Persistent::Event> Persistent::read_events() {
  Impl& m = *impl_;
  std::vector<Event> events;
  for (;;) {
    Message msg;
    ssize_t got = receive_message(m.launch->sock.get(), msg, nullptr);
    if (got != static_cast<ssize_t>(sizeof msg)) break;
    if (msg.type == Message::kExit) {
      m.exit_report = msg;
      m.exit_reported = true;
      continue;
    }
    const int slot = msg.slot;
    if (slot < 0 || slot >= kMaxExecs || !m.busy[slot]) continue;
    Event e;
    e.slot = slot;
    switch (msg.type) {
      case Message::kExecStarted:
        e.kind = Event::Kind::kStarted;
        e.pid = msg.value;
        m.pending[slot].reset();
        break;
      case Message::kExecFailed: {
        e.kind = Event::Kind::kFailed;
        const ChildError& err = msg.error;
        if (err.step == Step::kExec) {
          std::tie(e.exit_code, e.message) = exec_failure(err);
        } else {
          e.exit_code = kExitSetupFailed;
          e.message = "cannot start the command: " + describe_error(err);
        }
        m.pending[slot].reset();
        m.busy[slot] = false;
        m.launch->spec.execs[slot] = ExecSlot{};
        break;
      }
      case Message::kExecExit:
        e.kind = Event::Kind::kExited;
        e.status = msg.value;
        e.exit_code = exit_code_of(msg.value);
        m.busy[slot] = false;
        m.launch->spec.execs[slot] = ExecSlot{};
        break;
      default:
        continue;
    }
    events.push_back(std::move(e));
  }
  return events;
}

std::vector<int> Persistent::read_signals() {
  Impl& m = *impl_;
  std::vector<int> others;
  struct signalfd_siginfo si;
  while (::read(m.launch->sigfd.get(), &si, sizeof si) == sizeof si) {
    const int sig = static_cast<int>(si.ssi_signo);
    if (sig != SIGCHLD) {
      others.push_back(sig);
      continue;
    }
    if (!m.ended && m.launch->init > 0 &&
        ::waitpid(m.launch->init, &m.init_status, WNOHANG) == m.launch->init) {
      m.launch->init = 0;
      m.finish();
    }
  }
  return others;
}

void Persistent::Impl::finish() {
  ended = true;
  // The kExit message may still be queued.
  Message msg;
  while (::recv(launch->sock.get(), &msg, sizeof msg, MSG_DONTWAIT) == sizeof msg)
    if (msg.type == Message::kExit) {
      exit_report = msg;
      exit_reported = true;
    }
  // No out-of-memory outcome here: an OOM kill ends a command (its exec sees the SIGKILL), never
  // the sandbox, whose init is outside the memory cgroup (child.h).
  if (launch->cgroups) launch->cgroups->remove();
  launch->abort();  // restores the signal mask
  if (!exit_reported) {
    outcome.kind = Outcome::Kind::kSetupFailed;
    outcome.exit_code = kExitSetupFailed;
    outcome.message =
        "the sandbox init died unexpectedly (status " + std::to_string(init_status) + ")";
  } else if (exit_report.ended == 1) {
    outcome.kind = Outcome::Kind::kTimedOut;
    outcome.exit_code = kExitTimeout;
    outcome.message = "the sandbox reached its time limit";
  } else {
    outcome.message = "stopped";
  }
}

bool Persistent::ended() const {
  return impl_->ended;
}

Outcome Persistent::outcome() const {
  return impl_->outcome;
}

}  // namespace ward::sandbox
