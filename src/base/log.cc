#include "base/log.h"

#include <unistd.h>

#include <string>

#include "base/strings.h"

namespace ward::log {
namespace {
bool g_verbose = false;
}  // namespace

void set_verbose(bool on) {
  g_verbose = on;
}
bool verbose() {
  return g_verbose;
}

void write(Level level, std::string_view message) {
  std::string line;
  switch (level) {
    case Level::kDebug:
      line = "ward[debug]: ";
      break;
    case Level::kInfo:
      line = "ward: ";
      break;
    case Level::kWarn:
      line = "ward: warning: ";
      break;
    case Level::kError:
      line = "ward: error: ";
      break;
  }
  line.append(printable(message));  // messages quote names a sandbox may have chosen
  line.push_back('\n');
  // One write(2) per line so that lines from several processes do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace ward::log
