// The load generator's modes: what each is given, and its entry point. Each prints one JSON object
// on stdout and returns the exit status; a failure to set up (a name that does not resolve, an
// unreadable CA file) or, in bulk mode, a failed transfer is thrown as std::exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/endpoint.h"

namespace ward::loadgen {

// connect-tls (HTTPS through CONNECT tunnels) and http (plain HTTP through a forward proxy); GETs,
// or POSTs of a body (a model API's calls, with --events its streamed answers).
struct RequestOptions {
  bool tls = false;               // connect-tls rather than http
  std::optional<Endpoint> proxy;  // none: straight to the target, the baseline
  Endpoint target;
  std::string host;  // SNI and Host header
  std::string path = "/";
  unsigned concurrency = 20;  // workers, each with one request in flight
  unsigned threads = 1;
  double duration_s = 10;
  std::uint64_t requests = 0;   // when not 0, the run ends after this many instead of duration_s
  bool new_connection = false;  // a new connection (tunnel, handshake) for every request
  bool resume_tls = false;
  std::string ca_file;  // verify the server's certificate against these CAs; empty: no check
  double timeout_s = 10;
  // A request body: when set, every request is a POST of it (Content-Type: application/json
  // unless a header says otherwise); else a GET.
  std::optional<std::string> body;
  std::vector<std::string> headers;  // "Name: value", added to every request
  // Time the response's server-sent events (each ends with a blank line, "\n\n"): when each
  // arrives, hence the time to the first and the gaps between them. The body is read as it comes.
  bool events = false;
};
int run_requests(const RequestOptions& options);

// idle: many tunnels held open, for the proxy's memory and descriptors per connection.
struct IdleOptions {
  std::optional<Endpoint> proxy;
  Endpoint target;
  std::uint64_t count = 1000;
  double rate = 0;             // new tunnels a second at most; 0: as fast as they open
  unsigned concurrency = 200;  // tunnels being opened at once at most
  double hold_s = 5;
  std::optional<int> pid;  // the process whose memory and descriptors are sampled
  double timeout_s = 10;
};
int run_idle(const IdleOptions& options);

// bulk: the throughput of one download through a tunnel.
struct BulkOptions {
  std::optional<Endpoint> proxy;
  Endpoint target;
  std::uint64_t bytes = 0;
  std::string path = "/";
  double timeout_s = 10;
};
int run_bulk(const BulkOptions& options);

}  // namespace ward::loadgen
