// connect-tls and http: workers sending requests back to back, each waiting for its response (and,
// with --events, timing the server-sent events of a streamed one as they arrive).
#include <openssl/ssl.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

#include <atomic>
#include <deque>
#include <iostream>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "loadgen/modes.h"
#include "loadgen/net.h"

namespace ward::loadgen {
namespace {

namespace http = beast::http;
namespace ssl = asio::ssl;
using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using Request = http::request<http::string_body>;

// Hands out the run's requests to the workers of every thread: until the deadline, or until
// `limit` have been handed out.
class Budget {
 public:
  Budget(std::uint64_t limit, Clock::time_point deadline) : limit_(limit), deadline_(deadline) {}

  bool claim() {
    if (Clock::now() >= deadline_) return false;
    return limit_ == 0 || claimed_.fetch_add(1, std::memory_order_relaxed) < limit_;
  }

 private:
  const std::uint64_t limit_;  // 0: no limit
  const Clock::time_point deadline_;
  std::atomic<std::uint64_t> claimed_{0};
};

// What the workers of one thread add up; the threads' tallies are merged once they have stopped.
struct Tally {
  Latencies latencies;  // of the requests that succeeded
  ErrorCounts errors;
  std::uint64_t connections = 0;  // opened: one per worker, more when servers close them
  std::uint64_t tls_resumed = 0;  // handshakes that resumed a session (--resume)
  // --events, of the requests that succeeded:
  std::uint64_t events = 0;
  Latencies first_events;  // from the request's start to its response's first event
  Latencies event_gaps;    // between consecutive events of one response

  void merge(const Tally& other) {
    latencies.merge(other.latencies);
    errors.merge(other.errors);
    connections += other.connections;
    tls_resumed += other.tls_resumed;
    events += other.events;
    first_events.merge(other.first_events);
    event_gaps.merge(other.event_gaps);
  }
};

// What every worker of the run reads and none changes.
struct Plan {
  const RequestOptions& options;
  Route route;
  Request request;
  // connect-tls only. Not const: streams take it so; an SSL_CTX serves several threads' streams.
  ssl::context* tls;
  Clock::duration timeout;
};

Request make_request(const RequestOptions& options) {
  // Through a proxy, plain HTTP names the target in the request line (absolute form).
  const std::string target = options.proxy && !options.tls
                                 ? "http://" + options.target.authority() + options.path
                                 : options.path;
  Request request{options.body ? http::verb::post : http::verb::get, target, 11};
  const std::uint16_t default_port = options.tls ? 443 : 80;
  request.set(http::field::host, host_with_port(options.host, options.target.port, default_port));
  request.set(http::field::user_agent, "ward-loadgen");
  if (options.body) {
    request.set(http::field::content_type, "application/json");
    request.body() = *options.body;
  }
  for (const std::string& header : options.headers) {  // "Name: value" (checked by the CLI)
    const std::size_t colon = header.find(':');
    const std::size_t value = header.find_first_not_of(" \t", colon + 1);
    request.set(header.substr(0, colon), value == std::string::npos ? "" : header.substr(value));
  }
  request.keep_alive(!options.new_connection);
  request.prepare_payload();
  return request;
}

ssl::context make_tls_context(const RequestOptions& options) {
  ssl::context tls(ssl::context::tls_client);
  if (options.ca_file.empty()) {
    tls.set_verify_mode(ssl::verify_none);
  } else {
    tls.load_verify_file(options.ca_file);
    tls.set_verify_mode(ssl::verify_peer);
  }
  // No session cache to turn off: an OpenSSL client resumes only the session it is handed
  // (SSL_set_session), which workers do under --resume alone. Every other handshake is full.
  return tls;
}

bool is_ip_literal(const std::string& host) {
  boost::system::error_code error;
  asio::ip::make_address(host, error);
  return !error;
}

using SessionPtr = std::unique_ptr<SSL_SESSION, decltype(&SSL_SESSION_free)>;

// One request in flight at a time, over one kept-alive connection, or over a new one for each
// request with --new-tunnel / --new-connection.
template <typename Stream>
class Worker {
 public:
  Worker(const Plan& plan, Budget& budget, Tally& tally)
      : plan_(plan), budget_(budget), tally_(tally), request_(plan.request) {}

  asio::awaitable<void> run() {
    while (budget_.claim()) {
      Clock::time_point start = Clock::now();
      try {
        if (!stream_) {
          co_await connect();
          // A kept-alive connection's set-up is paid once, not by its first request.
          if (!plan_.options.new_connection) start = Clock::now();
        }
        const Fetched fetched = co_await fetch();
        tally_.latencies.add(fetched.done - start);
        if (!fetched.events.empty()) {
          tally_.events += fetched.events.size();
          tally_.first_events.add(fetched.events.front() - start);
          for (std::size_t i = 1; i < fetched.events.size(); ++i) {
            tally_.event_gaps.add(fetched.events[i] - fetched.events[i - 1]);
          }
        }
        if (fetched.trailing != 0) {
          tally_.errors.add(ErrorKind::kFraming,
                            std::to_string(fetched.trailing) +
                                " byte(s) after a complete response, before the next request");
        }
        if (!fetched.reusable) finish_connection();
      } catch (const Failure& failure) {
        tally_.errors.add(failure.kind(), failure.what());
        stream_.reset();  // whatever state it is in, the connection carries no further request
      }
    }
  }

 private:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  asio::awaitable<void> connect() {
    const auto executor = co_await asio::this_coro::executor;
    if constexpr (kTls) {
      stream_.emplace(executor, *plan_.tls);
    } else {
      stream_.emplace(executor);
    }
    buffer_.clear();
    beast::tcp_stream& tcp = beast::get_lowest_layer(*stream_);
    tcp.expires_after(plan_.timeout);
    co_await open_route(tcp, plan_.route);
    ++tally_.connections;
    if constexpr (kTls) co_await handshake();
  }

  asio::awaitable<void> handshake() {
    const std::string& host = plan_.options.host;
    SSL* ssl = stream_->native_handle();
    // SNI carries names, never addresses (RFC 6066, section 3).
    if (!is_ip_literal(host)) SSL_set_tlsext_host_name(ssl, host.c_str());
    if (!plan_.options.ca_file.empty()) {
      stream_->set_verify_callback(ssl::host_name_verification(host));
    }
    if (session_) SSL_set_session(ssl, session_.get());
    co_await step(ErrorKind::kTls, "TLS handshake",
                  stream_->async_handshake(ssl::stream_base::client, asio::use_awaitable));
    if (SSL_session_reused(ssl)) ++tally_.tls_resumed;
  }

  struct Fetched {
    Clock::time_point done;                 // the response's last byte was read
    std::vector<Clock::time_point> events;  // --events: when each event's end was read
    std::size_t trailing = 0;               // bytes read after the response (a framing error)
    bool reusable = false;                  // the connection can carry another request
  };

  // Sends the request and reads the whole response.
  asio::awaitable<Fetched> fetch() {
    beast::get_lowest_layer(*stream_).expires_after(plan_.timeout);
    co_await step(ErrorKind::kIo, "request",
                  http::async_write(*stream_, request_, asio::use_awaitable));
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    Fetched fetched;
    if (plan_.options.events) {
      co_await read_events(parser, fetched.events);
    } else {
      co_await step(ErrorKind::kIo, "response",
                    http::async_read(*stream_, buffer_, parser, asio::use_awaitable));
    }
    fetched.done = Clock::now();
    const auto& response = parser.get();
    if (http::to_status_class(response.result()) != http::status_class::successful) {
      throw Failure(ErrorKind::kStatus, "HTTP " + std::to_string(response.result_int()) + " " +
                                            std::string(response.reason()));
    }
    // The server has had nothing to answer since: whatever is left is not a response's.
    fetched.trailing = buffer_.size();
    fetched.reusable =
        response.keep_alive() && !plan_.options.new_connection && fetched.trailing == 0;
    co_return fetched;
  }

  // Reads a response read by read as it arrives, noting when each event of its body ends ("\n\n",
  // the event stream's blank line): events that arrive together get the same time, as a client
  // would see them.
  asio::awaitable<void> read_events(http::response_parser<http::string_body>& parser,
                                    std::vector<Clock::time_point>& events) {
    co_await step(ErrorKind::kIo, "response",
                  http::async_read_header(*stream_, buffer_, parser, asio::use_awaitable));
    std::size_t scanned = 0;
    while (!parser.is_done()) {
      co_await step(ErrorKind::kIo, "response",
                    http::async_read_some(*stream_, buffer_, parser, asio::use_awaitable));
      const Clock::time_point now = Clock::now();
      const std::string& body = parser.get().body();
      for (; scanned < body.size(); ++scanned) {
        if (scanned > 0 && body[scanned] == '\n' && body[scanned - 1] == '\n') {
          events.push_back(now);
        }
      }
    }
  }

  // Closes a connection that served its last request, keeping its TLS session for the next
  // handshake under --resume. Taken after a response, the session includes any TLS 1.3 ticket.
  void finish_connection() {
    if constexpr (kTls) {
      if (plan_.options.resume_tls) {
        SSL* ssl = stream_->native_handle();
        // Without a close_notify exchange, OpenSSL takes the connection for broken and marks its
        // session not resumable. The response was read whole, so it was not.
        SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
        session_.reset(SSL_get1_session(ssl));
      }
    }
    stream_.reset();
  }

  const Plan& plan_;
  Budget& budget_;
  Tally& tally_;
  Request request_;               // each worker's own copy: no message is shared between threads
  std::optional<Stream> stream_;  // none between a closed connection and the next
  beast::flat_buffer buffer_;
  SessionPtr session_{nullptr, &SSL_SESSION_free};
};

template <typename Stream>
asio::awaitable<void> work(const Plan& plan, Budget& budget, Tally& tally) {
  Worker<Stream> worker(plan, budget, tally);
  co_await worker.run();
}

// Ends a timed run: requests still in flight at the deadline are abandoned, neither counted nor
// errors, so that every run measures the same window.
asio::awaitable<void> stop_at(asio::io_context& io, Clock::time_point deadline) {
  asio::steady_timer timer(io, deadline);
  co_await timer.async_wait(asio::use_awaitable);
  io.stop();
}

const char* mode_name(const RequestOptions& options) {
  return options.tls ? "connect-tls" : "http";
}

nlohmann::ordered_json report(const RequestOptions& options, Tally& total, double elapsed_s) {
  const double count = static_cast<double>(total.latencies.count());
  nlohmann::ordered_json json = describe_run(mode_name(options), options.proxy, options.target);
  json[options.tls ? "new_tunnel" : "new_connection"] = options.new_connection;
  json["concurrency"] = options.concurrency;
  json["threads"] = options.threads;
  json["requests"] = total.latencies.count();
  json["errors"] = total.errors.to_json();
  json["connections"] = total.connections;
  if (options.tls) json["tls_resumed"] = total.tls_resumed;
  json["duration_s"] = rounded(elapsed_s, 3);
  json["rps"] = rounded(count / elapsed_s, 1);
  json["latency_ms"] = total.latencies.summarize();
  if (options.events) {
    json["events"] = total.events;
    json["first_event_ms"] = total.first_events.summarize();
    json["event_gap_ms"] = total.event_gaps.summarize();
  }
  return json;
}

}  // namespace

int run_requests(const RequestOptions& options) {
  std::optional<ssl::context> tls;
  if (options.tls) tls.emplace(make_tls_context(options));
  const Plan plan{options, plan_route(options.proxy, options.target, /*tunnel=*/options.tls),
                  make_request(options), tls ? &*tls : nullptr, from_seconds(options.timeout_s)};

  const bool timed = options.requests == 0;
  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      timed ? start + from_seconds(options.duration_s) : Clock::time_point::max();
  Budget budget(options.requests, deadline);
  std::vector<Tally> tallies(options.threads);
  // After everything the workers refer to: destroying an io_context destroys the workers the
  // deadline cut short, which must not outlive their plan and tallies.
  std::deque<asio::io_context> threads_io;
  for (unsigned i = 0; i < options.threads; ++i) threads_io.emplace_back(1);

  for (unsigned i = 0; i < options.concurrency; ++i) {
    asio::io_context& io = threads_io[i % options.threads];
    Tally& tally = tallies[i % options.threads];
    if (options.tls) {
      asio::co_spawn(io, work<TlsStream>(plan, budget, tally), rethrow);
    } else {
      asio::co_spawn(io, work<PlainStream>(plan, budget, tally), rethrow);
    }
  }
  if (timed) {
    for (asio::io_context& io : threads_io) {
      asio::co_spawn(io, stop_at(io, deadline), rethrow);
    }
  }
  {
    std::vector<std::jthread> threads;
    for (asio::io_context& io : threads_io) threads.emplace_back([&io] { io.run(); });
  }
  const double elapsed_s = to_seconds(Clock::now() - start);

  Tally total;
  for (const Tally& tally : tallies) total.merge(tally);
  std::cout << report(options, total, elapsed_s).dump() << std::endl;
  total.errors.report(mode_name(options));
  return 0;
}

}  // namespace ward::loadgen
