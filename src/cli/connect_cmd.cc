// `ward sandbox connect NAME [-- CMD ARGS]`: an interactive terminal in a running sandbox, over
// the gateway's WebSocket (GET /v1/sandboxes/NAME/connect). The local terminal goes raw for the
// session; keystrokes (Ctrl-C included) are the remote terminal's, window size changes follow.
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <atomic>
#include <mutex>
#include <thread>

#include "cli/gateway_client.h"

namespace ward::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

std::atomic<bool> g_resized{false};
void on_winch(int) {
  g_resized = true;
}

// The local terminal in raw mode for as long as this lives.
class RawTerminal {
 public:
  RawTerminal() {
    if (!::isatty(0) || ::tcgetattr(0, &saved_) != 0) return;
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(0, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(0, TCSANOW, &saved_);
  }

 private:
  struct termios saved_ = {};
  bool active_ = false;
};

std::pair<unsigned, unsigned> window_size() {
  struct winsize ws = {};
  if ((::ioctl(1, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) && ::ioctl(0, TIOCGWINSZ, &ws) != 0)
    return {80, 24};
  if (ws.ws_col == 0 || ws.ws_row == 0) return {80, 24};
  return {ws.ws_col, ws.ws_row};
}

template <class Socket>
int session(Socket socket, const client::Endpoint& endpoint, const std::string& host,
            const std::string& target) {
  websocket::stream<Socket> ws(std::move(socket));
  ws.set_option(websocket::stream_base::decorator([&](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "ward/" WARD_VERSION);
    if (!endpoint.token.empty())
      req.set(beast::http::field::authorization, "Bearer " + endpoint.token);
  }));
  websocket::response_type answer;
  boost::system::error_code ec;
  ws.handshake(answer, host, target, ec);
  if (ec) {
    if (answer.result_int() != 0 && answer.result_int() != 101) {
      Response r;
      r.status = answer.result_int();
      r.body = answer.body();
      return report_api_error(r);
    }
    std::fprintf(stderr, "ward: connect: %s\n", ec.message().c_str());
    return 1;
  }
  ws.binary(true);

  RawTerminal raw;
  std::mutex writing;  // the input thread's frames and nothing else write
  std::atomic<bool> done{false};
  // A resize must neither end the session nor wait: SIGWINCH goes to the input thread alone
  // (blocked here before it starts, unblocked there), where it cuts poll() short so the new size
  // is sent at once; SA_RESTART keeps any other interrupted call going. Without both, the signal
  // could land in the blocking websocket read below, whose EINTR ended the session.
  struct sigaction sa = {};
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGWINCH, &sa, nullptr);
  sigset_t winch, saved_mask;
  ::sigemptyset(&winch);
  ::sigaddset(&winch, SIGWINCH);
  ::pthread_sigmask(SIG_BLOCK, &winch, &saved_mask);
  std::thread input([&] {
    ::pthread_sigmask(SIG_UNBLOCK, &winch, nullptr);
    char buf[4096];
    bool open = true;
    while (!done) {
      if (g_resized.exchange(false)) {
        auto [cols, rows] = window_size();
        const std::string m = "{\"type\":\"resize\",\"cols\":" + std::to_string(cols) +
                              ",\"rows\":" + std::to_string(rows) + "}";
        std::lock_guard lock(writing);
        boost::system::error_code e;
        ws.text(true);
        ws.write(asio::buffer(m), e);
        ws.binary(true);
      }
      if (!open) {
        ::poll(nullptr, 0, 100);
        continue;
      }
      pollfd p{0, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n <= 0) {
        open = false;  // no more input; the session lasts until the remote side ends
        continue;
      }
      std::lock_guard lock(writing);
      boost::system::error_code e;
      ws.write(asio::buffer(buf, static_cast<std::size_t>(n)), e);
      if (e) break;
    }
  });

  int code = -1;
  beast::flat_buffer buffer;
  for (;;) {
    ws.read(buffer, ec);
    if (ec) break;
    const std::string data = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    if (ws.got_text()) {
      auto event = Json::parse(data, nullptr, false);
      if (event.is_object() && event.value("type", "") == "exit") code = exit_status(event);
      if (event.is_object() && event.value("type", "") == "error") {
        std::fprintf(stderr, "\r\nward: %s\r\n", field(event, "message").c_str());
        code = event.value("code", 1);
      }
      continue;
    }
    for (std::string_view rest = data; !rest.empty();) {
      const ssize_t n = ::write(1, rest.data(), rest.size());
      if (n <= 0) break;
      rest.remove_prefix(static_cast<std::size_t>(n));
    }
  }
  done = true;
  input.join();
  ::pthread_sigmask(SIG_SETMASK, &saved_mask, nullptr);
  boost::system::error_code ignored;
  beast::get_lowest_layer(ws).close(ignored);
  if (code < 0) {
    std::fprintf(stderr, "ward: connect: the connection to the gateway ended\n");
    return 1;
  }
  return code;
}

}  // namespace

int connect_terminal(const GatewayOptions& options, const std::string& name,
                     const std::vector<std::string>& command, const std::string& workdir) {
  const client::Endpoint endpoint = gateway_endpoint(options.gateway);
  auto [cols, rows] = window_size();
  std::string target = "/v1/sandboxes/" + percent_encode(name) +
                       "/connect?cols=" + std::to_string(cols) + "&rows=" + std::to_string(rows);
  if (const char* term = std::getenv("TERM"); term && *term)
    target += "&term=" + percent_encode(term);
  if (!workdir.empty()) target += "&workdir=" + percent_encode(workdir);
  for (const std::string& arg : command) target += "&command=" + percent_encode(arg);

  const GatewayClient client(endpoint);
  if (endpoint.is_tcp()) {
    auto c = client::connect_tcp(endpoint);
    if (!c) return report_transport_error(client, c.error());
    if (c->tls) return session(std::move(*c->tls), endpoint, c->authority, target);
    return session(std::move(*c->tcp), endpoint, c->authority, target);
  }
  asio::io_context io;
  boost::system::error_code ec;
  asio::local::stream_protocol::socket socket(io);
  socket.connect(asio::local::stream_protocol::endpoint(endpoint.address), ec);
  if (ec)
    return report_transport_error(
        client, Error{"cannot connect to the gateway at " + endpoint.address, ec.value()});
  return session(std::move(socket), endpoint, "localhost", target);
}

}  // namespace ward::cli
