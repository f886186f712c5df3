// The gateway API's small pieces: replies and errors as JSON, field checks, chunked NDJSON
// streams, log files read from their tail, workspace paths that cannot escape, a histogram.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/result.h"
#include "gateway/store.h"
#include "policy/policy.h"

namespace ward::gateway {

using json = nlohmann::json;
using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Query = std::vector<std::pair<std::string, std::string>>;
// A client connection: on the Unix socket or a TCP listener.
using Socket = boost::asio::generic::stream_protocol::socket;

struct Reply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  bool www_authenticate = false;  // 401: `WWW-Authenticate: Bearer`
  std::string allow;              // 405: the methods the target has (`Allow`)

  static Reply json(int status, const nlohmann::json& value);
  static Reply error(int status, std::string_view code, std::string_view message);
  static Reply not_allowed(std::string_view allow) {
    Reply r =
        error(405, "method_not_allowed", "method not allowed here; allowed: " + std::string(allow));
    r.allow = allow;
    return r;
  }
  // 400 invalid_policy with every diagnostic.
  static Reply invalid_policy(const policy::LoadResult& loaded);
  // 400 `code` (invalid_policy, invalid_profile): the first error as the message, and every
  // error in `diagnostics` as {line, column, key, message}.
  static Reply invalid(std::string_view code, const std::vector<policy::Diagnostic>& diagnostics);
};

// Writes a whole reply; false when the client is gone.
boost::asio::awaitable<bool> write_reply(Socket& socket, Reply reply, bool keep_alive);

// 400 unknown_field / bad_request when `body` has a key outside `allowed` or lacks a `required`.
std::optional<Reply> check_fields(const json& body, std::initializer_list<const char*> allowed,
                                  std::initializer_list<const char*> required);
std::optional<Reply> check_fields(const json& body, const std::vector<std::string>& allowed,
                                  std::initializer_list<const char*> required);

std::optional<std::string> query_value(const Query& query, std::string_view key);

json provider_json(const ProviderRecord& p);
json revision_json(const PolicyRevision& r, bool with_content);
std::string base64(std::string_view data);
// The bytes of strict RFC 4648 base64 (padding optional), or nothing when `text` is not that.
std::optional<std::string> unbase64(std::string_view text);
std::string rfc3339(std::int64_t unix_seconds);

// A 200 response with a chunked body, one line per chunk. Each call: false once the client is
// gone.
class ChunkedWriter {
 public:
  explicit ChunkedWriter(Socket& socket) : socket_(socket) {}
  // The head, and with it (one write) a first line when there is one.
  boost::asio::awaitable<bool> begin(std::string_view content_type, const json& first = {});
  boost::asio::awaitable<bool> line(const json& value) { return line_text(value.dump()); }
  boost::asio::awaitable<bool> line_text(std::string text);
  // The last chunk, after (one write) a last line when there is one.
  boost::asio::awaitable<bool> end(const json& last = {});

 private:
  boost::asio::awaitable<bool> write(const std::string& bytes);

  Socket& socket_;
  bool ok_ = true;
};

// A log file read as lines: the last N first, then what is appended.
class LogFile {
 public:
  LogFile(std::string path, std::string source)
      : path_(std::move(path)), source_(std::move(source)) {}
  // The lines from the start (tail < 0) or the last `tail`, then what follows; each call reads
  // at most a bounded chunk (the tail: its last 4 MiB), and pending() says whether more of the
  // file is there already.
  std::vector<std::string> initial(long tail);
  std::vector<std::string> more();
  bool pending() const { return pending_; }
  // The line as the API sends it: audit lines as they are, output lines wrapped.
  std::string format(const std::string& line) const;

 private:
  static constexpr std::uint64_t kLogChunk = 1 << 20;
  std::vector<std::string> read_from(std::uint64_t offset, std::uint64_t limit);
  std::string path_, source_;
  std::uint64_t offset_ = 0;
  ino_t ino_ = 0;  // of the file read last
  dev_t dev_ = 0;
  bool pending_ = false;
  std::string partial_;
};

// Opens `rel` inside `workdir` such that nothing — `..`, an absolute symlink, a symlink that
// climbs out — resolves outside it (openat2 RESOLVE_BENEATH). With O_CREAT, or with
// `make_parents`, missing parent directories are made (0755), each one checked the same way.
Result<UniqueFd> open_in_workspace(const std::string& workdir, std::string rel, int flags,
                                   bool make_parents = false);

// Writes `data` as the file `rel` inside `workdir` (parents made as open_in_workspace does): into
// a temporary file beside it, renamed over it once whole, so a write that fails (a full disk)
// leaves what was there as it was. Only a regular file is replaced, and the new one keeps its
// owner and mode. Errors with `err` set are the filesystem's; without, the path's.
Result<void> write_in_workspace(const std::string& workdir, const std::string& rel,
                                std::string_view data);

// Prometheus histogram of durations in seconds.
class Histogram {
 public:
  void observe(double seconds);
  std::string render(const std::string& name, const std::string& help) const;

 private:
  static constexpr double kBounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                       0.1,   0.25,   0.5,   1,    2.5,   10};
  std::uint64_t counts_[std::size(kBounds)] = {};
  std::uint64_t total_ = 0;
  double sum_ = 0;
};

// ward_egress_decisions_total{sandbox,action,rule} from each sandbox's audit file (counted as it
// grows; offsets remembered between scrapes).
std::string proxy_metrics(const std::string& sandboxes_dir);

}  // namespace ward::gateway
