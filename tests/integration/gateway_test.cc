// `ward gateway` and `ward sandbox ...`: a real gateway process, driven through its API (a raw
// HTTP client over its Unix socket, for exact control of malformed input) and through ward's own
// CLI. Covers the "Lifecycle (daemon)" scenarios: policy on exec'd commands, policy revisions,
// stop/start/delete, upload/download (no escape through symlinks), the main process's exit, a
// gateway killed with SIGKILL and restarted, many sandboxes at once, and bad API input.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/harness.h"

namespace ward::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

struct HttpReply {
  int status = 0;
  std::string head;
  std::string body;  // de-chunked
  json json_body() const { return json::parse(body, nullptr, false); }
};

std::string dechunk(const std::string& raw) {
  std::string out;
  std::size_t at = 0;
  for (;;) {
    std::size_t eol = raw.find("\r\n", at);
    if (eol == std::string::npos) break;
    std::size_t size = std::stoul(raw.substr(at, eol - at), nullptr, 16);
    if (size == 0) break;
    out += raw.substr(eol + 2, size);
    at = eol + 2 + size + 2;
  }
  return out;
}

// A connection to the gateway's socket; -1 when there is none.
int connect_unix(const std::string& socket_path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket_path.c_str());
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// One request on a fresh connection (Connection: close), the whole answer read.
HttpReply http(const std::string& socket_path, const std::string& method, const std::string& target,
               const std::string& body = "", const std::string& extra_headers = "",
               const std::string& raw_request = "") {
  HttpReply reply;
  const int fd = connect_unix(socket_path);
  if (fd < 0) return reply;
  std::string request = raw_request;
  if (request.empty()) {
    request =
        method + " " + target + " HTTP/1.1\r\nHost: ward\r\nConnection: close\r\n" + extra_headers;
    if (!body.empty() || method == "POST" || method == "PUT")
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    request += "\r\n" + body;
  }
  for (std::size_t at = 0; at < request.size();) {
    ssize_t n = ::send(fd, request.data() + at, request.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  const auto began = std::chrono::steady_clock::now();
  struct timeval tv = {60, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string raw;
  char buf[65536];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  if (std::chrono::steady_clock::now() - began > 5s)
    ADD_FAILURE() << method << " " << target << " took more than 5 s";
  const std::size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.size() < 12) return reply;
  reply.status = std::atoi(raw.substr(9, 3).c_str());
  reply.head = raw.substr(0, end);
  reply.body = raw.substr(end + 4);
  if (reply.head.find("Transfer-Encoding: chunked") != std::string::npos)
    reply.body = dechunk(reply.body);
  return reply;
}

// ---- a client that reads when it likes ----

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// Reads what comes until `done(what came)`, the peer's end (true) or `timeout` (false). Only the
// last `keep` bytes are kept: a flood of output is read, not stored.
bool read_until(int fd, std::string& got, std::chrono::milliseconds timeout,
                const std::function<bool(const std::string&)>& done = nullptr,
                std::size_t keep = 1 << 20) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (!(done && done(got))) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return true;
    got.append(buf, static_cast<std::size_t>(n));
    if (got.size() > 2 * keep) got.erase(0, got.size() - keep);
  }
  return true;
}

// The exit line at the end of an exec stream (its last kept bytes), or null.
json last_exit_line(const std::string& tail) {
  const std::size_t type = tail.rfind("\"type\":\"exit\"");
  const std::size_t at = type == std::string::npos ? type : tail.rfind('{', type);
  if (at == std::string::npos) return json::object();
  json line = json::parse(tail.substr(at, tail.find('\n', at) - at), nullptr, false);
  return line.is_object() ? line : json::object();
}

// `POST /v1/sandboxes/NAME/exec` on a connection of its own, nothing read yet.
int start_exec(const std::string& socket_path, const std::string& name, const json& body) {
  const int fd = connect_unix(socket_path);
  const std::string text = body.dump();
  if (fd >= 0 && !send_all(fd, "POST /v1/sandboxes/" + name +
                                   "/exec HTTP/1.1\r\nHost: ward\r\nContent-Type: "
                                   "application/json\r\nContent-Length: " +
                                   std::to_string(text.size()) + "\r\n\r\n" + text)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A WebSocket client just big enough for connect: the opening handshake, masked text frames to
// the gateway, and the frames that come back.
class WsClient {
 public:
  struct Frame {
    int opcode = -1;  // 1 text, 2 binary, 8 close; -1: none came
    std::string payload;
  };

  WsClient(const std::string& socket_path, const std::string& target)
      : fd_(connect_unix(socket_path)) {
    if (fd_ < 0) return;
    send_all(fd_, "GET " + target +
                      " HTTP/1.1\r\nHost: ward\r\nUpgrade: websocket\r\nConnection: "
                      "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n");
    read_until(fd_, buffer_, 15s,
               [](const std::string& got) { return got.find("\r\n\r\n") != std::string::npos; });
    const std::size_t end = buffer_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    head_ = buffer_.substr(0, end);
    buffer_.erase(0, end + 4);
  }
  ~WsClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  WsClient(const WsClient&) = delete;

  bool upgraded() const { return head_.starts_with("HTTP/1.1 101"); }
  const std::string& head() const { return head_; }

  bool send_text(std::string_view text) {
    std::string frame = "\x81";
    if (text.size() < 126) {
      frame += static_cast<char>(0x80 | text.size());
    } else {
      frame += static_cast<char>(0x80 | 127);
      for (int i = 7; i >= 0; --i) frame += static_cast<char>((text.size() >> (8 * i)) & 0xff);
    }
    const char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.append(mask, 4);
    for (std::size_t i = 0; i < text.size(); ++i) frame += static_cast<char>(text[i] ^ mask[i % 4]);
    return send_all(fd_, frame);
  }

  // The next frame, within `timeout`.
  Frame next(std::chrono::milliseconds timeout) {
    Frame f;
    std::size_t length = 0, header = 0;
    auto complete = [&](const std::string& got) {
      if (got.size() < 2) return false;
      length = static_cast<unsigned char>(got[1]) & 0x7f;
      header = 2;
      if (length == 126 || length == 127) {
        const std::size_t bytes = length == 126 ? 2 : 8;
        if (got.size() < 2 + bytes) return false;
        length = 0;
        for (std::size_t i = 0; i < bytes; ++i)
          length = length << 8 | static_cast<unsigned char>(got[2 + i]);
        header += bytes;
      }
      return got.size() >= header + length;
    };
    if (!read_until(fd_, buffer_, timeout, complete, std::size_t(1) << 30) || !complete(buffer_))
      return f;
    f.opcode = buffer_[0] & 0x0f;
    f.payload = buffer_.substr(header, length);
    buffer_.erase(0, header + length);
    return f;
  }

 private:
  int fd_;
  std::string head_, buffer_;
};

struct ExecResult {
  int code = -1;
  std::string out, err;
  json last;
};

class Gateway {
 public:
  explicit Gateway(Mode mode) : mode_(mode), dir_(std::make_unique<TempDir>(mode)) {
    state_ = dir_->mkdir("state", 0700);
    socket_ = state_ + "/gateway.sock";
  }
  ~Gateway() {
    stop();
    // Sandboxes outlive gateways by design: the test's own end with their supervisors.
    for (pid_t pid : supervisors()) ::kill(pid, SIGKILL);
  }

  // The supervisor of each sandbox still running (from its state file).
  std::vector<pid_t> supervisors() const {
    std::vector<pid_t> pids;
    if (DIR* d = ::opendir((state_ + "/sandboxes").c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        json state = json::parse(read_file(state_ + "/sandboxes/" + e->d_name + "/state.json"),
                                 nullptr, false);
        if (state.is_object() && state["status"] == "running" &&
            ::kill(state.value("supervisor_pid", 0), 0) == 0)
          pids.push_back(state.value("supervisor_pid", 0));
      }
      ::closedir(d);
    }
    return pids;
  }

  void start(const std::vector<std::string>& options = {}) {
    RunOptions o;
    o.mode = mode_;
    o.timeout = 600s;
    std::vector<std::string> args = {"gateway", "--state-dir", state_};
    args.insert(args.end(), options.begin(), options.end());
    if (socket_ != state_ + "/gateway.sock") args.insert(args.end(), {"--socket", socket_});
    process_ = std::make_unique<Background>(ward_background(args, o, dir_->path()), dir_->path());
    ASSERT_TRUE(wait_until([&] { return http(socket_, "GET", "/v1/status").status == 200; }, 10s))
        << process_->err();
  }
  void stop() {
    if (!process_) return;
    ::kill(process_->pid(), SIGTERM);
    process_->wait(10s);
    process_.reset();
  }
  void kill9() {
    ::kill(process_->pid(), SIGKILL);
    process_->wait(5s);
    process_.reset();
  }

  HttpReply get(const std::string& target) { return http(socket_, "GET", target); }
  HttpReply post(const std::string& target, const json& body) {
    return http(socket_, "POST", target, body.dump());
  }
  HttpReply put(const std::string& target, const json& body) {
    return http(socket_, "PUT", target, body.dump());
  }
  HttpReply del(const std::string& target) { return http(socket_, "DELETE", target); }

  json create(const json& body) {
    HttpReply r = post("/v1/sandboxes", body);
    EXPECT_EQ(r.status, 201) << r.body << process_->err();
    return r.json_body();
  }
  ExecResult exec(const std::string& name, const json& body) {
    HttpReply r = post("/v1/sandboxes/" + name + "/exec", body);
    ExecResult e;
    EXPECT_EQ(r.status, 200) << r.body;
    std::istringstream lines(r.body);
    for (std::string line; std::getline(lines, line);) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_object()) continue;
      if (j["type"] == "stdout") e.out += unbase64(j["data"].get<std::string>());
      if (j["type"] == "stderr") e.err += unbase64(j["data"].get<std::string>());
      if (j["type"] == "exit" || j["type"] == "error") {
        e.code = j.value("code", -1);
        e.last = j;
      }
    }
    return e;
  }
  ExecResult sh(const std::string& name, const std::string& script) {
    return exec(name, {{"command", {"/bin/bash", "-c", script}}});
  }
  // `ward ARGS --gateway SOCKET` as the mode's user.
  Result cli(std::vector<std::string> args, const std::string& stdin_data = "") {
    args.insert(args.begin() + (args.size() > 1 ? 2 : 1), {"--gateway", socket_});
    RunOptions o;
    o.mode = mode_;
    o.stdin_data = stdin_data;
    o.cwd = dir_->path();
    return ward(args, o);
  }

  const std::string& state() const { return state_; }
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return process_ ? process_->pid() : 0; }
  void set_socket(const std::string& path) { socket_ = path; }  // before start()
  TempDir& dir() { return *dir_; }
  std::string log() const { return process_ ? process_->err() : ""; }

 private:
  Mode mode_;
  std::unique_ptr<TempDir> dir_;
  std::string state_, socket_;
  std::unique_ptr<Background> process_;
};

class GatewayTest : public ModeTest {};

// grep -rl for `needle` under `dir` (fixed string, binary files included).
Result ward_test_grep(const std::string& dir, const std::string& needle) {
  Result r;
  std::string cmd = "grep -rlaF " + shell_quote(needle) + " " + shell_quote(dir) + " 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while (p && (n = ::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  r.exit_code = p ? ::pclose(p) : -1;
  return r;
}

std::string policy_with_network(const std::string& network = "") {
  return policy_yaml("", "", network);
}

TEST_P(GatewayTest, LifecyclePolicyAppliesToExecStopStartDelete) {
  Gateway g(mode());
  g.start();
  const std::string secret = g.dir().write("secret.txt", "TOP-SECRET\n", 0644);
  json created = g.create(
      {{"name", "agent-1"}, {"policy", policy_with_network()}, {"labels", {{"team", "infra"}}}});
  ASSERT_EQ(created["status"], "running") << created.dump();
  ASSERT_TRUE(created["managed_workspace"].get<bool>());
  const std::string workdir = created["workdir"];

  ExecResult hi = g.exec("agent-1", {{"command", {"/bin/echo", "hi"}}});
  EXPECT_EQ(hi.code, 0);
  EXPECT_EQ(hi.out, "hi\n");
  // The policy holds for exec'd commands: the workspace is writable, a file outside is not
  // readable, the host's processes are not visible, and there is no network but the proxy.
  ExecResult w = g.sh("agent-1", "echo kept > kept.txt && pwd");
  EXPECT_EQ(w.code, 0) << w.err;
  EXPECT_EQ(w.out, workdir + "\n");
  ExecResult r = g.sh("agent-1", "cat " + secret);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out.find("TOP-SECRET"), std::string::npos);
  ExecResult ps = g.sh("agent-1", "ls /proc | grep -c '^[0-9]'");
  EXPECT_LE(std::stoi(ps.out), 4) << ps.out;
  ExecResult net = g.sh("agent-1", "exec 3<>/dev/tcp/192.0.2.1/80");
  EXPECT_NE(net.code, 0);
  // stdin, stderr and the exit code travel separately.
  ExecResult io = g.exec("agent-1", {{"command", {"/bin/sh", "-c", "cat; echo err >&2; exit 7"}},
                                     {"stdin", "from stdin"}});
  EXPECT_EQ(io.code, 7);
  EXPECT_EQ(io.out, "from stdin");
  EXPECT_EQ(io.err, "err\n");
  // Without input the command reads end-of-file at once (its stdin is /dev/null), and a write
  // to it fails rather than reaching anything.
  ExecResult no_input = g.exec(
      "agent-1",
      {{"command", {"/bin/sh", "-c", "cat; readlink /proc/self/fd/0; echo x >&0 || echo refused"}},
       {"timeout_ms", 10000}});
  EXPECT_EQ(no_input.code, 0) << no_input.err;
  EXPECT_EQ(no_input.out, "/dev/null\nrefused\n") << no_input.err;
  ExecResult missing = g.exec("agent-1", {{"command", {"no-such-command"}}});
  EXPECT_EQ(missing.code, 127) << missing.last.dump();
  ExecResult slow = g.exec("agent-1", {{"command", {"/bin/sleep", "30"}}, {"timeout_ms", 300}});
  EXPECT_TRUE(slow.last.value("timed_out", false)) << slow.last.dump();

  // Listing and labels.
  json list = g.get("/v1/sandboxes?label=team=infra").json_body();
  ASSERT_EQ(list["sandboxes"].size(), 1u);
  EXPECT_EQ(g.get("/v1/sandboxes?label=team=other").json_body()["sandboxes"].size(), 0u);

  // Stop keeps the workspace; start brings the sandbox back with it.
  json stopped = g.post("/v1/sandboxes/agent-1/stop", json::object()).json_body();
  EXPECT_EQ(stopped["status"], "stopped") << stopped.dump();
  EXPECT_EQ(g.post("/v1/sandboxes/agent-1/exec", {{"command", {"/bin/true"}}}).status, 409);
  EXPECT_TRUE(exists(workdir + "/kept.txt"));
  json again = g.post("/v1/sandboxes/agent-1/start", json::object()).json_body();
  EXPECT_EQ(again["status"], "running") << again.dump();
  EXPECT_EQ(g.sh("agent-1", "cat kept.txt").out, "kept\n");

  // Delete removes everything, running or stopped.
  EXPECT_EQ(g.del("/v1/sandboxes/agent-1").status, 200);
  EXPECT_EQ(g.get("/v1/sandboxes/agent-1").status, 404);
  EXPECT_FALSE(exists(workdir));
  EXPECT_TRUE(g.supervisors().empty());
  EXPECT_NE(::kill(created["init_pid"].get<int>(), 0), 0);
  json second = g.create({{"name", "agent-2"}, {"policy", policy_with_network()}});
  g.post("/v1/sandboxes/agent-2/stop", json::object());
  EXPECT_EQ(g.del("/v1/sandboxes/agent-2").status, 200);
  EXPECT_EQ(g.get("/v1/sandboxes").json_body()["sandboxes"].size(), 0u);
}

// How many Landlock domains the calling process is nested in, printed as "landlock-depth: N"
// (the kernel allows 16: it counts how many more an empty ruleset can add). Python's ctypes, so
// that no probe binary must be visible in the sandbox. Nothing when the kernel has no Landlock.
constexpr const char* kLandlockDepth =
    "python3 -c 'import ctypes,struct\n"
    "c=ctypes.CDLL(None,use_errno=True); a=struct.pack(\"Q\",1)\n"
    "fd=c.syscall(444,a,8,0)\n"
    "n=0\n"
    "while fd>=0 and n<17 and c.syscall(446,fd,0)==0: n+=1\n"
    "fd>=0 and print(\"landlock-depth:\",16-n)'";

// Commands after the first come from the init's spawner thread, which loaded the seccomp filter,
// emptied the bounding set and set no_new_privs once: each command still runs with exactly that
// one filter, one Landlock domain, no_new_privs, no capability, in a cgroup namespace of its
// own, unable to unshare, mount or signal the init and its thread. (With the thread inside the
// commands' Landlock domain, the rootless commands could signal it: caught here.)
TEST_P(GatewayTest, EveryExecCarriesTheHardeningFromTheFirstToTheLast) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "hardened"}, {"policy", policy_with_network()}});
  const bool landlock = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, 1U) > 0;
  const std::string probe =
      "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs|CapEff|CapBnd):' /proc/self/status;"
      " cat /proc/self/cgroup | grep '^0::';"
      " unshare -U true 2>/dev/null && echo UNSHARED;"
      " unshare -m true 2>/dev/null && echo UNSHARED-MOUNT;"
      " for t in /proc/1/task/*; do kill -STOP ${t##*/} 2>/dev/null && echo SIGNALLED; done;"
      " ls /proc/1/task | wc -l; " +
      std::string(kLandlockDepth);
  for (int i = 0; i < 4; ++i) {
    ExecResult r = g.sh("hardened", probe);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("Seccomp:\t2\n"), std::string::npos) << "exec " << i << ": " << r.out;
    EXPECT_NE(r.out.find("Seccomp_filters:\t1\n"), std::string::npos)
        << "exec " << i << ": " << r.out;
    EXPECT_NE(r.out.find("NoNewPrivs:\t1\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapEff:\t0000000000000000\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("CapBnd:\t0000000000000000\n"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("0::/\n"), std::string::npos) << "not its own cgroup root: " << r.out;
    EXPECT_EQ(r.out.find("UNSHARED"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("SIGNALLED"), std::string::npos) << r.out;
    if (landlock) {
      EXPECT_NE(r.out.find("landlock-depth: 1\n"), std::string::npos)
          << "exec " << i << ": " << r.out << r.err;
    }
  }
  // The init is still there and starts the next command.
  EXPECT_EQ(g.exec("hardened", {{"command", {"/bin/echo", "still"}}}).out, "still\n");
}

// Commands of a long-lived sandbox join its cgroups (and see themselves at their root), so its
// memory limit holds for them. Filling /dev/shm there ends the command, not the sandbox: the
// init, sharing its supervisor's memory, must never be in the cgroup for the OOM killer to pick.
TEST_P(GatewayTest, ExecedCommandsAreInTheSandboxsCgroupsAndAnOomKillsOnlyThem) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "bounded"},
            {"policy", policy_with_network("resources: {memory: 64M, pids: 64}\n")}});
  ExecResult cgroup = g.exec("bounded", {{"command", {"/bin/cat", "/proc/self/cgroup"}}});
  EXPECT_EQ(cgroup.code, 0) << cgroup.err;
  std::istringstream lines(cgroup.out);
  for (std::string line; std::getline(lines, line);)
    EXPECT_TRUE(line.ends_with(":/")) << "not at its cgroup root: " << cgroup.out;
  // A file left behind in a full tmpfs (half the limit) leaves the next commands room to run,
  // `rm` among them.
  for (const std::string dir : {"/dev/shm", "/tmp"}) {
    ExecResult fill = g.sh("bounded", "head -c 200M /dev/zero > " + dir + "/big; echo $?");
    EXPECT_NE(fill.out, "0\n") << dir << ": 200 MiB stored under a 64M limit";
    EXPECT_EQ(g.exec("bounded", {{"command", {"/bin/echo", "still"}}}).out, "still\n") << g.log();
    EXPECT_EQ(g.exec("bounded", {{"command", {"/bin/rm", dir + "/big"}}}).code, 0) << dir;
  }
  EXPECT_EQ(g.get("/v1/sandboxes/bounded").json_body()["status"], "running");
}

// Found by a black-box session: a command that stopped reading its stdin (or tar at the end of
// an uploaded archive with more after it) closed the pipe the gateway was writing, and the
// SIGPIPE killed the gateway, every client and MCP session with it.
TEST_P(GatewayTest, ACommandThatStopsReadingItsStdinLeavesTheGatewayRunning) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "reader"}});
  ExecResult r = g.exec("reader", {{"command", {"/usr/bin/head", "-c", "5"}},
                                   {"stdin", std::string(600 * 1024, 'x')}});
  EXPECT_EQ(r.out, "xxxxx");
  EXPECT_EQ(g.get("/v1/status").status, 200) << g.log();
  EXPECT_EQ(g.exec("reader", {{"command", {"/bin/echo", "still"}}}).out, "still\n") << g.log();
}

// Found by a black-box session: `ward sandbox exec` read piped stdin without end (`yes | ward
// sandbox exec NAME -- head -1` grew past 3 GB and never ended) although the gateway takes 1 MiB
// of request at most, and bytes that are not UTF-8 arrived as U+FFFD. stdin now travels as
// stdin_base64, byte for byte, and the CLI stops one byte past what fits, with an error naming
// the limit.
TEST_P(GatewayTest, ExecStdinIsBinarySafeAndBoundedByTheRequestLimit) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "piped"}});
  // Every byte value, 700 KB of them: just under what fits once base64-encoded.
  std::string bytes;
  for (std::size_t i = 0; i < 700 * 1000; ++i)
    bytes.push_back(static_cast<char>((i * 7 + i / 256) & 0xff));
  ExecResult api =
      g.exec("piped", {{"command", {"/bin/cat"}}, {"stdin_base64", base64(bytes.substr(0, 4096))}});
  EXPECT_EQ(api.code, 0) << api.err;
  EXPECT_TRUE(api.out == bytes.substr(0, 4096)) << api.out.size() << " bytes came back";
  Result cat = g.cli({"sandbox", "exec", "piped", "--", "/bin/cat"}, bytes);
  EXPECT_EQ(cat.exit_code, 0) << cat.err;
  EXPECT_TRUE(cat.out == bytes) << cat.out.size() << " bytes came back of " << bytes.size();
  EXPECT_EQ(cat.err.find("U+FFFD"), std::string::npos) << cat.err;
  Result sum =
      g.cli({"sandbox", "exec", "piped", "--", "/bin/sh", "-c", "sha256sum | cut -c1-64"}, bytes);
  auto [code, host_sum] =
      host_shell("sha256sum < " + shell_quote(g.dir().write("bytes", bytes)) + " | cut -c1-64");
  ASSERT_EQ(code, 0) << host_sum;
  EXPECT_EQ(sum.out, host_sum) << sum.err;

  // Endless input: refused promptly with the limit named (a usage error, 2), memory bounded
  // (the 1 GiB address-space limit only keeps a failing run from taking the machine).
  const std::string exec = shell_quote(ward_binary()) + " sandbox exec piped --gateway " +
                           shell_quote(g.socket()) + " -- head -1";
  const bool timed = ::access("/usr/bin/time", X_OK) == 0;
  const auto began = std::chrono::steady_clock::now();
  auto [refused, said] =
      host_shell("(ulimit -v 1048576; yes | timeout -s KILL 20 " +
                 std::string(timed ? "/usr/bin/time -f maxrss-kib=%M " : "") + exec + ")");
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s) << said;
  EXPECT_EQ(refused, 2) << said;
  EXPECT_NE(said.find("standard input is larger than"), std::string::npos) << said;
  EXPECT_NE(said.find("1 MiB"), std::string::npos) << said;
  if (const std::size_t at = said.find("maxrss-kib="); at != std::string::npos) {
    EXPECT_LT(std::stol(said.substr(at + 11)), 100 * 1024) << said;
  }
  // Just past the limit, too.
  auto [over, over_said] = host_shell("(head -c 800000 /dev/zero | " + exec + ")");
  EXPECT_EQ(over, 2) << over_said;
  EXPECT_NE(over_said.find("standard input is larger than"), std::string::npos) << over_said;
  EXPECT_EQ(g.exec("piped", {{"command", {"/bin/echo", "still"}}}).out, "still\n") << g.log();
}

// The proxy limits given to the gateway hold in its sandboxes' proxies: with --max-connections 2
// a third connection is refused with 503, with --header-timeout 1 a head that never ends gets 408
// after a second (the defaults: 4096 connections, 10 s).
TEST_P(GatewayTest, TheEgressLimitsGivenToTheGatewayHoldInItsSandboxes) {
  Gateway g(mode());
  g.start({"--header-timeout", "1", "--max-connections", "2"});
  g.create({{"name", "limited"}, {"policy", policy_with_network()}});
  const std::string client = R"(
import socket, time
def first_line(s):
    s.settimeout(5)
    try:
        return s.recv(256).split(b"\r\n")[0].decode()
    except OSError as e:
        return type(e).__name__
a = socket.create_connection(("127.0.0.1", 3128))
b = socket.create_connection(("127.0.0.1", 3128))
c = socket.create_connection(("127.0.0.1", 3128))
c.sendall(b"GET http://x.test/ HTTP/1.1\r\nHost: x.test\r\n\r\n")
third = first_line(c)
a.sendall(b"GET http://x.test/ HTTP/1.1\r\n")
t = time.monotonic()
slow = first_line(a)
print(third, "|", slow, "|", round(time.monotonic() - t))
)";
  ExecResult r = g.exec("limited", {{"command", {"/usr/bin/python3", "-c", client}}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "HTTP/1.1 503 Service Unavailable | HTTP/1.1 408 Request Timeout | 1\n")
      << r.err;
}

TEST_P(GatewayTest, MainProcessExitIsVisibleAndAnErroredSandboxRecoversOrIsDeleted) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "job"},
            {"policy", policy_with_network()},
            {"command", {"/bin/sh", "-c", "echo working; exit 3"}}});
  ASSERT_TRUE(
      wait_until([&] { return g.get("/v1/sandboxes/job").json_body()["status"] == "error"; }, 10s));
  json job = g.get("/v1/sandboxes/job").json_body();
  EXPECT_EQ(job["exit"]["code"], 3) << job.dump();
  EXPECT_NE(job["reason"].get<std::string>().find("code 3"), std::string::npos);
  // Its output is in the logs.
  HttpReply logs = g.get("/v1/sandboxes/job/logs?source=output");
  EXPECT_NE(logs.body.find("working"), std::string::npos) << logs.body;
  // Recover: start runs the main command again.
  EXPECT_EQ(g.post("/v1/sandboxes/job/start", json::object()).status, 200);
  ASSERT_TRUE(
      wait_until([&] { return g.get("/v1/sandboxes/job").json_body()["status"] == "error"; }, 10s));
  EXPECT_EQ(g.del("/v1/sandboxes/job").status, 200);
}

// Found by a black-box session: a relative exec workdir was taken from / (the init's directory),
// not from the workspace, as relative paths are everywhere else in the API.
TEST_P(GatewayTest, ARelativeExecWorkdirIsTheWorkspaces) {
  Gateway g(mode());
  g.start();
  json made = g.create({{"name", "rel"}});
  ASSERT_EQ(g.sh("rel", "mkdir -p d/e").code, 0);
  ExecResult r = g.exec("rel", {{"command", {"/bin/pwd"}}, {"workdir", "d/e"}});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, made["workdir"].get<std::string>() + "/d/e\n") << made.dump();
  Result cli = g.cli({"sandbox", "exec", "rel", "-w", "d", "--", "/bin/pwd"});
  EXPECT_EQ(cli.out, made["workdir"].get<std::string>() + "/d\n") << cli.err;
}

// Found by a black-box session: stopping a sandbox whose main command was running recorded the
// command's death by the stop's SIGTERM as a failure (`error`, "killed by signal 15").
TEST_P(GatewayTest, StoppingASandboxWithARunningMainCommandLeavesItStopped) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "server"}, {"command", {"/bin/sleep", "1000"}}});
  HttpReply stopped = g.post("/v1/sandboxes/server/stop", json::object());
  EXPECT_EQ(stopped.status, 200) << stopped.body;
  ASSERT_TRUE(wait_until(
      [&] { return g.get("/v1/sandboxes/server").json_body()["status"] != "running"; }, 10s));
  json server = g.get("/v1/sandboxes/server").json_body();
  EXPECT_EQ(server["status"], "stopped") << server.dump();
  EXPECT_EQ(server["exit"]["signal"], SIGTERM) << server.dump();
}

// Found in review: a log was read whole into memory, on the thread every sandbox shares, and a
// line without an end was kept whole however long: the workload decides how large its output
// grows. Logs are read a bounded chunk at a time, and an endless line is cut.
TEST_P(GatewayTest, LargeLogsAreReadInBoundedChunks) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough";
  Gateway g(mode());
  g.start();
  // 5,000,016 bytes of 10-byte lines (454,547 of them), then one 3,000,000-byte line.
  g.create({{"name", "loud"},
            {"policy", policy_with_network()},
            {"command",
             {"/bin/sh", "-c",
              "yes 0123456789 | head -n 454547; head -c 3000000 /dev/zero | tr '\\0' x; echo"}}});
  ASSERT_TRUE(wait_until(
      [&] { return g.get("/v1/sandboxes/loud").json_body()["status"] == "stopped"; }, 20s));
  HttpReply logs = g.get("/v1/sandboxes/loud/logs?source=output");
  ASSERT_EQ(logs.status, 200);
  std::size_t short_lines = 0, x_bytes = 0, longest = 0;
  std::istringstream in(logs.body);
  for (std::string raw; std::getline(in, raw);) {
    json j = json::parse(raw, nullptr, false);
    if (!j.is_object() || !j["line"].is_string()) continue;
    const std::string line = j["line"];
    longest = std::max(longest, line.size());
    if (line == "0123456789") ++short_lines;
    if (!line.empty() && line.front() == 'x') x_bytes += line.size();
  }
  EXPECT_EQ(short_lines, 454547u);
  EXPECT_EQ(x_bytes, 3000000u) << "the long line, in pieces";
  EXPECT_LE(longest, 2u << 20) << "a line was kept whole";
  EXPECT_EQ(g.get("/v1/status").status, 200);
}

TEST_P(GatewayTest, IdleTtlAndMaximumLifetimeStopSandboxes) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "idle"}, {"policy", policy_with_network()}, {"idle_ttl_s", 1}});
  g.create({{"name", "short"}, {"policy", policy_with_network()}, {"max_lifetime_s", 1}});
  // A command running keeps an idle TTL from expiring.
  EXPECT_EQ(g.exec("idle", {{"command", {"/bin/sleep", "1.5"}}}).code, 0);
  EXPECT_EQ(g.get("/v1/sandboxes/idle").json_body()["status"], "running");
  auto stopped = [&](const std::string& name) {
    return g.get("/v1/sandboxes/" + name).json_body()["status"] == "stopped";
  };
  ASSERT_TRUE(wait_until([&] { return stopped("idle"); }, 5s));
  EXPECT_NE(g.get("/v1/sandboxes/idle").json_body()["reason"].get<std::string>().find("idle"),
            std::string::npos);
  ASSERT_TRUE(wait_until([&] { return stopped("short"); }, 5s));
  EXPECT_NE(
      g.get("/v1/sandboxes/short").json_body()["reason"].get<std::string>().find("--max-lifetime"),
      std::string::npos)
      << g.get("/v1/sandboxes/short").body;
}

// Found by a black-box session: --max-lifetime was the sandbox init's time limit. A sandbox with
// nothing running in it stopped a whole grace period (3 s) late, as nothing was there to exit on
// the SIGTERM and wake the init, while `ward sandbox stop` takes milliseconds; and a main command
// it ended was recorded as a failure ("error", "killed by signal 15"). An --idle-ttl stop of a
// sandbox with a main command said only "stopped; the main command was killed by signal 15".
// The stop starts when the lifetime ends (the grace is for processes that ignore SIGTERM), and
// the record says which limit ended the sandbox.
TEST_P(GatewayTest, LifetimeAndIdleStopsStartOnTimeAndSayWhy) {
  Gateway g(mode());
  g.start();
  const std::string policy = g.dir().write("policy.yaml", policy_with_network());
  auto sandbox = [&](const std::string& name) {
    return g.get("/v1/sandboxes/" + name).json_body();
  };
  // How long after `ward sandbox create` returned the sandbox left `running` (its limit was
  // counted from before that).
  auto stopped_after = [&](const std::string& name) {
    const auto began = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait_until([&] { return sandbox(name).value("status", "") != "running"; }, 15s));
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 began);
  };
  auto reason = [&](const std::string& name) { return sandbox(name).value("reason", ""); };

  Result made = g.cli({"sandbox", "create", "life2", "-p", policy, "--max-lifetime", "1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_LT(stopped_after("life2"), 2500ms) << "not within its lifetime + 1.5 s";
  EXPECT_EQ(sandbox("life2")["status"], "stopped") << sandbox("life2").dump();
  EXPECT_NE(reason("life2").find("--max-lifetime of 1 s"), std::string::npos) << reason("life2");

  made = g.cli({"sandbox", "create", "life4", "-p", policy, "--max-lifetime", "2", "--",
                "/bin/sleep", "100"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_LT(stopped_after("life4"), 3500ms) << "not within its lifetime + 1.5 s";
  json life4 = sandbox("life4");
  EXPECT_EQ(life4["status"], "stopped") << life4.dump();
  EXPECT_NE(reason("life4").find("--max-lifetime of 2 s"), std::string::npos) << life4.dump();
  EXPECT_EQ(life4["exit"]["signal"], SIGTERM) << life4.dump();

  // A main command that ignores SIGTERM has the grace period (3 s), then SIGKILL.
  made = g.cli({"sandbox", "create", "stubborn", "-p", policy, "--max-lifetime", "1", "--",
                "/bin/sh", "-c", "trap '' TERM; /bin/sleep 100"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto stubborn_after = stopped_after("stubborn");
  EXPECT_GE(stubborn_after, 2000ms) << "the grace period was not given";
  EXPECT_LT(stubborn_after, 5500ms) << "not within its lifetime + the grace + 1.5 s";
  json stubborn = sandbox("stubborn");
  EXPECT_EQ(stubborn["status"], "stopped") << stubborn.dump();
  EXPECT_NE(reason("stubborn").find("--max-lifetime of 1 s"), std::string::npos) << stubborn.dump();

  made = g.cli(
      {"sandbox", "create", "idler", "-p", policy, "--idle-ttl", "1", "--", "/bin/sleep", "100"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  stopped_after("idler");
  json idler = sandbox("idler");
  EXPECT_EQ(idler["status"], "stopped") << idler.dump();
  EXPECT_NE(reason("idler").find("--idle-ttl of 1 s"), std::string::npos) << idler.dump();

  // A stop asked for says so, and is not a failure either.
  made = g.cli({"sandbox", "create", "asked", "-p", policy, "--", "/bin/sleep", "100"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_EQ(g.cli({"sandbox", "stop", "asked"}).exit_code, 0);
  EXPECT_EQ(sandbox("asked")["status"], "stopped") << sandbox("asked").dump();
  EXPECT_EQ(reason("asked"), "stopped") << sandbox("asked").dump();
}

TEST_P(GatewayTest, PolicyRevisionsAreIdempotentAndStaticChangesAreRefused) {
  Gateway g(mode());
  g.start();
  const std::string p1 = policy_with_network();
  g.create({{"name", "p"}, {"policy", p1}});
  // Which of the proxy's refusals a CONNECT to 127.0.0.5:9 meets: no rule (revision 1), or the
  // SSRF guard once a rule names it (loopback is refused whatever the policy says, so nothing is
  // ever sent).
  auto connect_refusal = [&] {
    return g
        .sh("p",
            "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT 127.0.0.5:9 "
            "HTTP/1.1\\r\\n\\r\\n' >&3; timeout 5 cat <&3")
        .out;
  };
  const std::string before = connect_refusal();
  EXPECT_NE(before.find("no rule allows 127.0.0.5:9"), std::string::npos) << before;
  json same = g.put("/v1/sandboxes/p/policy", {{"policy", p1}}).json_body();
  EXPECT_FALSE(same["changed"].get<bool>());
  EXPECT_EQ(same["revision"], 1);
  const std::string p2 = policy_with_network(
      "network_policies:\n  pkgs:\n    name: pkgs\n    endpoints:\n      - host: "
      "pypi.org\n        port: 443\n      - host: 127.0.0.5\n        port: 9\n"
      "    binaries:\n      - path: /**\n");
  json next = g.put("/v1/sandboxes/p/policy", {{"policy", p2}}).json_body();
  EXPECT_TRUE(next["changed"].get<bool>()) << next.dump();
  EXPECT_EQ(next["revision"], 2);
  EXPECT_EQ(g.put("/v1/sandboxes/p/policy", {{"policy", p2}}).json_body()["revision"], 2);
  json revisions = g.get("/v1/sandboxes/p/policy/revisions").json_body();
  ASSERT_EQ(revisions["revisions"].size(), 2u);
  EXPECT_EQ(revisions["revisions"][0]["status"], "superseded");
  EXPECT_EQ(revisions["revisions"][1]["status"], "active");
  // A static section cannot change under a running sandbox; an invalid file changes nothing.
  HttpReply stat = g.put("/v1/sandboxes/p/policy", {{"policy", policy_yaml("/opt", "", "")}});
  EXPECT_EQ(stat.status, 409) << stat.body;
  HttpReply bad = g.put("/v1/sandboxes/p/policy", {{"policy", "version: 1\nbogus: 1\n"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json_body()["error"], "invalid_policy");
  EXPECT_EQ(g.get("/v1/sandboxes/p/policy").json_body()["revision"], 2);
  // The new network section is live in the running proxy: the CONNECT now passes the rules and
  // meets the guard, and a host it does not name is still refused with the policy's 403.
  const std::string after = connect_refusal();
  EXPECT_NE(after.find("a loopback address"), std::string::npos) << after;
  EXPECT_EQ(after.find("no rule allows"), std::string::npos) << after;
  ExecResult denied = g.sh("p",
                           "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT example.com:443 "
                           "HTTP/1.1\\r\\n\\r\\n' >&3; head -c 12 <&3");
  EXPECT_EQ(denied.out, "HTTP/1.1 403") << denied.err;
}

TEST_P(GatewayTest, UploadDownloadRoundTripAndNoEscapeThroughSymlinks) {
  Gateway g(mode());
  g.start();
  json s = g.create({{"name", "files"}, {"policy", policy_with_network()}});
  const std::string outside = g.dir().write("outside/secret.txt", "HOST-SECRET\n", 0644);
  std::string blob;
  for (int i = 0; i < 70000; ++i) blob += static_cast<char>(i * 7 % 256);
  HttpReply up =
      http(g.socket(), "PUT", "/v1/sandboxes/files/files?path=sub/dir/blob.bin", blob, "");
  ASSERT_EQ(up.status, 200) << up.body;
  EXPECT_EQ(g.sh("files", "wc -c < sub/dir/blob.bin").out, "70000\n");
  HttpReply down = g.get("/v1/sandboxes/files/files?path=sub/dir/blob.bin");
  EXPECT_EQ(down.status, 200);
  EXPECT_TRUE(down.body == blob);
  // A directory comes back as a tar archive, packed inside the sandbox.
  HttpReply tar = g.get("/v1/sandboxes/files/files?path=sub");
  EXPECT_EQ(tar.status, 200) << tar.body;
  EXPECT_NE(tar.body.find("blob.bin"), std::string::npos);

  // MUST: a download that would follow a symlink out of the workspace is refused, and so is
  // an upload through one, and `..`.
  ASSERT_EQ(
      g.sh("files", "ln -s " + outside + " link && ln -s " + outside.substr(0, outside.rfind('/')) +
                        " dirlink && ln -s ../../.. up")
          .code,
      0);
  for (const std::string path : {"link", "dirlink/secret.txt", "../outside/secret.txt",
                                 "up/etc/passwd", "/../../etc/passwd"}) {
    HttpReply r = g.get("/v1/sandboxes/files/files?path=" + path);
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
    EXPECT_EQ(r.body.find("HOST-SECRET"), std::string::npos);
  }
  // A path that is itself a symlink to a directory — the host's, or the sandbox's own /etc — is
  // not packed from where it points; a symlink inside a packed directory is packed as a link.
  ASSERT_EQ(g.sh("files", "ln -s /etc etclink && mkdir d && ln -s /etc/passwd d/pw").code, 0);
  for (const std::string path : {"dirlink", "etclink", "etclink/"}) {
    HttpReply r = g.get("/v1/sandboxes/files/files?path=" + path);
    EXPECT_EQ(r.status, 400) << path << ": " << r.body.substr(0, 300);
    EXPECT_EQ(r.body.find("HOST-SECRET"), std::string::npos);
    EXPECT_EQ(r.body.find("root:x:0:0"), std::string::npos) << path;
  }
  HttpReply packed = g.get("/v1/sandboxes/files/files?path=d");
  EXPECT_EQ(packed.status, 200) << packed.body.substr(0, 300);
  EXPECT_EQ(packed.body.find("root:x:0:0"), std::string::npos) << "d/pw was followed";
  ASSERT_GE(packed.body.size(), 512u);
  bool link_entry = false;  // a tar header whose name ends in "pw", typeflag '2' (symlink)
  for (std::size_t at = 0; at + 512 <= packed.body.size(); at += 512) {
    const std::string name = packed.body.substr(at, 100).c_str();
    if (name.ends_with("pw")) link_entry = packed.body[at + 156] == '2';
  }
  EXPECT_TRUE(link_entry) << "d/pw is not in the archive as a symlink";
  for (const std::string path :
       {"link", "dirlink/new.txt", "../escape.txt", "up/tmp/x", "nul%00x"}) {
    HttpReply r = http(g.socket(), "PUT", "/v1/sandboxes/files/files?path=" + path, "x", "");
    EXPECT_EQ(r.status, 400) << path << ": " << r.body;
  }
  EXPECT_EQ(read_file(outside), "HOST-SECRET\n");
  EXPECT_FALSE(exists(g.dir().path() + "/outside/new.txt"));
}

// Found in review: the gateway opened transfer paths blocking on the one thread that serves
// every sandbox, so a FIFO the workload made where a download or upload goes stalled them all;
// and any route whose target held "/files" (a query string) got the 64 MiB upload body limit.
TEST_P(GatewayTest, TransfersNeverWaitOnAFifoAndOnlyUploadsGetTheLargeBodyLimit) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "fifo"}, {"policy", policy_with_network()}});
  ASSERT_EQ(g.sh("fifo", "mkfifo pipe").code, 0);
  const auto began = std::chrono::steady_clock::now();
  HttpReply down = g.get("/v1/sandboxes/fifo/files?path=pipe");
  EXPECT_EQ(down.status, 400) << down.body;
  HttpReply up = http(g.socket(), "PUT", "/v1/sandboxes/fifo/files?path=pipe", "x", "");
  EXPECT_EQ(up.status, 400) << up.body;
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
  EXPECT_EQ(g.get("/v1/status").status, 200) << "the gateway stopped answering";
  const std::string big(2 * 1024 * 1024, ' ');
  HttpReply r = http(g.socket(), "POST", "/v1/sandboxes/fifo/exec?x=/files", big, "");
  EXPECT_EQ(r.status, 413) << r.body.substr(0, 200);
}

// A stand-in gateway (tests/clients/fake_gateway.py KIND ARGS...) on a socket in `dir`, that
// the mode's user can reach; stop it with stop_fake.
std::pair<pid_t, std::string> start_fake(const TempDir& dir, const std::string& kind,
                                         const std::string& arg = "") {
  const std::string sock = dir.file("fake-" + kind + ".sock");
  int out[2];
  EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::execl("/usr/bin/python3", "python3", WARD_CLIENTS_DIR "/fake_gateway.py", sock.c_str(),
            kind.c_str(), arg.empty() ? nullptr : arg.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  char ready[7] = {};
  EXPECT_EQ(::read(out[0], ready, 6), 6) << "the fake gateway did not start";
  ::close(out[0]);
  ::chmod(sock.c_str(), 0777);
  return {pid, sock};
}

void stop_fake(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

// The CLI's side of a download, against a stand-in gateway (tests/clients/fake_gateway.py)
// sending what a compromised sandbox could make the real one send. Found in review: tar, run as
// root by the CLI, made the archive's device nodes (world-readable twins of a disk) and replaced
// the user's files in the directory it unpacked into; and a file download that broke off
// removed the file that was there before.
TEST_P(GatewayTest, ADownloadMakesNoDeviceNodesReplacesNoFilesAndKeepsWhatWasThere) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough: as root is the case that matters";
  TempDir dir(mode());
  auto fake = [&](const std::string& kind) { return start_fake(dir, kind); };
  auto stop = stop_fake;
  RunOptions o;
  o.mode = mode();
  o.cwd = dir.path();

  auto [tar_pid, tar_sock] = fake("tar");
  const std::string into = dir.mkdir("into");
  dir.write("into/.envrc", "mine\n");
  Result r = ward({"sandbox", "download", "--gateway", tar_sock, "x", "d", into}, o);
  stop(tar_pid);
  EXPECT_NE(r.exit_code, 0) << "tar's refusals are the download's failure";
  EXPECT_EQ(read_file(into + "/ok.txt"), "ok\n") << r.err;
  EXPECT_EQ(read_file(into + "/.envrc"), "mine\n") << "a file of the user's was replaced";
  struct stat st;
  EXPECT_FALSE(::lstat((into + "/disk").c_str(), &st) == 0 && S_ISCHR(st.st_mode))
      << "tar made the archive's device node";

  auto [cut_pid, cut_sock] = fake("cut");
  const std::string file = dir.write("kept.txt", "the user's own\n");
  r = ward({"sandbox", "download", "--gateway", cut_sock, "x", "f", file}, o);
  stop(cut_pid);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(read_file(file), "the user's own\n") << r.err;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".ward-"), std::string::npos)
        << "a partial download was left: " << e.path();
}

// Found by a red-team session: `ward sandbox download` unpacked the archive with tar into the
// directory it named, following symlinks there. A first download planted `link -> $HOME` (the
// workload's symlink, kept as it was); the workload then made `link` a directory holding
// .bash_login, and the second download of the same directory wrote it through the planted link
// into the user's home. A download writes beneath the directory it is given and nowhere else,
// whatever an earlier download (or an older ward) left there; and it plants no symlink that
// leads out of the downloaded tree (one that stays inside is kept).
TEST_P(GatewayTest, ARedownloadWritesNothingThroughASymlinkAnEarlierDownloadLeft) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "dl"}, {"policy", policy_with_network()}});
  const std::string victim = g.dir().mkdir("home");
  ASSERT_EQ(g.sh("dl", "mkdir -p d/sub && echo x > d/sub/f && ln -s " + victim +
                           " d/link && ln -s sub/f d/inside && ln -s ../../.. d/sub/up")
                .code,
            0);
  const std::string out = g.dir().file("outd");
  Result first = g.cli({"sandbox", "download", "dl", "d", out});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(read_file(out + "/sub/f"), "x\n") << first.err;
  char target[PATH_MAX] = {};
  EXPECT_EQ(::readlink((out + "/inside").c_str(), target, sizeof target - 1), 5)
      << "a symlink that stays inside the tree was not kept";
  EXPECT_STREQ(target, "sub/f");
  struct stat st;
  EXPECT_NE(::lstat((out + "/link").c_str(), &st), 0)
      << "a symlink to the host's " << victim << " was planted in the download";
  EXPECT_NE(::lstat((out + "/sub/up").c_str(), &st), 0) << "a symlink climbing out was planted";
  EXPECT_NE(first.err.find(victim), std::string::npos) << "what was left out is not named";

  // What an older ward's download left, whatever this one does: the link, and a file's name
  // that leads out too.
  if (::lstat((out + "/link").c_str(), &st) != 0) {
    ASSERT_EQ(::symlink(victim.c_str(), (out + "/link").c_str()), 0);
  }
  ASSERT_EQ(::symlink((victim + "/through-file").c_str(), (out + "/sub/g").c_str()), 0);
  ASSERT_EQ(g.sh("dl",
                 "rm d/link && mkdir d/link && echo 'echo PWNED' > d/link/.bash_login && "
                 "echo y > d/sub/g && echo new > d/new.txt")
                .code,
            0);
  Result second = g.cli({"sandbox", "download", "dl", "d", out});
  EXPECT_FALSE(exists(victim + "/.bash_login")) << "written through the planted symlink";
  EXPECT_FALSE(exists(victim + "/through-file")) << "a file written through a planted symlink";
  EXPECT_NE(second.exit_code, 0) << "what could not be written is the download's failure";
  EXPECT_EQ(read_file(out + "/new.txt"), "new\n") << second.err;
  EXPECT_EQ(read_file(out + "/sub/f"), "x\n");
}

// The same against a stand-in gateway that sends what no real tar makes: symlinks out of the tree
// (absolute, climbing with ../, and through a symlink's ..) each followed by a member beneath it
// in the same archive, and a hard link to a member written through one.
TEST_P(GatewayTest, ADownloadedArchiveWritesNothingBeneathItsOwnSymlinks) {
  TempDir dir(mode());
  const std::string victim = dir.mkdir("home");
  auto [pid, sock] = start_fake(dir, "escape", victim);
  RunOptions o;
  o.mode = mode();
  o.cwd = dir.path();
  const std::string into = dir.file("into");
  Result r = ward({"sandbox", "download", "--gateway", sock, "x", "d", into}, o);
  stop_fake(pid);
  EXPECT_FALSE(exists(victim + "/.bash_login")) << r.err;
  EXPECT_FALSE(exists(victim + "/climbed.txt")) << r.err;
  std::vector<std::string> in_victim;
  for (const auto& e : std::filesystem::directory_iterator(victim))
    in_victim.push_back(e.path().filename());
  EXPECT_TRUE(in_victim.empty()) << "written into the victim: "
                                 << (in_victim.empty() ? "" : in_victim.front());
  EXPECT_EQ(read_file(into + "/sub/ok.txt"), "ok\n") << r.err;
  char target[PATH_MAX] = {};
  EXPECT_GT(::readlink((into + "/inside").c_str(), target, sizeof target - 1), 0);
  EXPECT_STREQ(target, "sub/ok.txt") << "a symlink inside the tree was not kept";
  struct stat st;
  for (const std::string name : {"abs", "sub/up", "dots"})
    EXPECT_NE(::lstat((into + "/" + name).c_str(), &st), 0)
        << name << ": a symlink out of the tree was planted";
  EXPECT_NE(r.exit_code, 0) << "members that could not be written are the download's failure";
}

// Found in a user's walkthrough: a download of the workspace brought ward's placeholders — the
// empty read-only files and directories that reserve .mcp.json, .vscode, .claude... while a
// sandbox runs — into the user's directory as ordinary empty files, and the API's tar held them.
// They are not the agent's work: left out.
TEST_P(GatewayTest, ADownloadLeavesOutWardsPlaceholders) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "ph"}, {"policy", policy_with_network()}});
  ExecResult listed = g.sh("ph",
                           "echo work > result.txt && mkdir -p src && echo 1 > src/a.c && "
                           "echo keep > .env && ls -A");
  ASSERT_EQ(listed.code, 0) << listed.err;
  for (const std::string name : {".mcp.json", ".vscode", ".claude"})
    ASSERT_NE(listed.out.find(name + "\n"), std::string::npos)
        << "the sandbox has no placeholder " << name << ": " << listed.out;

  const std::string out = g.dir().file("ws");
  Result r = g.cli({"sandbox", "download", "ph", ".", out});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(out + "/result.txt"), "work\n");
  EXPECT_EQ(read_file(out + "/src/a.c"), "1\n");
  EXPECT_EQ(read_file(out + "/.env"), "keep\n");
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(out))
    names.push_back(e.path().filename());
  for (const std::string name :
       {".mcp.json", ".vscode", ".idea", ".gitmodules", ".claude", ".codex", ".gitconfig"})
    EXPECT_EQ(std::count(names.begin(), names.end(), name), 0)
        << name << ", a placeholder, was downloaded";

  HttpReply tar = g.get("/v1/sandboxes/ph/files?path=.");
  ASSERT_EQ(tar.status, 200) << tar.body.substr(0, 300);
  EXPECT_NE(tar.body.find("./result.txt"), std::string::npos);
  for (std::size_t at = 0; at + 512 <= tar.body.size(); at += 512) {
    const std::string name = tar.body.substr(at, 100).c_str();
    EXPECT_FALSE(name == "./.mcp.json" || name.starts_with("./.vscode") ||
                 name.starts_with("./.claude"))
        << name << ", a placeholder, is in the API's archive";
  }
  HttpReply single = g.get("/v1/sandboxes/ph/files?path=.mcp.json");
  EXPECT_EQ(single.status, 404) << "a placeholder downloaded as a file: " << single.body;
}

// Found in review: a socket given with --socket outside the state directory was visible to a
// sandbox whose workdir held it; rootless, the workload's uid could connect and ask for a sandbox
// with any policy.
TEST_P(GatewayTest, TheApiSocketIsHiddenFromSandboxesWhereverItIs) {
  Gateway g(mode());
  const std::string work = g.dir().mkdir("work", 0777);
  g.set_socket(work + "/api.sock");
  g.start();
  ASSERT_EQ(::chmod(g.socket().c_str(), 0777), 0);  // so that only the sandbox keeps it away
  g.create({{"name", "near"}, {"workdir", work}, {"policy", policy_with_network()}});
  ExecResult r = g.sh("near",
                      "python3 -c 'import socket, sys; "
                      "socket.socket(socket.AF_UNIX).connect(sys.argv[1])' " +
                          shell_quote(g.socket()) + " 2>&1; echo rc=$?");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("rc=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rc=1"), std::string::npos) << r.out;
  EXPECT_EQ(g.get("/v1/status").status, 200);  // outside, the socket answers
}

// Found by a red-team session: a sandbox whose policy listed the gateway's socket (or anything
// else inside its state directory) had it bound on top of the cover, and could ask the gateway
// for a second sandbox with any policy. It is left out now; a workdir inside the state directory
// (the socket's, the CA's, another sandbox's workspace) is refused.
TEST_P(GatewayTest, NothingInsideTheStateDirectoryCanBeListedOrUsedAsAWorkdir) {
  Gateway g(mode());
  g.start();
  ASSERT_EQ(::chmod(g.state().c_str(), 0755), 0);  // so that only the sandbox keeps it away
  ASSERT_EQ(::chmod(g.socket().c_str(), 0777), 0);
  g.create({{"name", "other"}});
  g.create(
      {{"name", "lister"}, {"policy", policy_yaml(g.socket() + ", " + g.state() + "/workspaces")}});
  ExecResult r = g.sh("lister",
                      "python3 -c 'import socket, sys; "
                      "socket.socket(socket.AF_UNIX).connect(sys.argv[1])' " +
                          shell_quote(g.socket()) + " 2>&1; echo rc=$?; ls " +
                          shell_quote(g.state() + "/workspaces") + " 2>&1 | grep -c other; exit 0");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.find("rc=0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rc=1\n0\n"), std::string::npos) << r.out;
  // Found by a black-box session: a workdir the sandbox provides itself was kept in the record
  // but never used (the sandbox's own /proc covered it).
  HttpReply proc = g.post("/v1/sandboxes", {{"name", "proc"}, {"workdir", "/proc"}});
  EXPECT_EQ(proc.status, 400) << proc.body;
  EXPECT_EQ(g.get("/v1/sandboxes/proc").status, 404);
  for (const std::string& inside : {g.state(), g.state() + "/workspaces/other"}) {
    HttpReply made = g.post("/v1/sandboxes", {{"name", "inside"}, {"workdir", inside}});
    EXPECT_EQ(made.status, 400) << inside << ": " << made.body;
    EXPECT_NE(made.body.find("the gateway's own state"), std::string::npos) << made.body;
  }
  EXPECT_EQ(g.get("/v1/status").status, 200);  // outside, the socket answers
}

// Found in review: a state directory someone else made first (a --state-dir under /tmp) was used
// as it was, with a token or socket they could have planted; one of ours that others could
// enter kept its mode.
TEST_P(GatewayTest, TheStateDirectoryMustBeOwnedAndIsMadePrivate) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough (the test chowns a directory)";
  TempDir dir(mode());
  const std::string foreign = dir.mkdir("foreign", 0777);
  ASSERT_EQ(::chown(foreign.c_str(), 65534, 65534), 0);
  dir.write("foreign/token", "planted-token-0123456789\n", 0644);
  RunOptions o;
  o.mode = mode();
  o.timeout = 10s;
  Result r = ward({"gateway", "--state-dir", foreign, "--listen", "127.0.0.1:0"}, o);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("belongs to uid 65534"), std::string::npos) << r.err;

  Gateway g(mode());
  ASSERT_EQ(::chmod(g.state().c_str(), 0775), 0);
  g.start();
  struct stat st;
  ASSERT_EQ(::stat(g.state().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

// Found by a black-box session: `--socket PATH` unlinked whatever was there: a running gateway's
// socket (which the second gateway then removed at its end, leaving the first unreachable), or a
// file of the user's. Only a socket nobody listens on is replaced; a gateway that cannot start
// leaves no socket of its own behind.
TEST_P(GatewayTest, TheSocketPathReplacesNeitherALiveSocketNorAFile) {
  Gateway g(mode());
  g.start();
  TempDir dir(mode());
  RunOptions o;
  o.mode = mode();
  o.timeout = 10s;
  Result taken =
      ward({"gateway", "--state-dir", dir.mkdir("second", 0700), "--socket", g.socket()}, o);
  EXPECT_EQ(taken.exit_code, 1) << taken.err;
  EXPECT_NE(taken.err.find("something listens there already"), std::string::npos) << taken.err;
  EXPECT_EQ(g.get("/v1/status").status, 200) << "the first gateway lost its socket";
  const std::string file = dir.write("precious", "precious\n");
  Result over_file =
      ward({"gateway", "--state-dir", dir.mkdir("third", 0700), "--socket", file}, o);
  EXPECT_EQ(over_file.exit_code, 1) << over_file.err;
  EXPECT_EQ(read_file(file), "precious\n");
  // A --listen that cannot be bound ends the gateway after its socket was made: removed.
  // (192.0.2.1, a documentation address, is no address of this host; a malformed one is a
  // usage error refused before anything is made: cli_test's CliGateway.)
  const std::string fourth = dir.mkdir("fourth", 0700);
  Result no_listen = ward({"gateway", "--state-dir", fourth, "--listen", "192.0.2.1:1"}, o);
  EXPECT_EQ(no_listen.exit_code, 1) << no_listen.err;
  EXPECT_FALSE(exists(fourth + "/gateway.sock")) << no_listen.err;
}

// Found in review: with a policy that shows the gateway's state directory (its parent listed
// read-only), the cover over the state directory went on after every bind, and hid the
// sandbox's own managed workspace beneath it.
TEST_P(GatewayTest, AManagedWorkspaceStaysVisibleUnderTheHiddenStateDirectory) {
  Gateway g(mode());
  g.start();
  json created = g.create({{"name", "under"}, {"policy", policy_yaml(g.dir().path())}});
  ASSERT_EQ(created["status"], "running") << created.dump();
  ExecResult r = g.sh("under", "echo kept > file && cat file && ls " + shell_quote(g.state()) +
                                   " && test ! -e " + shell_quote(g.socket()));
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  // The state directory shows nothing but the way down to the workspace.
  EXPECT_EQ(r.out, "kept\nworkspaces\n");
}

// Found in review: an upload opened its file with O_TRUNC and wrote into it, so a write that
// failed (a full disk) left the user's file truncated. It is written beside and renamed over.
TEST_P(GatewayTest, AnUploadThatFailsLeavesTheFileAsItWas) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough (the test mounts a tmpfs)";
  Gateway g(mode());
  g.start();
  const std::string small = g.dir().mkdir("small");
  ASSERT_EQ(::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k,mode=0755"), 0);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{small};
  g.dir().write("small/keep.txt", "the user's own\n");
  g.create({{"name", "full"}, {"workdir", small}, {"policy", policy_with_network()}});
  const std::string big(1024 * 1024, 'x');
  HttpReply r = http(g.socket(), "PUT", "/v1/sandboxes/full/files?path=keep.txt", big, "");
  EXPECT_EQ(r.status, 500) << r.body;
  EXPECT_NE(r.body.find("No space left"), std::string::npos) << r.body;
  const std::string kept = read_file(small + "/keep.txt");
  EXPECT_TRUE(kept == "the user's own\n") << "keep.txt now holds " << kept.size() << " bytes";
  for (const auto& e : std::filesystem::directory_iterator(small))
    EXPECT_EQ(e.path().filename().string().find(".ward-upload-"), std::string::npos)
        << "left behind: " << e.path();
  HttpReply ok = http(g.socket(), "PUT", "/v1/sandboxes/full/files?path=keep.txt", "new\n", "");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(read_file(small + "/keep.txt"), "new\n");
  g.del("/v1/sandboxes/full");
}

// A deleted sandbox's trees are renamed into the state directory's trash and removed behind the
// API (the removal used to run inside the DELETE call, every other API call waiting behind a
// workspace of many files): its name serves a new sandbox at once, with an empty workspace; the
// trash empties; and what a gateway stopped mid-removal left there goes at its next start.
TEST_P(GatewayTest, DeletedSandboxesAreRemovedBehindTheApi) {
  Gateway g(mode());
  g.start();
  const std::string trash = g.state() + "/trash";
  auto trash_entries = [&] {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(trash.c_str())) {
      while (struct dirent* e = ::readdir(d))
        if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
          names.push_back(e->d_name);
      ::closedir(d);
    }
    return names;
  };
  json created = g.create({{"name", "big"}, {"policy", policy_yaml(g.dir().path())}});
  ASSERT_EQ(created["status"], "running") << created.dump();
  const std::string workspace = created["workdir"];
  ExecResult made = g.sh("big", "mkdir d && cd d && seq 20000 | xargs touch && ls | wc -l");
  ASSERT_EQ(made.out, "20000\n") << made.err;

  EXPECT_EQ(g.del("/v1/sandboxes/big").status, 200);
  EXPECT_FALSE(exists(workspace)) << "the workspace is still at its path after DELETE";
  json again = g.create({{"name", "big"}, {"policy", policy_yaml(g.dir().path())}});
  ASSERT_EQ(again["status"], "running") << again.dump();
  EXPECT_EQ(again["workdir"], workspace);
  EXPECT_EQ(g.sh("big", "test -e d && echo old files || echo fresh").out, "fresh\n");
  EXPECT_TRUE(wait_until([&] { return trash_entries().empty(); }, 30s))
      << trash_entries().size() << " entries left in " << trash;

  // Left by a gateway that stopped mid-removal (made as the gateway's user).
  g.stop();
  struct stat owner;
  ASSERT_EQ(::stat(g.state().c_str(), &owner), 0);
  const std::string left = trash + "/Ab12Cd";
  for (const std::string& path : {left, left + "/tree", left + "/tree/sub"}) {
    ASSERT_EQ(::mkdir(path.c_str(), 0700), 0) << path;
    ASSERT_EQ(::chown(path.c_str(), owner.st_uid, owner.st_gid), 0);
  }
  for (int i = 0; i < 100; ++i) {
    const std::string file = left + "/tree/sub/f" + std::to_string(i);
    std::ofstream(file) << "x";
    ASSERT_EQ(::chown(file.c_str(), owner.st_uid, owner.st_gid), 0);
  }
  g.start();
  EXPECT_TRUE(wait_until([&] { return trash_entries().empty(); }, 30s))
      << "a leftover in the trash survived a restart";
  EXPECT_EQ(g.del("/v1/sandboxes/big").status, 200);
}

TEST_P(GatewayTest, SandboxesOutliveAGatewayKilledWithSigkill) {
  Gateway g(mode());
  g.start();
  json a = g.create({{"name", "survivor"}, {"policy", policy_with_network()}});
  ASSERT_EQ(g.sh("survivor", "echo before > state.txt").code, 0);
  const int init_pid = a["init_pid"];
  g.kill9();
  // The sandbox keeps running without its gateway.
  EXPECT_EQ(::kill(init_pid, 0), 0);
  g.start();
  json after = g.get("/v1/sandboxes/survivor").json_body();
  EXPECT_EQ(after["status"], "running") << after.dump() << g.log();
  EXPECT_EQ(after["init_pid"], init_pid);
  // Reachable: exec works and sees the same filesystem.
  EXPECT_EQ(g.sh("survivor", "cat state.txt").out, "before\n");
  // Its egress is policed again by the new gateway: a CONNECT the policy does not allow gets
  // the policy's 403, and the decision is in its audit log.
  ExecResult denied = g.sh("survivor",
                           "exec 3<>/dev/tcp/127.0.0.1/3128; printf 'CONNECT example.com:443 "
                           "HTTP/1.1\\r\\n\\r\\n' >&3; head -c 12 <&3");
  EXPECT_EQ(denied.out, "HTTP/1.1 403") << denied.err;
  HttpReply audit = g.get("/v1/sandboxes/survivor/logs?source=audit&tail=5");
  EXPECT_NE(audit.body.find("example.com"), std::string::npos) << audit.body;
  // SIGTERM stops the gateway and leaves the sandbox running, too.
  g.stop();
  EXPECT_EQ(::kill(init_pid, 0), 0);
  g.start();
  EXPECT_EQ(g.get("/v1/sandboxes/survivor").json_body()["status"], "running");
  EXPECT_EQ(g.del("/v1/sandboxes/survivor").status, 200);
  EXPECT_TRUE(wait_until([&] { return ::kill(init_pid, 0) != 0; }, 5s));
}

TEST_P(GatewayTest, MalformedInputGets4xxAndChangesNothing) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "keep"}, {"policy", policy_with_network()}});
  const std::string before = g.get("/v1/sandboxes").body;
  struct Case {
    std::string method, target, body;
    int status;
  };
  const std::vector<Case> cases = {
      {"POST", "/v1/sandboxes", "{not json", 400},
      {"POST", "/v1/sandboxes", "[1,2]", 400},
      {"POST", "/v1/sandboxes", R"({"name":"x","bogus":1})", 400},
      {"POST", "/v1/sandboxes", R"({"name":7})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"n","labels":{"a":1}})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"n","max_lifetime_s":"1"})", 400},
      {"POST", "/v1/providers", R"({"name":"p","profile":5,"values":{}})", 400},
      {"PUT", "/v1/providers", "", 405},
      {"GET", "/v1", "", 404},
      {"POST", "/v1/sandboxes", R"({"name":"../../etc"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"UPPER"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"keep"})", 409},
      {"POST", "/v1/sandboxes", R"({"name":"w","workdir":"relative/dir"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"w","workdir":"/"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"p","policy":"version: 1\nnope: 2\n"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"c","command":"not a list"})", 400},
      {"POST", "/v1/sandboxes", R"({"name":"e","env":{"A=B":"c"}})", 400},
      {"GET", "/v1/sandboxes/..%2F..%2Fetc", "", 404},
      {"GET", "/v1/sandboxes/keep/files?path=../../../../etc/shadow", "", 400},
      {"GET", "/v1/sandboxes/keep/files", "", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":[]})", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":["true"],"shell":1})", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":["true"],"timeout_ms":-1})", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":["cat"],"stdin_base64":"aGk!"})", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":["cat"],"stdin_base64":"aGkKa"})", 400},
      {"POST", "/v1/sandboxes/keep/exec", R"({"command":["cat"],"stdin_base64":7})", 400},
      {"POST", "/v1/sandboxes/keep/exec",
       R"({"command":["cat"],"stdin":"hi","stdin_base64":"aGkK"})", 400},
      {"GET", "/v1/sandboxes/keep/logs?tail=abc", "", 400},
      {"DELETE", "/v1/status", "", 405},
      {"GET", "/v1/nothing", "", 404},
      {"GET", "/elsewhere", "", 404},
      {"PUT", "/v1/policy", R"({"policy":5})", 400},
  };
  for (const Case& c : cases) {
    HttpReply r = http(g.socket(), c.method, c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.target << " " << c.body << ": " << r.body;
    json j = r.json_body();
    EXPECT_TRUE(j.is_object() && j.contains("error") && j.contains("message"))
        << c.target << ": " << r.body;
  }
  // A body over 1 MiB: 413 before anything is parsed.
  HttpReply huge =
      http(g.socket(), "POST", "/v1/sandboxes", "{\"name\":\"" + std::string(2 << 20, 'a') + "\"}");
  EXPECT_EQ(huge.status, 413);
  // Garbage instead of HTTP.
  HttpReply garbage = http(g.socket(), "", "", "", "", "\x01\x02 nonsense\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_EQ(g.get("/v1/sandboxes").body, before);
  EXPECT_EQ(g.sh("keep", "echo alive").out, "alive\n");
}

TEST_P(GatewayTest, ConnectGivesAnInteractiveTerminalThatDiesWithItsClient) {
  if (::access("/usr/bin/script", X_OK) != 0) GTEST_SKIP() << "script(1) (util-linux) is missing";
  Gateway g(mode());
  g.start();
  g.create({{"name", "term"}});
  // Not a WebSocket: refused.
  EXPECT_EQ(g.get("/v1/sandboxes/term/connect").status, 400);
  // script(1) gives ward a terminal, as a user's shell would; what is typed is the shell's.
  const std::string connect =
      shell_quote(ward_binary()) + " sandbox connect term --gateway " + shell_quote(g.socket());
  auto [code, out] = host_shell(
      "printf '%s\\n' 'stty size; [ -t 0 ] && echo IS-A-TTY; echo $((6*7)); exit 3' | "
      "timeout 30 script -qec " +
      shell_quote(connect) + " /dev/null");
  EXPECT_EQ(code, 3) << out;  // the remote shell's exit status
  EXPECT_NE(out.find("IS-A-TTY"), std::string::npos) << out;
  EXPECT_NE(out.find("24 80"), std::string::npos) << out;  // no size known: 80×24
  EXPECT_NE(out.find("42"), std::string::npos) << out;
  // The same policy as every command: the host's files stay out of reach.
  auto [code2, out2] =
      host_shell("printf '%s\\n' 'cat /etc/shadow; exit' | timeout 30 script -qec " +
                 shell_quote(connect + " -- /bin/sh") + " /dev/null");
  EXPECT_NE(out2.find("Permission denied"), std::string::npos) << out2;

  // A client that dies takes its command with it. (Every process is matched by something of this
  // test's own — its socket path, its numbers — as the other mode's run may be going on beside.)
  // (The pid and the mode: "pid % N + mode" gave two tests started one pid apart, as ctest -j2
  // does, the same tag, and the first to finish killed the other's processes.)
  const std::string tag = std::to_string(::getpid()) + (mode() == Mode::kRoot ? "1" : "2");
  const std::string feeder = "sleep 59." + tag, remote = "sleep 4" + tag;
  const std::string bg_out = g.dir().file("connect.out");
  auto [started, bg] = host_shell("((" + feeder + " | timeout 60 script -qec " +
                                  shell_quote(connect + " -- " + remote) + " /dev/null) >" +
                                  bg_out + " 2>&1 </dev/null &)");
  ASSERT_EQ(started, 0) << bg;
  ASSERT_TRUE(wait_until(
      [&] { return g.sh("term", "ps -eo args").out.find(remote) != std::string::npos; }, 10s))
      << read_file(bg_out) << g.log();
  std::vector<pid_t> clients;
  for (pid_t pid : pids_matching(g.socket() + " -- " + remote))
    if (read_file("/proc/" + std::to_string(pid) + "/comm") == "ward\n") clients.push_back(pid);
  ASSERT_FALSE(clients.empty());
  kill_pids(clients);
  EXPECT_TRUE(wait_until(
      [&] { return g.sh("term", "ps -eo args").out.find(remote) == std::string::npos; }, 10s))
      << g.sh("term", "ps -eo args").out;
  kill_pids(pids_matching(remote));
  kill_pids(pids_matching(feeder));  // what fed the dead client's input
  EXPECT_EQ(g.post("/v1/sandboxes/term/stop", json::object()).status, 200);
  EXPECT_EQ(g.get("/v1/sandboxes/term/connect").status, 400);
}

// Found by a black-box session: a connect whose command could not start was answered 200 with
// exec's event line, so `ward sandbox connect` printed "the gateway answered 200" and exited 1.
// It is a JSON error now, with the code the command would have exited with.
TEST_P(GatewayTest, AConnectWhoseCommandCannotStartIsAJsonErrorWithItsCode) {
  if (::access("/usr/bin/script", X_OK) != 0) GTEST_SKIP() << "script(1) (util-linux) is missing";
  Gateway g(mode());
  g.start();
  g.create({{"name", "term"}});
  const std::string connect = shell_quote(ward_binary()) + " sandbox connect term --gateway " +
                              shell_quote(g.socket()) + " -- /no/such/command";
  auto [code, out] =
      host_shell("timeout 30 script -qec " + shell_quote(connect) + " /dev/null </dev/null");
  EXPECT_EQ(code, 127) << out;
  EXPECT_NE(out.find("command_failed"), std::string::npos) << out;
  EXPECT_EQ(out.find("answered 200"), std::string::npos) << out;
}

// Found by a black-box session: the first window resize ended `ward sandbox connect` ("the
// connection to the gateway ended", the remote shell killed), as SIGWINCH interrupted the
// blocking websocket read. Driven through tmux, which resizes ward's terminal as a user's would:
// each new size reaches the remote terminal and the session goes on to its own exit.
TEST_P(GatewayTest, ConnectFollowsWindowResizesAndOutlivesThem) {
  if (::access("/usr/bin/tmux", X_OK) != 0) GTEST_SKIP() << "tmux is missing";
  Gateway g(mode());
  g.start();
  g.create({{"name", "resized"}});
  const std::string tmux = "tmux -S " + shell_quote(g.dir().file("tmux.sock")) + " ";
  struct Server {
    std::string tmux;
    ~Server() { host_shell(tmux + "kill-server"); }
  } server{tmux};
  // The pane outlives ward to show its exit status.
  const std::string connect = shell_quote(ward_binary()) + " sandbox connect resized --gateway " +
                              shell_quote(g.socket()) + "; echo WARD-EXIT-$?; sleep 600";
  auto [started, out] =
      host_shell(tmux + "new-session -d -s t -x 80 -y 24 " + shell_quote(connect));
  ASSERT_EQ(started, 0) << out;
  auto screen = [&] { return host_shell(tmux + "capture-pane -p -J -S -2000 -t t").second; };
  // Types `line` until `shown` is on the screen (keys typed before the session is up may be
  // lost), for up to 20 s.
  auto until_shown = [&](const std::string& line, const std::string& shown) {
    for (int i = 0; i < 10; ++i) {
      host_shell(tmux + "send-keys -t t -l " + shell_quote(line) + " && " + tmux +
                 "send-keys -t t Enter");
      if (wait_until([&] { return screen().find(shown) != std::string::npos; }, 2s)) return true;
    }
    return false;
  };
  ASSERT_TRUE(until_shown("echo READY-$((40+2))", "READY-42")) << screen() << g.log();
  for (const auto& [cols, rows] : {std::pair{100, 30}, {132, 41}, {90, 20}}) {
    auto [resized, why] = host_shell(tmux + "resize-window -t t -x " + std::to_string(cols) +
                                     " -y " + std::to_string(rows));
    ASSERT_EQ(resized, 0) << why;
    EXPECT_TRUE(until_shown("stty size", std::to_string(rows) + " " + std::to_string(cols)))
        << cols << "x" << rows << ":\n"
        << screen();
    ASSERT_EQ(screen().find("WARD-EXIT-"), std::string::npos) << screen();
  }
  EXPECT_TRUE(until_shown("exit 7", "WARD-EXIT-7")) << screen();
}

TEST_P(GatewayTest, TheCliDrivesTheGateway) {
  Gateway g(mode());
  // Without a gateway the CLI says how to start one.
  Result none = g.cli({"sandbox", "list"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.err.find("ward gateway"), std::string::npos) << none.err;
  g.start();
  const std::string policy = g.dir().write("policy.yaml", policy_with_network());
  Result created = g.cli({"sandbox", "create", "cli-box", "-p", policy});
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  Result list = g.cli({"sandbox", "list"});
  EXPECT_NE(list.out.find("cli-box"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("running"), std::string::npos) << list.out;
  Result as_json = g.cli({"sandbox", "get", "cli-box", "-o", "json"});
  EXPECT_EQ(json::parse(as_json.out, nullptr, false)["status"], "running") << as_json.out;
  Result exec = g.cli(
      {"sandbox", "exec", "cli-box", "--", "/bin/sh", "-c", "echo out; echo err >&2; exit 4"});
  EXPECT_EQ(exec.exit_code, 4);
  EXPECT_EQ(exec.out, "out\n");
  EXPECT_NE(exec.err.find("err"), std::string::npos);
  Result piped = g.cli({"sandbox", "exec", "cli-box", "--", "/bin/cat"}, "piped in\n");
  EXPECT_EQ(piped.out, "piped in\n");
  Result revisions = g.cli({"policy", "list", "cli-box"});
  EXPECT_EQ(revisions.exit_code, 0) << revisions.err;
  Result status = g.cli({"status"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(g.cli({"sandbox", "stop", "cli-box"}).exit_code, 0);
  EXPECT_EQ(g.cli({"sandbox", "delete", "cli-box"}).exit_code, 0);
  Result gone = g.cli({"sandbox", "get", "cli-box"});
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("not_found"), std::string::npos) << gone.err;
  // A user-defined provider profile with mistakes: every one named by file, line and column
  // before anything is sent; nothing is kept.
  const std::string bad = g.dir().write("bad.provider-profile.yaml", "id: mine\nbogus: 1\n");
  Result refused =
      g.cli({"provider", "create", "mine", "--provider-profile", bad, "--value", "MINE_TOKEN=x"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find(bad + ":1:1: error: display_name"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find(bad + ":2:1: error: bogus"), std::string::npos) << refused.err;
  EXPECT_NE(g.cli({"provider", "get", "mine"}).exit_code, 0);
}

// A provider's value stays with the gateway: the API never returns it, the sandbox sees only a
// placeholder, and nothing the gateway writes besides secrets.json (0600) holds it.
TEST_P(GatewayTest, ProviderValuesNeverLeaveTheGateway) {
  Gateway g(mode());
  g.start();
  const std::string secret = "ghp_WARDTESTCANARY0123456789abcdefABCDEF";
  HttpReply made =
      g.post("/v1/providers", {{"name", "github"}, {"values", {{"GITHUB_TOKEN", secret}}}});
  ASSERT_EQ(made.status, 201) << made.body;
  EXPECT_EQ(made.body.find(secret), std::string::npos);
  EXPECT_EQ(g.get("/v1/providers").body.find(secret), std::string::npos);
  EXPECT_EQ(g.get("/v1/providers/github").json_body()["variables"][0], "GITHUB_TOKEN");
  EXPECT_EQ(
      g.post("/v1/providers", {{"name", "github"}, {"values", {{"GITHUB_TOKEN", "x"}}}}).status,
      409);
  EXPECT_EQ(g.post("/v1/providers", {{"name", "bad"}, {"values", {{"NOT_A_VAR", "x"}}}}).status,
            400);
  // Found by a black-box session: a value no header can carry was kept, and every sandbox given
  // it was refused at create (its record left behind in `error`, holding the name).
  HttpReply crlf = g.post("/v1/providers", {{"name", "crlf"},
                                            {"profile", "github"},
                                            {"values", {{"GITHUB_TOKEN", "a\r\nX-Injected: 1"}}}});
  EXPECT_EQ(crlf.status, 400) << crlf.body;
  EXPECT_EQ(crlf.json_body().value("error", ""), "invalid_value") << crlf.body;
  EXPECT_EQ(crlf.body.find("X-Injected"), std::string::npos) << "the value is quoted";
  // A user-defined profile is checked whole before anything is kept: every problem, each with
  // its line and column; an id that contradicts `profile` is refused too.
  const std::string broken =
      "id: mine\ndisplay_name: Mine\ncredentials:\n  - name: t\n    env_vars: [MINE_TOKEN]\n"
      "    colour: blue\nendpoints: 7\n";
  HttpReply invalid =
      g.post("/v1/providers",
             {{"name", "mine"}, {"profile_yaml", broken}, {"values", {{"MINE_TOKEN", secret}}}});
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_EQ(invalid.json_body().value("error", ""), "invalid_profile") << invalid.body;
  const json diagnostics = invalid.json_body().value("diagnostics", json::array());
  ASSERT_EQ(diagnostics.size(), 2u) << invalid.body;
  // In invalid_policy's shape: {line, column, key, message}.
  EXPECT_EQ(diagnostics[0].value("line", 0), 6) << invalid.body;
  EXPECT_EQ(diagnostics[0].value("column", 0), 5) << invalid.body;
  EXPECT_EQ(diagnostics[1].value("line", 0), 7) << invalid.body;
  EXPECT_EQ(diagnostics[1].value("column", 0), 12) << invalid.body;
  EXPECT_EQ(diagnostics[1].value("key", ""), "endpoints") << invalid.body;
  EXPECT_FALSE(diagnostics[1].value("message", "").empty()) << invalid.body;
  EXPECT_EQ(invalid.body.find(secret), std::string::npos);
  const std::string fine =
      "id: mine\ndisplay_name: Mine\ncredentials:\n  - name: t\n    env_vars: [MINE_TOKEN]\n";
  EXPECT_EQ(g.post("/v1/providers", {{"name", "mine"},
                                     {"profile", "github"},
                                     {"profile_yaml", fine},
                                     {"values", {{"MINE_TOKEN", "x"}}}})
                .status,
            400);
  EXPECT_EQ(g.get("/v1/providers/mine").status, 404) << "a refused provider was kept";
  json s =
      g.create({{"name", "cred"}, {"policy", policy_with_network()}, {"providers", {"github"}}});
  EXPECT_EQ(s.dump().find(secret), std::string::npos);
  ExecResult env = g.sh("cred", "echo $GITHUB_TOKEN; cat /proc/self/environ | tr '\\0' '\\n'");
  EXPECT_NE(env.out.find("wardcred-GITHUB_TOKEN-"), std::string::npos) << env.out;
  EXPECT_EQ(env.out.find(secret), std::string::npos);
  // The provider is in use: it cannot be deleted under the sandbox.
  EXPECT_EQ(g.del("/v1/providers/github").status, 409);
  // Everything in the state directory but the secret store is free of the value.
  Result grep = ward_test_grep(g.state(), secret);
  EXPECT_EQ(grep.out, g.state() + "/secrets.json\n") << grep.out;
  struct stat st;
  ASSERT_EQ(::stat((g.state() + "/secrets.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(g.del("/v1/sandboxes/cred").status, 200);
  EXPECT_EQ(g.del("/v1/providers/github").status, 200);
  EXPECT_EQ(ward_test_grep(g.state(), secret).out, "");
}

TEST_P(GatewayTest, MetricsAndLogsFollow) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "m"},
            {"policy", policy_with_network()},
            {"command", {"/bin/sh", "-c", "while :; do echo tick; sleep 0.1; done"}}});
  EXPECT_EQ(g.sh("m", "true").code, 0);
  HttpReply metrics = g.get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("ward_sandboxes{state=\"running\"} 1"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("ward_execs_total 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("ward_exec_duration_seconds_count 1"), std::string::npos);
  // No request was relayed: the latency histogram is there, empty.
  EXPECT_NE(metrics.body.find("ward_egress_request_duration_seconds_count 0"), std::string::npos)
      << metrics.body;
  // logs -f through the CLI: new lines keep arriving until the client stops reading.
  RunOptions o;
  o.mode = mode();
  o.timeout = 1500ms;
  Result follow = ward({"logs", "m", "--gateway", g.socket(), "--source", "output", "-f"}, o);
  EXPECT_TRUE(follow.timed_out);
  std::size_t ticks = 0;
  for (std::size_t at = 0; (at = follow.out.find("tick", at)) != std::string::npos; ++at) ++ticks;
  EXPECT_GE(ticks, 8u) << follow.out;
  Result tail = g.cli({"logs", "m", "--source", "output", "--tail", "3"});
  EXPECT_EQ(std::count(tail.out.begin(), tail.out.end(), '\n'), 3) << tail.out;
  // Found by a black-box session: a follower of a sandbox that was deleted never ended (nor saw
  // anything of a new sandbox of the same name).
  const std::string logs = g.dir().mkdir("follower");
  o.timeout = 30s;
  Background follower(
      ward_background({"logs", "m", "--gateway", g.socket(), "--source", "output", "-f"}, o, logs),
      logs);
  ASSERT_TRUE(wait_until([&] { return follower.out().find("tick") != std::string::npos; }, 5s));
  EXPECT_EQ(g.del("/v1/sandboxes/m").status, 200);
  EXPECT_EQ(follower.wait(5s), 0) << follower.err();
}

// Found by a black-box session: `ward logs NAME --source output -f` of a sandbox whose main
// command had ended printed its lines, then waited for more that could never come. A follower
// ends (exit 0) once the sandbox has stopped after its main command, with everything it wrote,
// as `docker logs -f` does with a container that exited; the output of a sandbox without a main
// command has nothing to follow. A sandbox that runs on is followed on.
TEST_P(GatewayTest, FollowingLogsEndsOnceTheMainCommandHasEnded) {
  Gateway g(mode());
  g.start();
  const std::string policy = g.dir().write("policy.yaml", policy_with_network());
  Result made = g.cli({"sandbox", "create", "lg", "-p", policy, "--", "/bin/sh", "-c",
                       "for i in 1 2 3 4 5; do echo line$i; done"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  RunOptions o;
  o.mode = mode();
  o.timeout = 10s;
  for (const char* source : {"output", "all"}) {
    Result follow = ward({"logs", "lg", "--gateway", g.socket(), "--source", source, "-f"}, o);
    EXPECT_FALSE(follow.timed_out) << source;
    EXPECT_EQ(follow.exit_code, 0) << source << ": " << follow.err;
    EXPECT_NE(follow.out.find("line1\nline2\nline3\nline4\nline5\n"), std::string::npos)
        << source << ": " << follow.out;
  }

  // Following already when the main command ends: to its last line, then the end.
  made = g.cli({"sandbox", "create", "late", "-p", policy, "--", "/bin/sh", "-c",
                "echo first; sleep 1; echo last"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string logs = g.dir().mkdir("follower");
  o.timeout = 30s;
  Background follower(
      ward_background({"logs", "late", "--gateway", g.socket(), "--source", "output", "-f"}, o,
                      logs),
      logs);
  EXPECT_EQ(follower.wait(10s), 0) << follower.err();
  EXPECT_NE(follower.out().find("first\nlast\n"), std::string::npos) << follower.out();

  // No main command: its output ends at once; its audit records are followed while it runs.
  made = g.cli({"sandbox", "create", "quiet", "-p", policy});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  o.timeout = 10s;
  Result output = ward({"logs", "quiet", "--gateway", g.socket(), "--source", "output", "-f"}, o);
  EXPECT_FALSE(output.timed_out);
  EXPECT_EQ(output.exit_code, 0) << output.err;
  o.timeout = 1500ms;
  for (const char* source : {"audit", "all"}) {
    Result audit = ward({"logs", "quiet", "--gateway", g.socket(), "--source", source, "-f"}, o);
    EXPECT_TRUE(audit.timed_out) << source << " of a running sandbox was not followed";
  }
}

// Found by a black-box session: `ward sandbox stop` of a stopped sandbox answered "stopped",
// exit 0, while `ward sandbox start` of a running one failed ("already running (conflict)",
// exit 1). Both are idempotent, and say when there was nothing to do.
TEST_P(GatewayTest, StopAndStartAreIdempotentAndSaySo) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "twice"}, {"policy", policy_with_network()}});
  Result start = g.cli({"sandbox", "start", "twice"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "twice: already running\n") << start.err;
  Result stop = g.cli({"sandbox", "stop", "twice"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "twice: stopped\n") << stop.err;
  stop = g.cli({"sandbox", "stop", "twice"});
  EXPECT_EQ(stop.exit_code, 0) << stop.err;
  EXPECT_EQ(stop.out, "twice: already stopped\n") << stop.err;
  start = g.cli({"sandbox", "start", "twice"});
  EXPECT_EQ(start.exit_code, 0) << start.err;
  EXPECT_EQ(start.out, "twice: running\n") << start.err;
  // The API too: either, twice, is 200 with the sandbox as it is.
  HttpReply again = g.post("/v1/sandboxes/twice/start", json::object());
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json_body().value("status", ""), "running") << again.body;
  EXPECT_EQ(g.post("/v1/sandboxes/twice/stop", json::object()).status, 200);
  EXPECT_EQ(g.post("/v1/sandboxes/twice/stop", json::object()).status, 200);
}

// Found by a black-box session: a sandbox asked for with a provider that does not exist was a 409
// "conflict", and `ward provider create` of a name that is no built-in profile, without a profile
// of its own, was told to give "profile_yaml" (the API's field, not the CLI's option).
TEST_P(GatewayTest, ProviderMistakesAreNamedAsTheUserMadeThem) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough";
  Gateway g(mode());
  g.start();
  HttpReply missing =
      g.post("/v1/sandboxes",
             {{"name", "pv1"}, {"policy", policy_with_network()}, {"providers", {"nonexist"}}});
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(missing.json_body().value("error", ""), "not_found") << missing.body;
  EXPECT_EQ(g.get("/v1/sandboxes/pv1").status, 404) << "a refused sandbox was kept";
  Result cli = g.cli({"sandbox", "create", "pv2", "--provider", "nonexist"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("no provider named nonexist (not_found)"), std::string::npos) << cli.err;

  Result unknown = g.cli({"provider", "create", "x", "--value", "FOO=bar"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_NE(unknown.err.find("--provider-profile FILE"), std::string::npos) << unknown.err;
  EXPECT_EQ(unknown.err.find("profile_yaml"), std::string::npos) << unknown.err;
  EXPECT_EQ(g.get("/v1/providers/x").status, 404);
}

// Found by a black-box session: `ward gateway -v` logged the requests of its own MCP endpoint
// (the sweep of chat sandboxes at start-up: GET /v1/sandboxes?label=ward.mcp%3D1) as a client's,
// "uid 0". They are labelled as the gateway's own; a client's carry its uid.
TEST_P(GatewayTest, VerboseLogTellsTheGatewaysOwnRequestsFromClients) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough";
  Gateway g(mode());
  g.start({"-v"});
  ASSERT_EQ(g.get("/v1/status").status, 200);
  auto line_with = [&](const std::string& needle) {
    const std::string log = g.log();
    const std::size_t at = log.find(needle);
    if (at == std::string::npos) return std::string();
    const std::size_t begin = log.rfind('\n', at);
    return log.substr(begin == std::string::npos ? 0 : begin + 1,
                      log.find('\n', at) - (begin == std::string::npos ? 0 : begin + 1));
  };
  ASSERT_TRUE(wait_until([&] { return !line_with("GET /v1/status").empty(); }, 5s)) << g.log();
  EXPECT_NE(line_with("GET /v1/status").find("uid " + std::to_string(test_uid(mode())) + ":"),
            std::string::npos)
      << g.log();
  ASSERT_TRUE(wait_until([&] { return !line_with("label=ward.mcp").empty(); }, 5s)) << g.log();
  const std::string own = line_with("label=ward.mcp");
  EXPECT_EQ(own.find("uid "), std::string::npos) << own;
  EXPECT_NE(own.find("internal"), std::string::npos) << own;
}

TEST_P(GatewayTest, AHundredSandboxesAtOnceEachExeced) {
  if (mode() == Mode::kRootless) GTEST_SKIP() << "once is enough (root mode covers it)";
  Gateway g(mode());
  g.start();
  constexpr int kCount = 100;
  std::vector<std::thread> threads;
  std::vector<int> created(kCount, 0), execed(kCount, -1);
  const std::string policy = policy_with_network();
  for (int i = 0; i < kCount; ++i) {
    threads.emplace_back([&, i] {
      const std::string name = "many-" + std::to_string(i);
      created[i] =
          http(g.socket(), "POST", "/v1/sandboxes", json{{"name", name}, {"policy", policy}}.dump())
              .status;
      HttpReply r = http(g.socket(), "POST", "/v1/sandboxes/" + name + "/exec",
                         json{{"command", {"/bin/echo", name}}}.dump());
      if (r.body.find("\"exit\"") != std::string::npos &&
          r.body.find("\"code\":0") != std::string::npos)
        execed[i] = 0;
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(created[i], 201) << i;
    EXPECT_EQ(execed[i], 0) << i;
  }
  json status = g.get("/v1/status").json_body();
  EXPECT_EQ(status["sandboxes"]["running"], kCount) << status.dump();
  for (int i = 0; i < kCount; ++i)
    EXPECT_EQ(g.del("/v1/sandboxes/many-" + std::to_string(i)).status, 200);
}

// Found in review: an exec's timeout travelled on the channel that carries the command's
// output, and was dropped when that was full — as it is whenever the client reads slower than
// the command writes: `yes` with timeout_ms ran on for as long as its client was slow, and so did
// a command past the MCP tools' limit. The timeout now kills the command whether the client
// reads or not, and the stream ends with timed_out once the client drains it.
TEST_P(GatewayTest, AnExecTimeoutKillsACommandThatFloodsASlowClient) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "flood"}, {"policy", policy_with_network()}});
  const std::string marker = unique_marker();
  const std::string word = "api-flood-" + marker;
  const int fd =
      start_exec(g.socket(), "flood",
                 {{"command", {"/bin/sh", "-c", "exec yes " + word}}, {"timeout_ms", 500}});
  ASSERT_GE(fd, 0);
  // The stream's head and first line, then nothing read for a while: the command dies anyway.
  std::string got;
  ASSERT_TRUE(read_until(fd, got, 10s, [](const std::string& text) {
    return text.find("\"type\":\"started\"") != std::string::npos;
  })) << got;
  EXPECT_TRUE(wait_until([&] { return pids_matching(word).empty(); }, 5s))
      << "the command outlived its timeout_ms while its client did not read";
  // Then the client drains the stream: whatever output was under way, and the exit.
  const auto began = std::chrono::steady_clock::now();
  EXPECT_TRUE(read_until(fd, got, 20s)) << "the stream did not end";
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
  ::close(fd);
  const json exit = last_exit_line(got);
  EXPECT_TRUE(exit.value("timed_out", false))
      << got.substr(got.size() - std::min<std::size_t>(300, got.size()));
  EXPECT_EQ(exit.value("signal", 0), SIGKILL) << exit.dump();
  kill_pids(pids_matching(word));

  // `ward sandbox exec --timeout` whose output goes to something that starts reading late.
  const std::string cli_word = "cli-flood-" + marker;
  const std::string status = g.dir().file("cli.status");
  const auto cli_began = std::chrono::steady_clock::now();
  host_shell("(timeout -s KILL 40 " + shell_quote(ward_binary()) +
             " sandbox exec flood --gateway " + shell_quote(g.socket()) + " --timeout 0.5 -- yes " +
             cli_word + " 2>" + shell_quote(status + ".err") + "; echo $? > " +
             shell_quote(status) + ") | (sleep 2; cat > /dev/null)");
  EXPECT_EQ(read_file(status), "124\n") << "137: still running after 40 s\n"
                                        << read_file(status + ".err");
  EXPECT_LT(std::chrono::steady_clock::now() - cli_began, 20s);
  EXPECT_TRUE(pids_matching(cli_word).empty());
  kill_pids(pids_matching(cli_word));
}

// Found in review: once a command had exited, its output was waited for until 200 ms passed
// without any, so a background process it left writing kept the stream open for as long as it
// wrote. The stream now ends 200 ms after the exit, with the command's exit code.
TEST_P(GatewayTest, AnExecStreamEndsSoonAfterTheExitThoughABackgroundProcessKeepsWriting) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "bg"}, {"policy", policy_with_network()}});
  const std::string word = "bg-flood-" + unique_marker();
  const int fd = start_exec(g.socket(), "bg",
                            {{"command", {"/bin/sh", "-c", "yes $0 & sleep 0.3; exit 3", word}}});
  ASSERT_GE(fd, 0);
  std::string got;
  const auto began = std::chrono::steady_clock::now();
  EXPECT_TRUE(read_until(fd, got, 15s)) << "the stream did not end";
  EXPECT_LT(std::chrono::steady_clock::now() - began, 10s);
  ::close(fd);
  const json exit = last_exit_line(got);
  EXPECT_EQ(exit.value("code", -1), 3)
      << got.substr(got.size() - std::min<std::size_t>(300, got.size()));
  EXPECT_FALSE(exit.value("timed_out", true));
  // The writer left behind found its pipe closed.
  EXPECT_TRUE(wait_until([&] { return pids_matching(word).empty(); }, 5s));
  kill_pids(pids_matching(word));
  EXPECT_EQ(g.sh("bg", "echo still").out, "still\n");
}

// Found in review: JSON nested a few hundred thousand levels deep overflowed the gateway's stack
// where a value was copied (a connect control message's members); and a control message whose
// `type` was not a string threw inside the coroutine reading the client, which then ended
// without a word: the terminal's command ran on, its client never answered. Deeper than 64 levels
// is refused before it is parsed, and a malformed control message ends the connection with an
// error frame and a close (1008), killing the command.
TEST_P(GatewayTest, DeepJsonAndMalformedControlMessagesAreRefusedNotFatal) {
  Gateway g(mode());
  g.start();
  g.create({{"name", "ctl"}, {"policy", policy_with_network()}});
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  HttpReply refused = http(g.socket(), "POST", "/v1/sandboxes", deep);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.json_body().value("error", ""), "invalid_json") << refused.body;
  EXPECT_EQ(g.get("/v1/status").status, 200);

  const std::string marker = unique_marker();
  int n = 0;
  for (const std::string& message :
       {std::string(R"({"type":1})"), R"({"type":"resize","cols":)" + deep + R"(,"rows":5})",
        std::string(R"({"type":"signal","signal":"9"})"), std::string("[1,2]"),
        std::string("not json")}) {
    const std::string sleeper = "1000." + marker + std::to_string(++n);
    WsClient ws(g.socket(), "/v1/sandboxes/ctl/connect?command=/bin/sleep&command=" + sleeper);
    ASSERT_TRUE(ws.upgraded()) << ws.head();
    ASSERT_TRUE(wait_until([&] { return !pids_matching(sleeper).empty(); }, 10s));
    ASSERT_TRUE(ws.send_text(message));
    WsClient::Frame error = ws.next(5s);
    EXPECT_EQ(error.opcode, 1) << message.substr(0, 40) << ": no error frame";
    EXPECT_EQ(json::parse(error.payload, nullptr, false).value("type", ""), "error")
        << error.payload;
    WsClient::Frame close = ws.next(5s);
    ASSERT_EQ(close.opcode, 8) << message.substr(0, 40) << ": no close frame";
    ASSERT_GE(close.payload.size(), 2u);
    EXPECT_EQ((static_cast<unsigned char>(close.payload[0]) << 8) |
                  static_cast<unsigned char>(close.payload[1]),
              1008);
    EXPECT_TRUE(wait_until([&] { return pids_matching(sleeper).empty(); }, 5s))
        << message.substr(0, 40) << ": the command outlived its connection";
    kill_pids(pids_matching(sleeper));
  }
  // Well-formed ones still work, and the gateway answers.
  const std::string sleeper = "1000." + marker + "0";
  WsClient ws(g.socket(), "/v1/sandboxes/ctl/connect?command=/bin/sleep&command=" + sleeper);
  ASSERT_TRUE(ws.upgraded()) << ws.head();
  ASSERT_TRUE(wait_until([&] { return !pids_matching(sleeper).empty(); }, 10s));
  ASSERT_TRUE(ws.send_text(R"({"type":"resize","cols":100,"rows":30})"));
  ASSERT_TRUE(ws.send_text(R"({"type":"signal","signal":15})"));
  WsClient::Frame exit = ws.next(10s);
  EXPECT_EQ(json::parse(exit.payload, nullptr, false).value("signal", 0), 15) << exit.payload;
  EXPECT_EQ(g.get("/v1/status").status, 200);
}

// Found in review, three ways a client could leave the gateway worse off for everyone:
// - a connect whose command is not UTF-8 (from the percent-decoded query) failed in the control
//   message's JSON, after the exec had been counted: the sandbox never went idle again;
// - a workdir that resolves, through a symlink, to a name that is not UTF-8 left a record that
//   no listing could serialise: GET /v1/sandboxes failed for everyone from then on;
// - every new method token got a counter of its own: /metrics grew without bound.
TEST_P(GatewayTest, WhatJsonCannotCarryIsRefusedAndLeavesNothingBehind) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough";
  Gateway g(mode());
  g.start();
  g.create({{"name", "idle"}, {"policy", policy_with_network()}, {"idle_ttl_s", 1}});
  {
    WsClient ws(g.socket(), "/v1/sandboxes/idle/connect?command=/bin/true%FF");
    EXPECT_TRUE(ws.head().starts_with("HTTP/1.1 400")) << ws.head();
  }
  EXPECT_TRUE(wait_until(
      [&] { return g.get("/v1/sandboxes/idle").json_body().value("status", "") == "stopped"; }, 8s))
      << "the refused command kept the sandbox busy: "
      << g.get("/v1/sandboxes/idle").json_body().dump();

  const std::string latin1 = g.dir().mkdir("caf\xe9", 0755);
  ASSERT_EQ(::symlink(latin1.c_str(), (g.dir().path() + "/plain").c_str()), 0);
  HttpReply made = g.post("/v1/sandboxes", {{"name", "latin1"},
                                            {"workdir", g.dir().path() + "/plain"},
                                            {"policy", policy_with_network()}});
  EXPECT_EQ(made.status, 400) << made.body;
  EXPECT_EQ(made.json_body().value("error", ""), "invalid_path") << made.body;
  HttpReply list = g.get("/v1/sandboxes");
  EXPECT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json_body()["sandboxes"].size(), 1u) << list.body;

  // Found by a black-box session: a NUL byte in a command or a variable was passed on, and the
  // command line ended there (`a\0b` ran `a`).
  const std::string nul("/bin/echo\0-never", 16);
  EXPECT_EQ(g.post("/v1/sandboxes/idle/start", json::object()).status, 200);
  HttpReply exec = g.post("/v1/sandboxes/idle/exec", {{"command", {nul}}});
  EXPECT_EQ(exec.status, 400) << exec.body;
  HttpReply env = g.post("/v1/sandboxes/idle/exec",
                         {{"command", {"/bin/true"}}, {"env", {{"A", std::string("x\0y", 3)}}}});
  EXPECT_EQ(env.status, 400) << env.body;
  HttpReply created = g.post("/v1/sandboxes", {{"name", "nul"}, {"command", {nul}}});
  EXPECT_EQ(created.status, 400) << created.body;
  EXPECT_EQ(g.get("/v1/sandboxes/nul").status, 404);
  // And a method a target does not have is answered 405 with the ones it has.
  HttpReply put = g.put("/v1/status", json::object());
  EXPECT_EQ(put.status, 405);
  EXPECT_NE(put.head.find("Allow: GET\r\n"), std::string::npos) << put.head;

  for (const char* method : {"BREW", "WHEN", "PROPFIND"}) http(g.socket(), method, "/v1/status");
  const std::string metrics = g.get("/metrics").body;
  EXPECT_NE(metrics.find("ward_api_requests_total{method=\"other\"} 3"), std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find("BREW"), std::string::npos) << metrics;
}

// Found in review: the gateway acts on a sandbox's first message ("hello") by making its egress
// proxy, whose event loop needs descriptors and a thread. Out of either, the exception ended the
// loop that reads the sandbox's messages: the sandbox stayed "creating" for good (exec 409, start
// 409 "already running"), its exit never recorded. The gateway is starved here at every step of
// a create, one descriptor more each time: whatever fails, it answers, the sandbox ends up
// running with every command working, or in error with a reason, and the gateway goes on.
TEST_P(GatewayTest, ASandboxMadeWhileTheGatewayIsOutOfDescriptorsIsNeverLeftHalfMade) {
  if (mode() != Mode::kRoot) GTEST_SKIP() << "one mode is enough (the gateway's limit is lowered)";
  Gateway g(mode());
  g.start();
  const pid_t pid = g.pid();
  auto open_now = [&] {
    std::size_t n = 0;
    if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
      while (struct dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
      ::closedir(d);
    }
    return n;
  };
  struct rlimit was;
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, nullptr, &was), 0);
  int running = 0, refused = 0, proxy_failed = 0;
  for (int spare = 1; spare < 24; ++spare) {  // one for the API connection itself
    const std::string name = "starved-" + std::to_string(spare);
    struct rlimit low = {open_now() + spare, was.rlim_max};
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0);
    HttpReply r = g.post("/v1/sandboxes", {{"name", name}, {"policy", policy_with_network()}});
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &was, nullptr), 0);
    ASSERT_EQ(::kill(pid, 0), 0) << "the gateway is gone:\n" << g.log();
    ASSERT_FALSE(r.body.empty()) << spare;
    if (r.status != 201) {
      ++refused;
      EXPECT_FALSE(r.json_body().value("error", "").empty()) << r.body;
    }
    std::string status;
    ASSERT_TRUE(wait_until(
        [&] {
          status = g.get("/v1/sandboxes/" + name).json_body().value("status", "gone");
          return status != "creating";
        },
        10s))
        << name << " stayed creating:\n"
        << g.log();
    if (status == "running") {
      ++running;
      ExecResult hi = g.exec(name, {{"command", {"/bin/echo", "hi"}}});
      EXPECT_EQ(hi.out, "hi\n") << name << ": " << hi.last.dump() << "\n" << g.log();
      // Its way out is the proxy, or nothing: never a connection that hangs.
      ExecResult out = g.sh(name,
                            "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/3128; "
                            "printf \"CONNECT x.test:443 HTTP/1.1\\r\\n\\r\\n\" >&3; "
                            "head -c 12 <&3' ; echo \" $?\"");
      EXPECT_TRUE(out.out == "HTTP/1.1 403 0\n" || out.out.ends_with(" 1\n"))
          << name << ": " << out.out << out.err << "\n"
          << g.log();
    } else if (status != "gone") {
      const std::string reason = g.get("/v1/sandboxes/" + name).json_body().value("reason", "");
      EXPECT_FALSE(reason.empty()) << name << " is " << status;
      proxy_failed += reason.find("egress proxy could not start") != std::string::npos;
    }
    if (status != "gone") {
      EXPECT_EQ(g.del("/v1/sandboxes/" + name).status, 200) << name;
    }
  }
  EXPECT_GT(running, 0);
  EXPECT_GT(refused, 0);
  EXPECT_GT(proxy_failed, 0) << "no step failed at the proxy's making:\n" << g.log();
  ASSERT_EQ(g.create({{"name", "after"}, {"policy", policy_with_network()}})["status"], "running");
  EXPECT_EQ(g.exec("after", {{"command", {"/bin/echo", "ok"}}}).out, "ok\n");
}

WARD_INSTANTIATE_BOTH_MODES(GatewayTest);

}  // namespace
}  // namespace ward::test
