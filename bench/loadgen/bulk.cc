// bulk: the throughput of one download through a tunnel (or straight from the target).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <iostream>
#include <vector>

#include "loadgen/modes.h"
#include "loadgen/net.h"

namespace ward::loadgen {
namespace {

// Large reads keep the loader's share of the CPU small next to the proxy's.
constexpr std::size_t kReadSize = 1 << 20;

struct Transfer {
  std::uint64_t bytes = 0;
  Clock::duration setup{};    // connection and tunnel
  Clock::duration elapsed{};  // from the request to the last byte
};

asio::awaitable<Transfer> download(const BulkOptions& options, const Route& route) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  const Clock::duration timeout = from_seconds(options.timeout_s);
  const Clock::time_point connecting = Clock::now();
  stream.expires_after(timeout);
  co_await open_route(stream, route);

  Transfer transfer;
  const Clock::time_point start = Clock::now();
  transfer.setup = start - connecting;
  const std::string request = "GET " + options.path + " HTTP/1.0\r\n\r\n";
  co_await step(ErrorKind::kIo, "request",
                asio::async_write(stream, asio::buffer(request), asio::use_awaitable));
  std::vector<char> buffer(kReadSize);
  while (transfer.bytes < options.bytes) {
    const std::size_t wanted =
        std::min<std::uint64_t>(buffer.size(), options.bytes - transfer.bytes);
    // A limit on silence: a long download is fine, a stalled one is not.
    stream.expires_after(timeout);
    // The end of the stream ends the download; it is not an error here.
    const auto [error, received] = co_await stream.async_read_some(
        asio::buffer(buffer.data(), wanted), asio::as_tuple(asio::use_awaitable));
    transfer.bytes += received;
    if (error == asio::error::eof) break;
    if (error) {
      throw Failure(error == beast::error::timeout ? ErrorKind::kTimeout : ErrorKind::kIo,
                    "read after " + std::to_string(transfer.bytes) + " bytes: " + error.message());
    }
  }
  transfer.elapsed = Clock::now() - start;
  co_return transfer;
}

}  // namespace

int run_bulk(const BulkOptions& options) {
  const Route route = plan_route(options.proxy, options.target, /*tunnel=*/true);
  asio::io_context io(1);
  Transfer transfer;
  std::exception_ptr failure;
  asio::co_spawn(io, download(options, route), [&](std::exception_ptr error, Transfer result) {
    failure = error;
    transfer = result;
  });
  io.run();
  if (failure) std::rethrow_exception(failure);

  const double elapsed_s = to_seconds(transfer.elapsed);
  const double bytes_per_s = static_cast<double>(transfer.bytes) / elapsed_s;
  nlohmann::ordered_json json = describe_run("bulk", options.proxy, options.target);
  json["requested_bytes"] = options.bytes;
  json["bytes"] = transfer.bytes;
  json["complete"] = transfer.bytes == options.bytes;
  json["setup_ms"] = rounded(to_seconds(transfer.setup) * 1000, 3);
  json["duration_s"] = rounded(elapsed_s, 4);
  json["bytes_per_s"] = static_cast<std::uint64_t>(bytes_per_s);
  json["mib_per_s"] = rounded(bytes_per_s / (1 << 20), 1);
  std::cout << json.dump() << std::endl;
  return 0;
}

}  // namespace ward::loadgen
