#include "gateway/runtime.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>

#include "base/log.h"

namespace ward::gateway {
namespace {

constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<void> deliver(std::shared_ptr<ExecState> state, ExecEvent event) {
  const boost::system::error_code none;
  co_await state->events.async_send(none, std::move(event), kNoThrow);
}

asio::awaitable<void> feed(std::shared_ptr<asio::posix::stream_descriptor> pipe, std::string data) {
  if (!data.empty()) co_await asio::async_write(*pipe, asio::buffer(data), kNoThrow);
  boost::system::error_code ignored;
  pipe->close(ignored);
}

asio::awaitable<void> drain_pipe(std::shared_ptr<asio::posix::stream_descriptor> pipe,
                                 std::shared_ptr<ExecState> state, bool is_stderr) {
  // A pipe's worth, not zeroed: only what a read fills is ever touched (a zeroed one cost a 64 KiB
  // memset per stream and kept it all resident while the command ran).
  constexpr std::size_t kSize = 64 * 1024;
  const std::unique_ptr<char[]> buf(new char[kSize]);
  const boost::system::error_code none;
  for (;;) {
    std::tuple<boost::system::error_code, std::size_t> got =
        co_await pipe->async_read_some(asio::buffer(buf.get(), kSize), kNoThrow);
    if (std::get<0>(got)) break;
    ExecEvent event{is_stderr ? ExecEvent::Kind::kStderr : ExecEvent::Kind::kStdout,
                    std::string(buf.get(), std::get<1>(got))};
    co_await state->events.async_send(none, std::move(event), kNoThrow);
  }
  ExecEvent end{is_stderr ? ExecEvent::Kind::kStderrEnd : ExecEvent::Kind::kStdoutEnd, ""};
  co_await state->events.async_send(none, std::move(end), kNoThrow);
}

Latch::Latch(asio::any_io_executor executor)
    : timer_(executor, std::chrono::steady_clock::time_point::max()) {}

void Latch::set(json value) {
  if (set_) return;
  value_ = std::move(value);
  set_ = true;
  timer_.cancel();
}

asio::awaitable<std::optional<json>> Latch::wait(std::chrono::milliseconds timeout) {
  if (!set_) {
    timer_.expires_after(timeout);
    co_await timer_.async_wait(kNoThrow);
  }
  if (!set_) co_return std::nullopt;
  co_return value_;
}

Runtime::Runtime(asio::io_context& io, std::string id, UniqueFd control, pid_t supervisor_pid)
    : io_(io),
      id_(std::move(id)),
      control_(io),
      supervisor_pid_(supervisor_pid),
      hello_(io.get_executor()),
      ended_(io.get_executor()) {
  // Registered before the descriptor changes hands: when epoll cannot take it, the exception
  // leaves it with `control`, which closes it.
  boost::system::error_code ec;
  control_.assign(control.get(), ec);
  if (ec) throw boost::system::system_error(ec, "the sandbox's control socket");
  static_cast<void>(control.release());
}

Runtime::~Runtime() {
  *alive_ = false;
  close();
  if (proxy) proxy->stop();
}

void Runtime::close() {
  boost::system::error_code ignored;
  if (control_.is_open()) control_.close(ignored);
}

void Runtime::start(std::function<void(Runtime&, const json&, std::vector<UniqueFd>&)> on_message,
                    std::function<void(Runtime&)> on_closed) {
  on_message_ = std::move(on_message);
  on_closed_ = std::move(on_closed);
  asio::co_spawn(io_, read_loop(), asio::detached);
}

Result<void> Runtime::send(const json& message, std::span<const int> fds) {
  if (!control_.is_open()) return fail("the sandbox's supervisor is not connected");
  return send_control(control_.native_handle(), message, fds);
}

asio::awaitable<void> Runtime::read_loop() {
  auto alive = alive_;
  for (;;) {
    auto [ec] = co_await control_.async_wait(asio::posix::descriptor_base::wait_read, kNoThrow);
    if (!*alive) co_return;
    if (ec || !control_.is_open()) break;
    bool closed = false;
    for (;;) {
      auto m = receive_control(control_.native_handle());
      if (!m) {
        if (m.error().message != "closed") log::warn("sandbox {}: {}", id_, m.error().describe());
        closed = true;
        break;
      }
      if (!*m) break;
      dispatch(std::move(**m));
      if (!*alive) co_return;
    }
    if (closed) break;
  }
  close();
  // Whoever still waits hears nothing more.
  hello_.set(json{{"op", "error"}, {"message", "the sandbox's supervisor went away"}});
  ended_.set(json{{"op", "ended"}});
  for (auto& [id, state] : execs_) {
    state->started.set(json{{"op", "failed"}, {"code", 125}, {"message", "the sandbox ended"}});
    state->lost = true;
    state->alert();
  }
  if (on_closed_) on_closed_(*this);
}

void Runtime::dispatch(ControlMessage m) {
  const std::string op = m.body["op"].get<std::string>();
  if (op == "started" || op == "failed" || op == "exit") {
    auto it = execs_.find(m.body.value("id", std::int64_t{-1}));
    if (it == execs_.end()) return;
    std::shared_ptr<ExecState> state = it->second;
    if (op == "exit") {
      // Queued behind the output already read: sent from a coroutine that waits for room.
      state->exit = m.body.dump();
      asio::co_spawn(io_, deliver(state, ExecEvent{ExecEvent::Kind::kExit, *state->exit}),
                     asio::detached);
      return;
    }
    state->started.set(m.body);
    return;
  }
  if (op == "hello" || op == "error") hello_.set(m.body);
  if (op == "hello") {
    init_pid_ = m.body.value("init_pid", 0);
    if (const pid_t supervisor = m.body.value("supervisor_pid", 0); supervisor > 0)
      supervisor_pid_ = supervisor;
  }
  if (op == "ended") ended_.set(m.body);
  if (!on_message_) return;
  // A message the gateway fails to act on (out of descriptors or memory, say) is logged; the
  // loop goes on, or every later message of the sandbox — its exit, its end — would be lost.
  try {
    on_message_(*this, m.body, m.fds);
  } catch (const std::exception& e) {
    log::error("sandbox {}: the supervisor's \"{}\" message: {}", id_, op, e.what());
  }
}

}  // namespace ward::gateway
