// Checks of command-line values that every command shares, with ward's own messages: CLI11's
// say "Value -1 not in range 0.000000 to 1797693134862315708145..." or "File does not exist".
#pragma once

#include <CLI/App.hpp>

#include <string>

namespace ward::cli {

// The longest duration an option takes (a sandbox's lifetime, a command's timeout), in seconds:
// far beyond any use, far below what overflows once counted in milliseconds.
constexpr long long kTenYears = 10LL * 365 * 86400;

// A number from `lo` to `hi` (inclusive; `lo` itself excluded when `lo_excluded`), of `unit`
// ("seconds"): "-1 is not a number of seconds from 0 to 3600" ("... above 0 and up to 10").
CLI::Validator number_between(double lo, double hi, const std::string& unit,
                              bool lo_excluded = false);
// A whole number from `lo` to `hi`: "0 is not a whole number from 1 to 65536".
CLI::Validator whole_number_between(long long lo, long long hi);

// Why `path` cannot be read as a file ("PATH: No such file or directory", "PATH: is a
// directory, not a file"); "" when it can be opened. Not yet printable() (log lines make it so).
std::string unreadable_file(const std::string& path);
// The same as a check of an option's value (a usage error, exit status 2).
CLI::Validator readable_file();

}  // namespace ward::cli
