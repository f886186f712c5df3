#include "audit/sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

namespace ward::audit {

Result<Sink> Sink::open(const std::string& path, bool shorthand) {
  Sink sink;
  sink.shorthand_ = shorthand;
  if (!path.empty()) {
    // 0600: records name hosts and binaries; only the user who ran ward reads them.
    sink.file_.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!sink.file_) return fail_errno("cannot open the audit file " + path);
  }
  return sink;
}

void Sink::append(const nlohmann::json& record) {
  // One write(2) per record with O_APPEND: lines from concurrent writers never interleave.
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  ssize_t n = ::write(file_.get(), line.data(), line.size());
  (void)n;  // a full disk must not stop the proxy; the record is lost, the decision is not
}

void Sink::write(const NetworkEvent& e) {
  if (file_) append(network_activity(e));  // built only when written: it costs µs per request
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

void Sink::write(const HttpEvent& e) {
  if (file_) append(http_activity(e));
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

void Sink::write(const ApiEvent& e) {
  if (file_) append(api_activity(e));
  if (shorthand_) std::fprintf(stderr, "ward[audit]: %s\n", shorthand(e).c_str());
}

}  // namespace ward::audit
