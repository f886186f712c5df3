// The gateway's side of one live sandbox: its control connection to the supervisor, its egress
// proxy, and the exec requests in flight. Lives on the gateway's event loop.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/result.h"
#include "gateway/control.h"
#include "proxy/proxy.h"

namespace ward::gateway {

namespace asio = boost::asio;
using nlohmann::json;

// Something one coroutine waits for once (a supervisor's answer), with a timeout.
class Latch {
 public:
  explicit Latch(asio::any_io_executor executor);
  void set(json value);
  bool is_set() const { return set_; }
  const json& value() const { return value_; }
  // The value, or nullopt when `timeout` passed first.
  asio::awaitable<std::optional<json>> wait(std::chrono::milliseconds timeout);

 private:
  asio::steady_timer timer_;
  bool set_ = false;
  json value_;
};

// What an exec's streaming coroutine receives, in order of arrival.
struct ExecEvent {
  enum class Kind { kStdout, kStderr, kStdoutEnd, kStderrEnd, kExit, kAlert };
  Kind kind;
  std::string data;  // output bytes; kExit: the supervisor's message as JSON text
};
using ExecChannel = asio::experimental::channel<void(boost::system::error_code, ExecEvent)>;

struct ExecState {
  explicit ExecState(asio::any_io_executor executor) : started(executor), events(executor, 256) {}
  Latch started;  // {"op":"started"|"failed", ...}
  ExecChannel events;
  // What must reach the streaming coroutine even when a command's output has filled the channel
  // (a client reading slower than the command writes): kept here, and the channel only carries a
  // kAlert to wake a coroutine waiting on it, when it has room. The coroutine reads these after
  // every event.
  bool client_gone = false;
  bool timed_out = false;  // set with the command already killed
  bool lost = false;       // the supervisor went away: nothing more will come from it
  // The exit message as it arrived from the supervisor, before its event (queued behind the
  // output) reaches the stream: what decides against a late timeout or the sandbox's end.
  std::optional<std::string> exit;
  void alert() {
    events.try_send(boost::system::error_code{}, ExecEvent{ExecEvent::Kind::kAlert, ""});
  }
};

// The exec's helpers, each a coroutine of its own (named functions with by-value parameters: GCC 12
// mishandles captures and temporaries of lambda coroutines).
// Queues `event`, waiting for room on the channel.
asio::awaitable<void> deliver(std::shared_ptr<ExecState> state, ExecEvent event);
// Writes `data` to the command's stdin, then closes it.
asio::awaitable<void> feed(std::shared_ptr<asio::posix::stream_descriptor> pipe, std::string data);
// Reads a command's stdout (or stderr) into the channel until its end.
asio::awaitable<void> drain_pipe(std::shared_ptr<asio::posix::stream_descriptor> pipe,
                                 std::shared_ptr<ExecState> state, bool is_stderr);

class Runtime {
 public:
  Runtime(asio::io_context& io, std::string id, UniqueFd control, pid_t supervisor_pid);
  ~Runtime();

  const std::string& id() const { return id_; }
  pid_t supervisor_pid() const { return supervisor_pid_; }
  pid_t init_pid() const { return init_pid_; }
  bool connected() const { return control_.is_open(); }

  // Reads the supervisor's messages until the connection ends; `on_message` sees those that are
  // not about an exec (hello, error, main_exit, ended), then `on_closed` runs once.
  void start(std::function<void(Runtime&, const json&, std::vector<UniqueFd>&)> on_message,
             std::function<void(Runtime&)> on_closed);

  Result<void> send(const json& message, std::span<const int> fds = {});

  Latch& hello() { return hello_; }
  Latch& ended() { return ended_; }
  void set_init_pid(pid_t pid) { init_pid_ = pid; }

  // Exec bookkeeping.
  std::int64_t next_exec_id() { return ++exec_ids_; }
  void add_exec(std::int64_t id, std::shared_ptr<ExecState> state) {
    execs_[id] = std::move(state);
    touch();
  }
  void remove_exec(std::int64_t id) {
    execs_.erase(id);
    touch();
  }
  // Idle TTL: stopped once no command has run for this long (0: never).
  std::chrono::seconds idle_ttl{0};
  void touch() { last_active_ = std::chrono::steady_clock::now(); }
  bool idle_expired(std::chrono::steady_clock::time_point now) const {
    return idle_ttl.count() > 0 && execs_.empty() && now - last_active_ >= idle_ttl;
  }
  std::size_t exec_count() const { return execs_.size(); }

  // The sandbox's egress proxy (null until hello brought the listener).
  std::unique_ptr<proxy::Proxy> proxy;
  std::shared_ptr<const policy::Policy> policy;
  // ward's placeholders in the sandbox's writable paths (host paths, from the hello): what a
  // download leaves out.
  std::vector<std::string> placeholders;
  // Why the gateway stopped the sandbox as it started (its proxy could not be made): the
  // record's reason once it has ended, with status "error".
  std::string failure;

  void close();

 private:
  asio::awaitable<void> read_loop();
  void dispatch(ControlMessage m);

  asio::io_context& io_;
  std::string id_;
  asio::posix::stream_descriptor control_;
  pid_t supervisor_pid_;
  pid_t init_pid_ = 0;
  Latch hello_;
  Latch ended_;
  std::int64_t exec_ids_ = 0;
  std::chrono::steady_clock::time_point last_active_ = std::chrono::steady_clock::now();
  std::map<std::int64_t, std::shared_ptr<ExecState>> execs_;
  std::function<void(Runtime&, const json&, std::vector<UniqueFd>&)> on_message_;
  std::function<void(Runtime&)> on_closed_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace ward::gateway
