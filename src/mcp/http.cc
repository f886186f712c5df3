#include "mcp/http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>

#include "base/log.h"
#include "base/strings.h"

namespace ward::mcp {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

struct HttpEndpoint::Live {
  explicit Live(std::string id) : session(std::move(id)) {}
  Session session;
  bool own_chat = true;  // the chat id is the session's own: its sandbox ends with it
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<json> outbox;  // for the standalone GET stream
  bool stream_open = false;
  bool ended = false;
  Clock::time_point last_used = Clock::now();
};

namespace {

// A request's body must keep coming, and a client must keep reading what it is sent: this long
// without progress ends the connection.
constexpr auto kStall = std::chrono::seconds(30);

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      const int ready = ::poll(&p, 1, static_cast<int>(kStall.count() * 1000));
      if (ready < 0 && errno == EINTR) continue;
      if (ready <= 0) return false;  // a client that stopped reading
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// The peer closed its end (or reset it).
bool peer_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 415:
      return "Unsupported Media Type";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// One response, written by hand: a whole one, or the head of a chunked SSE stream.
struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string head(bool keep_alive, bool chunked) const {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    h += "Server: ward\r\n";
    for (const auto& [k, v] : headers) h += k + ": " + v + "\r\n";
    if (!content_type.empty()) h += "Content-Type: " + content_type + "\r\n";
    if (chunked)
      h += "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n";
    else
      h += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    h += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    return h + "\r\n";
  }
};

Reply json_reply(int status, const json& body) {
  return {status, "application/json", dump(body) + "\n", {}};
}

// An HTTP-level refusal, with a JSON-RPC error body as the SDKs expect.
Reply refuse(int status, int code, const std::string& message) {
  return json_reply(status, Server::error(nullptr, code, message));
}

// SSE frames as chunks of a chunked body.
class SseStream final : public Stream {
 public:
  explicit SseStream(int fd) : fd_(fd) {}
  void send(const json& message) override { frame("event: message\ndata: " + dump(message)); }
  bool comment(const std::string& text) { return frame(": " + text); }
  bool frame(const std::string& text) {
    std::lock_guard lock(mutex_);
    if (!ok_) return false;
    const std::string data = text + "\n\n";
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    ok_ = write_all(fd_, std::string(size) + data + "\r\n");
    return ok_;
  }
  bool end() {
    std::lock_guard lock(mutex_);
    return ok_ && write_all(fd_, "0\r\n\r\n");
  }
  bool gone() const override { return !ok_ || peer_gone(fd_); }

 private:
  int fd_;
  std::mutex mutex_;
  bool ok_ = true;
};

// Notifications outside any request (none are sent on a JSON reply): to the GET stream.
class OutboxStream final : public Stream {
 public:
  explicit OutboxStream(HttpEndpoint::Live& live) : live_(live) {}
  void send(const json& message) override {
    std::lock_guard lock(live_.mutex);
    if (!live_.stream_open) return;  // nobody listens: dropped, as the spec allows
    live_.outbox.push_back(message);
    live_.wake.notify_all();
  }

 private:
  HttpEndpoint::Live& live_;
};

bool accepts(std::string_view accept, std::string_view type) {
  return accept.find(type) != std::string_view::npos ||
         accept.find("*/*") != std::string_view::npos;
}

}  // namespace

// One request on an MCP connection.
struct Exchange {
  HttpEndpoint& endpoint;
  int fd;

  std::shared_ptr<HttpEndpoint::Live> find(const std::string& id) {
    std::lock_guard lock(endpoint.mutex_);
    auto it = endpoint.sessions_.find(id);
    return it == endpoint.sessions_.end() ? nullptr : it->second;
  }

  // The session a request names; a Reply when it does not name a live one.
  std::variant<std::shared_ptr<HttpEndpoint::Live>, Reply> session_of(
      const http::request<http::string_body>& req) {
    const std::string id(req["Mcp-Session-Id"]);
    if (id.empty()) return refuse(400, -32000, "Mcp-Session-Id header is required");
    auto live = find(id);
    if (!live) return refuse(404, -32001, "no such session (it ended, or the gateway restarted)");
    const std::string version(req["MCP-Protocol-Version"]);
    const auto& v = Server::versions();
    if (!version.empty() && std::find(v.begin(), v.end(), version) == v.end())
      return refuse(400, -32000, "unsupported MCP-Protocol-Version: " + version);
    std::lock_guard lock(live->mutex);
    live->last_used = Clock::now();
    return live;
  }

  // Returns false when the connection must close.
  bool handle(http::request<http::string_body>& req) {
    const bool keep_alive = req.keep_alive();
    Reply reply;
    switch (req.method()) {
      case http::verb::post:
        return post(req, keep_alive);
      case http::verb::get:
        return get(req);
      case http::verb::delete_:
        reply = remove(req);
        break;
      default:
        reply = refuse(405, -32000, "method not allowed");
        reply.headers.push_back({"Allow", "GET, POST, DELETE"});
    }
    return write_all(fd, reply.head(keep_alive, false) + reply.body) && keep_alive;
  }

  bool post(http::request<http::string_body>& req, bool keep_alive) {
    auto send = [&](const Reply& r) {
      return write_all(fd, r.head(keep_alive, false) + r.body) && keep_alive;
    };
    const std::string_view accept = req[http::field::accept];
    if (!accepts(accept, "application/json") || !accepts(accept, "text/event-stream"))
      return send(
          refuse(406, -32000, "Accept must list both application/json and text/event-stream"));
    if (!req[http::field::content_type].starts_with("application/json"))
      return send(refuse(415, -32000, "Content-Type must be application/json"));
    if (json_nests_deeper(req.body()))
      return send(refuse(400, -32700,
                         "parse error: arrays and objects nested deeper than " +
                             std::to_string(kMaxJsonDepth) + " levels"));
    json message = json::parse(req.body(), nullptr, false);
    if (message.is_discarded()) return send(refuse(400, -32700, "parse error: not JSON"));
    if (message.is_array())
      return send(refuse(400, -32600, "batches are not accepted: one message per POST"));
    if (!message.is_object()) return send(refuse(400, -32600, "not a JSON-RPC message"));

    std::shared_ptr<HttpEndpoint::Live> live;
    if (string_member(message, "method") == "initialize") {
      auto id = random_hex(16);
      if (!id) return send(refuse(500, -32603, id.error().describe()));
      live = std::make_shared<HttpEndpoint::Live>(*id);
      std::string chat(req["X-Chat-Id"]);
      if (chat.empty()) chat = std::string(req["X-OpenWebUI-Chat-Id"]);
      if (!chat.empty() && !Sandboxes::valid_chat_id(chat))
        return send(refuse(400, -32602,
                           "X-Chat-Id must be 1-128 characters of A-Z a-z 0-9 . _ - (not "
                           "starting with . or -)"));
      live->own_chat = chat.empty();
      live->session.chat_id = chat.empty() ? "s-" + live->session.id() : chat;
      OutboxStream out(*live);
      auto answer = endpoint.server_.handle(live->session, message, out);
      if (!answer) return send(refuse(400, -32600, "initialize must be a request"));
      Reply r = json_reply(200, *answer);
      if (!answer->contains("error")) {
        r.headers.push_back({"Mcp-Session-Id", live->session.id()});
        std::lock_guard lock(endpoint.mutex_);
        endpoint.sessions_[live->session.id()] = live;
      }
      return send(r);
    }
    auto found = session_of(req);
    if (auto* r = std::get_if<Reply>(&found)) return send(*r);
    live = std::get<std::shared_ptr<HttpEndpoint::Live>>(found);
    // A chat stays with its session: another chat id is refused, never followed.
    for (const char* header : {"X-Chat-Id", "X-OpenWebUI-Chat-Id"}) {
      const std::string_view chat = req[header];
      if (!chat.empty() && chat != live->session.chat_id)
        return send(refuse(400, -32602, "this session belongs to another chat id"));
    }

    const bool request =
        message.contains("method") && message.contains("id") && !message["id"].is_null();
    if (!request) {  // a notification or a response: accepted
      OutboxStream out(*live);
      endpoint.server_.handle(live->session, message, out);
      return send({202, "", "", {}});
    }
    // A request is answered on an SSE stream of its own: its notifications (progress, log
    // messages) and requests to the client (sampling, elicitation) first, the response last.
    Reply head{200, "text/event-stream", "", {}};
    if (!write_all(fd, head.head(keep_alive, true))) return false;
    SseStream sse(fd);
    auto answer = endpoint.server_.handle(live->session, message, sse);
    if (answer) sse.send(*answer);
    return sse.end() && keep_alive;
  }

  bool get(http::request<http::string_body>& req) {
    const bool keep_alive = req.keep_alive();
    if (!accepts(req[http::field::accept], "text/event-stream")) {
      Reply r = refuse(406, -32000, "Accept must list text/event-stream");
      return write_all(fd, r.head(keep_alive, false) + r.body) && keep_alive;
    }
    auto found = session_of(req);
    if (auto* r = std::get_if<Reply>(&found))
      return write_all(fd, r->head(keep_alive, false) + r->body) && keep_alive;
    auto live = std::get<std::shared_ptr<HttpEndpoint::Live>>(found);
    {
      std::lock_guard lock(live->mutex);
      if (live->stream_open) {
        Reply r = refuse(409, -32000, "this session's GET stream is already open");
        return write_all(fd, r.head(keep_alive, false) + r.body) && keep_alive;
      }
      live->stream_open = true;
    }
    Reply head{200, "text/event-stream", "", {}};
    SseStream sse(fd);
    bool ok = write_all(fd, head.head(false, true)) && sse.comment("stream open");
    auto last_ping = Clock::now();
    while (ok) {
      std::unique_lock lock(live->mutex);
      live->wake.wait_for(lock, std::chrono::milliseconds(500),
                          [&] { return live->ended || !live->outbox.empty(); });
      if (live->ended) break;
      std::deque<json> batch;
      batch.swap(live->outbox);
      live->last_used = Clock::now();
      lock.unlock();
      for (const json& m : batch) ok = ok && sse.frame("event: message\ndata: " + dump(m));
      if (Clock::now() - last_ping > std::chrono::seconds(15)) {
        ok = ok && sse.comment("ping");
        last_ping = Clock::now();
      }
      if (sse.gone()) break;
    }
    {
      std::lock_guard lock(live->mutex);
      live->stream_open = false;
    }
    if (ok) sse.end();
    return false;
  }

  Reply remove(http::request<http::string_body>& req) {
    auto found = session_of(req);
    if (auto* r = std::get_if<Reply>(&found)) return *r;
    auto live = std::get<std::shared_ptr<HttpEndpoint::Live>>(found);
    {
      std::lock_guard lock(endpoint.mutex_);
      endpoint.sessions_.erase(live->session.id());
    }
    end_session(*live);
    return {200, "", "", {}};
  }

  void end_session(HttpEndpoint::Live& live) {
    {
      std::lock_guard lock(live.mutex);
      live.ended = true;
      live.wake.notify_all();
    }
    live.session.close();
    if (live.own_chat && endpoint.server_.sandboxes())
      if (auto r = endpoint.server_.sandboxes()->remove(live.session.chat_id); !r)
        log::warn("mcp: removing the sandbox of session {}: {}", live.session.id(),
                  r.error().describe());
  }
};

HttpEndpoint::~HttpEndpoint() = default;

void HttpEndpoint::serve(gateway::HandOff connection) {
  // A thread per connection, up to a bound: past it a client is told to come back.
  if (connections_.fetch_add(1) >= kMaxConnections) {
    connections_.fetch_sub(1);
    busy(connection.fd, "too many MCP connections");
    return;
  }
  const int fd = connection.fd;
  try {
    std::thread([this, c = std::move(connection)]() mutable {
      this->connection(std::move(c));
      connections_.fetch_sub(1);
    }).detach();
  } catch (const std::exception& e) {  // no thread to be had: the process is at a limit
    connections_.fetch_sub(1);
    busy(fd, std::string("the gateway is short of resources: ") + e.what());
  }
}

// Past the bound on connections, or out of threads, descriptors or memory: the client is told to
// come back, and the gateway goes on serving the others. Called on the gateway's own thread, so
// the answer is sent only as far as the socket takes it at once: a client that does not read
// cannot stop the gateway.
void HttpEndpoint::busy(int fd, std::string_view why) {
  Reply r = refuse(503, -32000, std::string(why) + "; try again");
  r.headers.push_back({"Retry-After", "1"});
  const std::string answer = r.head(false, false) + r.body;
  static_cast<void>(::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT));
  ::close(fd);
}

void HttpEndpoint::connection(gateway::HandOff h) {
  const int fd = h.fd;
  Exchange exchange{*this, fd};
  // The first request came with the connection; later ones are read here.
  // Asio makes an epoll and an eventfd for each io_context, and throws when it cannot.
  std::optional<boost::asio::io_context> context;
  std::optional<boost::asio::generic::stream_protocol::socket> made;
  try {
    made.emplace(context.emplace());
  } catch (const boost::system::system_error& e) {
    busy(fd, "the gateway is short of resources: " + e.code().message());
    return;
  }
  boost::asio::io_context& io = *context;
  boost::asio::generic::stream_protocol::socket& socket = *made;
  boost::system::error_code ec;
  int family = AF_UNIX;
  {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) family = ss.ss_family;
  }
  socket.assign(boost::asio::generic::stream_protocol(family, family == AF_UNIX ? 0 : IPPROTO_TCP),
                fd, ec);
  if (ec) {
    ::close(fd);
    return;
  }
  // Non-blocking from the first answer on: write_all waits for a client that reads slowly, for
  // kStall at most (a blocking send would wait for ever on one that stopped reading).
  if (const int flags = ::fcntl(fd, F_GETFL); flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  boost::beast::flat_buffer buffer;
  {
    auto b = buffer.prepare(h.buffered.size());
    std::memcpy(b.data(), h.buffered.data(), h.buffered.size());
    buffer.commit(h.buffered.size());
  }
  // Whatever a request holds, the answer is an HTTP error, never the gateway's end.
  auto handle = [&](http::request<http::string_body>& req) {
    try {
      return exchange.handle(req);
    } catch (const std::exception& e) {
      Reply r = refuse(400, -32600, std::string("the request cannot be handled: ") + e.what());
      write_all(fd, r.head(false, false) + r.body);
      return false;
    }
  };
  // On TCP a later request's header has h.header_timeout from when waiting for it begins (an
  // idle connection ends: the client opens a new one) and its body must keep coming (kStall),
  // as on the API's own connections; a client that vanished holds no thread for long.
  boost::asio::steady_timer timer(io);
  int refusal = 0;  // the status h.refused gave a later request's header; 0: admitted
  auto read_request = [&](http::request_parser<http::string_body>& parser) {
    boost::system::error_code result;
    if (h.header_timeout.count() == 0) {
      http::read_header(socket, buffer, parser, result);
      if (!result && h.refused) refusal = h.refused(parser.get());
      if (!result && refusal == 0) http::read(socket, buffer, parser, result);
      return result;
    }
    bool timed_out = false;
    auto run = [&](auto limit, auto&& start) {
      bool done = false;
      timer.expires_after(limit);
      timer.async_wait([&](boost::system::error_code e) {
        if (e || done) return;
        timed_out = true;
        boost::system::error_code ignored;
        socket.cancel(ignored);
      });
      start([&](boost::system::error_code e, std::size_t) {
        done = true;
        result = e;
        if (!e) timed_out = false;  // complete, though the timer's handler ran first
        timer.cancel();
      });
      io.restart();
      io.run();
    };
    run(h.header_timeout,
        [&](auto on_done) { http::async_read_header(socket, buffer, parser, on_done); });
    if (!result && !timed_out && h.refused) refusal = h.refused(parser.get());
    if (refusal != 0) return result;  // its body is not read
    while (!result && !timed_out && !parser.is_done())
      run(kStall, [&](auto on_done) { http::async_read_some(socket, buffer, parser, on_done); });
    return timed_out ? boost::system::error_code(boost::asio::error::timed_out) : result;
  };
  bool more = handle(h.request);
  while (more) {
    http::request_parser<http::string_body> parser;
    refusal = 0;
    parser.header_limit(16 * 1024);
    parser.body_limit(kMaxHttpBody);
    ec = read_request(parser);
    if (ec == boost::asio::error::timed_out) {
      // Silence between requests just ends the connection; half a request is told why.
      if (parser.got_some() || buffer.size() > 0) {
        Reply r = refuse(408, -32000, "the request did not arrive in time");
        write_all(fd, r.head(false, false) + r.body);
      }
      break;
    }
    if (ec) {
      if (ec == http::error::body_limit) {
        Reply r = refuse(413, -32000, "the message is larger than 32 MiB");
        write_all(fd, r.head(false, false) + r.body);
      } else if (ec != http::error::end_of_stream && ec != boost::asio::error::eof &&
                 ec != boost::asio::error::connection_reset) {
        Reply r = refuse(400, -32000, "malformed HTTP request: " + ec.message());
        write_all(fd, r.head(false, false) + r.body);
      }
      break;
    }
    if (refusal != 0) {  // decided on the header: nothing of the body was read
      Reply r = refuse(refusal, -32000,
                       refusal == 401 ? "a valid bearer token is required"
                                      : "a Host or Origin that is not localhost is refused");
      if (refusal == 401) r.headers.push_back({"WWW-Authenticate", "Bearer"});
      write_all(fd, r.head(false, false) + r.body);
      break;
    }
    auto req = parser.release();
    const std::string_view path = req.target().substr(0, req.target().find('?'));
    if (path != "/mcp") {
      // This connection belongs to the MCP endpoint now; the API answers on a new one.
      Reply r = refuse(404, -32000, "only /mcp is served on this connection");
      write_all(fd, r.head(false, false) + r.body);
      break;
    }
    more = handle(req);
  }
  boost::system::error_code ignored;
  socket.close(ignored);
}

int HttpEndpoint::expire(std::chrono::seconds idle) {
  std::vector<std::shared_ptr<Live>> ended;
  {
    std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      std::unique_lock l(it->second->mutex);
      if (!it->second->stream_open && now - it->second->last_used > idle) {
        l.unlock();
        ended.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& live : ended) Exchange{*this, -1}.end_session(*live);
  return static_cast<int>(ended.size());
}

}  // namespace ward::mcp
