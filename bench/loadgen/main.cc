// ward-loadgen: the load generator of the proxy benchmarks. One mode a run, each printing one JSON
// object on stdout: connect-tls (HTTPS through CONNECT tunnels), http (plain HTTP through a forward
// proxy), idle (many tunnels held open, for the proxy's cost per connection) and bulk (one
// download's throughput). Every mode also runs without --proxy, as the baseline.
#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "loadgen/endpoint.h"
#include "loadgen/modes.h"

namespace {

using ward::loadgen::Endpoint;

const char* const kFooter = R"(
Output: one JSON object on stdout; errors on stderr, with the first message of each kind.
Errors are counted by kind: connect (TCP to the proxy or target), proxy (CONNECT refused or
malformed reply), tls (handshake), timeout (a step over --timeout), status (non-2xx response),
io (connection lost or response malformed mid-request), framing (bytes after a complete response:
the response counts, its connection is not reused).
Exit status: 0 when the run completed (errors are in the JSON), 1 on bad arguments or when the
run could not start (or, in bulk mode, the download failed).)";

const CLI::Validator kEndpointForm(
    [](std::string& text) {
      return ward::loadgen::parse_endpoint(text) ? "" : "expected HOST:PORT, got '" + text + "'";
    },
    "");

std::optional<double> parse_number(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0') return std::nullopt;
  return value;
}

// CLI::PositiveNumber and CLI::NonNegativeNumber would quote the whole range of a double when they
// refuse a value.
const CLI::Validator kPositive(
    [](std::string& text) {
      const std::optional<double> number = parse_number(text);
      return number && *number > 0 ? "" : "expected a number above 0, got '" + text + "'";
    },
    "POSITIVE");
const CLI::Validator kNonNegative(
    [](std::string& text) {
      const std::optional<double> number = parse_number(text);
      return number && *number >= 0 ? "" : "expected a number, 0 or above, got '" + text + "'";
    },
    "NONNEGATIVE");

// "Name: value", as a request header; the name a token (RFC 9110, 5.6.2).
const CLI::Validator kHeaderForm(
    [](std::string& text) {
      const std::size_t colon = text.find(':');
      const bool token = colon != 0 && colon != std::string::npos &&
                         text.find_first_not_of(
                             "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                             "opqrstuvwxyz") == colon;
      const bool clean = text.find_first_of("\r\n") == std::string::npos;
      return token && clean ? "" : "expected 'Name: value', got '" + text + "'";
    },
    "");

const CLI::Validator kAbsolutePath(
    [](std::string& text) {
      return text.starts_with('/') ? "" : "expected a path starting with '/', got '" + text + "'";
    },
    "");

// Binds a HOST:PORT option to `endpoint` (an Endpoint, or an optional one).
template <typename Destination>
CLI::Option* add_endpoint(CLI::App& mode, const std::string& name, Destination& endpoint,
                          const std::string& description) {
  return mode
      .add_option_function<std::string>(
          name,
          [&endpoint](const std::string& text) { endpoint = *ward::loadgen::parse_endpoint(text); },
          description)
      ->check(kEndpointForm)
      ->type_name("HOST:PORT");
}

void add_proxy(CLI::App& mode, std::optional<Endpoint>& proxy, const std::string& what) {
  add_endpoint(mode, "--proxy", proxy,
               "The HTTP proxy to " + what + "; without it, connections go straight to the " +
                   "target (the baseline)");
}

void add_timeout(CLI::App& mode, double& timeout_s) {
  mode.add_option("--timeout", timeout_s,
                  "Seconds a connection set-up, or a request, may take before it counts as a "
                  "timeout error")
      ->check(kPositive)
      ->capture_default_str();
}

CLI::App* add_requests_mode(CLI::App& app, ward::loadgen::RequestOptions& options, bool tls) {
  CLI::App* mode =
      tls ? app.add_subcommand("connect-tls",
                               "HTTPS requests through CONNECT tunnels: each worker sends GETs one "
                               "after another over one tunnel, or over a new tunnel each")
          : app.add_subcommand("http",
                               "Plain HTTP GETs through a forward proxy (absolute-form request "
                               "line), over kept-alive connections or a new connection each");
  add_proxy(*mode, options.proxy, tls ? "open tunnels through, with CONNECT" : "send requests to");
  add_endpoint(*mode, "--target", options.target,
               tls ? "The HTTPS server (through a proxy, the proxy resolves its host)"
                   : "The HTTP server (through a proxy, the proxy resolves its host)")
      ->required();
  mode->add_option("--host", options.host,
                   tls ? "Server name for SNI and the Host header (default: the target's host)"
                       : "Name for the Host header (default: the target's host)")
      ->type_name("NAME");
  mode->add_option("--path", options.path, "Path to request")
      ->check(kAbsolutePath)
      ->type_name("PATH")
      ->capture_default_str();
  mode->add_option("--concurrency", options.concurrency,
                   "Workers, each with one request in flight and its own connection")
      ->check(kPositive)
      ->capture_default_str();
  mode->add_option("--threads", options.threads,
                   "Threads, each running an event loop with its share of the workers")
      ->check(kPositive)
      ->capture_default_str();
  CLI::Option* duration =
      mode->add_option("--duration", options.duration_s,
                       "Seconds to run; requests still in flight at the end are not counted")
          ->check(kPositive)
          ->capture_default_str();
  mode->add_option("--requests", options.requests, "Run until N requests are done, not for a time")
      ->check(kPositive)
      ->excludes(duration);
  mode->add_flag(tls ? "--new-tunnel" : "--new-connection", options.new_connection,
                 tls ? "Open a new connection, CONNECT tunnel and TLS session for every request "
                       "(Connection: close); latency then includes that set-up"
                     : "Open a new connection for every request (Connection: close); latency then "
                       "includes the TCP set-up");
  if (tls) {
    mode->add_flag("--resume", options.resume_tls,
                   "Resume the worker's previous TLS session on each new connection (default: "
                   "every handshake is a full one)");
    mode->add_option("--cafile", options.ca_file,
                     "Verify the server's certificate, and --host against it, with these CAs "
                     "(default: no verification)")
        ->check(CLI::ExistingFile);
  }
  CLI::Option* body =
      mode->add_option("--body", options.body,
                       "POST this body with every request (Content-Type: application/json unless "
                       "--header sets one); without it, GETs")
          ->type_name("TEXT");
  mode->add_option_function<std::string>(
          "--body-file",
          [&options](const std::string& path) {
            std::ifstream in(path, std::ios::binary);
            std::ostringstream text;
            text << in.rdbuf();
            if (!in) throw CLI::ValidationError("--body-file", "cannot read '" + path + "'");
            options.body = text.str();
          },
          "The same, the body read from this file")
      ->check(CLI::ExistingFile)
      ->excludes(body)
      ->type_name("FILE");
  mode->add_option("--header", options.headers, "Add this header to every request (repeatable)")
      ->check(kHeaderForm)
      ->type_name("'NAME: VALUE'");
  mode->add_flag("--events", options.events,
                 "Read each response as it arrives and time its server-sent events (each ends with "
                 "a blank line): adds events, first_event_ms (from the request) and event_gap_ms "
                 "(between one event's arrival and the next's, within a response) to the JSON");
  add_timeout(*mode, options.timeout_s);
  return mode;
}

CLI::App* add_idle_mode(CLI::App& app, ward::loadgen::IdleOptions& options) {
  CLI::App* mode = app.add_subcommand(
      "idle",
      "Open --count tunnels to a silent TCP server, hold them --hold seconds, close them. With "
      "--pid, samples that process's VmRSS and open descriptors before, once all are open, and at "
      "the end of the hold");
  add_proxy(*mode, options.proxy, "open tunnels through, with CONNECT");
  add_endpoint(*mode, "--target", options.target,
               "A TCP server that accepts connections and sends nothing")
      ->required();
  mode->add_option("--count", options.count, "Tunnels to open")
      ->check(kPositive)
      ->capture_default_str();
  mode->add_option("--rate", options.rate, "New tunnels a second at most (0: no limit)")
      ->check(kNonNegative)
      ->capture_default_str();
  mode->add_option("--concurrency", options.concurrency, "Tunnels being opened at once at most")
      ->check(kPositive)
      ->capture_default_str();
  mode->add_option("--hold", options.hold_s, "Seconds to hold the tunnels once all are open")
      ->check(kNonNegative)
      ->capture_default_str();
  mode->add_option("--pid", options.pid, "The process to sample (the proxy under test)")
      ->check(kPositive);
  add_timeout(*mode, options.timeout_s);
  return mode;
}

CLI::App* add_bulk_mode(CLI::App& app, ward::loadgen::BulkOptions& options) {
  CLI::App* mode = app.add_subcommand(
      "bulk",
      "Download --bytes through a tunnel: send 'GET PATH HTTP/1.0' and a blank line, then read "
      "until --bytes arrived or the server closed; measured from the request to the last byte");
  add_proxy(*mode, options.proxy, "open the tunnel through, with CONNECT");
  add_endpoint(*mode, "--target", options.target,
               "A TCP server that answers the request line with a stream of bytes")
      ->required();
  mode->add_option("--bytes", options.bytes, "Bytes to read; K, M, G suffixes are powers of 1024")
      ->transform(CLI::AsSizeValue(/*kb_is_1000=*/false).description(""))
      ->type_name("SIZE")
      ->check(kPositive)
      ->required();
  mode->add_option("--path", options.path, "Path in the request line")
      ->check(kAbsolutePath)
      ->type_name("PATH")
      ->capture_default_str();
  mode->add_option("--timeout", options.timeout_s,
                   "Seconds the set-up, or any wait for more bytes, may take")
      ->check(kPositive)
      ->capture_default_str();
  return mode;
}

// Idle mode holds a descriptor per tunnel, beyond the usual soft limit of 1024.
void raise_descriptor_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) std::perror("ward-loadgen: setrlimit");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ward-loadgen: load for the proxy benchmarks", "ward-loadgen"};
  app.require_subcommand(1);
  app.footer(kFooter);
  ward::loadgen::RequestOptions tls_options{.tls = true};
  ward::loadgen::RequestOptions http_options{.tls = false};
  ward::loadgen::IdleOptions idle_options;
  ward::loadgen::BulkOptions bulk_options;
  CLI::App* connect_tls = add_requests_mode(app, tls_options, /*tls=*/true);
  CLI::App* http = add_requests_mode(app, http_options, /*tls=*/false);
  CLI::App* idle = add_idle_mode(app, idle_options);
  add_bulk_mode(app, bulk_options);
  try {
    app.parse(argc, argv);
    if (connect_tls->parsed() || http->parsed()) {
      ward::loadgen::RequestOptions& options = connect_tls->parsed() ? tls_options : http_options;
      if (options.threads > options.concurrency) {
        throw CLI::ValidationError("--threads", "must not exceed --concurrency");
      }
      if (options.host.empty()) options.host = options.target.host;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 1;
  }

  raise_descriptor_limit();
  const std::string mode = app.get_subcommands().front()->get_name();
  try {
    if (connect_tls->parsed()) return ward::loadgen::run_requests(tls_options);
    if (http->parsed()) return ward::loadgen::run_requests(http_options);
    if (idle->parsed()) return ward::loadgen::run_idle(idle_options);
    return ward::loadgen::run_bulk(bulk_options);  // the one subcommand left
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ward-loadgen %s: %s\n", mode.c_str(), e.what());
    return 1;
  }
}
