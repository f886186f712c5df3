// What runs report: their failures by kind, their latencies, and the JSON object they print.
#pragma once

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "loadgen/endpoint.h"

namespace ward::loadgen {

using Clock = std::chrono::steady_clock;

inline Clock::duration from_seconds(double seconds) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}
inline double to_seconds(Clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

// Where a request failed. Each kind points at a different culprit, hence separate counts.
enum class ErrorKind {
  kConnect,  // the TCP connection to the first hop (the proxy, or the target) failed
  kProxy,    // the proxy refused the CONNECT, or its reply was malformed
  kTls,      // the TLS handshake failed
  kTimeout,  // a step took longer than --timeout
  kStatus,   // the server answered, but not with a 2xx
  kIo,       // the connection failed mid-request, or the response was malformed
  kFraming,  // bytes arrived after a complete response, before the next request: the peer's
             // HTTP/1.1 framing is broken (the response counts; its connection is not reused)
};
inline constexpr std::size_t kErrorKindCount = 7;

class ErrorCounts {
 public:
  void add(ErrorKind kind, std::string_view message);
  void merge(const ErrorCounts& other);

  // {"connect": 0, "proxy": 0, ...}: every kind, so that scripts need not test for absent keys.
  nlohmann::ordered_json to_json() const;

  // One stderr line per kind that occurred, with its count and its first message: the JSON says
  // how much went wrong, this says why.
  void report(std::string_view mode) const;

 private:
  std::array<std::uint64_t, kErrorKindCount> counts_{};
  std::array<std::string, kErrorKindCount> first_messages_;
};

// Every request's latency, kept whole so that percentiles are exact: 4 bytes a request, 40 MB for
// a minute at 160k requests/s.
class Latencies {
 public:
  void add(Clock::duration latency);
  void merge(const Latencies& other);
  std::uint64_t count() const { return micros_.size(); }

  // {"p50", "p90", "p99", "max", "mean"} in milliseconds; nulls when there are no samples. Sorts
  // the samples, hence not const.
  nlohmann::ordered_json summarize();

 private:
  std::vector<std::uint32_t> micros_;
};

// The start of every mode's JSON: {"mode", "proxy" (null when direct), "target"}.
nlohmann::ordered_json describe_run(std::string_view mode, const std::optional<Endpoint>& proxy,
                                    const Endpoint& target);

// `value` rounded to `decimals` places: the JSON is read by people too.
double rounded(double value, int decimals);

}  // namespace ward::loadgen
