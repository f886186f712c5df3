// idle: opens many tunnels, then holds them without a byte of traffic, so that the proxy's memory
// and descriptors per connection can be read off the process under test (--pid).
#include <sys/socket.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

#include "loadgen/modes.h"
#include "loadgen/net.h"

namespace ward::loadgen {
namespace {

// VmRSS from /proc/PID/status, in KiB.
std::optional<std::uint64_t> resident_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    std::uint64_t kib = 0;
    if (line.starts_with("VmRSS:") && std::istringstream(line.substr(6)) >> kib) return kib;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> open_fds(int pid) {
  std::error_code error;
  std::filesystem::directory_iterator entry("/proc/" + std::to_string(pid) + "/fd", error);
  std::uint64_t count = 0;
  for (; !error && entry != std::filesystem::directory_iterator(); entry.increment(error)) ++count;
  if (error) return std::nullopt;
  return count;
}

// Nulls for what cannot be read (the process is gone, or belongs to another user).
nlohmann::ordered_json sample_process(int pid) {
  const auto or_null = [](std::optional<std::uint64_t> value) {
    return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
  };
  return {{"vm_rss_kib", or_null(resident_kib(pid))}, {"fds", or_null(open_fds(pid))}};
}

// Whether the far end still holds `socket` open: no end of stream, nor a reset, waiting to be read.
bool still_open(tcp::socket& socket) {
  char byte;
  const ssize_t received = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return received > 0 || (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

// What the openers share. They all run on one thread.
struct Opening {
  const IdleOptions& options;
  Route route;
  Clock::time_point start;
  std::uint64_t next = 0;  // the number of the next tunnel to open
  std::vector<tcp::socket> tunnels;
  ErrorCounts errors;
};

// Opens tunnels one after another until --count have been tried. Tunnel n is due n/rate seconds
// into the run, which holds the rate however many openers there are.
asio::awaitable<void> open_tunnels(Opening& opening) {
  const auto executor = co_await asio::this_coro::executor;
  const IdleOptions& options = opening.options;
  asio::steady_timer pacer(executor);
  for (std::uint64_t n = opening.next++; n < options.count; n = opening.next++) {
    if (options.rate > 0) {
      pacer.expires_at(opening.start + from_seconds(static_cast<double>(n) / options.rate));
      co_await pacer.async_wait(asio::use_awaitable);
    }
    beast::tcp_stream stream(executor);
    stream.expires_after(from_seconds(options.timeout_s));
    try {
      co_await open_route(stream, opening.route);
      opening.tunnels.push_back(stream.release_socket());
    } catch (const Failure& failure) {
      opening.errors.add(failure.kind(), failure.what());
    }
  }
}

}  // namespace

int run_idle(const IdleOptions& options) {
  nlohmann::ordered_json process = nullptr;
  if (options.pid) {
    if (!std::filesystem::exists("/proc/" + std::to_string(*options.pid))) {
      throw std::runtime_error("no process " + std::to_string(*options.pid) + " to sample");
    }
    process = {{"pid", *options.pid}, {"before", sample_process(*options.pid)}};
  }

  asio::io_context io(1);  // before `opening`, whose sockets must go first
  Opening opening{options, plan_route(options.proxy, options.target, /*tunnel=*/true),
                  Clock::now()};
  for (std::uint64_t i = 0; i < std::min<std::uint64_t>(options.concurrency, options.count); ++i) {
    asio::co_spawn(io, open_tunnels(opening), rethrow);
  }
  io.run();
  const double opening_s = to_seconds(Clock::now() - opening.start);
  // Said at once, for whoever wants to look at the proxy while the tunnels are held.
  std::fprintf(stderr,
               "ward-loadgen idle: %zu of %llu tunnels open after %.3f s, holding them %g s\n",
               opening.tunnels.size(), static_cast<unsigned long long>(options.count), opening_s,
               options.hold_s);

  if (options.pid) process["established"] = sample_process(*options.pid);
  std::this_thread::sleep_for(from_seconds(options.hold_s));
  if (options.pid) process["held"] = sample_process(*options.pid);
  std::uint64_t open_after_hold = 0;
  for (tcp::socket& tunnel : opening.tunnels) open_after_hold += still_open(tunnel);

  nlohmann::ordered_json json = describe_run("idle", options.proxy, options.target);
  json["count"] = options.count;
  json["established"] = opening.tunnels.size();
  json["errors"] = opening.errors.to_json();
  json["establish_s"] = rounded(opening_s, 3);
  json["tunnels_per_s"] = rounded(static_cast<double>(opening.tunnels.size()) / opening_s, 1);
  json["hold_s"] = options.hold_s;
  json["open_after_hold"] = open_after_hold;
  json["process"] = process;
  std::cout << json.dump() << std::endl;
  opening.errors.report("idle");
  return 0;
}

}  // namespace ward::loadgen
