// Small string and path helpers shared by every module.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace ward {

// `bytes` bytes from getrandom(2), as lower-case hex (2 digits a byte); fails only when the
// kernel gives no randomness.
Result<std::string> random_hex(std::size_t bytes);

std::vector<std::string_view> split(std::string_view s, char sep);
bool glob_match(std::string_view pattern, std::string_view text);  // fnmatch(3) without flags

// Lexical normalisation of an absolute path: collapses "//" and "/./", drops a trailing slash.
// Returns nullopt for a relative path or one with a ".." component (never resolved lexically).
std::optional<std::string> normalize_absolute_path(std::string_view path);

// True when `path` equals `dir` or lies beneath it (both normalised absolute paths).
bool path_within(std::string_view path, std::string_view dir);

}  // namespace ward
