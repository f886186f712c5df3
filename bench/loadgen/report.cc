#include "loadgen/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

namespace ward::loadgen {
namespace {

constexpr std::array<const char*, kErrorKindCount> kErrorNames = {
    "connect", "proxy", "tls", "timeout", "status", "io", "framing",
};

std::size_t index_of(ErrorKind kind) {
  return static_cast<std::size_t>(kind);
}

double micros_to_millis(double micros) {
  return rounded(micros / 1000.0, 3);
}

}  // namespace

void ErrorCounts::add(ErrorKind kind, std::string_view message) {
  if (counts_[index_of(kind)]++ == 0) first_messages_[index_of(kind)] = message;
}

void ErrorCounts::merge(const ErrorCounts& other) {
  for (std::size_t i = 0; i < kErrorKindCount; ++i) {
    if (counts_[i] == 0) first_messages_[i] = other.first_messages_[i];
    counts_[i] += other.counts_[i];
  }
}

nlohmann::ordered_json ErrorCounts::to_json() const {
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (std::size_t i = 0; i < kErrorKindCount; ++i) json[kErrorNames[i]] = counts_[i];
  return json;
}

void ErrorCounts::report(std::string_view mode) const {
  for (std::size_t i = 0; i < kErrorKindCount; ++i) {
    if (counts_[i] == 0) continue;
    std::fprintf(stderr, "ward-loadgen %.*s: %llu %s error(s), the first: %s\n",
                 static_cast<int>(mode.size()), mode.data(),
                 static_cast<unsigned long long>(counts_[i]), kErrorNames[i],
                 first_messages_[i].c_str());
  }
}

void Latencies::add(Clock::duration latency) {
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(latency).count();
  micros_.push_back(static_cast<std::uint32_t>(
      std::min<decltype(micros)>(micros, std::numeric_limits<std::uint32_t>::max())));
}

void Latencies::merge(const Latencies& other) {
  micros_.insert(micros_.end(), other.micros_.begin(), other.micros_.end());
}

nlohmann::ordered_json Latencies::summarize() {
  nlohmann::ordered_json json = {
      {"p50", nullptr}, {"p90", nullptr}, {"p99", nullptr}, {"max", nullptr}, {"mean", nullptr}};
  if (micros_.empty()) return json;
  std::sort(micros_.begin(), micros_.end());
  // Nearest rank: the smallest sample that at least p% of the samples do not exceed.
  const auto percentile = [&](double p) {
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * micros_.size()));
    return micros_to_millis(micros_[std::max<std::size_t>(rank, 1) - 1]);
  };
  json["p50"] = percentile(50);
  json["p90"] = percentile(90);
  json["p99"] = percentile(99);
  json["max"] = micros_to_millis(micros_.back());
  const double sum = std::accumulate(micros_.begin(), micros_.end(), 0.0);
  json["mean"] = micros_to_millis(sum / micros_.size());
  return json;
}

nlohmann::ordered_json describe_run(std::string_view mode, const std::optional<Endpoint>& proxy,
                                    const Endpoint& target) {
  return {{"mode", mode},
          {"proxy", proxy ? nlohmann::ordered_json(proxy->authority()) : nullptr},
          {"target", target.authority()}};
}

double rounded(double value, int decimals) {
  const double scale = std::pow(10.0, decimals);
  return std::round(value * scale) / scale;
}

}  // namespace ward::loadgen
