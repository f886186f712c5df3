// Internal to the creds module: finding placeholder candidates and the encodings the rewriter
// needs. Pure functions on strings.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace ward::creds::detail {

inline constexpr std::size_t kRandomHexDigits = 32;  // 128 bits
inline constexpr std::size_t kMaxVariableName = 128;
// "wardcred-" + name + "-" + random: the longest a real placeholder can be.
inline constexpr std::size_t kMaxPlaceholder = 9 + kMaxVariableName + 1 + kRandomHexDigits;
// An escaped character takes at most 6 bytes (\u0077), so an escaped placeholder at most this.
inline constexpr std::size_t kMaxEscapedPlaceholder = 6 * kMaxPlaceholder;

// [A-Za-z0-9_-]: the characters a placeholder is made of.
bool is_token_char(char c);

// The next occurrence of the prefix, in any case, at or after `from`; npos when none.
std::size_t find_prefix(std::string_view text, std::size_t from = 0);
// Where the run of token characters that starts at `start` ends.
std::size_t token_end(std::string_view text, std::size_t start);

// True when unescaping `text` (percent escapes, '+', JSON backslash escapes, repeated a few
// times for double encoding) reveals a prefix that the raw text does not hold: an escaped
// placeholder, which the upstream would decode but the rewriter cannot substitute.
bool has_escaped_prefix(std::string_view text);

// True when a placeholder candidate straddles the boundary between `before` (what came earlier in
// a websocket message; only its last kMaxEscapedPlaceholder bytes matter) and `after` (the next
// frame of the same message), literally or escaped.
bool straddles(std::string_view before, std::string_view after);

// Everything but RFC 3986 unreserved characters as %XX (upper-case hex).
std::string percent_encode(std::string_view s);
// The inside of a JSON string: `"` `\` and control characters escaped.
std::string json_escape(std::string_view s);

// RFC 4648 base64 (standard alphabet). Decoding accepts missing padding, nothing else.
std::string base64_encode(std::string_view s);
std::optional<std::string> base64_decode(std::string_view s);

}  // namespace ward::creds::detail
