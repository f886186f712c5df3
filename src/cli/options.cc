#include "cli/options.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/core.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "base/strings.h"

namespace ward::cli {
namespace {

// 3600, 0.5, 1e+06 as a person writes them.
std::string plain(double v) {
  return fmt::format("{:g}", v);
}

}  // namespace

CLI::Validator number_between(double lo, double hi, const std::string& unit, bool lo_excluded) {
  const std::string range = lo_excluded ? fmt::format("above {} and up to {}", plain(lo), plain(hi))
                                        : fmt::format("from {} to {}", plain(lo), plain(hi));
  // In the help: "FLOAT:0-3600=3" (the default after '=').
  const std::string shown = fmt::format("{}{}-{}", lo_excluded ? ">" : "", plain(lo), plain(hi));
  return CLI::Validator(
      [lo, hi, unit, lo_excluded, range](std::string& input) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(input.c_str(), &end);
        const bool number = !input.empty() && end && *end == '\0' && errno == 0 && std::isfinite(v);
        if (number && (lo_excluded ? v > lo : v >= lo) && v <= hi) return {};
        return fmt::format("{} is not a number of {} {}", printable(input), unit, range);
      },
      shown);
}

CLI::Validator whole_number_between(long long lo, long long hi) {
  return CLI::Validator(
      [lo, hi](std::string& input) -> std::string {
        long long v = 0;
        const char* first = input.data();
        const char* last = first + input.size();
        if (first != last && *first == '+') ++first;
        const auto [ptr, ec] = std::from_chars(first, last, v);
        if (first != last && ec == std::errc() && ptr == last && v >= lo && v <= hi) return {};
        return fmt::format("{} is not a whole number from {} to {}", printable(input), lo, hi);
      },
      fmt::format("{}-{}", lo, hi));
}

std::string unreadable_file(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (S_ISDIR(st.st_mode)) return path + ": is a directory, not a file";
  if (::access(path.c_str(), R_OK) != 0) return path + ": " + std::strerror(errno);
  return {};
}

CLI::Validator readable_file() {
  return CLI::Validator([](std::string& input) { return printable(unreadable_file(input)); },
                        "FILE");
}

}  // namespace ward::cli
