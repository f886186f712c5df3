// connect-tls and http: workers sending requests back to back, each waiting for its response.
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
using Request = http::request<http::empty_body>;

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

  void merge(const Tally& other) {
    latencies.merge(other.latencies);
    errors.merge(other.errors);
    connections += other.connections;
    tls_resumed += other.tls_resumed;
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
  Request request{http::verb::get, target, 11};
  const std::uint16_t default_port = options.tls ? 443 : 80;
  request.set(http::field::host, host_with_port(options.host, options.target.port, default_port));
  request.set(http::field::user_agent, "ward-loadgen");
  request.keep_alive(!options.new_connection);
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
        const bool reusable = co_await fetch();
        tally_.latencies.add(Clock::now() - start);
        if (!reusable) finish_connection();
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

  // Sends the request and reads the whole response: false when the connection cannot carry
  // another request.
  asio::awaitable<bool> fetch() {
    beast::get_lowest_layer(*stream_).expires_after(plan_.timeout);
    co_await step(ErrorKind::kIo, "request",
                  http::async_write(*stream_, request_, asio::use_awaitable));
    http::response<http::string_body> response;
    co_await step(ErrorKind::kIo, "response",
                  http::async_read(*stream_, buffer_, response, asio::use_awaitable));
    if (http::to_status_class(response.result()) != http::status_class::successful) {
      throw Failure(ErrorKind::kStatus, "HTTP " + std::to_string(response.result_int()) + " " +
                                            std::string(response.reason()));
    }
    co_return response.keep_alive() && !plan_.options.new_connection;
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
