// Human log lines on stderr: "ward: message" and, with -v, "ward[debug]: message".
// Structured records (audit) live in the audit module; these lines are for people.
#pragma once

#include <fmt/core.h>

#include <string_view>

namespace ward::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void set_verbose(bool on);
bool verbose();
void write(Level level, std::string_view message);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (verbose()) write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace ward::log
