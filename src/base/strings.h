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

// How deep a request's JSON may nest ([ and { inside one another). nlohmann's parser does not
// recurse, but copying, comparing and printing a value do: a body of a few hundred thousand
// brackets would overflow the stack there. Every server refuses deeper JSON before parsing it.
constexpr std::size_t kMaxJsonDepth = 64;

// True when `text` opens more than `limit` arrays and objects inside one another (brackets in
// strings do not count). One pass, no recursion, nothing allocated. On text that is not JSON it
// never counts less than a parser builds before it stops at the error.
bool json_nests_deeper(std::string_view text, std::size_t limit = kMaxJsonDepth);

// `text` for a terminal or a line-based log: control characters (C0, DEL, C1) and bytes that are
// not UTF-8 become \xNN and a backslash \\, so that a name a sandbox chose (a binary's path, a
// host, a model) can neither start a line of its own, nor pass for an escape, nor send escape
// sequences to the reader's terminal.
std::string printable(std::string_view text);

}  // namespace ward
