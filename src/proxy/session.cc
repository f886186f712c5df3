// One client connection to a sandbox's egress listener: request heads parsed by Boost.Beast,
// CONNECT tunnels and absolute-form http:// requests, each decided by the policy generation the
// connection is pinned to, and recorded.
#include <openssl/evp.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include "creds/mask.h"
#include "creds/websocket.h"
#include "inference/router.h"
#include "policy/l7.h"
#include "proxy/engine.h"
#include "proxy/guard.h"
#include "proxy/headers.h"
#include "proxy/inspect.h"
#include "proxy/target.h"
#include "proxy/tcp_info.h"
#include "proxy/tunnel.h"

namespace ward::proxy {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr const char* kClosedAtEnd = "closed: the sandbox ended (or ward stopped its proxy)";
constexpr std::size_t kBodyChunk = 64 * 1024;
constexpr std::size_t kResponseHeadLimit = 64 * 1024;
constexpr std::size_t kMaxInferenceBody = 10 * 1024 * 1024;
constexpr std::string_view kInferenceHost = "inference.local";

using RequestParser = http::request_parser<http::buffer_body>;
using ResponseParser = http::response_parser<http::buffer_body>;
using Matches = std::vector<policy::Match>;

template <class Stream>
tcp::socket& socket_of(Stream& stream) {
  return beast::get_lowest_layer(stream);
}

// What one connection holds whole, counted against its sandbox's budget (Limits::max_buffered).
// The proxy's thread is the only one that touches it.
class Held {
 public:
  Held(Sandbox& sandbox, std::size_t budget) : sandbox_(sandbox), budget_(budget) {}
  ~Held() { sandbox_.buffered -= bytes_; }
  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;

  // Holds `bytes` from now on, more or fewer than before; false, and nothing changed, when the
  // budget has no room for more.
  bool resize(std::size_t bytes) {
    const std::size_t others = sandbox_.buffered - bytes_;
    if (bytes > bytes_ && others + bytes > budget_) return false;
    sandbox_.buffered = others + bytes;
    bytes_ = bytes;
    return true;
  }

 private:
  Sandbox& sandbox_;
  std::size_t budget_;
  std::size_t bytes_ = 0;
};

std::string buffered_refusal(std::size_t budget) {
  return "this sandbox's requests already hold " + std::to_string(budget >> 20) +
         " MiB of bodies in the proxy (--max-buffered-mib); retry once one has been answered";
}

// Why a request does not reach an upstream: the status and JSON body the client gets.
struct Refusal {
  int status = 403;
  std::string error;  // "policy_denied", "upstream_unreachable", ...
  std::string reason;
};

// The JSON body of an error answer. (Built outside the coroutines: GCC 12 miscompiles braced
// initializer lists inside co_await expressions.)
nlohmann::json error_body(std::string_view error, std::string reason) {
  return {{"error", error}, {"reason", std::move(reason)}};
}

bool is_parse_error(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::end_of_stream && ec != http::error::partial_message;
}

// The connection-level decision (host, port, calling binary). Requests are decided later, one by
// one, where an endpoint needs it (inspect.h).
policy::Decision decide(const Generation& g, const Target& target, const Caller& caller) {
  return g.matcher.decide(target.host, target.port, caller.binaries);
}

std::optional<IpAddress> to_ip(const asio::ip::address& a) {
  return parse_ip_literal(a.to_string());
}

// "" when `address` (where an upstream connection goes) passes the SSRF guard for `endpoint`,
// else why not. A connection made for one endpoint carries a request for another (chosen by its
// path, or a pooled connection's next CONNECT) only when that one admits its address too.
std::string refused_address(const std::string& address, std::uint16_t port,
                            const policy::Endpoint& endpoint) {
  auto ip = parse_ip_literal(address);
  if (!ip) return "the upstream's address is unknown";
  Verdict v = check_destination(*ip, port, endpoint.allowed_ips);
  return v.allowed ? "" : v.reason;
}

asio::ip::address to_asio(const IpAddress& ip) {
  if (!ip.v6) return asio::ip::address_v4({ip.bytes[0], ip.bytes[1], ip.bytes[2], ip.bytes[3]});
  asio::ip::address_v6::bytes_type b;
  std::copy(ip.bytes.begin(), ip.bytes.end(), b.begin());
  return asio::ip::address_v6(b);
}

// Inside an intercepted connection: requests in origin form, and a Host header (when there is
// one) naming the host and port the connection was decided for — a request cannot reach another
// virtual host of the same server (domain fronting) by naming it. "" when the request is fine.
std::string check_host(std::string_view target, std::string_view host, const Target& decided) {
  if (target.empty() || target.front() != '/')
    return "inside a CONNECT tunnel requests use origin-form targets (/path)";
  if (host.empty()) return "";
  std::string authority(host);
  const bool has_port = host.starts_with('[') ? host.find("]:") != std::string_view::npos
                                              : host.find(':') != std::string_view::npos;
  if (!has_port) authority += ":" + std::to_string(decided.port);
  auto named = parse_connect_target(authority);
  if (named && named->host == decided.host && named->port == decided.port) return "";
  return "the Host header names " + std::string(host) + ", but this connection is to " +
         decided.host + ":" + std::to_string(decided.port);
}

// Sec-WebSocket-Accept for a handshake's key: base64(SHA-1(key + the protocol's GUID)).
// Masks the real credential values in a response's reason and fields (creds/mask.h).
void mask_head(http::response_header<>& head, creds::ResponseMask& mask) {
  std::string reason(head.reason());
  if (mask.mask(reason)) head.reason(reason);
  std::vector<std::pair<std::string, std::string>> fields;
  bool changed = false;
  for (const auto& f : head) {
    std::string value(f.value());
    // Not the framing: a numeric value that happened to be a length is no reflection.
    if (f.name() != http::field::content_length && f.name() != http::field::transfer_encoding)
      changed = mask.mask(value) > 0 || changed;
    fields.emplace_back(std::string(f.name_string()), std::move(value));
  }
  if (!changed) return;
  head.clear();  // fields cannot be changed in place: all are put back, in their order
  for (const auto& [name, value] : fields) head.insert(name, value);
}

// Why a response's body cannot be read as it comes ("" when it can): a content or transfer
// coding other than chunked.
std::string unreadable_coding(const http::response_header<>& head) {
  for (auto [it, end] = head.equal_range(http::field::content_encoding); it != end; ++it)
    for (auto coding : http::token_list(it->value()))
      if (!beast::iequals(coding, "identity")) return "Content-Encoding: " + std::string(coding);
  for (auto token : http::token_list(head[http::field::transfer_encoding]))
    if (!beast::iequals(token, "chunked") && !beast::iequals(token, "identity"))
      return "Transfer-Encoding: " + std::string(head[http::field::transfer_encoding]);
  return "";
}

std::string websocket_accept_for(std::string_view key) {
  const std::string input = std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &size, EVP_sha1(), nullptr) != 1) return "-";
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(encoded, digest, static_cast<int>(size));
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(n));
}

}  // namespace

class Session {
 public:
  Session(Engine& engine, Sandbox& sandbox, tcp::socket client)
      : engine_(engine), sandbox_(sandbox), client_(std::move(client)), upstream_(engine.io) {
    registration_ = engine_.sessions.insert(engine_.sessions.end(), this);
    ++sandbox_.connections;
  }
  ~Session() {
    engine_.sessions.erase(registration_);
    --sandbox_.connections;
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  asio::awaitable<void> run();

  void expire(Clock::time_point now) {
    if (now >= deadline_) interrupt();
  }
  // A new policy generation was installed. An opaque tunnel has no next request to be refused
  // at: one the new policy no longer allows (or would now have to inspect, or whose address it
  // no longer admits), or a websocket whose handshake it would refuse, is closed at once.
  void reconsider();

  // The proxy stops (the sandbox ended): closed records say so, not that they were idle.
  void abort() {
    aborted_ = true;
    interrupt();
  }

  void interrupt() {
    expired_ = true;
    beast::error_code ignored;
    client_.cancel(ignored);
    upstream_.cancel(ignored);
    if (tls_client_) socket_of(*tls_client_).cancel(ignored);
    if (tls_upstream_) socket_of(*tls_upstream_).cancel(ignored);
    if (resolver_) resolver_->cancel();
  }

 private:
  enum class Phase { kHead, kIdle, kUpstream, kRelay };

  void set_phase(Phase phase, Clock::duration allowed) {
    phase_ = phase;
    deadline_ = Clock::now() + allowed;
  }

  // `connected`: the CONNECT whose TLS the client stream is (nullptr on the proxy connection).
  template <class Stream>
  asio::awaitable<bool> read_head(Stream& client, RequestParser& parser, bool first,
                                  const Target* connected = nullptr);
  asio::awaitable<void> tunnel(RequestParser& parser);
  asio::awaitable<bool> refuse_target(RequestParser& parser, std::string reason);
  asio::awaitable<void> intercept(const Target& target, audit::NetworkEvent& event,
                                  const Matches& matches, const policy::Endpoint& endpoint,
                                  bool pooled);
  asio::awaitable<std::string> upstream_handshake(const Target& target);
  asio::awaitable<std::optional<Refusal>> refresh_pooled(const Target& target,
                                                         const policy::Endpoint& endpoint,
                                                         audit::NetworkEvent& event);
  bool take_pooled(const Target& target, const policy::Endpoint& endpoint,
                   audit::NetworkEvent& event);
  void pool_upstream(const Target& target);
  std::string caller_key() const;
  asio::awaitable<std::string> accept_client_tls(const Target& target);
  // inference.local: served by ward itself, outside network policy (inference/router.h).
  bool is_inference(const Target& target) const {
    return engine_.inference && !engine_.inference->empty() && target.host == kInferenceHost;
  }
  asio::awaitable<void> inference_tunnel(const Target& target);
  template <class Client>
  asio::awaitable<bool> serve_inference(Client& client, RequestParser& parser, std::uint16_t port);
  template <class Client>
  asio::awaitable<bool> discard_body(Client& client, RequestParser& parser, std::size_t limit);
  template <class Client>
  asio::awaitable<bool> refuse_inference(Client& client, audit::ApiEvent& record, int status,
                                         std::string error, std::string reason);
  asio::awaitable<std::string> connect_backend(const inference::Route& route);
  template <class Client, class Backend>
  asio::awaitable<int> call_backend(Client& client, Backend& backend,
                                    http::request<http::string_body>& request,
                                    audit::ApiEvent& record, bool keep_alive, std::string& failure);
  void close_upstream();
  asio::awaitable<bool> forward(RequestParser& parser, bool first);
  asio::awaitable<std::optional<Refusal>> connect_upstream(const Target& target,
                                                           const policy::Endpoint& endpoint,
                                                           audit::NetworkEvent& event);
  template <class Client, class Upstream>
  asio::awaitable<bool> exchange(Client& client, Upstream& upstream, RequestParser& parser,
                                 audit::HttpEvent& record, Inspection* inspection);
  // `tap`, when given, sees each body chunk as it passes (inference usage counts); `mask`, when
  // given, masks the real credential values in it.
  template <bool isRequest, class To, class From>
  asio::awaitable<beast::error_code> relay(
      To& to, From& from, beast::flat_buffer& buffer,
      http::parser<isRequest, http::buffer_body>& parser,
      const std::function<void(std::string_view)>* tap = nullptr,
      creds::ResponseMask* mask = nullptr);
  template <class Client, class Upstream>
  asio::awaitable<void> relay_websocket(Client& client, Upstream& upstream,
                                        creds::WebsocketRewriter* rewriter,
                                        creds::ResponseMask* mask, audit::HttpEvent& record);
  template <class From, class To>
  asio::awaitable<void> pump(From& from, To& to, beast::flat_buffer& pending,
                             creds::WebsocketRewriter* rewriter, creds::ResponseMask* mask,
                             std::string& refusal);
  template <class Stream>
  asio::awaitable<void> send_error(Stream& client, int status, const nlohmann::json& body);
  asio::awaitable<void> refuse(const Refusal& r, const Target& target);
  template <class Client, class Upstream>
  asio::awaitable<void> bad_gateway(Client& client, Upstream& upstream, audit::HttpEvent& record,
                                    std::string reason);
  template <class Stream>
  asio::awaitable<bool> refuse_request(Stream& client, audit::HttpEvent& record,
                                       const Inspection& in);
  audit::NetworkEvent event_for(const Target& target) const;
  bool upstream_reusable(const Target& target);

  Engine& engine_;
  Sandbox& sandbox_;
  tcp::socket client_;
  tcp::socket upstream_;
  std::optional<TlsStream> tls_client_;    // intercepted: the client's side, ward as the server
  std::optional<TlsStream> tls_upstream_;  // intercepted: ward's own TLS to the upstream
  beast::flat_buffer buffer_;              // bytes from the client
  beast::flat_buffer upstream_buffer_;     // bytes from the upstream (forward requests)
  std::unique_ptr<char[]> chunk_;          // body relay buffer, allocated on first use
  std::string masked_;                     // a body chunk with credential values masked
  Caller caller_;
  std::shared_ptr<const Generation> generation_;  // the policy this connection is pinned to
  std::string upstream_host_;                     // where upstream_ goes (keep-alive reuse)
  std::uint16_t upstream_port_ = 0;
  std::string upstream_address_;
  const policy::Endpoint* upstream_endpoint_ = nullptr;  // whose allowed_ips admitted that address
  // The upstream is between exchanges, nothing of one left on it: it may serve another client
  // connection of this sandbox (pool.h).
  bool upstream_clean_ = false;
  Clock::time_point upstream_since_;  // when the upstream last finished a response (or handshake)
  bool intercepting_ = false;         // tls_client_/tls_upstream_ serve a CONNECT ward terminates
  const inference::Route* backend_route_ = nullptr;  // where upstream_ (or tls_upstream_) goes
  tcp::resolver* resolver_ = nullptr;
  Phase phase_ = Phase::kHead;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool expired_ = false;
  bool aborted_ = false;                 // abort(): expired_ is set too
  std::optional<Target> tunnel_target_;  // an opaque tunnel's, while it relays
  // A websocket's, while its frames are relayed: where it goes, its handshake as the client sent
  // it (placeholders and all), and whether its frames get credentials, so that a reload can
  // decide the handshake again.
  struct Websocket {
    Target target;
    http::request_header<> handshake;
    bool rewrites_frames = false;
  };
  std::optional<Websocket> websocket_;
  // The websocket handshake inspect() last decided, as the client sent it (only such requests are
  // copied: a websocket needs it for later, no other request does).
  std::optional<http::request_header<>> handshake_;
  void keep_if_handshake(const http::request_header<>& req) {
    if (req.method() == http::verb::get && beast::iequals(req[http::field::upgrade], "websocket"))
      handshake_ = req;
    else
      handshake_.reset();
  }
  std::string closed_by_reload_;  // why a reload closed the tunnel ("" when it did not)
  std::string reload_refusal() const;
  std::list<Session*>::iterator registration_;
};

// Why the current generation would not let this opaque tunnel or websocket be opened now ("" when
// it would).
std::string Session::reload_refusal() const {
  const Generation& now = *engine_.generation;
  const Target& target = tunnel_target_ ? *tunnel_target_ : websocket_->target;
  policy::Decision d = decide(now, target, caller_);
  if (!d.allowed) return d.reason;
  const Matches matches = now.matcher.matches(target.host, target.port, caller_.binaries);
  if (tunnel_target_) {
    if (must_inspect(matches, engine_.vault.get(), target.host, target.port))
      return "rule " + d.rule + " now has its HTTPS requests read, which an open tunnel cannot";
    return refused_address(upstream_address_, target.port, *d.endpoint);
  }
  // The handshake decided again — its rules, its endpoint chosen by path, the placeholders in its
  // headers and target — on a copy whose rewriting is thrown away.
  http::request_header<> handshake = websocket_->handshake;
  Inspection in = inspect(matches, engine_.vault.get(), target.host, target.port, handshake,
                          intercepting_ ? Transport::kVerifiedTls : Transport::kPlain);
  if (in.status) return in.reason;
  if (websocket_->rewrites_frames && !(in.endpoint && in.endpoint->websocket_credential_rewrite))
    return "its frames may no longer carry credentials (websocket_credential_rewrite)";
  return refused_address(upstream_address_, target.port, in.endpoint ? *in.endpoint : *d.endpoint);
}

void Session::reconsider() {
  if ((!tunnel_target_ && !websocket_) || generation_ == engine_.generation) return;
  // generation_ stays the one the connection was decided by (what it points into stays alive);
  // each later reload is checked against the newest, so nothing needs moving forward.
  const std::string why = reload_refusal();
  if (why.empty()) return;
  closed_by_reload_ = "the reloaded policy no longer allows it: " + why;
  interrupt();
  // A cancel reaches only the waits still pending; a pump whose wait has just completed would
  // go on. Shut down, both directions end whatever they were about to do.
  beast::error_code ignored;
  client_.shutdown(tcp::socket::shutdown_both, ignored);
  upstream_.shutdown(tcp::socket::shutdown_both, ignored);
  if (tls_client_) socket_of(*tls_client_).shutdown(tcp::socket::shutdown_both, ignored);
  if (tls_upstream_) socket_of(*tls_upstream_).shutdown(tcp::socket::shutdown_both, ignored);
}

audit::NetworkEvent Session::event_for(const Target& target) const {
  audit::NetworkEvent e;
  e.time = std::chrono::system_clock::now();
  e.sandbox_id = sandbox_.id;
  e.pid = caller_.pid;
  e.binary = caller_.binary();
  e.host = target.host;
  e.port = target.port;
  return e;
}

template <class Stream>
asio::awaitable<void> Session::send_error(Stream& client, int status, const nlohmann::json& body) {
  http::response<http::string_body> res{http::int_to_status(status), 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::via, "1.1 ward");
  res.keep_alive(false);
  // A reason may quote what the client sent (a host name that is not UTF-8): replaced, not thrown.
  res.body() = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  res.prepare_payload();
  set_phase(phase_, std::chrono::seconds(5));  // a client that does not read cannot hold us
  co_await http::async_write(client, res, kNoThrow);
  beast::error_code ignored;
  socket_of(client).shutdown(tcp::socket::shutdown_send, ignored);
  // Closing a socket with unread input resets the connection, and a reset can overtake the answer
  // (a client that sent an oversized head would see "connection reset" instead of 431). Read
  // and discard what is still coming, briefly and up to a bound, before the close.
  char sink[4096];
  for (std::size_t drained = 0; drained < 256 * 1024;) {
    auto [ec, n] = co_await client.async_read_some(asio::buffer(sink), kNoThrow);
    if (ec) break;
    drained += n;
  }
}

asio::awaitable<void> Session::refuse(const Refusal& r, const Target& target) {
  nlohmann::json body = error_body(r.error, r.reason);
  body["host"] = target.host;
  body["port"] = target.port;
  body["binary"] = caller_.binary();
  co_await send_error(client_, r.status, body);
}

// The upstream failed after the request went out: the client gets 502, the record says why.
template <class Client, class Upstream>
asio::awaitable<void> Session::bad_gateway(Client& client, Upstream& upstream,
                                           audit::HttpEvent& record, std::string reason) {
  beast::error_code ignored;
  socket_of(upstream).close(ignored);
  record.status = 502;
  record.network.failed = true;
  record.network.reason = std::move(reason);
  engine_.audit.write(record);
  co_await send_error(client, 502, error_body("bad_gateway", record.network.reason));
}

// A request the inspection refused: recorded, answered, and the connection closed.
template <class Stream>
asio::awaitable<bool> Session::refuse_request(Stream& client, audit::HttpEvent& record,
                                              const Inspection& in) {
  record.status = in.status;
  record.l7_rule = in.l7_rule;
  if (!in.rule.empty()) record.network.rule = in.rule;
  record.network.action = audit::Action::kDenied;
  record.network.reason = in.reason;
  engine_.audit.write(record);
  co_await send_error(client, in.status, in.body);
  co_return false;
}

asio::awaitable<void> Session::run() {
  beast::error_code ec;
  auto peer = client_.remote_endpoint(ec);
  if (ec) co_return;
  // The listener is IPv4 (127.0.0.1); anything else has no caller to find.
  if (peer.address().is_v4())
    caller_ =
        sandbox_.peers.find(peer.address().to_v4().to_uint(), peer.port(), sandbox_.listener_port);
  for (bool first = true;; first = false) {
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(engine_.limits.request_head));
    parser.body_limit(boost::none);
    if (!co_await read_head(client_, parser, first)) co_return;
    if (parser.get().method() == http::verb::connect) {
      co_await tunnel(parser);
      co_return;
    }
    if (!co_await forward(parser, first)) co_return;
  }
}

// Reads one request head. False when the connection is over (any error answer already sent).
template <class Stream>
asio::awaitable<bool> Session::read_head(Stream& client, RequestParser& parser, bool first,
                                         const Target* connected) {
  if (!first && buffer_.size() == 0) {
    // Between requests the idle timeout applies; the head timeout starts at its first byte.
    set_phase(Phase::kIdle, engine_.limits.idle_timeout);
    auto [ec, n] = co_await client.async_read_some(buffer_.prepare(4096), kNoThrow);
    if (ec) co_return false;
    buffer_.commit(n);
  }
  set_phase(Phase::kHead, engine_.limits.header_timeout);
  auto [ec, n] = co_await http::async_read_header(client, buffer_, parser, kNoThrow);
  if (!ec && parser.get().method() == http::verb::connect && n > engine_.limits.connect_head)
    ec = http::error::header_limit;
  // Every refusal is answered and recorded (with what is known of the request: a head that could
  // not be parsed has no method or target to give).
  auto refuse_head = [&](int status, std::string error,
                         std::string reason) -> asio::awaitable<bool> {
    audit::HttpEvent record;
    Target where;
    const bool parsed = parser.is_header_done();
    const auto& req = parser.get();
    if (connected) {
      where = *connected;
    } else if (parsed) {
      auto t = req.method() == http::verb::connect ? parse_connect_target(req.target())
                                                   : parse_forward_target(req.target());
      if (t) where = std::move(*t);
    }
    record.network = event_for(where);
    if (parsed) {
      record.method = std::string(req.method_string());
      record.target = where.origin_form.empty() ? std::string(req.target()) : where.origin_form;
    }
    record.intercepted = connected != nullptr;
    Inspection refused;
    refused.status = status;
    refused.reason = std::move(reason);
    refused.body = error_body(error, refused.reason);
    co_return co_await refuse_request(client, record, refused);
  };
  if (!ec) {
    // Before anything is decided on it: a body that ward and the next hop could frame
    // differently may hide a request no rule ever sees (framing_error()).
    const std::string framing = framing_error(parser.get());
    if (framing.empty()) co_return true;
    co_return co_await refuse_head(400, "bad_request", "ambiguous request framing: " + framing);
  }

  if (expired_) {
    co_return co_await refuse_head(408, "request_timeout",
                                   "the request head did not arrive within " +
                                       std::to_string(engine_.limits.header_timeout.count()) +
                                       " s");
  } else if (ec == http::error::header_limit) {
    const bool connect = parser.is_header_done() && parser.get().method() == http::verb::connect;
    std::size_t limit = connect ? engine_.limits.connect_head : engine_.limits.request_head;
    co_return co_await refuse_head(
        431, "header_too_large",
        "request heads are limited to " + std::to_string(limit / 1024) + " KiB");
  } else if (is_parse_error(ec)) {
    co_return co_await refuse_head(400, "bad_request", "malformed request head: " + ec.message());
  }
  co_return false;
}

bool Session::upstream_reusable(const Target& target) {
  if (backend_route_ || !upstream_.is_open() || upstream_host_ != target.host ||
      upstream_port_ != target.port)
    return false;
  // An upstream that closed its end while idle is not reused (the request would be lost).
  char byte;
  ssize_t n = ::recv(upstream_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

// Resolves (hosts file, then DNS), keeps the addresses the SSRF guard passes, and connects to the
// first that answers: the upstream is only ever one of the addresses that were checked.
asio::awaitable<std::optional<Refusal>> Session::connect_upstream(const Target& target,
                                                                  const policy::Endpoint& endpoint,
                                                                  audit::NetworkEvent& event) {
  set_phase(Phase::kUpstream, engine_.limits.connect_timeout);
  beast::error_code ignored;
  close_upstream();  // whatever upstream_ was (a host's or an inference backend's) ends here
  std::vector<IpAddress> candidates;
  if (auto ip = parse_ip_literal(target.host)) {
    candidates.push_back(*ip);
  } else if (const auto& named = engine_.hosts.lookup(target.host); !named.empty()) {
    candidates = named;
  } else {
    tcp::resolver resolver(engine_.io);
    resolver_ = &resolver;
    auto [ec, results] =
        co_await resolver.async_resolve(target.host, std::to_string(target.port), kNoThrow);
    resolver_ = nullptr;
    if (ec)
      co_return Refusal{502, "upstream_unreachable",
                        "cannot resolve " + target.host + ": " + ec.message()};
    for (const auto& r : results)
      if (auto ip = to_ip(r.endpoint().address())) candidates.push_back(*ip);
  }

  std::vector<IpAddress> passed;
  std::string refused;
  for (const IpAddress& ip : candidates) {
    Verdict v = check_destination(ip, target.port, endpoint.allowed_ips);
    if (v.allowed)
      passed.push_back(ip);
    else if (refused.empty())
      refused = v.reason;
  }
  if (passed.empty()) co_return Refusal{403, "policy_denied", refused};

  std::string failure;
  for (const IpAddress& ip : passed) {
    upstream_ = tcp::socket(engine_.io);
    auto [ec] = co_await upstream_.async_connect({to_asio(ip), target.port}, kNoThrow);
    if (!ec) {
      upstream_.set_option(tcp::no_delay(true), ignored);
      upstream_host_ = target.host;
      upstream_port_ = target.port;
      upstream_address_ = event.address = ip.to_string();
      upstream_endpoint_ = &endpoint;
      co_return std::nullopt;
    }
    upstream_.close(ignored);
    failure = ip.to_string() + ": " + (expired_ ? std::string("timed out") : ec.message());
    if (expired_) break;
  }
  co_return Refusal{expired_ ? 504 : 502, "upstream_unreachable",
                    "cannot connect to " + target.host + ":" + std::to_string(target.port) + " (" +
                        failure + ")"};
}

// A request whose target names no destination ward can decide on: 400, and a record of it (the
// target as sent, which may be anything: the writer escapes it).
asio::awaitable<bool> Session::refuse_target(RequestParser& parser, std::string reason) {
  audit::HttpEvent record;
  record.network = event_for(Target{});
  record.method = std::string(parser.get().method_string());
  record.target = std::string(parser.get().target());
  Inspection refused;
  refused.status = 400;
  refused.reason = "bad request target: " + reason;
  refused.body = error_body("bad_request", reason);
  co_return co_await refuse_request(client_, record, refused);
}

asio::awaitable<void> Session::tunnel(RequestParser& parser) {
  auto target = parse_connect_target(parser.get().target());
  if (!target) {
    co_await refuse_target(parser, target.error().reason);
    co_return;
  }
  if (is_inference(*target) && target->port == 443) {
    co_await inference_tunnel(*target);
    co_return;
  }
  generation_ = engine_.generation;
  audit::NetworkEvent event = event_for(*target);
  policy::Decision d = decide(*generation_, *target, caller_);
  event.rule = d.rule;
  std::optional<Refusal> refusal;
  Matches matches;
  bool inspect = false, pooled = false;
  if (d.allowed) {
    matches = generation_->matcher.matches(target->host, target->port, caller_.binaries);
    inspect = must_inspect(matches, engine_.vault.get(), target->host, target->port);
  }
  if (!d.allowed) {
    refusal = Refusal{403, "policy_denied", d.reason};
  } else if (inspect && !engine_.tls) {
    refusal = Refusal{403, "policy_denied",
                      "rule " + d.rule +
                          " needs its HTTPS requests read (L7 rules or "
                          "credentials), and this proxy has no CA to intercept with"};
  } else if (inspect && take_pooled(*target, *d.endpoint, event)) {
    pooled = true;
  } else {
    refusal = co_await connect_upstream(*target, *d.endpoint, event);
  }
  if (!refusal && !inspect && generation_ != engine_.generation) {
    // A reload while the upstream was being connected: decided again before the 200, so that
    // what the new policy refuses gets its 403, not a 200 and then the close.
    tunnel_target_ = *target;
    if (std::string why = reload_refusal(); !why.empty()) {
      refusal = Refusal{403, "policy_denied", "the reloaded policy no longer allows it: " + why};
      beast::error_code ignored;
      upstream_.close(ignored);
    }
    tunnel_target_.reset();
  }
  if (refusal) {
    event.action = refusal->status == 403 ? audit::Action::kDenied : audit::Action::kAllowed;
    event.failed = refusal->status != 403;
    event.reason = refusal->reason;
    engine_.audit.write(event);
    co_await refuse(*refusal, *target);
    co_return;
  }
  if (inspect) {
    co_await intercept(*target, event, matches, *d.endpoint, pooled);
    co_return;
  }
  event.action = audit::Action::kAllowed;
  event.reason = d.reason;
  engine_.audit.write(event);

  static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  auto [ec, n] = co_await asio::async_write(client_, asio::buffer(kEstablished), kNoThrow);
  TunnelBytes bytes;
  const auto opened = Clock::now();
  if (!ec && buffer_.size()) {  // what the client sent right after its head (a TLS hello, say)
    auto [wec, wn] = co_await asio::async_write(upstream_, buffer_.data(), kNoThrow);
    bytes.up += wn;
    ec = wec;
  }
  buffer_ = beast::flat_buffer();  // an idle tunnel keeps no buffer
  if (!ec) {
    tunnel_target_ = *target;
    reconsider();  // a reload while the upstream was connected or the 200 written
    if (closed_by_reload_.empty())
      co_await relay_tunnel(client_, upstream_, bytes,
                            [this] { deadline_ = Clock::now() + engine_.limits.idle_timeout; });
    tunnel_target_.reset();
  }
  event.closed = true;
  event.bytes_out = bytes.up;
  event.bytes_in = bytes.down;
  event.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened);
  if (!closed_by_reload_.empty())
    event.reason = closed_by_reload_;
  else if (aborted_)
    event.reason = kClosedAtEnd;
  else if (expired_)
    event.reason = "idle for " + std::to_string(engine_.limits.idle_timeout.count()) + " s";
  engine_.audit.write(event);
}

// Answers a CONNECT ward terminates: 200, then the client's TLS handshake with a leaf for the
// CONNECT host (tls: auto — only a client that starts TLS is served: a ClientHello begins with a
// handshake record). "" when tls_client_ is ready; else why not (also "" when the client left).
asio::awaitable<std::string> Session::accept_client_tls(const Target& target) {
  Interception& tls = *engine_.tls;
  static constexpr std::string_view kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  auto [wec, wn] = co_await asio::async_write(client_, asio::buffer(kEstablished), kNoThrow);
  if (wec) co_return "";
  if (buffer_.size() == 0) {
    auto [ec, n] = co_await client_.async_read_some(buffer_.prepare(4096), kNoThrow);
    if (ec) co_return "";
    buffer_.commit(n);
  }
  if (static_cast<const unsigned char*>(buffer_.data().data())[0] != 0x16)
    co_return "the client did not start TLS inside its CONNECT tunnel";
  auto leaf = tls.authority->leaf(target.host);
  if (!leaf) co_return "no certificate for " + target.host + ": " + leaf.error().message;
  tls_client_.emplace(std::move(client_), *tls.server);
  tls::use_leaf(tls_client_->native_handle(), **leaf);
  set_phase(Phase::kHead, engine_.limits.header_timeout);
  auto [hec, used] = co_await tls_client_->async_handshake(asio::ssl::stream_base::server,
                                                           buffer_.data(), kNoThrow);
  buffer_.consume(buffer_.size());
  if (hec) {
    tls_client_.reset();
    co_return "TLS with the client failed: " + hec.message();
  }
  co_return "";
}

// ward's TLS to the upstream over upstream_, just connected: verified, resumed where it can be.
// "" when done, else why it failed.
asio::awaitable<std::string> Session::upstream_handshake(const Target& target) {
  Interception& tls = *engine_.tls;
  if (!tls.prepare()) co_return tls.error;
  tls_upstream_.emplace(std::move(upstream_), *tls.upstream);
  SSL* ssl = tls_upstream_->native_handle();
  if (auto prepared = tls::prepare_upstream(ssl, target.host); !prepared)
    co_return prepared.error().message;
  tls.sessions.offer(ssl, target.host, target.port);
  auto [ec] = co_await tls_upstream_->async_handshake(asio::ssl::stream_base::client, kNoThrow);
  if (ec) {
    std::string failure = tls::verify_failure(tls_upstream_->native_handle());
    if (failure.empty()) failure = expired_ ? "timed out" : ec.message();
    co_return failure;
  }
  upstream_since_ = Clock::now();
  co_return "";
}

// Before the first request of a session that took a pooled connection: the client's handshake
// and its request may have taken a while since, so a connection its server has closed meanwhile,
// or one now idle past the pool's limit, is replaced — nothing has been sent on it yet. Nothing
// when the upstream is ready, else why not (the refusal connect_upstream would have answered the
// CONNECT with, or a failed TLS).
asio::awaitable<std::optional<Refusal>> Session::refresh_pooled(const Target& target,
                                                                const policy::Endpoint& endpoint,
                                                                audit::NetworkEvent& event) {
  if (UpstreamPool::usable(*tls_upstream_) && Clock::now() - upstream_since_ < sandbox_.pool.idle())
    co_return std::nullopt;
  upstream_clean_ = false;  // until a new one is ready: a half-made one is never pooled
  std::optional<Refusal> refusal = co_await connect_upstream(target, endpoint, event);
  if (!refusal) {
    std::string failure = co_await upstream_handshake(target);
    if (!failure.empty())
      refusal = Refusal{502, "upstream_tls_failed", "TLS to the upstream failed: " + failure};
  }
  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  if (refusal) co_return refusal;
  upstream_clean_ = true;
  event.reason = "intercepted: HTTPS requests are inspected one by one";
  co_return std::nullopt;
}

// A pooled upstream for this CONNECT (same sandbox, policy generation, host, port and calling
// binaries), made the session's own. False when there is none.
bool Session::take_pooled(const Target& target, const policy::Endpoint& endpoint,
                          audit::NetworkEvent& event) {
  auto c =
      sandbox_.pool.take(generation_->id, target.host, target.port, caller_key(), Clock::now());
  if (!c) return false;
  // The key holds everything this decision was made from, so the address passed the guard for
  // this endpoint when it was connected; checked again all the same, should the key ever miss
  // something.
  if (!refused_address(c->address, target.port, endpoint).empty()) return false;
  close_upstream();
  tls_upstream_.emplace(std::move(c->stream));
  upstream_host_ = target.host;
  upstream_port_ = target.port;
  upstream_address_ = event.address = std::move(c->address);
  upstream_endpoint_ = &endpoint;
  upstream_since_ = c->since;
  return true;
}

std::string Session::caller_key() const {
  std::string key;
  for (const std::string& b : caller_.binaries) key.append(b).push_back('\0');
  return key;
}

// At the end of an intercepted session: its upstream goes to the pool when a complete exchange
// (or none) left it clean and the policy it was decided by is still in force.
void Session::pool_upstream(const Target& target) {
  if (!upstream_clean_ || expired_ || engine_.stopping || !tls_upstream_ ||
      generation_ != engine_.generation || upstream_buffer_.size())
    return;
  upstream_clean_ = false;
  sandbox_.pool.give({generation_->id, target.host, target.port, caller_key(), upstream_address_,
                      std::move(*tls_upstream_), upstream_since_},
                     Clock::now());
  tls_upstream_.reset();
}

// A CONNECT to an endpoint whose requests must be read. ward completes TLS to the upstream first
// (verified; a failure answers the CONNECT with 502), then answers 200 and completes the client's
// handshake with a leaf for the CONNECT host signed by its CA, and serves the requests inside one
// by one: each is inspected, forwarded over ward's own TLS connection, and recorded.
asio::awaitable<void> Session::intercept(const Target& target, audit::NetworkEvent& event,
                                         const Matches& matches, const policy::Endpoint& endpoint,
                                         bool pooled) {
  event.action = audit::Action::kAllowed;
  const auto opened = Clock::now();
  auto close_record = [&](std::string reason) {
    // Bytes on the wire with the client (TLS records included), as the kernel counted them.
    TcpBytes bytes;
    if (tcp_bytes(tls_client_ ? socket_of(*tls_client_).native_handle() : client_.native_handle(),
                  bytes)) {
      event.bytes_out = bytes.received;
      event.bytes_in = bytes.acked;
    }
    event.closed = true;
    event.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - opened);
    if (!closed_by_reload_.empty())
      reason = closed_by_reload_;
    else if (aborted_)
      reason = kClosedAtEnd;
    else if (expired_)
      reason = "idle for " + std::to_string(engine_.limits.idle_timeout.count()) + " s";
    if (!reason.empty()) event.reason = std::move(reason);
    engine_.audit.write(event);
    pool_upstream(target);
  };

  // A pooled connection was verified and handshaken for this host and port when it was made.
  std::string failure;
  if (!pooled) failure = co_await upstream_handshake(target);
  if (!failure.empty()) {
    event.failed = true;
    event.reason = "TLS to the upstream failed: " + failure;
    engine_.audit.write(event);
    nlohmann::json body = error_body("upstream_tls_failed", event.reason);
    body["host"] = target.host;
    body["port"] = target.port;
    co_await send_error(client_, 502, body);
    co_return;
  }
  upstream_clean_ = true;
  intercepting_ = true;
  event.reason = pooled ? "intercepted: HTTPS requests are inspected one by one (over an idle "
                          "upstream connection this sandbox made)"
                        : "intercepted: HTTPS requests are inspected one by one";
  engine_.audit.write(event);

  if (std::string why = co_await accept_client_tls(target); !why.empty() || !tls_client_)
    co_return close_record(why);

  for (;;) {
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(engine_.limits.request_head));
    parser.body_limit(boost::none);
    // The first request may take a while: the handshake just ended, the idle rule applies.
    if (!co_await read_head(*tls_client_, parser, false, &target)) co_return close_record("");
    // A connection pinned to an older policy is closed at its next request, unanswered: the
    // client reconnects, and its new connection is decided by the policy in force.
    if (generation_ != engine_.generation) co_return close_record("the policy was reloaded");
    auto& req = parser.get();
    audit::HttpEvent record;
    record.network = event_for(target);
    record.network.rule = event.rule;
    record.network.address = event.address;
    record.method = std::string(req.method_string());
    record.target = std::string(req.target());
    record.intercepted = true;
    // Origin-form only, and the Host this connection was decided for: a request cannot reach
    // another virtual host of the same server (domain fronting) by naming it.
    std::string host_error = req.count(http::field::host) > 1
                                 ? "more than one Host header"
                                 : check_host(req.target(), req[http::field::host], target);
    if (!host_error.empty()) {
      Inspection in;
      in.status = host_error.starts_with("inside") ? 400 : 403;
      in.reason = host_error;
      in.body = error_body(in.status == 400 ? "bad_request" : "policy_denied", host_error);
      co_await refuse_request(*tls_client_, record, in);
      co_return close_record("");
    }
    // The upstream reads the name this connection was decided for, spelled plainly (a Host
    // that only decodes to it, "%61pi.test", is not passed on as it came).
    const std::string name =
        target.host.find(':') != std::string::npos ? "[" + target.host + "]" : target.host;
    req.set(http::field::host,
            target.port == 443 ? name : name + ":" + std::to_string(target.port));
    keep_if_handshake(req);
    Inspection in = inspect(matches, engine_.vault.get(), target.host, target.port, req,
                            Transport::kVerifiedTls);
    if (in.status) {
      co_await refuse_request(*tls_client_, record, in);
      co_return close_record("");
    }
    if (pooled) {
      pooled = false;
      std::optional<Refusal> failed = co_await refresh_pooled(target, endpoint, event);
      if (failed) {
        // As the CONNECT would have been answered, had it made its own connection.
        record.status = failed->status;
        record.network.action =
            failed->status == 403 ? audit::Action::kDenied : audit::Action::kAllowed;
        record.network.failed = failed->status != 403;
        record.network.reason = failed->reason;
        engine_.audit.write(record);
        co_await send_error(*tls_client_, failed->status,
                            error_body(failed->error, failed->reason));
        co_return close_record("");
      }
      record.network.address = event.address;
    }
    // The connection was made for the endpoint that decided the CONNECT; another one, chosen by
    // this request's path, must admit the address too.
    if (std::string why = in.endpoint && in.endpoint != upstream_endpoint_
                              ? refused_address(upstream_address_, target.port, *in.endpoint)
                              : "";
        !why.empty()) {
      Inspection refused;
      refused.status = 403;
      refused.reason = "rule " + in.rule + ", for " + in.path + ": " + why;
      refused.body = error_body("policy_denied", refused.reason);
      co_await refuse_request(*tls_client_, record, refused);
      co_return close_record("");
    }
    if (!co_await exchange(*tls_client_, *tls_upstream_, parser, record, &in))
      co_return close_record("");
  }
}

// Reads a request's body and drops it, up to `limit` bytes: a refusal made before the body was
// read then reaches a client that sends its whole body before it reads an answer (Python's
// urllib, most SDKs). False when the client went away or sent more than `limit`.
template <class Client>
asio::awaitable<bool> Session::discard_body(Client& client, RequestParser& parser,
                                            std::size_t limit) {
  if (!chunk_) chunk_ = std::make_unique<char[]>(kBodyChunk);
  auto& body = parser.get().body();
  for (std::size_t dropped = 0; !parser.is_done(); dropped += kBodyChunk - body.size) {
    if (dropped > limit) co_return false;
    body.data = chunk_.get();
    body.size = kBodyChunk;
    auto [ec, n] = co_await http::async_read_some(client, buffer_, parser, kNoThrow);
    if (ec && ec != http::error::need_buffer) co_return false;
  }
  co_return true;
}

// The Beast relay pattern: the message's head, then its body in chunks as they arrive, framed
// the way it arrived (chunked stays chunked, Content-Length stays exact). Each read returns what
// one read(2) brought, so a streamed body (server-sent events) is passed on as it comes, never
// held back until a buffer fills.
template <bool isRequest, class To, class From>
asio::awaitable<beast::error_code> Session::relay(
    To& to, From& from, beast::flat_buffer& buffer,
    http::parser<isRequest, http::buffer_body>& parser,
    const std::function<void(std::string_view)>* tap, creds::ResponseMask* mask) {
  http::serializer<isRequest, http::buffer_body> serializer{parser.get()};
  if (!chunk_) chunk_ = std::make_unique<char[]>(kBodyChunk);
  auto& body = parser.get().body();
  for (bool head_only = true; !serializer.is_done(); head_only = false) {
    body.data = chunk_.get();
    body.size = kBodyChunk;
    if (parser.is_done()) {
      body.data = nullptr;
      body.size = 0;
      body.more = false;
    } else {
      // Body bytes that came with the head are parsed without a read, so that head and body
      // leave in one write (most small bodies arrive that way). With none yet, the head goes
      // alone first: a streamed body's first byte may be long in coming.
      beast::error_code ec;
      std::size_t used = buffer.size() ? parser.put(buffer.data(), ec) : 0;
      buffer.consume(used);
      if (used == 0 && !head_only) {
        auto [rec, rn] = co_await http::async_read_some(from, buffer, parser, kNoThrow);
        ec = rec;
      }
      if (ec && ec != http::error::need_buffer && ec != http::error::need_more) co_return ec;
      body.size = kBodyChunk - body.size;
      body.data = chunk_.get();
      body.more = !parser.is_done();
      if (tap && body.size) (*tap)(std::string_view(chunk_.get(), body.size));
      if (mask) {  // as many bytes in all, some held back until the next read
        masked_.clear();
        mask->feed(std::string_view(chunk_.get(), body.size), parser.is_done(), masked_);
        body.data = masked_.data();
        body.size = masked_.size();
      }
      // Nothing to pass on (the head goes alone, or a read brought only framing, the last chunk
      // included): a null buffer, because an empty one would go out as an empty chunk — which
      // is the chunked body's end, and would be written a second time at the real end.
      if (body.size == 0) body.data = nullptr;
    }
    auto [wec, wn] = co_await http::async_write(to, serializer, kNoThrow);
    if (wec && wec != http::error::need_buffer) co_return wec;
    deadline_ = Clock::now() + engine_.limits.idle_timeout;
  }
  co_return beast::error_code{};
}

// After a websocket handshake: bytes both ways until either side ends, the client's through the
// frame rewriter when the endpoint opted in. One record, written at the end.
template <class Client, class Upstream>
asio::awaitable<void> Session::relay_websocket(Client& client, Upstream& upstream,
                                               creds::WebsocketRewriter* rewriter,
                                               creds::ResponseMask* mask,
                                               audit::HttpEvent& record) {
  using namespace asio::experimental::awaitable_operators;
  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  std::string refusal;
  co_await (pump(client, upstream, buffer_, rewriter, nullptr, refusal) &&
            pump(upstream, client, upstream_buffer_, nullptr, mask, refusal));
  if (mask) record.masked = mask->masked();
  if (!closed_by_reload_.empty()) record.network.reason = closed_by_reload_;
  if (!refusal.empty()) {
    record.network.action = audit::Action::kDenied;
    record.network.reason = refusal;
  }
  engine_.audit.write(record);
}

// One direction of a relayed upgrade. When it ends, both sockets close, which ends the other.
template <class From, class To>
asio::awaitable<void> Session::pump(From& from, To& to, beast::flat_buffer& pending,
                                    creds::WebsocketRewriter* rewriter, creds::ResponseMask* mask,
                                    std::string& refusal) {
  std::string rewritten;
  Held held(sandbox_, engine_.limits.max_buffered);
  for (;;) {
    if (pending.size()) {
      auto data = pending.data();
      asio::const_buffer out = data;
      if (rewriter) {
        rewritten.clear();
        creds::Rewrite r = rewriter->feed(
            std::string_view(static_cast<const char*>(data.data()), data.size()), rewritten);
        if (r.refused()) {
          refusal = r.reason;
          break;
        }
        if (!held.resize(rewriter->held() + rewritten.capacity())) {
          refusal = buffered_refusal(engine_.limits.max_buffered);
          break;
        }
        out = asio::buffer(rewritten);
      } else if (mask) {
        rewritten.clear();
        mask->feed_websocket(std::string_view(static_cast<const char*>(data.data()), data.size()),
                             rewritten);
        out = asio::buffer(rewritten);
      }
      auto [wec, wn] = co_await asio::async_write(to, out, kNoThrow);
      if (wec) break;
      pending.consume(pending.size());
      if (rewritten.capacity() > kBodyChunk) {  // a large frame's memory goes back
        std::string().swap(rewritten);
        if (rewriter) held.resize(rewriter->held());
      }
      deadline_ = Clock::now() + engine_.limits.idle_timeout;
    }
    auto [rec, rn] = co_await from.async_read_some(pending.prepare(kBodyChunk), kNoThrow);
    if (rec) break;
    pending.commit(rn);
  }
  beast::error_code ignored;
  socket_of(from).close(ignored);
  socket_of(to).close(ignored);
}

// ---- inference.local ----

asio::awaitable<void> Session::inference_tunnel(const Target& target) {
  generation_ = engine_.generation;
  if (!engine_.tls || !engine_.tls->prepare()) {
    co_await send_error(
        client_, 502,
        error_body("inference_unavailable",
                   "https://inference.local needs ward's CA: " +
                       (engine_.tls ? engine_.tls->error : std::string("none was set up"))));
    co_return;
  }
  co_await accept_client_tls(target);
  if (!tls_client_) co_return;
  for (;;) {
    RequestParser parser;
    parser.header_limit(static_cast<std::uint32_t>(engine_.limits.request_head));
    parser.body_limit(boost::none);
    if (!co_await read_head(*tls_client_, parser, false, &target)) co_return;
    if (!co_await serve_inference(*tls_client_, parser, target.port)) co_return;
  }
}

template <class Client>
asio::awaitable<bool> Session::refuse_inference(Client& client, audit::ApiEvent& record, int status,
                                                std::string error, std::string reason) {
  record.status = status;
  record.network.action = status == 403 ? audit::Action::kDenied : audit::Action::kAllowed;
  record.network.failed = status >= 500;
  record.network.reason = reason;
  engine_.audit.write(record);
  co_await send_error(client, status, error_body(error, std::move(reason)));
  co_return false;
}

// Closes the upstream connection, whoever it went to. upstream_ serves one forward host or one
// inference backend at a time, and what it served is forgotten with it: a keep-alive client that
// alternates the two must never have a request for one sent on the other's connection (the
// backend's key to a host, a host's request to the backend).
void Session::close_upstream() {
  beast::error_code ignored;
  upstream_.close(ignored);
  if (tls_upstream_) socket_of(*tls_upstream_).close(ignored);
  tls_upstream_.reset();
  backend_route_ = nullptr;
  upstream_host_.clear();
  upstream_port_ = 0;
  upstream_endpoint_ = nullptr;
  upstream_buffer_.clear();
}

// A connection to a route's backend: the one kept from the last call when it is still open, else
// a new one (TLS verified as for any upstream). Backends are the operator's configuration, not
// the sandbox's choice: the SSRF guard does not apply (a model on the host's loopback is fine).
asio::awaitable<std::string> Session::connect_backend(const inference::Route& route) {
  const bool tls = route.scheme == "https";
  if (backend_route_ == &route) {
    tcp::socket& s = tls ? socket_of(*tls_upstream_) : upstream_;
    char byte;
    ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) co_return "";
  }
  close_upstream();
  set_phase(Phase::kUpstream, engine_.limits.connect_timeout);
  std::vector<IpAddress> candidates;
  if (auto ip = parse_ip_literal(route.host)) {
    candidates.push_back(*ip);
  } else if (const auto& named = engine_.hosts.lookup(route.host); !named.empty()) {
    candidates = named;
  } else {
    tcp::resolver resolver(engine_.io);
    resolver_ = &resolver;
    auto [ec, results] =
        co_await resolver.async_resolve(route.host, std::to_string(route.port), kNoThrow);
    resolver_ = nullptr;
    if (ec) co_return "cannot resolve " + route.host + ": " + ec.message();
    for (const auto& r : results)
      if (auto ip = to_ip(r.endpoint().address())) candidates.push_back(*ip);
  }
  std::string failure = "no address for " + route.host;
  beast::error_code ignored;
  for (const IpAddress& ip : candidates) {
    upstream_ = tcp::socket(engine_.io);
    auto [ec] = co_await upstream_.async_connect({to_asio(ip), route.port}, kNoThrow);
    if (!ec) {
      failure.clear();
      break;
    }
    upstream_.close(ignored);
    failure = "cannot connect to " + ip.to_string() + ":" + std::to_string(route.port) + ": " +
              (expired_ ? std::string("timed out") : ec.message());
    if (expired_) break;
  }
  if (!failure.empty()) co_return failure;
  upstream_.set_option(tcp::no_delay(true), ignored);
  if (tls) {
    if (!engine_.tls || !engine_.tls->prepare())
      co_return "TLS to the backend needs ward's TLS setup: " +
          (engine_.tls ? engine_.tls->error : std::string("none"));
    tls_upstream_.emplace(std::move(upstream_), *engine_.tls->upstream);
    SSL* ssl = tls_upstream_->native_handle();
    if (auto prepared = tls::prepare_upstream(ssl, route.host); !prepared)
      co_return prepared.error().message;
    engine_.tls->sessions.offer(ssl, route.host, route.port);
    auto [ec] = co_await tls_upstream_->async_handshake(asio::ssl::stream_base::client, kNoThrow);
    if (ec) {
      std::string why = tls::verify_failure(ssl);
      co_return "TLS to the backend failed: " + (why.empty() ? ec.message() : why);
    }
  }
  backend_route_ = &route;
  co_return "";
}

// One call to one backend. -1: it failed before anything reached the client (`failure` says
// why; the next route may be tried); 0: done, the client's connection closes; 1: done, kept.
template <class Client, class Backend>
asio::awaitable<int> Session::call_backend(Client& client, Backend& backend,
                                           http::request<http::string_body>& request,
                                           audit::ApiEvent& record, bool keep_alive,
                                           std::string& failure) {
  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  auto [wec, wn] = co_await http::async_write(backend, request, kNoThrow);
  if (wec) {
    failure = "sending the request: " + wec.message();
    co_return -1;
  }
  ResponseParser res;
  res.header_limit(kResponseHeadLimit);
  res.body_limit(boost::none);
  if (request.method() == http::verb::head) res.skip(true);
  auto [ec, n] = co_await http::async_read_header(backend, upstream_buffer_, res, kNoThrow);
  if (ec) {
    failure = "the response: " + ec.message();
    co_return -1;
  }
  auto& response = res.get();
  if (response.result_int() >= 500) {  // nothing reached the client yet: another route may do
    failure = "HTTP " + std::to_string(response.result_int());
    co_return -1;
  }
  const bool backend_keep_alive = response.keep_alive() && !res.need_eof();
  keep_alive = keep_alive && !res.need_eof();
  strip_hop_by_hop(response);
  add_via(response);
  response.keep_alive(keep_alive);
  record.status = response.result_int();
  inference::UsageScanner usage(response[http::field::content_type],
                                response[http::field::content_encoding]);
  const std::function<void(std::string_view)> tap = [&usage](std::string_view chunk) {
    usage.feed(chunk);
  };
  auto rec = co_await relay(client, backend, upstream_buffer_, res, &tap);
  const inference::Usage counted = usage.usage();
  record.input_tokens = counted.input_tokens;
  record.output_tokens = counted.output_tokens;
  if (rec || !backend_keep_alive || upstream_buffer_.size()) close_upstream();
  if (rec) record.network.reason = "relaying the response: " + rec.message();
  co_return rec || !keep_alive ? 0 : 1;
}

// One request to inference.local: classified, routed (in order, falling back on a backend that
// fails before its first byte), keyed with the route's key, and recorded (one 6003 record).
template <class Client>
asio::awaitable<bool> Session::serve_inference(Client& client, RequestParser& parser,
                                               std::uint16_t port) {
  const auto started = Clock::now();
  audit::ApiEvent record;
  Target local;
  local.host = std::string(kInferenceHost);
  local.port = port;
  record.network = event_for(local);
  record.network.action = audit::Action::kAllowed;
  auto& head = parser.get();
  const std::string target(head.target());
  const std::string path = target.substr(0, target.find('?'));
  const bool anthropic_style = head.count("anthropic-version") || head.count("x-api-key");
  auto protocol = inference::classify(head.method_string(), path, anthropic_style);
  if (!protocol)
    co_return co_await refuse_inference(
        client, record, protocol.error().status,
        protocol.error().status == 403 ? "path_not_served" : "method_not_allowed",
        protocol.error().reason);
  record.protocol = std::string(inference::protocol_name(*protocol));
  std::vector<const inference::Route*> routes;
  for (const inference::Route& r : *engine_.inference)
    if (inference::route_serves(r, *protocol)) routes.push_back(&r);
  if (routes.empty())
    co_return co_await refuse_inference(
        client, record, 400, "protocol_not_served",
        "no inference route serves " + record.protocol + " (see ward run --inference)");

  const auto declared = parser.content_length();  // see exchange(): checked before reading
  const bool fits = !declared || *declared <= kMaxInferenceBody;
  // The body is held as read and as rewritten for the route being tried: counted at twice its
  // length (a chunked one at twice the limit) until the rewritten size is known.
  Held held(sandbox_, engine_.limits.max_buffered);
  if (fits && !parser.is_done() &&
      !held.resize(2 * static_cast<std::size_t>(declared.value_or(kMaxInferenceBody)))) {
    if (!co_await discard_body(client, parser, kMaxInferenceBody)) co_return false;
    co_return co_await refuse_inference(client, record, 503, "proxy_busy",
                                        buffered_refusal(engine_.limits.max_buffered));
  }
  http::request_parser<http::string_body> whole{std::move(parser)};
  whole.body_limit(kMaxInferenceBody);
  beast::error_code ec = http::error::body_limit;
  if (fits) {
    auto [rec, n] = co_await http::async_read(client, buffer_, whole, kNoThrow);
    ec = rec;
  }
  if (ec == http::error::body_limit)
    co_return co_await refuse_inference(client, record, 413, "payload_too_large",
                                        "inference requests are limited to 10 MiB");
  if (ec) co_return false;
  http::request<http::string_body> request = whole.release();
  held.resize(2 * request.body().capacity());
  const bool keep_alive = request.keep_alive();
  const bool has_body = request.method() == http::verb::post;

  std::vector<std::string> tried;
  for (const inference::Route* route : routes) {
    http::request<http::string_body> out{request.base()};  // the head: the body is rewritten
    record.model = route->model;
    if (has_body) {
      auto body = inference::rewrite_body(request.body(), *route);
      if (!body)
        co_return co_await refuse_inference(client, record, 400, "bad_request",
                                            body.error().message);
      out.body() = std::move(body->text);
      record.model = body->model;
      record.streaming = body->stream;
    } else {
      out.body() = request.body();
    }
    // The rewritten text may be longer than what was read (numbers written out in full).
    if (!held.resize(request.body().capacity() + out.body().capacity()))
      co_return co_await refuse_inference(client, record, 503, "proxy_busy",
                                          buffered_refusal(engine_.limits.max_buffered));
    inference::prepare_request(out, *route, *protocol);
    out.version(11);
    out.keep_alive(true);
    out.prepare_payload();
    record.route = route->name;
    record.backend = route->backend();
    std::string failure = co_await connect_backend(*route);
    int outcome = -1;
    if (failure.empty()) {
      outcome =
          route->scheme == "https"
              ? co_await call_backend(client, *tls_upstream_, out, record, keep_alive, failure)
              : co_await call_backend(client, upstream_, out, record, keep_alive, failure);
    }
    if (outcome < 0) {
      close_upstream();
      tried.push_back(route->name + ": " + failure);
      continue;
    }
    record.tried = std::move(tried);
    record.latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
    engine_.audit.write(record);
    co_return outcome == 1 && !expired_;
  }
  record.tried = tried;
  std::string reason = "every route failed:";
  for (const std::string& t : tried) reason += " [" + t + "]";
  co_return co_await refuse_inference(client, record, 502, "inference_unavailable", reason);
}

// Sends a request that passed (head rewritten for the next hop), then relays the response; the
// record is written once the response is through. True when the client connection stays open.
template <class Client, class Upstream>
asio::awaitable<bool> Session::exchange(Client& client, Upstream& upstream, RequestParser& parser,
                                        audit::HttpEvent& record, Inspection* inspection) {
  auto& req = parser.get();
  record.network.action = audit::Action::kAllowed;
  if (inspection) {
    record.l7_rule = inspection->l7_rule;
    record.audited_violation = inspection->audited_violation;
    record.credentials = inspection->credentials;
    if (!inspection->rule.empty()) record.network.rule = inspection->rule;
    record.network.reason = !inspection->reason.empty()   ? inspection->reason
                            : inspection->l7_rule.empty() ? "allowed by " + inspection->rule
                                                          : "allowed by " + inspection->rule +
                                                                " (" + inspection->l7_rule + ")";
  }
  const bool client_keep_alive = req.keep_alive();
  const unsigned client_version = req.version();
  const bool expect_continue = beast::iequals(req[http::field::expect], "100-continue");
  // A websocket handshake on a connection whose requests ward reads (the GET was decided like
  // any other). Other upgrades are not forwarded.
  const bool websocket = inspection && req.method() == http::verb::get &&
                         http::token_list(req[http::field::connection]).exists("upgrade") &&
                         beast::iequals(req[http::field::upgrade], "websocket") &&
                         !req[http::field::sec_websocket_key].empty();
  // What a server that really switched protocols answers (RFC 6455 section 4.2.2): a 101
  // without it would leave the connection an unread tunnel past every rule.
  const std::string websocket_accept =
      websocket ? websocket_accept_for(req[http::field::sec_websocket_key]) : "";
  strip_hop_by_hop(req);
  req.erase(http::field::expect);  // answered here, below
  req.version(11);
  add_via(req);
  // Where a credential is bound, the answer is read for its real values (creds/mask.h), so it is
  // asked for in a form that can be read: not compressed, and whole (ranges could return a value
  // in pieces too short to be told from other text).
  std::optional<creds::ResponseMask> mask;
  if (inspection && inspection->transport == Transport::kVerifiedTls && engine_.vault &&
      !engine_.vault->empty() &&
      engine_.vault->bound_anywhere(record.network.host, record.network.port)) {
    mask.emplace(*engine_.vault, record.network.host, record.network.port);
    req.set(http::field::accept_encoding, "identity");
    req.erase(http::field::range);
    req.erase(http::field::if_range);
  }
  // Over plain HTTP frames are never rewritten: a placeholder in them stays the meaningless string
  // it is (no secret travels in cleartext).
  const bool rewrite_frames = websocket && inspection->endpoint &&
                              inspection->endpoint->websocket_credential_rewrite && engine_.vault &&
                              inspection->transport == Transport::kVerifiedTls;
  // A forward request's upstream lives no longer than the client's connection: a client that
  // closes after this exchange has the upstream close too. The server, closing first, then
  // keeps the TIME_WAIT, not the host's ephemeral ports towards it — thousands a minute from an
  // agent that opens a connection per request would otherwise slow every connect(2). An
  // intercepted upstream stays open for the sandbox's next CONNECT (pool.h).
  if (!client_keep_alive && !intercepting_) req.keep_alive(false);
  upstream_clean_ = false;
  if (websocket) {
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::upgrade, "websocket");
    // The frame rewriter and the mask read frames as they are: no compression where they do.
    if (rewrite_frames || mask) req.erase(http::field::sec_websocket_extensions);
  }

  set_phase(Phase::kRelay, engine_.limits.idle_timeout);
  // A body read whole to be rewritten is counted (as read, and as rewritten) before the client
  // is asked for it: one that does not fit is refused before it is sent when the client waits
  // for 100 Continue, else read and dropped first.
  const bool read_whole = inspection && inspection->rewrite_body && !parser.is_done();
  const auto declared = parser.content_length();
  const bool fits = !declared || *declared <= kMaxRewrittenBody;
  Held held(sandbox_, engine_.limits.max_buffered);
  auto busy = [this] {
    Inspection busy;
    busy.status = 503;
    busy.reason = buffered_refusal(engine_.limits.max_buffered);
    busy.body = error_body("proxy_busy", busy.reason);
    return busy;
  };
  if (read_whole && fits &&
      !held.resize(2 * static_cast<std::size_t>(declared.value_or(kMaxRewrittenBody)))) {
    if (!expect_continue && !co_await discard_body(client, parser, kMaxRewrittenBody))
      co_return false;
    Inspection refused = busy();
    co_return co_await refuse_request(client, record, refused);
  }
  if (expect_continue) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    auto [ec, n] = co_await asio::async_write(client, asio::buffer(kContinue), kNoThrow);
    if (ec) co_return false;
  }
  if (read_whole) {
    // Read whole, rewritten, sent with its new length; too large a body is refused.
    // Beast checks a Content-Length against the limit only while it parses the head, which is
    // behind us: a declared length is checked here, a chunked body as it arrives.
    http::request_parser<http::string_body> whole{std::move(parser)};
    whole.body_limit(kMaxRewrittenBody);
    const auto head_fields = std::distance(whole.get().begin(), whole.get().end());
    beast::error_code ec = http::error::body_limit;
    if (fits) {
      auto [rec, n] = co_await http::async_read(client, buffer_, whole, kNoThrow);
      ec = rec;
    }
    if (ec == http::error::body_limit) {
      Inspection too_large;
      too_large.status = 413;
      too_large.reason = "a body the credential rewriter reads is limited to 256 KiB";
      too_large.body = error_body("payload_too_large", too_large.reason);
      co_return co_await refuse_request(client, record, too_large);
    }
    if (ec) co_return false;
    auto& message = whole.get();
    // The trailers of a chunked body land among the fields: dropped, never sent on as headers
    // (they came after the head was inspected).
    for (auto it = std::next(message.begin(), head_fields); it != message.end();)
      it = message.erase(it);
    rewrite_body(*inspection, *engine_.vault, record.network.host, record.network.port,
                 message[http::field::content_type], message.body());
    if (inspection->status) co_return co_await refuse_request(client, record, *inspection);
    // Real values may be longer than their placeholders.
    if (!held.resize(message.body().capacity())) {
      Inspection refused = busy();
      co_return co_await refuse_request(client, record, refused);
    }
    record.credentials = inspection->credentials;
    if (message.method() == http::verb::trace && !message.body().empty()) {
      Inspection trace;  // Beast will not frame it (prepare_payload throws), nor should anyone
      trace.status = 400;
      trace.reason = "a TRACE request cannot carry a body";
      trace.body = error_body("bad_request", trace.reason);
      co_return co_await refuse_request(client, record, trace);
    }
    message.chunked(false);
    message.prepare_payload();
    auto [wec, wn] = co_await http::async_write(upstream, message, kNoThrow);
    if (wec) {
      beast::error_code ignored;
      socket_of(upstream).close(ignored);
      co_return false;
    }
  } else if (auto ec = co_await relay(upstream, client, buffer_, parser)) {
    beast::error_code ignored;
    socket_of(upstream).close(ignored);
    co_return false;
  }

  // The response; interim 1xx answers are passed on as they come.
  std::optional<ResponseParser> res;
  for (;;) {
    res.emplace();
    res->header_limit(kResponseHeadLimit);
    res->body_limit(boost::none);
    if (record.method == "HEAD") res->skip(true);
    auto [ec, n] = co_await http::async_read_header(upstream, upstream_buffer_, *res, kNoThrow);
    if (ec) {
      co_await bad_gateway(client, upstream, record, "the upstream's response: " + ec.message());
      co_return false;
    }
    if (mask) mask_head(res->get(), *mask);
    int status = res->get().result_int();
    if (status == 101 && websocket &&
        res->get()[http::field::sec_websocket_accept] != websocket_accept) {
      co_await bad_gateway(client, upstream, record,
                           "the upstream switched protocols without a valid Sec-WebSocket-Accept");
      co_return false;
    }
    if (status == 101 && websocket) {
      auto& head = res->get();
      strip_hop_by_hop(head);
      head.set(http::field::connection, "Upgrade");
      head.set(http::field::upgrade, "websocket");
      add_via(head);
      websocket_ =
          Websocket{Target{record.network.host, record.network.port, {}, {}},
                    handshake_ ? std::move(*handshake_) : http::request_header<>(), rewrite_frames};
      if (generation_ != engine_.generation) {
        // A reload while the upstream was answering: decided again before the 101, so that
        // what the new policy refuses gets its 403, not a 101 and then the close.
        if (std::string why = reload_refusal(); !why.empty()) {
          websocket_.reset();
          beast::error_code ignored;
          socket_of(upstream).close(ignored);
          Inspection refused;
          refused.status = 403;
          refused.reason = "the reloaded policy no longer allows it: " + why;
          refused.body = error_body("policy_denied", refused.reason);
          co_return co_await refuse_request(client, record, refused);
        }
      }
      record.status = 101;
      http::response_serializer<http::buffer_body> out{head};
      auto [wec, wn] = co_await http::async_write_header(client, out, kNoThrow);
      if (wec) {
        websocket_.reset();
        co_return false;
      }
      std::optional<creds::WebsocketRewriter> rewriter;
      if (rewrite_frames)
        rewriter.emplace(*engine_.vault, bound_for(*inspection, *engine_.vault, record.network.host,
                                                   record.network.port));
      reconsider();  // a reload while the 101 was written
      if (closed_by_reload_.empty()) {
        co_await relay_websocket(client, upstream, rewriter ? &*rewriter : nullptr,
                                 mask ? &*mask : nullptr, record);
      } else {
        record.network.reason = closed_by_reload_;
        engine_.audit.write(record);
      }
      websocket_.reset();
      co_return false;
    }
    if (status == 101) {  // Upgrade was not forwarded: a switch now is the upstream's error
      co_await bad_gateway(client, upstream, record, "the upstream switched protocols unasked");
      co_return false;
    }
    if (status < 100 || status >= 200) break;
    if (auto wec = co_await relay(client, upstream, upstream_buffer_, *res)) co_return false;
  }
  auto& response = res->get();
  if (std::string coding = mask && !res->is_done() ? unreadable_coding(response) : "";
      !coding.empty()) {
    // Asked for identity, answered otherwise: a body the mask cannot read is not passed on.
    co_await bad_gateway(client, upstream, record,
                         "a credential is bound here, so ward reads the answer for its value, and "
                         "cannot read a body with " +
                             coding);
    co_return false;
  }
  const bool upstream_keep_alive = response.keep_alive() && !res->need_eof();
  bool keep_alive = client_keep_alive && !res->need_eof();
  strip_hop_by_hop(response);
  add_via(response);
  if (client_version < 11 && response.chunked()) {
    response.chunked(false);  // an HTTP/1.0 client gets the body up to the close
    keep_alive = false;
  }
  response.keep_alive(keep_alive);
  record.status = response.result_int();
  auto ec =
      co_await relay(client, upstream, upstream_buffer_, *res, nullptr, mask ? &*mask : nullptr);
  if (mask) record.masked = mask->masked();
  record.duration = std::max(std::chrono::microseconds(1),
                             std::chrono::duration_cast<std::chrono::microseconds>(
                                 std::chrono::system_clock::now() - record.network.time));
  engine_.audit.write(record);
  if (ec || !upstream_keep_alive || upstream_buffer_.size()) {
    beast::error_code ignored;
    socket_of(upstream).close(ignored);
    upstream_buffer_.clear();
    // An intercepted connection has one upstream: without it, the client's connection ends too.
    if (inspection && tls_upstream_) co_return false;
  } else {
    upstream_clean_ = true;
    upstream_since_ = Clock::now();
  }
  co_return !ec && keep_alive && !expired_;
}

// One absolute-form request and its response. True when the connection stays open.
asio::awaitable<bool> Session::forward(RequestParser& parser, bool first) {
  // A keep-alive connection pinned to an older policy is closed at its next request; the client
  // reconnects and its new connection gets the policy in force.
  if (!first && generation_ != engine_.generation) co_return false;
  generation_ = engine_.generation;

  auto& req = parser.get();
  auto target = parse_forward_target(req.target());
  if (!target) {
    std::string reason = target.error().reason;
    if (!req.target().empty() && req.target().front() == '/')
      reason = "ward is a proxy: send absolute-form requests (http://host/path)";
    co_return co_await refuse_target(parser, reason);
  }
  if (is_inference(*target) && target->port == 80) {
    req.target(target->origin_form);
    co_return co_await serve_inference(client_, parser, 80);
  }
  audit::HttpEvent record;
  record.network = event_for(*target);
  record.method = std::string(req.method_string());
  record.target = target->origin_form;
  policy::Decision d = decide(*generation_, *target, caller_);
  record.network.rule = d.rule;
  std::optional<Inspection> inspection;
  if (d.allowed) {
    Matches matches = generation_->matcher.matches(target->host, target->port, caller_.binaries);
    // Plain HTTP is read whenever a credential could be in it (a placeholder must not leave
    // towards an endpoint it is not bound to); HTTPS only where must_inspect() says.
    const bool credentials = engine_.vault && !engine_.vault->empty();
    if (credentials || must_inspect(matches, engine_.vault.get(), target->host, target->port)) {
      req.target(target->origin_form);
      keep_if_handshake(req);
      inspection =
          inspect(matches, engine_.vault.get(), target->host, target->port, req, Transport::kPlain);
      if (inspection->status) co_return co_await refuse_request(client_, record, *inspection);
      d.endpoint = inspection->endpoint;
    }
  }
  std::optional<Refusal> refusal;
  if (!d.allowed)
    refusal = Refusal{403, "policy_denied", d.reason};
  else if (!upstream_reusable(*target) ||
           (d.endpoint != upstream_endpoint_ &&
            !refused_address(upstream_address_, target->port, *d.endpoint).empty()))
    refusal = co_await connect_upstream(*target, *d.endpoint, record.network);
  else
    record.network.address = upstream_address_;
  if (refusal) {
    record.network.action =
        refusal->status == 403 ? audit::Action::kDenied : audit::Action::kAllowed;
    record.network.failed = refusal->status != 403;
    record.network.reason = refusal->reason;
    record.status = refusal->status;
    engine_.audit.write(record);
    co_await refuse(*refusal, *target);
    co_return false;
  }
  record.network.reason = d.reason;
  if (!inspection) req.target(target->origin_form);
  req.set(http::field::host, target->authority);
  co_return co_await exchange(client_, upstream_, parser, record,
                              inspection ? &*inspection : nullptr);
}

asio::awaitable<void> serve_connection(Engine& engine, Sandbox& sandbox, tcp::socket client) {
  Session session(engine, sandbox, std::move(client));
  co_await session.run();
}

void expire_sessions(Engine& engine, Clock::time_point now) {
  for (Session* s : engine.sessions) s->expire(now);
}

void abort_sessions(Engine& engine) {
  for (Session* s : engine.sessions) s->abort();
}

void reconsider_tunnels(Engine& engine) {
  for (Session* s : engine.sessions) s->reconsider();
}

}  // namespace ward::proxy
